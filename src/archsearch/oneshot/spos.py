"""SPOS, Single Path One-Shot (Guo et al., ECCV 2020): train a supernet on single paths drawn
uniformly, then search the *trained* supernet with evolution.

1. **Supernet training** (:class:`SPOS`, the one-shot loop): every minibatch trains one path
   drawn uniformly over the space's encodings (``sampling="uniform"``, as the paper) or over
   its isomorphism classes (``"uniform-iso"``, small spaces such as NB201). No architecture
   parameters, no controller: the supernet is only trained. Each epoch's record derives the
   best of ``derive_samples`` uniform paths (recalibrated, scored on ``derive_batches``
   validation minibatches): a progress signal, not the search's answer.
2. **Search** (:func:`evolution_search`): regularized evolution through the ordinary experiment
   machinery, over the ``supernet-checkpoint`` estimator (the trained weights, BN statistics
   recalibrated per candidate on training batches, the whole validation split). The paper's
   evolution differs (population 50, 20 generations, top-10 parents, crossover, a FLOPs
   constraint); aging evolution with mutation only is the project's evolution.

The official code does not sample uniformly on ImageNet (it redraws paths until their FLOPs
fall in a range, megvii-model/SinglePathOneShot#11); with no constraint here, sampling is
uniform. BatchNorm: affine off and running statistics on (its NB201 configuration), so that
recalibration has statistics to replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.config import Config, option
from archsearch.errors import UserError
from archsearch.oneshot.base import OneShotSearch, SupernetEstimator
from archsearch.spaces.base import Architecture
from archsearch.spaces.sampling import IsomorphismClassSampler

SAMPLING = ("uniform", "uniform-iso")


@dataclass(frozen=True)
class SPOSConfig(Config):
    """SPOS's options: the supernet training's, then the evolutionary search's."""

    epochs: int = option(10, "supernet training epochs", minimum=1)
    sampling: str = option("uniform", "paths drawn uniformly over the encodings (the paper) "
                           "or over isomorphism classes (uniform-iso)", choices=SAMPLING)
    derive_samples: int = option(8, "uniform paths scored per epoch for the progress record",
                                 minimum=1)
    derive_batches: int = option(1, "validation minibatches each is scored on", minimum=1)
    calibration_batches: int = option(20, "training minibatches that re-estimate a path's "
                                      "BatchNorm statistics before it is scored", minimum=0)
    search_trials: int = option(100, "architectures the evolution scores on the trained "
                                "supernet", 1000, minimum=1)
    population_size: int = option(20, "evolution population", 50, minimum=1)
    sample_size: int = option(5, "evolution tournament size", minimum=1)

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise UserError(f"sampling must be one of {', '.join(SAMPLING)}, not "
                            f"{self.sampling!r}")
        if self.derive_samples < 1 or self.calibration_batches < 0:
            raise UserError("derive_samples must be >= 1 and calibration_batches >= 0")
        if not 1 <= self.sample_size <= self.population_size:
            raise UserError(f"sample_size ({self.sample_size}) must be between 1 and "
                            f"population_size ({self.population_size})")


class SPOS(OneShotSearch):
    def __init__(self, estimator: SupernetEstimator, config: SPOSConfig, seed: int = 0) -> None:
        super().__init__(estimator, config.epochs)
        self.config = config
        self.rng = np.random.default_rng([seed, 0x5905])
        self.iso_sampler = (IsomorphismClassSampler(self.space)
                            if config.sampling == "uniform-iso" else None)

    def sample(self) -> Architecture:
        if self.iso_sampler is not None:
            return self.iso_sampler.sample(self.rng)
        return self.space.sample(self.rng)

    def train_epoch(self) -> dict[str, Any]:
        for _ in range(self.estimator.steps_per_epoch):
            self.estimator.train_step(self.sample())
        return self.estimator.epoch_stats()

    def derive(self) -> tuple[Architecture, float, dict[str, Any]]:
        candidates = [self.sample() for _ in range(self.config.derive_samples)]
        data = [self.estimator.batch("val") for _ in range(self.config.derive_batches)]
        scores = []
        for arch in candidates:
            recalibrate = getattr(self.estimator, "recalibrate", None)
            if recalibrate is not None:
                recalibrate(arch, self.config.calibration_batches)
            scores.append(float(sum(self.estimator.reward_on(arch, x, y)  # type: ignore[attr-defined]
                                    for x, y in data)) / len(data))
        i = int(np.argmax(scores))
        return candidates[i], scores[i], {}

    def method_state(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "rng": self.rng.bit_generator.state}

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def evolution_search(space: Any, estimator: Any, storage: Any, n_trials: int, seed: int,
                     executor: Any = None, on_trial: Any = None,
                     **evolution: Any) -> list[Any]:
    """SPOS's search phase: regularized evolution over a ``supernet-checkpoint`` estimator
    (``space`` and ``estimator`` as Specs), through the experiment (stored, resumable)."""
    from archsearch.experiment.experiment import Experiment
    from archsearch.experiment.trial import build_space
    from archsearch.strategies.regularized_evolution import RegularizedEvolution

    strategy = RegularizedEvolution(build_space(space), seed=seed, **evolution)
    experiment = Experiment(space, estimator, strategy, storage, executor)
    return experiment.run(n_trials=n_trials, on_trial=on_trial)
