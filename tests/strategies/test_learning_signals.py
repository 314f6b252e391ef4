"""The learning signals of the policy-gradient searchers, pinned against hand computations.

What these tests pin, and why: a REINFORCE-style search keeps running, and even keeps
improving a little, when its learning signal is subtly wrong (a reward told with the wrong
architecture, a baseline updated one step early, a transform skipped), so nothing else in
the suite would notice. Here:

* **pairing**: the reward scored for architecture k reaches the controller together with
  architecture k, whatever order the results arrive in: ENAS's controller phase (what ``tell``
  receives, with a scripted estimator whose reward is a known function of the architecture,
  and with the real shared-weights estimator on a fixed validation batch), its prior warm-up,
  REINFORCE's buffer and gradient step, NAS-RL's asynchronous batches (plain, with a depth
  curriculum, with PPO's stored log-probabilities);
* **baseline arithmetic** as the docstrings state it: the advantage is taken against the
  baseline *before* the reward enters it, then ``b <- decay * b + (1 - decay) * reward`` (the
  first reward initialises b); with ``normalize`` the advantage is divided by
  ``sqrt(m2) + 1e-8`` where ``m2 <- decay * m2 + (1 - decay) * advantage**2`` (m2 starts at 1);
  NAS-RL first turns a result into ``metric ** reward_power`` (the objective when the metric
  is absent). Failed results change nothing.

The gradient checks capture the gradients the strategy hands its optimizer and compare them
with the gradient of the loss written out by hand from the correct (architecture, advantage)
pairs on a copy of the controller taken just before the update.

One strict xfail records a bug found here: NAS-RL's PPO loses the proposal log-probability of
an architecture proposed twice before its first result arrives (the second result gets NaN).
"""

from __future__ import annotations

import copy
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture
from archsearch.strategies.nasrl import NASRL
from archsearch.strategies.reinforce import Reinforce
from archsearch.testing import ToySpace
from archsearch.types import Result

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---- helpers -----------------------------------------------------------------------------


def reward_of(arch: Architecture) -> float:
    """A reward that is a fixed, arbitrary function of the architecture, in [0.1, 0.9]."""
    return 0.1 + 0.8 * zlib.crc32(arch.to_str().encode()) / 2**32


def expected_advantages(rewards: list[float | None], decay: float, normalize: bool
                        ) -> tuple[list[float], float | None, float]:
    """The documented arithmetic, one reward at a time (None: a failed result, skipped).
    Returns (advantages of the successful results, final baseline, final second moment)."""
    baseline: float | None = None
    second = 1.0
    advantages = []
    for reward in rewards:
        if reward is None:
            continue
        if baseline is None:
            baseline = reward
        advantage = reward - baseline
        baseline = decay * baseline + (1 - decay) * reward
        if normalize:
            second = decay * second + (1 - decay) * advantage * advantage
            advantage = advantage / (math.sqrt(second) + 1e-8)
        advantages.append(advantage)
    return advantages, baseline, second


def grad_of(p: torch.Tensor) -> torch.Tensor:
    """A copy of p's gradient (zeros where nothing reached it, e.g. the last embedding)."""
    return torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()


def capture_gradients(strategy: Reinforce) -> list[list[torch.Tensor]]:
    """Record a copy of every parameter's gradient each time the strategy steps its optimizer."""
    captured: list[list[torch.Tensor]] = []
    step = strategy.optimizer.step

    def recording_step(*args, **kwargs):
        captured.append([grad_of(p) for p in strategy.controller.parameters()])
        return step(*args, **kwargs)

    strategy.optimizer.step = recording_step  # type: ignore[method-assign]
    return captured


def hand_gradient(controller: torch.nn.Module, rows: list[tuple[list[int], float]],
                  entropy_weight: float, penalty_weight: float) -> list[torch.Tensor]:
    """Gradient of -(1/n) sum_i [adv_i log p(arch_i) + w_e H_i - w_p penalty_i], one
    architecture at a time (so rows of different lengths are fine)."""
    reference = copy.deepcopy(controller)
    reference.zero_grad(set_to_none=True)
    total = 0.0
    for choices, advantage in rows:
        out = reference.log_prob(torch.tensor([choices]))
        gain = advantage * out.log_prob[0] + entropy_weight * out.entropy[0]
        total = total - (gain - penalty_weight * out.penalty[0])
    (total / len(rows)).backward()
    return [grad_of(p) for p in reference.parameters()]


def assert_same_gradients(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(actual) == len(expected)
    scale = max(float(e.abs().max()) for e in expected)
    assert scale > 1e-6  # the check has something to compare
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-6 * scale)


def shuffled(items: list, seed: int) -> list:
    order = np.random.default_rng(seed).permutation(len(items))
    assert (order != np.arange(len(items))).any()
    return [items[int(i)] for i in order]


# ---- REINFORCE: pairing ------------------------------------------------------------------


def test_reinforce_buffer_and_step_pair_each_reward_with_its_architecture() -> None:
    space = ToySpace(4, 3)
    strategy = Reinforce(space, seed=3, hidden=16, batch_size=6, baseline_decay=0.7,
                         entropy_weight=0.05, normalize=True)
    asked = [strategy.ask() for _ in range(6)]
    assert len({a.to_str() for a in asked}) == 6
    arrival = shuffled(asked, seed=1)
    advantages, _, _ = expected_advantages([reward_of(a) for a in arrival], 0.7, True)
    expected_rows = [(list(space.encode(a)), adv) for a, adv in zip(arrival, advantages)]

    for arch in arrival[:5]:
        strategy.tell(arch, Result(reward_of(arch)))
    assert [c for c, _ in strategy.buffer] == [c for c, _ in expected_rows[:5]]
    assert [a for _, a in strategy.buffer] == pytest.approx([a for _, a in expected_rows[:5]])

    expected = hand_gradient(strategy.controller, expected_rows, 0.05, strategy.penalty_weight)
    captured = capture_gradients(strategy)
    strategy.tell(arrival[5], Result(reward_of(arrival[5])))  # the sixth: one Adam step
    assert len(captured) == 1 and strategy.buffer == []
    assert_same_gradients(captured[0], expected)


# ---- REINFORCE: baseline arithmetic --------------------------------------------------------


def tell_sequence(strategy: Reinforce, rewards: list[float | None]) -> None:
    space = strategy.space
    for i, reward in enumerate(rewards):
        arch = space.decode([(i // 3**j) % 3 for j in range(len(space.decisions()))])
        strategy.tell(arch, Result(reward) if reward is not None else Result.failed("boom"))


def test_reinforce_baseline_by_hand_on_three_raw_rewards() -> None:
    # b = 0.5 (first reward); adv 0.5 - 0.5 = 0; b = 0.5
    # adv 0.8 - 0.5 = 0.3; b = 0.5 * 0.5 + 0.5 * 0.8 = 0.65
    # adv 0.2 - 0.65 = -0.45; b = 0.5 * 0.65 + 0.5 * 0.2 = 0.425
    strategy = Reinforce(ToySpace(4, 3), seed=0, hidden=8, batch_size=100, baseline_decay=0.5,
                         normalize=False)
    tell_sequence(strategy, [0.5, 0.8, 0.2])
    assert [a for _, a in strategy.buffer] == pytest.approx([0.0, 0.3, -0.45])
    assert strategy.baseline == pytest.approx(0.425)


def test_reinforce_normalized_advantage_by_hand_on_three_rewards() -> None:
    # m2 = 0.5 * 1 + 0.5 * 0 = 0.5, adv 0
    # m2 = 0.5 * 0.5 + 0.5 * 0.09 = 0.295, adv 0.3 / sqrt(0.295)
    # m2 = 0.5 * 0.295 + 0.5 * 0.2025 = 0.24875, adv -0.45 / sqrt(0.24875)
    strategy = Reinforce(ToySpace(4, 3), seed=0, hidden=8, batch_size=100, baseline_decay=0.5,
                         normalize=True)
    tell_sequence(strategy, [0.5, 0.8, 0.2])
    assert [a for _, a in strategy.buffer] == pytest.approx(
        [0.0, 0.3 / math.sqrt(0.295), -0.45 / math.sqrt(0.24875)])
    assert strategy.baseline == pytest.approx(0.425)
    assert strategy.adv_var == pytest.approx(0.24875)


@pytest.mark.parametrize("normalize", [False, True])
def test_reinforce_baseline_follows_the_documented_recursion_over_a_long_sequence(
        normalize: bool) -> None:
    rng = np.random.default_rng(5)
    rewards: list[float | None] = [float(r) for r in rng.uniform(0, 100, 40)]
    for i in (0, 7, 19, 33):
        rewards.insert(i, None)  # failed results, the very first one included
    strategy = Reinforce(ToySpace(4, 3), seed=0, hidden=8, batch_size=1000, baseline_decay=0.8,
                         normalize=normalize)
    tell_sequence(strategy, rewards)
    advantages, baseline, second = expected_advantages(rewards, 0.8, normalize)
    assert strategy.n_told == len(rewards)
    assert len(strategy.buffer) == 40
    assert [a for _, a in strategy.buffer] == pytest.approx(advantages, rel=1e-9, abs=1e-9)
    assert strategy.baseline == pytest.approx(baseline, rel=1e-12)
    if normalize:
        assert strategy.adv_var == pytest.approx(second, rel=1e-12)


# ---- NAS-RL: reward transform, baseline, asynchronous pairing -------------------------------


@pytest.mark.parametrize("normalize", [False, True])
def test_nasrl_rewards_are_the_metric_to_the_power_then_the_baseline_recursion(
        normalize: bool) -> None:
    space = SPACES.create("nasrl-cnn", depth=2)
    strategy = NASRL(space, seed=0, hidden=8, batch_size=100, reward_power=2.0,
                     reward_metric="val_peak", baseline_decay=0.6, normalize=normalize)
    results = [Result(0.3, {"val_peak": 0.9}), Result(0.7, {}), Result(0.5, {"val_peak": 0.4}),
               Result.failed("boom"), Result(0.2, {"val_peak": 0.8, "val_acc_max_last": 0.1}),
               Result(0.9, {"other": 0.1})]
    # the metric when present, else the objective; squared
    transformed: list[float | None] = [0.81, 0.49, 0.16, None, 0.64, 0.81]
    archs = [space.sample(np.random.default_rng(i)) for i in range(len(results))]
    for arch, result in zip(archs, results):
        strategy.tell(arch, result)
    advantages, baseline, second = expected_advantages(transformed, 0.6, normalize)
    assert [a for _, a, _ in strategy.batch] == pytest.approx(advantages, rel=1e-9, abs=1e-12)
    assert [c for c, _, _ in strategy.batch] == [list(space.encode(a)) for a, r in
                                                 zip(archs, results) if r.ok]
    assert strategy.baseline == pytest.approx(baseline, rel=1e-12)
    if normalize:
        assert strategy.adv_var == pytest.approx(second, rel=1e-12)
    else:  # by hand: b = 0.81; adv 0, b = 0.81; adv 0.49 - 0.81 = -0.32, ...
        assert advantages[:2] == pytest.approx([0.0, -0.32])
        assert advantages[2] == pytest.approx(0.16 - (0.6 * 0.81 + 0.4 * 0.49))


@pytest.mark.parametrize("curriculum", [None, (1, 1, 3)], ids=["fixed-depth", "curriculum"])
def test_nasrl_asynchronous_results_are_paired_with_their_architectures(curriculum) -> None:
    space = SPACES.create("nasrl-cnn", depth=3)
    strategy = NASRL(space, seed=2, batch_size=6, baseline_decay=0.8, entropy_weight=0.05,
                     curriculum=curriculum, reward_power=3.0)
    asked = [strategy.ask() for _ in range(4)]
    first, rest = asked[:2], asked[2:]
    arrival = [first[1], first[0]]
    for arch in arrival:  # two results arrive while more trials are being proposed
        strategy.tell(arch, Result(0.5, {"val_acc_max_last": reward_of(arch)}))
    asked += [strategy.ask() for _ in range(2)]
    later = shuffled(rest + asked[4:], seed=4)
    arrival += later
    if curriculum is not None:
        assert {a.depth for a in asked} == {1, 2}  # one batch holding two depths
    transformed = [reward_of(a) ** 3 for a in arrival]
    advantages, _, _ = expected_advantages(transformed, 0.8, True)
    expected_rows = [(list(space.encode(a)), adv) for a, adv in zip(arrival, advantages)]

    for arch in later[:-1]:
        strategy.tell(arch, Result(0.5, {"val_acc_max_last": reward_of(arch)}))
    assert [c for c, _, _ in strategy.batch] == [c for c, _ in expected_rows[:5]]
    assert [a for _, a, _ in strategy.batch] == pytest.approx([a for _, a in expected_rows[:5]])

    expected = hand_gradient(strategy.controller, expected_rows, 0.05, strategy.penalty_weight)
    captured = capture_gradients(strategy)
    strategy.tell(later[-1], Result(0.5, {"val_acc_max_last": reward_of(later[-1])}))
    assert len(captured) == 1 and strategy.batch == []
    assert_same_gradients(captured[0], expected)


def test_nasrl_ppo_keeps_each_architectures_own_proposal_log_prob() -> None:
    space = SPACES.create("nasrl-cnn", depth=3)
    strategy = NASRL(space, seed=1, batch_size=5, ppo=True, ppo_epochs=2, ppo_clip=0.2,
                     baseline_decay=0.8, entropy_weight=0.05)
    asked, proposal_lp = [], {}
    for _ in range(5):
        arch = strategy.ask()
        asked.append(arch)
        with torch.no_grad():
            out = strategy.controller.log_prob(torch.tensor([space.encode(arch)]))
        proposal_lp[arch.to_str()] = float(out.log_prob[0])
    assert len(set(proposal_lp.values())) == 5  # distinct, so a mix-up would show
    arrival = shuffled(asked, seed=2)
    advantages, _, _ = expected_advantages([reward_of(a) ** 3 for a in arrival], 0.8, True)
    for arch in arrival[:4]:
        strategy.tell(arch, Result(reward_of(arch)))
    assert [o for _, _, o in strategy.batch] == pytest.approx(
        [proposal_lp[a.to_str()] for a in arrival[:4]], abs=1e-5)

    # the first PPO epoch's gradient, by hand from the right (arch, advantage, old log p)
    reference = copy.deepcopy(strategy.controller)
    total = 0.0
    for arch, advantage in zip(arrival, advantages):
        out = reference.log_prob(torch.tensor([space.encode(arch)]))
        ratio = torch.exp(out.log_prob[0] - proposal_lp[arch.to_str()])
        gain = torch.minimum(ratio * advantage, ratio.clamp(0.8, 1.2) * advantage)
        total = total - (gain + 0.05 * out.entropy[0])
    (total / 5).backward()
    expected = [grad_of(p) for p in reference.parameters()]
    captured = capture_gradients(strategy)
    strategy.tell(arrival[4], Result(reward_of(arrival[4])))
    assert len(captured) == 2  # two PPO epochs
    assert_same_gradients(captured[0], expected)
    assert strategy.old_log_prob == {}


def test_nasrl_ppo_pairs_log_probs_with_repeated_pending_proposals() -> None:
    space = ToySpace(1, 2)  # two architectures: four proposals must repeat one
    strategy = NASRL(space, seed=0, hidden=8, batch_size=4, ppo=True, dedup=False)
    asked = [strategy.ask() for _ in range(4)]
    assert len({a.to_str() for a in asked}) < 4
    for arch in asked[:3]:
        strategy.tell(arch, Result(0.5 + 0.1 * arch.choices[0]))
    assert all(math.isfinite(o) for _, _, o in strategy.batch)
    strategy.tell(asked[3], Result(0.5 + 0.1 * asked[3].choices[0]))
    assert all(torch.isfinite(p).all() for p in strategy.controller.parameters())


# ---- ENAS: the controller phase -----------------------------------------------------------


class ScriptedSupernet:
    """Stands in for the shared-weights estimator (the one-shot loop's step-level protocol):
    rewards are ``reward_of(arch)``; remembers each group of per-architecture rewards."""

    steps_per_epoch = 3

    def __init__(self, space) -> None:
        self.space = space
        self.groups: list[list[Architecture]] = []

    def train_step(self, path, batch=None) -> None:
        pass

    def epoch_stats(self):
        return {"shared_loss": 1.0, "shared_acc": 0.5, "shared_seconds": 0.0}

    def score(self, paths, batches=1, shared=True):
        if not shared:  # the controller's rewards, each on its own minibatch
            self.groups.append(list(paths))
        return torch.tensor([reward_of(a) for a in paths], dtype=torch.float64)


class ScriptedPrior:
    """A prior whose score is ``reward_of(arch)``, or that rounded down to one of ``levels``
    values (so that scores tie); remembers what it scored, in order."""

    def __init__(self, levels: int | None = None) -> None:
        self.levels = levels
        self.scored: list[tuple[Architecture, float]] = []

    def evaluate(self, arch, budget=None) -> Result:
        score = reward_of(arch)
        if self.levels is not None:
            score = float(math.floor(score * self.levels))
        self.scored.append((arch, score))
        return Result(score)


def record_tells(strategy: Reinforce) -> list[tuple[Architecture, float]]:
    told: list[tuple[Architecture, float]] = []
    tell = strategy.tell

    def recording_tell(arch, result):
        told.append((arch, result.objective))
        return tell(arch, result)

    strategy.tell = recording_tell  # type: ignore[method-assign]
    return told


def test_enas_controller_phase_tells_each_architecture_its_own_reward() -> None:
    space = SPACES.create("enas-micro", n_nodes=2)
    estimator = ScriptedSupernet(space)
    controller = enas_controller(space, seed=0, aggregate=4, hidden=16)
    enas = ENAS(estimator, controller, ENASConfig(epochs=1, controller_steps=3, aggregate=4,
                                                  derive_samples=4))
    told = record_tells(controller)
    record = enas.run_epoch()
    scored = [a for group in estimator.groups for a in group]
    assert len(told) == 12 and len(estimator.groups) == 3
    assert [a.to_str() for a, _ in told] == [a.to_str() for a in scored]
    assert len({r for _, r in told}) > 6  # the rewards differ, so a shift would show
    for arch, reward in told:
        assert reward == reward_of(arch)
    assert record["reward"] == pytest.approx(np.mean([reward_of(a) for a in scored]))
    # and the controller's advantages are those of this sequence (raw rewards, decay 0.99)
    _, baseline, _ = expected_advantages([r for _, r in told], 0.99, False)
    assert controller.baseline == pytest.approx(baseline)


@pytest.mark.parametrize("levels", [None, 5], ids=["distinct-scores", "tied-scores"])
def test_enas_prior_warm_up_tells_each_architecture_its_own_percentile(levels) -> None:
    space = SPACES.create("enas-micro", n_nodes=2)
    prior = ScriptedPrior(levels)
    controller = enas_controller(space, seed=0, aggregate=4, hidden=16)
    enas = ENAS(ScriptedSupernet(space), controller,
                ENASConfig(epochs=1, controller_steps=0, aggregate=4, derive_samples=4,
                           prior_samples=12), prior)
    told = record_tells(controller)
    enas.run_epoch()
    reference = [score for _, score in prior.scored[:64]]
    warm = prior.scored[64:]
    assert len(warm) == 12 and len(told) == 12
    for (arch, reward), (scored_arch, score) in zip(told, warm):
        assert arch.to_str() == scored_arch.to_str()
        below = sum(s < score for s in reference)
        ties = sum(s == score for s in reference)  # half of the ties count as below
        assert reward == pytest.approx((below + ties / 2) / 64)
    assert len({r for _, r in told}) >= (7 if levels is None else 3)


@pytest.fixture
def images(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 64)
    x = rng.integers(0, 60, (64, 8, 8, 3)).astype(np.uint8)
    x[np.arange(64), :, :, y] += 150
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    return str(path)


def test_enas_with_the_shared_weights_estimator_pairs_rewards_with_architectures(
        images: str) -> None:
    space = SPACES.create("enas-micro", n_nodes=2)
    estimator = SharedWeightsEstimator(space, data=images, supernet={
        "channels": 4, "cells_per_stage": 1}, batch_size=16, epochs=1, device="cpu",
        test_fraction=0.0, reward="neg_loss")
    fixed = estimator.val_batch()
    estimator.val_batch = lambda: fixed  # type: ignore[method-assign]
    controller = enas_controller(space, seed=0, aggregate=3, hidden=16)
    enas = ENAS(estimator, controller, ENASConfig(epochs=1, controller_steps=2, aggregate=3,
                                                  derive_samples=2))
    told = record_tells(controller)
    enas.run_epoch()
    assert len(told) == 6
    # the weights do not change during the controller phase: each architecture's reward on
    # the fixed batch, computed again alone, is what it was told with
    alone = [float(estimator.reward_on(a, *fixed)) for a, _ in told]
    assert len({round(r, 6) for r in alone}) == 6  # distinct rewards: a mix-up would show
    assert [r for _, r in told] == pytest.approx(alone, rel=1e-5)
