"""The methods a run can use: what each is, its typed options with defaults, and presets.

Two kinds:

- ``trials``: a strategy proposes architectures, each evaluated by an estimator (trained from
  scratch, looked up in a table, scored by a proxy or by a trained supernet) through the
  experiment loop. Every registered strategy is a trials method; its options are the
  strategy's keyword arguments.
- ``loop``: a one-shot search (:mod:`archsearch.oneshot`): one supernet trained for a number
  of epochs while the method learns where to go, then the derived architecture. Its options
  are a typed :class:`~archsearch.config.Config`.

``presets`` hold the defaults a method uses on a space when the user gives none, per section
(``run``, ``method``, ``estimator``, ``final``); ``"*"`` applies to every space, a space's
own entry on top. They are the best recipes measured on this project's CPU-sized setups
(BENCHMARKS.md); ``notes`` says where they depart from the paper and why.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.config import Config, option
from archsearch.errors import UnknownNameError
from archsearch.registry import STRATEGIES

Presets = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "trials" or "loop"
    summary: str  # one line
    reference: str  # the paper
    default_space: str
    config: type[Config] | None = None  # loop methods; trials methods: the strategy's options
    presets: Presets = field(default_factory=dict)
    notes: str = ""  # which defaults differ from the paper, and why
    paper: Mapping[str, Any] = field(default_factory=dict)  # trials: the paper's option values
    extras: type[Config] | None = None  # trials: options the run handles (not the strategy's)
    estimator: str | None = None  # loop: the estimator it trains (by the space's data)
    requires: tuple[str, ...] = ()  # loop: space abilities beyond a supernet (DARTS: derive)
    # loop: (estimator, config, seed, resolved configuration) -> the untrained one-shot search
    builder: Callable[[Any, Any, int, Mapping[str, Any]], Any] | None = None

    def preset(self, space: str) -> dict[str, dict[str, Any]]:
        """The section -> options defaults of this method on ``space``."""
        out: dict[str, dict[str, Any]] = {}
        for key in ("*", space):
            for section, options in self.presets.get(key, {}).items():
                out.setdefault(section, {}).update(options)
        return out

    def options(self) -> list[tuple[str, str, Any, str, Any]]:
        """(name, type, default, help, paper value or None) per option, for ``methods NAME``."""
        if self.config is not None:
            return [(n, _hint_name(h), d, m.get("help", ""), m.get("paper"))
                    for n, h, d, m in self.config.field_specs()]
        factory = STRATEGIES.get(self.name)
        rows = []
        for name, p in inspect.signature(factory.__init__).parameters.items():
            if name in ("self", "space") or p.kind not in (p.POSITIONAL_OR_KEYWORD,
                                                         p.KEYWORD_ONLY):
                continue
            rows.append((name, str(p.annotation).replace("'", ""), p.default, "",
                         self.paper.get(name)))
        if self.extras is not None:
            rows += [(n, _hint_name(h), d, m.get("help", ""), m.get("paper"))
                     for n, h, d, m in self.extras.field_specs()]
        return rows


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


# ---- the trials methods: every strategy ---------------------------------------------------

@dataclass(frozen=True)
class EvolutionExtras(Config):
    warm_start_proxy: str | None = option(None, "start from the best of a random pool by this "
                                          "zero-cost proxy instead of random architectures")
    warm_start_pool: int = option(500, "random architectures the proxy ranks", minimum=1)


TRIALS: dict[str, Method] = {m.name: m for m in (
    Method("random", "trials", "random search: uniform over the decisions, no repeats",
           "Li & Talwalkar, UAI 2019 (random search as a NAS baseline)", "nb201"),
    Method("evolution", "trials", "regularized (aging) evolution: tournament, mutate one "
           "decision, the oldest dies", "Real et al., AAAI 2019", "nb201",
           paper={"population_size": 100, "sample_size": 25}, extras=EvolutionExtras,
           notes="population 20 and tournament 5 (the paper: 100 and 25 over 20,000 trials) "
                 "suit the hundreds of trials a CPU affords"),
    Method("reinforce", "trials", "REINFORCE over the LSTM controller, moving-average "
           "baseline", "Williams 1992; Zoph & Le, ICLR 2017", "nb201"),
    Method("nas-rl", "trials", "NAS with RL: a 2x35 LSTM controller, reward (max val acc of "
           "the last 5 epochs)^3, children trained from scratch", "Zoph & Le, ICLR 2017",
           "nasrl-cnn", paper={"lr": 0.0006, "normalize": False},
           presets={"*": {"estimator": {"max_of_last": 5}}},
           notes="Adam lr 0.01 with normalised advantages (the paper: 0.0006, raw rewards over "
                 "12,800 children) for the hundreds of children a CPU trains"),
    Method("hyperband", "trials", "Hyperband: brackets of successive halving over a budget "
           "in epochs (eta 3)", "Li et al., JMLR 2018", "nb201",
           presets={"*": {"method": {"min_budget": 1.0, "max_budget": 27.0}}},
           notes="budgets 1 to 27 epochs on the CPU (the paper's example: 1 to 81); with "
                 "full-training a promotion continues the lower rung's network"),
    Method("bananas", "trials", "BANANAS: an ensemble of 5 MLPs on path encodings, 100 "
           "mutations of the best as candidates, 10 per round by independent Thompson "
           "sampling", "White, Neiswanger & Savani, AAAI 2021", "nb201",
           paper={"max_paths": 30},
           notes="naszilla's defaults, except all 155 NB201 paths in the encoding (naszilla's "
                 "bananas() keeps the 30 shortest) and targets standardised before training; "
                 "a path through none sets no bit; one-hot encoding on spaces without paths"),
    Method("nao", "trials", "NAO: an LSTM encoder, MLP predictor and attention decoder fitted "
           "each round; the 10 best moved along the predictor's gradient in the embedding "
           "and decoded to new architectures", "Luo et al., NeurIPS 2018", "nb201",
           paper={"initial": 600, "seeds_per_round": 100, "epochs": 1000, "hidden": 96,
                  "embedding": 48},
           notes="rounds of 10 after 10 random proposals (NAO_V1: 600 random cells, then the "
                 "top 100 improved until 300 new) and a CPU-sized network (embedding 16, "
                 "hidden 32, MLP 2 x 32, 60 epochs at batch 20, lr 1e-2); a seed that decodes "
                 "to nothing new is replaced by a random architecture; no dropout, no "
                 "symmetric-swap augmentation"),
    Method("predictor-evolution", "trials", "predictor-guided aging evolution: 100 children "
           "of tournaments (one mutation each) ranked by a predictor's mean, the best 10 "
           "trained per round", "our composition of aging evolution (Real et al., AAAI 2019) "
           "with a predictor filter, after NPENAS (Wei et al., IEEE TNNLS 2022) and White et "
           "al., NeurIPS 2021", "nb201",
           notes="not a paper's exact method: parents by tournaments of an aging population "
                 "(20, tournament 5, as evolution) where NASLib's npenas mutates the best "
                 "results; predictor by name (mlp-ensemble by default, predictor_options "
                 "passed to it), refitted on every result at each round of 10"),
    Method("bo", "trials", "GP Bayesian optimisation (BoTorch): a Matern-5/2 ARD GP on one-hot "
           "(or path) encodings, log EI (or UCB, PI), pending proposals fantasised, the "
           "acquisition maximised over every cell of a small space",
           "Snoek, Larochelle & Adams, NeurIPS 2012; Balandat et al. (BoTorch), NeurIPS 2020",
           "nb201", paper={"hyperparameters": "mcmc"},
           notes="needs the extra archsearch[bo]; 10 random proposals first; BoTorch's "
                 "dimension-scaled lengthscale prior, noise learned, outcomes standardised; "
                 "pending proposals are the acquisition's X_pending (Monte Carlo, 256 "
                 "quasi-random samples); hyperparameters refitted at every ask from the "
                 "last fit's (at most 50 L-BFGS iterations); spaces over enumerate_limit "
                 "(20,000) score 1,000 random samples plus mutations of the 5 best; "
                 "hyperparameters fitted by marginal likelihood (the paper integrates them "
                 "out: hyperparameters=mcmc, 10 slice samples, about 7 times the CPU per "
                 "ask on nb201 after 20 results)"),
)}


def trials_method(name: str) -> Method:
    if name in TRIALS:
        return TRIALS[name]
    factory = STRATEGIES.get(name)  # a plug-in strategy: a method with its own options
    doc = (inspect.getdoc(factory) or name).splitlines()[0]
    return Method(name, "trials", doc, "", "nb201")


# ---- the loop methods ---------------------------------------------------------------------

def _build_enas(estimator: Any, config: Any, seed: int, resolved: Mapping[str, Any]) -> Any:
    from archsearch.oneshot.enas import ENAS, enas_controller

    controller = enas_controller(estimator.space, seed, config.aggregate,
                                 **config.controller_options())
    prior = None
    if config.prior is not None:
        from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator

        prior = ZeroCostEstimator(estimator.space, proxy=config.prior, seed=seed,
                                  data=resolved["run"]["data"])
    return ENAS(estimator, controller, config, prior)


def _enas() -> Method:
    from archsearch.oneshot.enas import ENASConfig

    return Method(
        "enas", "loop", "ENAS: one supernet's shared weights and an LSTM controller trained in "
        "turns (REINFORCE on validation rewards)", "Pham et al., ICML 2018", "enas-micro",
        config=ENASConfig, estimator="shared-weights", builder=_build_enas,
        presets={
            # CPU-sized (the paper: 310 / 150 epochs, 30 controller steps, no warm-up)
            "*": {"run": {"epochs": 30}, "method": {"controller_steps": 10,
                                                     "warmup_epochs": 5},
                  "estimator": {"batch_size": 32}},
            # the official search scripts' controller settings
            "enas-micro": {"method": {"lr": 0.0035, "tanh_constant": 1.10,
                                      "controller": {"op_tanh_reduce": 2.5}}},
            "enas-macro": {"method": {"lr": 0.001, "tanh_constant": 1.5,
                                      "penalty_weight": 0.8,
                                      "controller": {"skip_target": 0.4}}},
            "enas-rnn": {"method": {"lr": 0.001, "tanh_constant": 2.5, "temperature": 5.0,
                                    "entropy_weight": 1e-3}},
            # the best recipe measured on NB201 with the CIFAR-10 sample (BENCHMARKS.md)
            "nb201": {"run": {"epochs": 50},
                      "method": {"warmup_epochs": 10, "derive_batches": 6,
                                 "shared_sampling": "uniform-iso", "prior": "synflow",
                                 "derive_window": 10},
                      "estimator": {"batch_size": 16, "lr": 0.025, "val_batch_size": 64,
                                    "reward": "neg_loss"}},
        },
        notes="CPU-sized: 30 epochs (50 on nb201), 10 controller steps per epoch and 5 warm-up "
              "epochs of uniform sampling (the paper: 150-310 epochs, 30 steps, none), so that "
              "on small data the controller does not lock onto what a barely trained supernet "
              "favours. On nb201 the supernet trains on uniform isomorphism classes, rewards "
              "are minus the validation loss, a synflow warm-up and a 10-epoch derive window "
              "steady the pick: without them the search collapses to parameter-free cells "
              "(the NB201 paper's 54.30%).")


def _spos() -> Method:
    from archsearch.oneshot.spos import SPOS, SPOSConfig

    return Method(
        "spos", "loop", "SPOS: a supernet trained on uniform single paths, then evolution "
        "over the trained supernet (BN recalibrated per candidate)", "Guo et al., ECCV 2020",
        "nb201", config=SPOSConfig, estimator="shared-weights",
        builder=lambda estimator, config, seed, resolved: SPOS(estimator, config, seed),
        presets={"*": {"run": {"epochs": 30}, "estimator": {"bn_track": True}},
                 "nb201": {"method": {"sampling": "uniform-iso"}}},
        notes="CPU-sized: 30 epochs and 100 evolution trials (the paper: 150k iterations, 20 "
              "generations of 50); aging evolution with mutation only, no FLOPs constraint; "
              "on nb201 paths are drawn over isomorphism classes.")


# the methods over architecture weights alpha: name -> (reference, default space, summary,
# notes on where the defaults depart from the paper)
ALPHA_METHODS: dict[str, tuple[str, str, str, str]] = {
    "darts": (
        "Liu et al., ICLR 2019", "darts",
        ("DARTS: architecture weights over a relaxed supernet, a gradient step on validation "
         "data before each weight step (first or second order)"),
        ("CPU-sized: 10 epochs (the paper: 50) and the space's small search network (the "
         "paper's: 16 channels, 8 cells: supernet={channels=16, cells=8}); the weights as the "
         "official search trains them (cnn/train_search.py: SGD momentum 0.9 without "
         "Nesterov, lr 0.025 to 0.001 on a per-epoch cosine, weight decay 3e-4, clip 5, batch "
         "64, the training images half for the weights, half for alpha). order=1 is the code's "
         "default; the paper's cell (DARTS_V2) came from order=2.")),
    "darts-plus": (
        "Liang et al., arXiv 1909.06035", "darts",
        ("DARTS+: DARTS stopped early, when the normal cell holds 2 skip connections or "
         "alpha's ranking has been stable for 10 epochs"),
        ("DARTS' CPU-sized settings (see `archsearch methods darts`); the rules as the paper "
         "states them (no official code): the derived normal cell's skips, and the per-edge "
         "order of the ops but none. On 10 CPU epochs the stability rule's 10 epochs cannot "
         "fire: stable_epochs=3 suits such runs.")),
    "gdas": (
        "Dong & Yang, CVPR 2019", "nb201",
        ("GDAS: one op per edge drawn by a hard (straight-through) Gumbel sample of alpha; "
         "the weights' step, then alpha's on validation data"),
        ("CPU-sized: 10 epochs (the official search: 250) and the space's small search "
         "network; the weights as AutoDL's NB201 search trains them (GDAS.config: SGD "
         "Nesterov momentum 0.9, lr 0.025 to 0.001 on a per-epoch cosine, weight decay 5e-4, "
         "clip 5, batch 64, half the training images for alpha); tau 10 to 0.1. The weights "
         "step before alpha, as the official script (DARTS: after). On the darts space AutoDL "
         "uses batch 256 and adds only the chosen op's term; here batch 64 and the "
         "zero-valued terms of the other ops too, as its NB201 cell.")),
    "snas": (
        "Xie et al., ICLR 2019", "darts",
        ("SNAS: the supernet run on a soft Gumbel-softmax sample of alpha, weights and alpha "
         "stepped together on each training batch (single level)"),
        ("CPU-sized: 10 epochs (the official search: 150) and the space's small search "
         "network; the weights as the official search (train_search.py: DARTS' settings on "
         "every training image but the validation split, which only scores the derived "
         "cell); alpha by plain SGD lr 3e-4 as the code's single-GPU branch (the paper: Adam, "
         "alpha_optimizer=adam), its gradient clipped at 10; tau 1 to 0.03 over the "
         "configured epochs (the code's scheduler: always 150); no resource penalty by "
         "default, and when on (resource_lambda) only parameter counts, linear (the README's "
         "run: the log of size, FLOPs and memory access); no search-time drop path.")),
}


def _alpha_method(name: str, search: Any, config: type[Config],
                  weights: Mapping[str, Any]) -> Method:
    """A method of ALPHA_METHODS: a space with a derive, the official search's weights as the
    estimator's preset, CPU-sized epochs."""
    reference, space, summary, notes = ALPHA_METHODS[name]
    return Method(
        name, "loop", summary, reference, space, config=config, estimator="shared-weights",
        requires=("derive",),
        builder=lambda estimator, config, seed, resolved: search(estimator, config, seed),
        presets={"*": {"run": {"epochs": 10}, "estimator": dict(weights)}}, notes=notes)


def _darts() -> Method:
    from archsearch.oneshot.darts import DARTS, ESTIMATOR_DEFAULTS, DARTSConfig

    return _alpha_method("darts", DARTS, DARTSConfig, ESTIMATOR_DEFAULTS)


def _darts_plus() -> Method:
    from archsearch.oneshot.darts import ESTIMATOR_DEFAULTS
    from archsearch.oneshot.darts_plus import DARTSPlus, DARTSPlusConfig

    return _alpha_method("darts-plus", DARTSPlus, DARTSPlusConfig, ESTIMATOR_DEFAULTS)


def _pc_darts() -> Method:
    from archsearch.oneshot.pc_darts import (
        OFFICIAL_WEIGHTS,
        PARTIAL_CHANNELS,
        PCDARTS,
        PCDARTSConfig,
    )
    from archsearch.registry import SPACES

    def supernet(space: str, **sizes: int) -> dict[str, Any]:
        net = {**SPACES.get(space).presets["search"], **sizes}
        return {"estimator": {"supernet": {**net, "partial_channels": PARTIAL_CHANNELS}}}

    return Method(
        "pc-darts", "loop", "PC-DARTS: DARTS whose edges send 1/K of their channels through the "
        "mixed op (the rest bypass), with edge normalisation beta and a weights-only warm-up",
        "Xu et al., ICLR 2020", "darts", config=PCDARTSConfig, estimator="shared-weights",
        requires=("derive", "relaxed_edges"),
        builder=lambda estimator, config, seed, resolved: PCDARTS(estimator, config, seed),
        presets={
            # CPU-sized: 10 epochs, the warm-up scaled with them (15 of 50 -> 3 of 10); the
            # official batch 256 at lr 0.1 scaled linearly to batch 64 at lr 0.025
            "*": {"run": {"epochs": 10}, "method": {"arch_start_epoch": 3},
                  "estimator": {**OFFICIAL_WEIGHTS, "batch_size": 64,
                                "lr": OFFICIAL_WEIGHTS["lr"] * 64 / 256}},
            "darts": supernet("darts", channels=16),
            "nb201": supernet("nb201"),
        },
        notes="CPU-sized: 10 epochs (the paper: 50) with the architecture frozen for the first "
              "3 (the official code: 15 of 50, scaled proportionally); batch 64 at lr 0.025 "
              "(the official 256 at 0.1, scaled linearly, as the author advises: a search at "
              "batch 96 and lr 0.1 ended with a normal cell of skips, yuhuixu1993/PC-DARTS#55), cosine to 0, momentum 0.9, "
              "weight decay 3e-4, clip 5; K=4 partial channels in supernet={...} (a supernet "
              "option given by hand must repeat partial_channels=4); the darts search network "
              "at 16 channels (so that the ops see 4, as the paper's first stage) and 5 cells "
              "(the paper: 8). alpha and beta: Adam 6e-4, first order only (the official default).")


def _gdas() -> Method:
    from archsearch.oneshot.gdas import ESTIMATOR_DEFAULTS, GDAS, GDASConfig

    return _alpha_method("gdas", GDAS, GDASConfig, ESTIMATOR_DEFAULTS)


def _snas() -> Method:
    from archsearch.oneshot.snas import ESTIMATOR_DEFAULTS, SNAS, SNASConfig

    return _alpha_method("snas", SNAS, SNASConfig, ESTIMATOR_DEFAULTS)


def _build_p_darts(estimator: Any, config: Any, seed: int, resolved: Mapping[str, Any]) -> Any:
    from archsearch.oneshot.p_darts import PDARTS, stage_estimators

    return PDARTS(estimator, config, seed, stage_estimators(resolved["estimator"],
                                                            estimator.space))


def _p_darts() -> Method:
    from archsearch.oneshot.p_darts import OFFICIAL_WEIGHTS, PDARTSConfig

    return Method(
        "p-darts", "loop", "P-DARTS: DARTS in 3 stages, the supernet deepened and each edge's "
        "ops pruned after each, skip connections dropped out and capped at 2",
        "Chen et al., ICCV 2019", "darts", config=PDARTSConfig, estimator="shared-weights",
        requires=("derive", "derive_capped", "prunable_supernet"), builder=_build_p_darts,
        presets={
            # CPU-sized: 4 epochs a stage, 2 of them weights only (the official 25 and 10);
            # 5 -> 8 -> 11 cells (the official 5 -> 11 -> 17); batch 64 (the README's for 12 GB)
            "*": {"run": {"epochs": 4},
                  "method": {"arch_start_epoch": 2, "add_cells": (0, 3, 6)},
                  "estimator": {**OFFICIAL_WEIGHTS, "batch_size": 64}},
        },
        notes="CPU-sized: --epochs is per stage, 4 (the official 25; 3 stages: 12 epochs in "
              "all), the first 2 of each weights only (the official 10); the space's small "
              "search network (8 channels) at 5, 8 and 11 cells (the paper: 16 channels, 5, 11, "
              "17: supernet={channels=16, cells=5}, --method-opt add_cells=[0,6,12]); batch 64 "
              "(the official 96, 64 on 12 GB per its README), lr 0.025 on a cosine to 0. Skip "
              "dropout 0.1/0.4/0.7 (the README's CIFAR-10 rates), the final normal cell capped "
              "at 2 skips (the author's choice); the darts space only (NB201's depth is fixed).")


LOOPS: dict[str, Callable[[], Method]] = {
    "darts": _darts, "darts-plus": _darts_plus, "enas": _enas, "gdas": _gdas,
    "p-darts": _p_darts, "pc-darts": _pc_darts, "snas": _snas, "spos": _spos}


def names() -> list[str]:
    return sorted(set(LOOPS) | set(STRATEGIES.names()))


def get(name: str) -> Method:
    if name in LOOPS:
        return LOOPS[name]()
    if name in STRATEGIES.names():
        return trials_method(name)
    raise UnknownNameError("method", name, names())
