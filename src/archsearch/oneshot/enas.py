"""ENAS (Pham et al., ICML 2018) = the one-shot loop + the REINFORCE controller, over a
shared-weights estimator.

Each epoch:

1. **shared weights**: the controller samples one architecture per training minibatch (all of
   them in one batched pass) and the supernet trains one SGD step through each;
2. **controller**: ``controller_steps x aggregate`` times, ask the controller for an
   architecture, score it on a random validation minibatch (the reward) and tell it; the
   controller takes one Adam step per ``aggregate`` rewards;
3. **derive**: sample ``derive_samples`` architectures, score each on the same validation
   minibatch(es), keep the best.

``warmup_epochs`` (default 0, as the paper) first trains the shared weights on uniformly sampled
architectures with the controller frozen, so that its first rewards come from a supernet that
has learned something: without it, on short runs the controller locks onto the parameter-free
ops that a barely trained supernet favours (see BENCHMARKS.md).

``shared_sampling="uniform"`` (not in the paper, which trains the shared weights on the
controller's samples) keeps training the shared weights on uniformly sampled architectures
after the warm-up too, while the controller learns from their rewards: the supernet then does
not train the controller's favourites most, which would make them look better still.
``"uniform-iso"`` draws them uniformly over isomorphism classes instead (small spaces only, such
as NAS-Bench-201's; :mod:`archsearch.spaces.sampling`), so that the many encodings of the same
small degenerate cell do not take most of the training.

``derive_window=M`` (not in the paper, whose derive trusts one supernet at the last epoch)
draws one pool of ``derive_samples`` policy samples at the start of the last M epochs and scores
every member at each of those epochs; the derived architecture is the member with the best mean
score. The supernet's scores of a cell swing from one epoch's weights to the next (on NB201 the
last-epoch pick ranged over 88.8-93.6 within ten epochs), and a mean over M snapshots of the
weights is steadier than any one of them. Measured there (BENCHMARKS.md): steadier picks and a
better six-seed mean, but the pool is only as good as the policy when it is drawn, and on three
of the six seeds the plain derive did better.

A ``prior`` (any estimator, typically a training-free ``zero-cost`` one such as synflow; not
in ENAS) warms the controller up before the first epoch, Abdelfattah et al.'s (ICLR 2021)
"zero-cost warm-up" for an RL controller: ``prior_samples`` policy samples are rewarded with
their prior score's percentile among ``PRIOR_REFERENCE`` uniformly random architectures (a
reward in [0, 1], as an accuracy), so that the search starts from the architectures the prior
favours; from then on the supernet's rewards alone train it.

Everything is resumable (the one-shot loop's checkpoint): the supernet, its optimizer and
generator, the controller and the history, written atomically after every epoch, so a killed
search continues from its last finished epoch exactly as it would have run.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass
from typing import Any

import torch

from archsearch.config import Config, option
from archsearch.errors import UserError
from archsearch.estimators.base import Estimator
from archsearch.oneshot.base import OneShotSearch, SupernetEstimator
from archsearch.spaces.base import Architecture
from archsearch.spaces.sampling import IsomorphismClassSampler
from archsearch.strategies.reinforce import Reinforce
from archsearch.types import Result

log = logging.getLogger(__name__)


SHARED_SAMPLING = ("controller", "uniform", "uniform-iso")
PRIOR_REFERENCE = 64  # random architectures a prior's scores are ranked against


@dataclass(frozen=True)
class ENASConfig(Config):
    """ENAS's options: the loop's, and its controller's (REINFORCE over an LSTM policy)."""

    epochs: int = option(10, "search epochs (shared weights, then controller, then derive)",
                         310, minimum=1)
    controller_steps: int = option(30, "controller Adam steps per epoch", minimum=0)
    aggregate: int = option(10, "rewards per controller Adam step", minimum=1)
    derive_samples: int = option(32, "policy samples scored to derive the best", minimum=1)
    derive_batches: int = option(1, "validation minibatches each derived candidate is scored "
                                 "on", minimum=1)
    warmup_epochs: int = option(0, "first epochs train the shared weights on uniform samples, "
                                "controller frozen (not in the paper)", minimum=0)
    shared_sampling: str = option("controller", "who picks the shared weights' architectures "
                                  "after the warm-up (uniform, uniform-iso: not in the paper)",
                                  choices=SHARED_SAMPLING)
    derive_window: int = option(0, "last epochs whose scores of one candidate pool are "
                                "averaged for the derive (0: the paper's derive)", minimum=0)
    prior: str | None = option(None, "a zero-cost proxy that warms the controller up before "
                               "the first epoch (Abdelfattah et al. 2021; not in ENAS)")
    prior_samples: int = option(1000, "controller samples rewarded by the prior", minimum=0)
    lr: float = option(0.0035, "controller Adam learning rate", minimum=0)
    tanh_constant: float | None = option(1.10, "logits = c * tanh(logits / temperature)")
    temperature: float | None = option(None, "controller logit temperature")
    entropy_weight: float = option(1e-4, "entropy bonus of the policy gradient", minimum=0)
    baseline_decay: float = option(0.99, "moving-average baseline decay", minimum=0, maximum=1)
    hidden: int = option(100, "controller LSTM units (the official code: 2 layers of 32)",
                         minimum=1)
    layers: int = option(1, "controller LSTM layers", minimum=1)
    penalty_weight: float = option(0.8, "weight of the controller's penalty (macro: the "
                                   "skip-density KL)", minimum=0)
    controller: dict = option({}, "extra options of the space's controller (op_tanh_reduce, "
                              "skip_target)")

    def __post_init__(self) -> None:
        if self.derive_window < 0:
            raise UserError(f"derive_window must be >= 0 (0: the paper's derive), "
                            f"not {self.derive_window}")
        if self.shared_sampling not in SHARED_SAMPLING:
            raise UserError(f"shared_sampling must be one of {', '.join(SHARED_SAMPLING)} "
                            f"(ENAS: controller), not {self.shared_sampling!r}")
        if self.prior_samples < 0:
            raise UserError(f"prior_samples must be >= 0, not {self.prior_samples}")

    def controller_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`enas_controller` these options set."""
        return {"lr": self.lr, "tanh_constant": self.tanh_constant,
                "temperature": self.temperature, "entropy_weight": self.entropy_weight,
                "baseline_decay": self.baseline_decay, "hidden": self.hidden,
                "layers": self.layers, "penalty_weight": self.penalty_weight,
                "controller": dict(self.controller)}


# ENAS's official controller settings for the micro search (scripts/cifar10_micro_search.sh);
# the macro search uses tanh 1.5, lr 0.001 and the skip penalty (see CONTROLLER_DEFAULTS).
CONTROLLER_DEFAULTS: dict[str, dict[str, Any]] = {
    "enas-micro": {"lr": 0.0035, "tanh_constant": 1.10, "controller": {"op_tanh_reduce": 2.5}},
    "enas-macro": {"lr": 0.001, "tanh_constant": 1.5, "penalty_weight": 0.8,
                   "controller": {"skip_target": 0.4}},
    # scripts/ptb_search.sh
    "enas-rnn": {"lr": 0.001, "tanh_constant": 2.5, "temperature": 5.0,
                 "entropy_weight": 1e-3},
}


def enas_controller(space: Any, seed: int, aggregate: int, **overrides: Any) -> Reinforce:
    """ENAS's REINFORCE: baseline decay 0.99, entropy 1e-4, raw rewards, repeats allowed."""
    options = {"hidden": 100, "lr": 0.0035, "baseline_decay": 0.99, "entropy_weight": 1e-4,
               "tanh_constant": 1.10, "normalize": False, "dedup": False,
               **CONTROLLER_DEFAULTS.get(space.name, {}), **overrides}
    return Reinforce(space, seed=seed, batch_size=aggregate, **options)


class ENAS(OneShotSearch):
    """The one-shot loop (:class:`~archsearch.oneshot.base.OneShotSearch`) plus ENAS's
    controller: REINFORCE over the space's decisions, rewarded by the supernet."""

    def __init__(self, estimator: SupernetEstimator, controller: Reinforce,
                 config: ENASConfig, prior: Estimator | None = None) -> None:
        super().__init__(estimator, config.epochs)
        self.controller, self.config = controller, config
        self.prior = prior
        self.iso_sampler = (IsomorphismClassSampler(self.space)
                            if config.shared_sampling == "uniform-iso" else None)
        self.pool: list[str] = []  # derive_window's candidates and their summed scores
        self.pool_scores: list[float] = []

    def warm_up_on_prior(self) -> dict[str, float]:
        """Teach the controller the prior's preferences (before the first epoch)."""
        assert self.prior is not None
        start, rng = time.perf_counter(), self.controller.rng
        scored = [self.prior.evaluate(self.space.sample(rng)) for _ in range(PRIOR_REFERENCE)]
        reference = sorted(r.objective for r in scored if r.ok)
        if not reference:
            raise UserError("the prior failed on every reference architecture: check its "
                            "options (the log says why each failed)")
        rewards: list[float] = []
        steps = -(-self.config.prior_samples // self.config.aggregate)
        for _ in range(steps):
            for arch in [self.controller.ask() for _ in range(self.config.aggregate)]:
                result = self.prior.evaluate(arch)  # type: ignore[arg-type]
                if not result.ok:  # the controller skips failed results
                    self.controller.tell(arch, result)  # type: ignore[arg-type]
                    continue
                below = bisect.bisect_left(reference, result.objective)
                ties = bisect.bisect_right(reference, result.objective) - below
                rewards.append((below + ties / 2) / len(reference))  # percentile in [0, 1]
                self.controller.tell(arch, Result(rewards[-1]))  # type: ignore[arg-type]
        # the supernet's rewards are on another scale (minus a loss, say): its first one
        # starts a fresh baseline, instead of a long run of negative advantages that would
        # push the policy away from everything it samples, the prior's favourites first
        self.controller.baseline = None
        tenth = max(1, len(rewards) // 10)
        stats = {"prior_first": sum(rewards[:tenth]) / tenth,
                 "prior_last": sum(rewards[-tenth:]) / tenth,
                 "prior_seconds": time.perf_counter() - start}
        log.info("prior warm-up: %d samples, mean percentile %.2f in the first tenth, %.2f in "
                 "the last (%.0f s)", len(rewards), stats["prior_first"], stats["prior_last"],
                 stats["prior_seconds"])
        return stats

    def shared_paths(self, n: int) -> list[Architecture]:
        """The architectures the shared weights train on this epoch, one per minibatch."""
        rng = self.controller.rng
        if self.iso_sampler is not None:
            return [self.iso_sampler.sample(rng) for _ in range(n)]
        if self.epoch < self.config.warmup_epochs or self.config.shared_sampling == "uniform":
            return [self.space.sample(rng) for _ in range(n)]
        return self.controller.sample_architectures(n)

    def train_epoch(self) -> dict[str, Any]:
        prior = (self.warm_up_on_prior() if self.epoch == 0 and self.prior is not None
                 and self.config.prior_samples > 0 else {})
        warmup = self.epoch < self.config.warmup_epochs
        # 1. shared weights, one sampled architecture per minibatch
        for arch in self.shared_paths(self.estimator.steps_per_epoch):
            self.estimator.train_step(arch)
        stats = self.estimator.epoch_stats()
        # 2. controller, rewarded on validation minibatches (accuracy or minus the loss)
        rewards: list[float] = []
        for _ in range(0 if warmup else self.config.controller_steps):
            # one Adam step's worth: the policy does not change within it, so ask for all of
            # them first, score them on the device, and copy the rewards to the host once
            group = [self.controller.ask() for _ in range(self.config.aggregate)]
            scores = self.estimator.score(group, 1, shared=False).tolist()
            for arch, reward in zip(group, scores):
                self.controller.tell(arch, Result(reward))  # type: ignore[arg-type]
            rewards += scores
        return {**stats, **prior,
                "reward": sum(rewards) / len(rewards) if rewards else None,
                "baseline": self.controller.baseline}

    def derive(self) -> tuple[Architecture, float, dict[str, Any]]:
        """The best of ``derive_samples`` policy samples, its score and the policy's mean
        entropy; within the ``derive_window`` the best of the window's pool by its mean score."""
        start = max(0, self.config.epochs - self.config.derive_window)  # the window's first
        in_window = self.config.derive_window > 0 and self.epoch >= start
        if in_window and self.pool:
            archs = [self.space.parse(a) for a in self.pool]
        else:
            archs = self.controller.sample_architectures(self.config.derive_samples)
        scores = self.estimator.score(archs, self.config.derive_batches).tolist()
        with torch.no_grad():
            choices = torch.tensor([self.space.encode(a) for a in archs])
            entropy = float(self.controller.controller.log_prob(choices).entropy.mean())
        if in_window:
            if not self.pool:
                self.pool, self.pool_scores = [a.to_str() for a in archs], [0.0] * len(archs)
            self.pool_scores = [t + s for t, s in zip(self.pool_scores, scores)]
            scores = [t / (self.epoch + 1 - start) for t in self.pool_scores]  # window mean
        i = max(range(len(archs)), key=lambda j: scores[j])
        return archs[i], scores[i], {"entropy": entropy}

    # ---- resume ---------------------------------------------------------------------------

    def method_state(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "pool": self.pool,
                "pool_scores": self.pool_scores, "controller": self.controller.state_dict()}

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.pool = list(state.get("pool", []))  # absent from checkpoints before the window
        self.pool_scores = list(state.get("pool_scores", []))
        self.controller.load_state_dict(state["controller"])
