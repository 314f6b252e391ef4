"""``evaluate`` scores a model in eval mode and leaves it as it found it.

Pinned: BatchNorm running statistics (and its batch counter) are unchanged by an evaluation,
dropout is off during it (repeated evaluations agree, and equal a hand-computed eval-mode
loss and accuracy over uneven batches), no autograd graph is built, and the model's training flag
(train or eval, on every submodule) is what it was before the call.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archsearch.data.splits import Split
from archsearch.train.loop import evaluate

CLASSES = 5


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(16, CLASSES),
    )


def make_split(n: int = 37, seed: int = 1) -> Split:
    g = torch.Generator().manual_seed(seed)
    # shifted and scaled so that batch statistics are far from the running ones (0 and 1)
    x = 3.0 + 2.0 * torch.randn(n, 3, 6, 6, generator=g)
    return Split(x, torch.randint(0, CLASSES, (n,), generator=g))


def warmed_model() -> nn.Module:
    """A model whose running statistics are not the initial ones (a few training passes)."""
    model = make_model()
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(make_split(32, seed=10 + seed).x)
    return model


def bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()
            if "running" in k or "num_batches_tracked" in k}


def by_hand(model: nn.Module, split: Split) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(split.x)
    loss = F.cross_entropy(logits, split.y).item()
    acc = (logits.argmax(1) == split.y).double().mean().item()
    return loss, acc


@pytest.mark.parametrize("start_training", [True, False], ids=["from-train", "from-eval"])
def test_evaluation_leaves_batchnorm_running_statistics_untouched(start_training: bool) -> None:
    model = warmed_model()
    model.train(start_training)
    before = bn_state(model)
    evaluate(model, make_split(), batch_size=10)
    after = bn_state(model)
    assert before.keys() == after.keys() and len(before) == 6
    for key in before:
        assert torch.equal(before[key], after[key]), key


def test_dropout_is_off_during_evaluation_so_repeats_agree() -> None:
    model = warmed_model().train()
    split = make_split()
    torch.manual_seed(0)
    first = evaluate(model, split, batch_size=10)
    torch.manual_seed(1)  # another dropout draw, were dropout on
    second = evaluate(model, split, batch_size=10)
    assert first == second


def test_evaluation_equals_an_eval_mode_pass_over_uneven_batches() -> None:
    model = warmed_model().train()
    split = make_split(37)
    loss, acc = evaluate(model, split, batch_size=10)  # batches of 10, 10, 10, 7
    model_copy = warmed_model()
    expected_loss, expected_acc = by_hand(model_copy, split)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert acc == pytest.approx(expected_acc, abs=1e-12)
    # a training-mode pass would give another loss: the comparison above can tell them apart
    train_copy = warmed_model().train()
    torch.manual_seed(0)
    with torch.no_grad():
        train_loss = F.cross_entropy(train_copy(split.x), split.y).item()
    assert abs(train_loss - expected_loss) > 1e-3


@pytest.mark.parametrize("start_training", [True, False], ids=["from-train", "from-eval"])
def test_the_training_flag_is_restored_on_every_submodule(start_training: bool) -> None:
    model = warmed_model()
    model.train(start_training)
    evaluate(model, make_split(), batch_size=16)
    assert model.training is start_training
    assert all(m.training is start_training for m in model.modules())


def test_the_model_is_in_eval_mode_while_it_is_evaluated() -> None:
    model = warmed_model().train()
    modes: list[bool] = []
    hooks = [m.register_forward_pre_hook(lambda m, _: modes.append(m.training))
             for m in model.modules()]
    evaluate(model, make_split(25), batch_size=10)
    for h in hooks:
        h.remove()
    assert len(modes) == 3 * len(list(model.modules())) and not any(modes)
    assert model.training


def test_evaluation_builds_no_autograd_graph_and_makes_no_gradients() -> None:
    model = warmed_model().train()
    grad_enabled: list[bool] = []
    hook = model.register_forward_hook(
        lambda m, _, out: grad_enabled.append(torch.is_grad_enabled() or out.requires_grad))
    evaluate(model, make_split(), batch_size=10)
    hook.remove()
    assert grad_enabled == [False] * 4
    assert all(p.grad is None for p in model.parameters())


def test_an_empty_split_scores_nan_and_leaves_the_model_alone() -> None:
    model = warmed_model().train()
    before = bn_state(model)
    empty = Split(torch.zeros(0, 3, 6, 6), torch.zeros(0, dtype=torch.long))
    loss, acc = evaluate(model, empty)
    assert math.isnan(loss) and math.isnan(acc)
    assert model.training and all(torch.equal(before[k], v) for k, v in bn_state(model).items())
