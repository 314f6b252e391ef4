"""The shared-weights estimator's contract, option by option: what each constructor option sets,
the learning-rate schedules, the scoring protocol (shared or per-path minibatches, averaging,
the whole validation split), the statistics an epoch reports, and exact resume.

Each test pins a behaviour that mutation testing (benchmarks/MUTATION.md) found unguarded in
process: a changed default, a swapped branch or a dropped argument passed every earlier test.
Tiny synthetic images (8x8, 3 classes) and NB201's supernet at 4 channels.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from archsearch.errors import UserError
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.spaces.nb201 import NB201Space
from archsearch.train.loop import Diverged, cosine_lr
from tests.conftest import write_tiny_images

SPACE = NB201Space()
TINY = {"channels": 4, "cells_per_stage": 1}
CONV = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                   "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
POOL = SPACE.parse("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|"
                   "+|skip_connect~0|none~1|avg_pool_3x3~2|")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_tiny_images(tmp_path_factory.mktemp("images") / "tiny.npz", 120)


def make(images: str, **options) -> SharedWeightsEstimator:
    options = {"supernet": TINY, "batch_size": 16, "epochs": 2, "device": "cpu",
               "test_fraction": 0.0, **options}
    return SharedWeightsEstimator(SPACE, data=images, **options)


# ---- options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("options, words", [
    ({"val_batch_size": 0}, "val_batch_size must be at least 1, not 0"),
    ({"eval_batches": 0}, "eval_batches must be at least 1, not 0"),
    ({"supernet": {**TINY, "bn_track": True}}, "set bn_track as estimator options"),
    ({"supernet": {**TINY, "bn_affine": True, "bn_track": True}}, "set bn_affine, bn_track as"),
    ({"reward": "loss"}, "reward"),
    ({"lr_schedule": "cosine"}, "lr_schedule"),
    ({"momentum": 0.0}, "nesterov needs momentum > 0"),
])
def test_impossible_options_are_refused_naming_the_option(images: str, options, words) -> None:
    with pytest.raises(UserError, match=words):
        make(images, **options)


def test_valid_edge_options_are_accepted(images: str) -> None:
    make(images, val_batch_size=1, eval_batches=1, momentum=0.0, nesterov=False)


def test_a_space_without_a_supernet_is_refused_naming_the_spaces_with_one(images: str) -> None:
    class NoSupernet:
        name = "plain"

    with pytest.raises(UserError, match=r"space 'plain' has no supernet.*nb201"):
        SharedWeightsEstimator(NoSupernet(), data=images)  # type: ignore[arg-type]


def test_the_options_reach_the_optimizer_the_supernet_and_the_schedule(images: str) -> None:
    est = make(images, lr=0.2, lr_min=0.01, momentum=0.5, weight_decay=3e-4, nesterov=False,
               batch_size=8, epochs=3, bn_affine=True)
    group = est.optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["nesterov"]) == (0.5, 3e-4, False)
    assert est.lr == 0.2 and est.lr_min == 0.01 and est.epochs == 3
    assert est.steps_per_epoch == len(est.data.train) // 8
    assert est.total_steps == 3 * est.steps_per_epoch
    assert est.val_batch_size == 8  # the training batch size unless given
    assert make(images, val_batch_size=5).val_batch_size == 5
    norms = [m for m in est.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    cell_norms = [m for m in norms if not m.affine]
    assert len(cell_norms) < len(norms) // 2  # bn_affine reached the cells' BatchNorms
    default = make(images)
    assert all(not m.track_running_stats for m in default.model.modules()
               if isinstance(m, torch.nn.BatchNorm2d) and not m.affine)
    assert make(images).optimizer.param_groups[0]["nesterov"] is True  # the default


def test_the_seed_fixes_the_weights_and_the_minibatches(images: str) -> None:
    a, b, c = make(images, seed=3), make(images, seed=3), make(images, seed=4)
    pa, pb, pc = (torch.cat([p.flatten() for p in e.model.parameters()]) for e in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert torch.equal(a.batch("train")[1], b.batch("train")[1])
    assert not torch.equal(a.batch("train")[1], c.batch("train")[1])


# ---- the learning rate -------------------------------------------------------------------------

def test_the_per_step_cosine_runs_from_lr_to_lr_min_over_all_steps(images: str) -> None:
    est = make(images, lr=0.1, lr_min=0.001)
    total = est.total_steps
    values = []
    for step in (0, total // 2, total, total + 5):
        est.step = step
        values.append(est.current_lr())
    assert values[0] == pytest.approx(0.1)
    assert values[1] == pytest.approx(cosine_lr(total // 2, total, 0.1, 0.001))
    assert values[2] == pytest.approx(0.001) and values[3] == pytest.approx(0.001)  # clamped


def test_the_per_epoch_cosine_holds_within_an_epoch(images: str) -> None:
    est = make(images, lr=0.1, lr_min=0.001, lr_schedule="epoch", epochs=4)
    n = est.steps_per_epoch
    at = {}
    for step in (0, n - 1, n, 4 * n, 9 * n):
        est.step = step
        at[step] = est.current_lr()
    assert at[0] == at[n - 1] == pytest.approx(0.1)
    assert at[n] == pytest.approx(cosine_lr(1, 4, 0.1, 0.001)) and at[n] < at[0]
    assert at[4 * n] == at[9 * n] == pytest.approx(0.001)


def test_a_step_trains_at_the_current_rate_with_the_gradient_clipped(images: str) -> None:
    est = make(images, lr=0.5, momentum=0.0, nesterov=False, weight_decay=0.0, grad_clip=1e-3)
    before = [p.detach().clone() for p in est.model.parameters()]
    est.train_step(CONV)
    assert est.optimizer.param_groups[0]["lr"] == pytest.approx(cosine_lr(0, est.total_steps,
                                                                          0.5, est.lr_min))
    moved = torch.cat([(p.detach() - b).flatten()
                       for p, b in zip(est.model.parameters(), before)]).norm()
    assert 0 < float(moved) <= 0.5 * 1e-3 * 1.001  # lr x the clipped gradient norm


# ---- minibatches ------------------------------------------------------------------------------

def test_an_epoch_of_training_minibatches_is_a_permutation_and_each_epoch_its_own(
        images: str) -> None:
    est = make(images, batch_size=16, cutout=0)
    n = est.steps_per_epoch
    first = [est.batch("train")[1] for _ in range(n)]
    order_1 = est.order.clone()
    second = [est.batch("train")[1] for _ in range(n)]
    assert not torch.equal(order_1, est.order)  # a new order for the new epoch
    taken = order_1[: n * 16]
    assert len(set(taken.tolist())) == n * 16  # no image twice within an epoch
    assert torch.equal(torch.cat(first), est.data.train.y[taken])
    assert sorted(torch.cat(second).tolist()) == sorted(est.data.train.y[est.order[:n * 16]]
                                                        .tolist())
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        est.batch("test")


def test_a_validation_minibatch_is_a_random_draw_of_its_own_size(images: str) -> None:
    est = make(images, val_batch_size=7)
    x, y = est.batch("val")
    assert x.shape[0] == y.shape[0] == 7
    rows = {tuple(v.flatten().tolist()): i for i, v in enumerate(est.data.val.x)}
    picked = [rows[tuple(v.flatten().tolist())] for v in x]
    assert len(set(picked)) == 7  # drawn without replacement, unaugmented
    assert torch.equal(y, est.data.val.y[picked])
    assert not torch.equal(est.batch("val")[1], est.batch("val")[1])  # a new draw each time


# ---- scoring ----------------------------------------------------------------------------------

def replay_val_batches(est: SharedWeightsEstimator, k: int) -> list[tuple[torch.Tensor, ...]]:
    """The next k validation minibatches the estimator will draw, without drawing them."""
    state = est.generator.get_state()
    batches = [est.val_batch() for _ in range(k)]
    est.generator.set_state(state)
    return batches


def test_shared_scoring_averages_the_same_minibatches_for_every_path(images: str) -> None:
    est = make(images, reward="neg_loss", val_batch_size=8)
    batches = replay_val_batches(est, 3)
    got = est.score([CONV, POOL], batches=3, shared=True)
    for arch, value in zip((CONV, POOL), got):
        expected = torch.stack([est.reward_on(arch, x, y) for x, y in batches]).mean()
        assert float(value) == pytest.approx(float(expected), rel=1e-5)
    pair = est.score_many([CONV, CONV], 2)
    assert pair[0] == pair[1]  # the same minibatches for both


def test_per_path_scoring_draws_fresh_minibatches_for_each_path(images: str) -> None:
    est = make(images, reward="neg_loss", val_batch_size=8)
    batches = replay_val_batches(est, 4)
    got = est.score([CONV, CONV], batches=2, shared=False)
    for i, value in enumerate(got):
        expected = torch.stack([est.reward_on(CONV, *b) for b in batches[2 * i:2 * i + 2]]).mean()
        assert float(value) == pytest.approx(float(expected), rel=1e-5)
    assert float(got[0]) != float(got[1])
    state = est.generator.get_state()
    rewards = est.rewards([CONV, CONV])  # ENAS: one minibatch each
    est.generator.set_state(state)
    single = [est.reward_on(CONV, *b) for b in replay_val_batches(est, 2)]
    assert rewards.tolist() == pytest.approx([float(s) for s in single], rel=1e-5)


def test_accuracy_reward_is_the_fraction_right(images: str) -> None:
    est = make(images, val_batch_size=8)
    x, y = replay_val_batches(est, 1)[0]
    est.model.eval()
    with torch.no_grad():
        right = (est.model(x, CONV).argmax(1) == y).float().mean()
    assert float(est.score([CONV])[0]) == pytest.approx(float(right))


def test_evaluating_on_the_whole_validation_split(images: str) -> None:
    est = make(images, eval_batches=None, reward="neg_loss")
    v = est.data.val
    with torch.no_grad():
        est.model.eval()
        expected = -torch.nn.functional.cross_entropy(est.model(v.x, CONV), v.y)
    result = est.evaluate(CONV)
    assert result.ok and result.objective == pytest.approx(float(expected), rel=1e-4)
    assert result.metrics["val_neg_loss"] == result.objective
    assert result.metrics["bn_affine"] == 0.0 and result.metrics["bn_track"] == 0.0
    acc = make(images, eval_batches=2)
    state = acc.generator.get_state()
    expected_acc = acc.score_many([CONV], 2)[0]
    acc.generator.set_state(state)
    r = acc.evaluate(CONV)
    assert r.metrics["val_acc"] == r.objective == pytest.approx(expected_acc)
    assert r.cost_seconds > 0


def test_a_non_finite_reward_is_a_failed_evaluation(images: str, monkeypatch) -> None:
    est = make(images)
    monkeypatch.setattr(est, "score_many", lambda archs, batches=1: [math.nan])
    result = est.evaluate(CONV)
    assert not result.ok and "non-finite accuracy" in (result.error or "")


# ---- statistics and resume ------------------------------------------------------------------

def test_epoch_statistics_are_the_mean_over_the_steps_since_the_last_call(images: str) -> None:
    est = make(images)
    losses = []
    for _ in range(3):
        x, y = est.batch("train")
        with torch.no_grad():
            est.model.train()
            losses.append(float(torch.nn.functional.cross_entropy(est.model(x, CONV), y)))
        est.train_step(CONV, (x, y))
    stats = est.epoch_stats()
    assert est.seen == 0 and est.seconds == 0.0  # reset for the next epoch
    assert set(stats) == {"shared_loss", "shared_acc", "shared_seconds", "bn_affine",
                          "bn_track"}
    assert 0 <= stats["shared_acc"] <= 1 and stats["shared_seconds"] > 0
    # each step's loss is taken before its update, on its batch: the mean of those above
    assert stats["shared_loss"] == pytest.approx(float(np.mean(losses)), rel=1e-4)
    empty = est.epoch_stats()
    assert empty["shared_loss"] == 0.0 and empty["shared_acc"] == 0.0


def test_a_diverged_supernet_says_so(images: str) -> None:
    est = make(images)
    est.train_step(CONV)
    est.loss_sum = est.loss_sum + math.inf
    with pytest.raises(Diverged, match=r"diverged.*lower the estimator's lr"):
        est.epoch_stats()


def test_a_restored_estimator_continues_exactly(images: str) -> None:
    a = make(images)
    for _ in range(a.steps_per_epoch + 2):  # into the second epoch
        a.train_step(CONV)
    buffer = io.BytesIO()  # through a file, as a checkpoint (in memory, the optimizer's state
    torch.save(a.state_dict(), buffer)  # would alias a's momentum buffers)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    b = make(images, seed=9)  # other weights and generator: all of them restored
    b.load_state_dict(state)
    assert (b.step, b.position) == (a.step, a.position) and torch.equal(b.order, a.order)
    for est in (a, b):
        est.train_step(POOL)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert torch.equal(a.batch("val")[1], b.batch("val")[1])
    old = {k: v for k, v in state.items() if k not in ("position", "order")}  # first wave
    c = make(images)
    c.load_state_dict(old)
    assert c.position == 0 and c.order is None
