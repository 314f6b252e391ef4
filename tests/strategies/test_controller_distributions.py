"""Every controller samples from the distribution its ``log_prob`` scores, and attends with
its query.

What is pinned, and why: REINFORCE's gradient ``adv * grad log p(arch)`` is only a policy
gradient when ``arch`` was drawn from the ``p`` that ``log_prob`` computes. Sampling and
scoring are two passes through the same code (``choices is None`` or not), so a mismatch
(sampling before the tanh squashing or the temperature, scoring a neighbouring decision,
feeding the LSTM something else on one path) leaves every shape right and every value finite,
and the search still runs, only learning the wrong thing.

For each controller that :func:`make_controller` picks (the generic LSTM on ``toy``, ENAS's
micro, macro and recurrent-cell controllers, NAS-RL's anchor-point controller), on a space
small enough to enumerate: ``exp(log_prob)`` over every architecture must sum to one, and
20,000 samples from a seeded generator must match it by chi-square tests (at a fixed seed,
so the outcome is deterministic): on the whole distribution (binned by probability, so a
sharper or flatter sampler shows), and on the joint of each pair of consecutive decisions
(the per-decision conditionals, aggregated from ``exp(log_prob)`` the same way). Weights are
drawn in a wide range (init_range 1) with a tanh constant and a temperature, so the policy is
far from uniform and a squashing mismatch moves it a lot. On bigger spaces (where later
nodes read earlier nodes' anchors, which the enumerable ones barely exercise), the
log-probability the sampling pass accumulates must equal the teacher-forced ``log_prob`` of
what it drew.

Attention: the input choices of ENAS's micro and macro controllers and of the anchor-point
controller are scores of earlier anchors against the *current* LSTM output (the query). Two
choice vectors that differ only in the decision just before such a step give the same keys
and different queries there: the scores must differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from scipy import stats

from archsearch.registry import SPACES
from archsearch.strategies.controller import ControllerBase, LSTMController, make_controller
from archsearch.strategies.enas_controllers import (
    MacroController,
    MicroController,
    RNNController,
)
from archsearch.strategies.nasrl_controller import AnchorController
from archsearch.testing import ToySpace
from archsearch.types import Decision

N_SAMPLES = 20_000
ALPHA = 1e-3  # per test; the seed is fixed, so this only sets how far off a sampler may be


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# space factory, the controller class make_controller must pick for it, extra options
CASES = {
    "toy": (lambda: ToySpace(3, 3), LSTMController, {"layers": 2}),
    "enas-micro": (lambda: SPACES.create("enas-micro", n_nodes=1), MicroController,
                   {"op_tanh_reduce": 2.0}),
    "enas-macro": (lambda: SPACES.create("enas-macro", n_layers=3), MacroController, {}),
    "enas-rnn": (lambda: SPACES.create("enas-rnn", n_nodes=4), RNNController, {}),
    "nasrl-cnn": (lambda: SPACES.create("nasrl-cnn", depth=2), AnchorController, {}),
}


def build(name: str) -> tuple[object, ControllerBase]:
    make_space, kind, options = CASES[name]
    space = make_space()
    controller = make_controller(space, generator=torch.Generator().manual_seed(11), hidden=12,
                                 init_range=1.0, tanh_constant=2.0, temperature=0.8, **options)
    assert type(controller) is kind
    return space, controller


def all_choices(decisions: Sequence[Decision]) -> np.ndarray:
    return np.array(list(itertools.product(*[range(d.n_options) for d in decisions])))


def pooled_chisquare(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's test, cells with an expected count under 5 pooled into one."""
    small = expected < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    assert abs(obs.sum() - exp.sum()) < 1e-6 * exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


def check_samples_match_log_prob(controller: ControllerBase, decisions: Sequence[Decision],
                                 seed: int = 0) -> None:
    grid = all_choices(decisions)
    with torch.no_grad():
        probs = controller.log_prob(torch.from_numpy(grid)).log_prob.double().exp().numpy()
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)  # a distribution over the whole space
    probs = probs / probs.sum()
    assert probs.max() > 5 / len(grid)  # far from uniform: a mismatch has room to show
    samples = controller.sample(N_SAMPLES, torch.Generator().manual_seed(seed)).numpy()
    assert samples.shape == (N_SAMPLES, len(decisions))
    radix = np.array([d.n_options for d in decisions])
    assert (samples >= 0).all() and (samples < radix).all()

    # index of each sample in the grid (mixed radix, last decision fastest)
    place = np.append(np.cumprod(radix[::-1])[::-1][1:], 1)
    assert (grid @ place == np.arange(len(grid))).all()
    index = samples @ place

    pvalues = {}
    # the whole distribution, in ten bins of equal probability mass (sorted by probability)
    order = np.argsort(probs, kind="stable")
    bins = np.empty(len(grid), dtype=int)
    bins[order] = np.minimum((np.cumsum(probs[order]) * 10).astype(int), 9)
    pvalues["binned"] = pooled_chisquare(np.bincount(bins[index], minlength=10),
                                         np.bincount(bins, probs, 10) * N_SAMPLES)
    # consecutive pairs of decisions: the joint law of (k-1, k)
    for k in range(1, len(decisions)):
        width = radix[k - 1] * radix[k]
        cells = grid[:, k - 1] * radix[k] + grid[:, k]
        drawn = samples[:, k - 1] * radix[k] + samples[:, k]
        pvalues[decisions[k].label] = pooled_chisquare(
            np.bincount(drawn, minlength=width), np.bincount(cells, probs, width) * N_SAMPLES)
    assert min(pvalues.values()) > ALPHA, pvalues


@pytest.mark.parametrize("name", list(CASES))
def test_samples_follow_exp_log_prob(name: str) -> None:
    space, controller = build(name)
    check_samples_match_log_prob(controller, space.decisions())


def test_anchor_controller_at_a_curriculum_depth_samples_what_it_scores() -> None:
    space = SPACES.create("nasrl-cnn", depth=4)
    controller = make_controller(space, generator=torch.Generator().manual_seed(5), hidden=12,
                                 init_range=1.0, tanh_constant=2.0, temperature=0.8)
    controller.depth = 2  # as the curriculum sets it: log_prob reads the depth from the width
    check_samples_match_log_prob(controller, space.decisions(2), seed=1)


BIG = {
    "toy": lambda: ToySpace(6, 5),
    "enas-micro": lambda: SPACES.create("enas-micro", n_nodes=3),
    "enas-macro": lambda: SPACES.create("enas-macro", n_layers=5),
    "enas-rnn": lambda: SPACES.create("enas-rnn", n_nodes=6),
    "nasrl-cnn": lambda: SPACES.create("nasrl-cnn", depth=4, strides=True),
}


@pytest.mark.parametrize("name", list(BIG))
def test_log_prob_while_sampling_equals_the_teacher_forced_one(name: str) -> None:
    """On spaces too big to enumerate (where later nodes read earlier nodes' anchors): the
    log-probability the sampling pass accumulates for each draw equals ``log_prob`` of the
    drawn choices, so both passes feed the LSTM, the attention and the heads alike."""
    space = BIG[name]()
    controller = make_controller(space, generator=torch.Generator().manual_seed(4), hidden=12,
                                 init_range=1.0, tanh_constant=2.0, temperature=0.8)
    with torch.no_grad():
        drawn, during = controller.run(500, None, torch.Generator().manual_seed(6))
        again = controller.log_prob(drawn)
    assert drawn.shape == (500, len(space.decisions()))
    assert len({tuple(r) for r in drawn.tolist()}) > 100
    torch.testing.assert_close(again.log_prob, during.log_prob, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(again.entropy, during.entropy, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(again.penalty, during.penalty, rtol=1e-5, atol=1e-4)


def test_both_paths_use_the_documented_squashing() -> None:
    """``tanh_constant * tanh(logits / temperature)``: log_prob scores it, the sampler draws
    from it, and it is far from the raw softmax (so the chi-square tests can tell them apart)."""
    space = ToySpace(1, 4)
    controller = make_controller(space, generator=torch.Generator().manual_seed(2), hidden=8,
                                 init_range=1.0, tanh_constant=2.5, temperature=0.3)
    with torch.no_grad():
        head = controller.heads[0](controller.step(controller.g_emb, controller.init_state(1)))
        raw = torch.softmax(head, -1)[0]
        expected = torch.softmax(2.5 * torch.tanh(head / 0.3), -1)[0]
        scored = controller.log_prob(torch.arange(4)[:, None]).log_prob.exp()
    torch.testing.assert_close(scored, expected)
    assert float((expected - raw).abs().max()) > 0.1
    samples = controller.sample(N_SAMPLES, torch.Generator().manual_seed(3))[:, 0]
    freq = torch.bincount(samples, minlength=4).double() / N_SAMPLES
    assert float((freq - expected.double()).abs().max()) < 0.015


# ---- attention depends on its query ---------------------------------------------------------


def attention_calls(controller: ControllerBase, choices: torch.Tensor
                    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, scores) of every call of the controller's attention while scoring ``choices``."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module, args, output):
        calls.append((args[0].detach().clone(), output.detach().clone()))

    handle = controller.attention.register_forward_hook(hook)
    try:
        with torch.no_grad():
            controller.log_prob(choices)
    finally:
        handle.remove()
    return calls


def query_cases():
    # (space, column to vary, two values, which attention call reads the new query)
    micro = SPACES.create("enas-micro", n_nodes=2)
    # normal cell, node 3 (b = 1): input_a at column 4 picks an input node (zero anchor) or
    # node 2 (its anchor); input_b (call 3: node 2's two, then node 3's first) attends over
    # the same three keys with the query after that input
    yield pytest.param(micro, 4, (0, 2), 3, id="enas-micro")
    macro = SPACES.create("enas-macro", n_layers=3)
    # layer 2's op (column 3) feeds the step whose output scores layer 2's skips (call 1)
    yield pytest.param(macro, 3, (0, 4), 1, id="enas-macro")
    nasrl = SPACES.create("nasrl-cnn", depth=3)
    # layer 2's filters (column 9) precede its anchor step, which scores layers 0 and 1
    yield pytest.param(nasrl, 9, (0, 3), 1, id="nasrl-cnn")


@pytest.mark.parametrize(("space", "column", "values", "call"), list(query_cases()))
def test_input_attention_depends_on_the_current_query(space, column: int,
                                                      values: tuple[int, int],
                                                      call: int) -> None:
    controller = make_controller(space, generator=torch.Generator().manual_seed(0), hidden=16,
                                 init_range=0.5)
    base = list(space.encode(space.sample(np.random.default_rng(0))))
    rows = []
    for value in values:
        row = list(base)
        row[column] = value
        rows.append(row)
    calls = attention_calls(controller, torch.tensor(rows))
    for keys, scores in calls[:call]:  # before the changed decision matters: identical rows
        torch.testing.assert_close(keys[0], keys[1])
        torch.testing.assert_close(scores[0], scores[1])
    keys, scores = calls[call]
    torch.testing.assert_close(keys[0], keys[1])  # the same earlier anchors...
    assert keys.shape[1] >= 2
    difference = (scores[0] - scores[1]).abs()
    assert float(difference.max()) > 1e-3, scores  # ...scored against different queries
    # and not by a shift common to all keys (which a softmax would ignore)
    assert float((difference - difference.mean()).abs().max()) > 1e-4, scores
