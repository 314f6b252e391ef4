"""Shared-weights training trains the architecture sampled for each minibatch, and only it.

ENAS trains its supernet one minibatch per sampled architecture: the controller (or a uniform
sampler) draws ``steps_per_epoch`` architectures and ``train_epoch(archs)`` must run minibatch i
through ``archs[i]``, and a step on an architecture must update only the weights that
architecture runs. If it ran every minibatch through the first architecture, shuffled the list,
or let gradient reach other ops (a DARTS-style mixture, a wrong op or input, the wrong columns of
the micro ``Combine`` conv), the shared weights would be trained for other networks than the
ones the controller is rewarded on, and the search would still run without complaint.

Pinned here, for the image estimator (``SharedWeightsEstimator``, every image space with a
supernet) and the text one (``SharedRNNEstimator``, enas-rnn):

* the sequence of architectures the supernet's forward receives during ``train_epoch(archs)``
  is ``archs``, in order, one per minibatch;
* after a training step on one architecture, exactly the weights it uses have a gradient: each
  used weight a nonzero one, every other weight none (or zero). Which weights an architecture
  uses is worked out here from the architecture alone, per space (the ``*_uses`` rules), not
  from the networks' code.

Tiny synthetic data (8x8 images of 3 classes, a corpus of a few words), small supernets.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.estimators.language_model import SharedRNNEstimator
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.registry import SPACES
from tests.conftest import write_tiny_images

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---- which weights an architecture uses, from the architecture alone ----------------------------
# A rule maps (arch, parameter name, parameter) to parts of the parameter, each (what, index,
# used): a used part must get a nonzero gradient, an unused one none or zero.

Parts = list[tuple[str, Any, bool]]


def whole(used: bool) -> Parts:
    return [("", (slice(None),), used)]


# NB201: edge e of the canonical string goes (to node, from node)
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def nb201_nonzero_nodes(arch) -> set[int]:
    """Nodes whose value is not identically zero: node 0, and any node with a non-``none``
    edge from a non-zero node."""
    nonzero = {0}
    for j in (1, 2, 3):
        if any(t == j and op != "none" and i in nonzero
               for (t, i), op in zip(NB201_EDGES, arch.ops)):
            nonzero.add(j)
    return nonzero


def nb201_uses(arch, name: str, param: torch.Tensor) -> Parts:
    """An edge's convolution is used when it is the chosen op, its input node is not zero and
    its output node reaches node 3 through non-``none`` edges. Stem, reduction blocks and
    classifier always run (the architectures here have a non-zero cell output)."""
    m = re.fullmatch(r"cells\.\d+\.ops\.(\d+)\.(\w+?)\..+", name)
    if m is None:
        return whole(True)
    edge, op = int(m[1]), m[2]
    nonzero = nb201_nonzero_nodes(arch)
    reaches_output = {3}
    for j in (2, 1):
        if any(i == j and edge_op != "none" and t in reaches_output
               for (t, i), edge_op in zip(NB201_EDGES, arch.ops)):
            reaches_output.add(j)
    to_node, from_node = NB201_EDGES[edge]
    return whole(op == arch.ops[edge] and from_node in nonzero and to_node in reaches_output)


MICRO_SPACE, MICRO_SUPERNET = {"n_nodes": 4}, {"channels": 4, "cells_per_stage": 1}
MICRO_KINDS = ["normal", "reduce", "normal", "reduce", "normal"]  # at cells_per_stage=1


def micro_reads(nodes) -> set[int]:
    return {node[0] for node in nodes} | {node[2] for node in nodes}


def micro_live(arch) -> list[bool]:
    """Cells whose output reaches the classifier: the last; one whose output the next live cell
    reads as its input 1, or the live cell after that as its input 0."""
    live = [False] * len(MICRO_KINDS)
    live[-1] = True
    for i in reversed(range(len(MICRO_KINDS))):
        if live[i]:
            reads = micro_reads(arch.cell(MICRO_KINDS[i]))
            if 1 in reads and i >= 1:
                live[i - 1] = True
            if 0 in reads and i >= 2:
                live[i - 2] = True
    return live


def micro_uses(arch, name: str, param: torch.Tensor) -> Parts:
    """In a live cell: the preprocessing of each input some node reads, the chosen op of each
    (node, slot) (identity has weights only at stride 2: in a reduction cell, on a cell input),
    and the Combine conv's column blocks of the loose ends. Dead cells: nothing."""
    parts = name.split(".")
    if parts[0] != "cells":
        return whole(True)  # stem, classifier
    cell = int(parts[1])
    kind = MICRO_KINDS[cell]
    nodes = arch.cell(kind)
    live = micro_live(arch)[cell]
    if parts[2] in ("pre0", "pre1"):
        return whole(live and int(parts[2][-1]) in micro_reads(nodes))
    if parts[2] == "combine":
        c = param.shape[0]
        loose = set(range(2, len(nodes) + 2)) - micro_reads(nodes)
        return [(f" columns {(i - 2) * c}:{(i - 1) * c} (node {i})",
                 (slice(None), slice((i - 2) * c, (i - 1) * c)), live and i in loose)
                for i in range(2, len(nodes) + 2)]
    assert parts[2] == "ops", name
    b, slot, op = parts[3].split("_", 2)
    src, chosen = nodes[int(b)][2 * int(slot)], nodes[int(b)][2 * int(slot) + 1]
    runs_weights = op != "identity" or (kind == "reduce" and src < 2)
    return whole(live and op == chosen and runs_weights)


MACRO_SPACE, MACRO_SUPERNET = {"n_layers": 6}, {"channels": 4}


def macro_uses(arch, name: str, param: torch.Tensor) -> Parts:
    """Each layer's chosen op; the reduction after pooling layer p of output j (0: the stem,
    j: layer j - 1) when it is read later: j = p + 1 (the next layer's input) or a later
    layer m skips to j (its bit j, j < m)."""
    parts = name.split(".")
    if parts[0] == "ops":
        return whole(parts[2] == arch.layers[int(parts[1])][0])
    if parts[0] == "reduce":
        p, j = map(int, parts[1].split("_"))
        return whole(j == p + 1 or any(arch.layers[m][1][j]
                                       for m in range(p + 1, len(arch.layers)) if j < m))
    return whole(True)  # stem, classifier


def rnn_uses(arch, name: str, param: torch.Tensor) -> Parts:
    """The pair weights (i, j) of each node i and the node j it reads; everything else always."""
    m = re.fullmatch(r"cell\.w\.(\d+)_(\d+)\.weight", name)
    if m is None:
        return whole(True)  # embedding (tied softmax), decoder bias, node 0's projections
    return whole(arch.nodes[int(m[1])][0] == int(m[2]))


DARTS_SUPERNET = {"channels": 4, "cells": 3}
DARTS_KINDS = ["normal", "reduce", "reduce"]  # reductions at cells // 3 and 2 * cells // 3


def darts_uses(arch, name: str, param: torch.Tensor) -> Parts:
    """The genotype's op on each of its edges (``cells.K.ops.I_J_OP``: from node I to node J);
    both preprocessings (node 2 reads both inputs), stem and classifier always."""
    m = re.fullmatch(r"cells\.(\d+)\.ops\.(\d+)_(\d+)_(\w+?)\.(.+)", name)
    if m is None:
        return whole(True)
    nodes = arch.cell(DARTS_KINDS[int(m[1])])
    i, j, op = int(m[2]), int(m[3]), m[4]
    return whole((op, i) in nodes[j - 2])


# image space -> (space options, supernet sizes, rule, corner cases beyond the sampled ones)
IMAGE_CASES: dict[str, tuple[dict, dict, Callable, tuple[str, ...]]] = {
    "nb201": ({}, {"channels": 4, "cells_per_stage": 1}, nb201_uses, (
        # node 1 is zero: the convolutions reading it get no gradient; node 2 is not zero
        "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",)),
    "enas-micro": (MICRO_SPACE, MICRO_SUPERNET, micro_uses, (
        # the normal cell never reads input 1: both reduction cells are dead
        "normal:sep_conv_3x3~0,identity~0|avg_pool_3x3~2,sep_conv_5x5~0|"
        "max_pool_3x3~2,identity~0|sep_conv_3x3~4,sep_conv_5x5~0;"
        "reduce:identity~1,sep_conv_5x5~1|identity~2,max_pool_3x3~1|"
        "sep_conv_3x3~3,avg_pool_3x3~2|avg_pool_3x3~1,identity~3",)),
    "enas-macro": (MACRO_SPACE, MACRO_SUPERNET, macro_uses, ()),
    "darts": ({}, DARTS_SUPERNET, darts_uses, (
        # a skip at stride 2 (the reduction cells) has weights; at stride 1 none
        "normal:skip_connect~0,skip_connect~1|skip_connect~0,sep_conv_5x5~2|"
        "dil_conv_5x5~1,skip_connect~3|skip_connect~2,dil_conv_3x3~4;"
        "reduce:skip_connect~0,skip_connect~1|skip_connect~1,avg_pool_3x3~2|"
        "skip_connect~0,sep_conv_3x3~3|max_pool_3x3~1,skip_connect~4",)),
}
TEXT_CASES = {"enas-rnn": rnn_uses}
SUPERNET_SPACES = [name for name in SPACES.names() if hasattr(SPACES.create(name), "supernet")]


def test_every_space_with_a_supernet_has_a_rule_for_the_weights_an_architecture_uses() -> None:
    missing = set(SUPERNET_SPACES) - set(IMAGE_CASES) - set(TEXT_CASES)
    assert not missing, f"add sizes and a uses-rule here for {sorted(missing)}"


def assert_only_used_weights_have_gradient(model: torch.nn.Module, arch, uses) -> None:
    for name, param in model.named_parameters():
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        for what, index, used in uses(arch, name, param):
            has_gradient = bool(grad[index].ne(0).any())
            if used:
                assert has_gradient, f"{arch}: {name}{what} is used but got no gradient"
            else:
                assert not has_gradient, f"{arch}: {name}{what} is not used but got gradient"


def distinct_samples(space, n: int, rng: np.random.Generator,
                     keep: Callable[[Any], bool] = lambda arch: True) -> list:
    archs: list = []
    while len(archs) < n:
        arch = space.sample(rng)
        if keep(arch) and all(arch != other for other in archs):
            archs.append(arch)
    return archs


def record_architectures(model: torch.nn.Module, position: int) -> list:
    """The architecture argument (positional ``position`` or keyword ``arch``) of every forward
    call of ``model`` from now on."""
    seen: list = []

    def hook(module, args, kwargs):
        seen.append(args[position] if len(args) > position else kwargs["arch"])

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


# ---- images: SharedWeightsEstimator -------------------------------------------------------------

@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_tiny_images(tmp_path_factory.mktemp("images") / "tiny.npz", 80)


def image_estimator(space_name: str, images: str) -> SharedWeightsEstimator:
    space_options, sizes, _, _ = IMAGE_CASES[space_name]
    space = SPACES.create(space_name, **space_options)
    return SharedWeightsEstimator(space, data=images, supernet=sizes, batch_size=16, epochs=2,
                                  device="cpu", test_fraction=0.0)


@pytest.mark.parametrize("space_name", list(IMAGE_CASES))
def test_shared_weights_train_epoch_runs_minibatch_i_through_archs_i(
        space_name: str, images: str) -> None:
    estimator = image_estimator(space_name, images)
    n = estimator.steps_per_epoch
    assert n >= 3  # enough minibatches that an order can be wrong
    archs = distinct_samples(estimator.space, n, np.random.default_rng(1))
    seen = record_architectures(estimator.model, 1)
    estimator.train_epoch(archs)
    assert seen == archs
    seen.clear()
    estimator.train_epoch(archs[::-1])  # the next epoch, its own architectures
    assert seen == archs[::-1]


@pytest.mark.parametrize("space_name", list(IMAGE_CASES))
def test_shared_weights_step_gives_gradient_to_exactly_the_weights_the_architecture_uses(
        space_name: str, images: str) -> None:
    estimator = image_estimator(space_name, images)
    space = estimator.space
    _, _, uses, corners = IMAGE_CASES[space_name]
    # an NB201 cell whose output is zero makes the network constant: left out
    keep = (lambda a: 3 in nb201_nonzero_nodes(a)) if space_name == "nb201" else (lambda a: True)
    archs = distinct_samples(space, 4, np.random.default_rng(2), keep)
    for arch in archs + [space.parse(s) for s in corners]:
        estimator.train_epoch([arch])  # one minibatch, one step
        assert_only_used_weights_have_gradient(estimator.model, arch, uses)


# ---- text: SharedRNNEstimator -------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    words = ["a", "bird", "fish", "swims", "flies", "high", "low", "fast"]
    for split, lines in (("train", 60), ("valid", 10), ("test", 10)):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(5)) for _ in range(lines))
        (folder / f"ptb.{split}.txt").write_text(text + "\n")
    return str(folder)


def text_estimator(corpus: str) -> SharedRNNEstimator:
    space = SPACES.create("enas-rnn", n_nodes=6)
    return SharedRNNEstimator(space, corpus, hidden=8, batch_size=4, bptt=6, device="cpu",
                              max_steps=5)


def test_shared_rnn_train_epoch_runs_segment_i_through_archs_i(corpus: str) -> None:
    estimator = text_estimator(corpus)
    n = estimator.steps_per_epoch
    assert n == 5
    archs = distinct_samples(estimator.space, n, np.random.default_rng(3))
    seen = record_architectures(estimator.model, 2)
    estimator.train_epoch(archs)
    assert seen == archs
    seen.clear()
    estimator.train_epoch(archs[::-1])
    assert seen == archs[::-1]


def test_shared_rnn_step_gives_gradient_to_exactly_the_chosen_node_pairs(corpus: str) -> None:
    estimator = text_estimator(corpus)
    space = estimator.space
    chain = space.parse("tanh|relu~0|sigmoid~1|identity~2|tanh~3|relu~4")
    star = space.parse("relu|tanh~0|identity~0|sigmoid~0|relu~0|tanh~0")
    for arch in distinct_samples(space, 3, np.random.default_rng(4)) + [chain, star]:
        estimator.train_epoch([arch])  # every segment through arch
        assert_only_used_weights_have_gradient(estimator.model, arch, rnn_uses)


# ---- the step-level bookkeeping ------------------------------------------------------------

def test_steps_are_counted_timed_and_run_on_the_batch_given(images: str) -> None:
    estimator = image_estimator("nb201", images)
    arch = estimator.space.sample(np.random.default_rng(0))
    x, y = estimator.batch("train")
    estimator.train_step(arch, (x[:5], y[:5]))  # the batch given, not the next one
    assert estimator.seen == 5 and estimator.step == 1
    first = estimator.seconds
    estimator.train_step(arch)
    assert estimator.step == 2 and estimator.seen == 5 + 16
    assert 0 < first < estimator.seconds  # accumulated over the steps
    stats = estimator.epoch_stats()
    assert stats["shared_seconds"] > first and 0 <= stats["shared_acc"] <= 1


def test_train_epoch_starts_its_own_pass_from_the_first_minibatch(images: str,
                                                                  monkeypatch) -> None:
    # a pass of its own: a new shuffled order at its first minibatch, whatever was taken before
    estimator = image_estimator("nb201", images)
    arch = estimator.space.sample(np.random.default_rng(0))
    estimator.batch("train")  # a minibatch taken before the epoch
    before = estimator.step
    drawn_at: list[int] = []  # the step at which each new order is drawn
    randperm = torch.randperm

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        drawn_at.append(estimator.step - before)
        return randperm(*args, **kwargs)

    monkeypatch.setattr(torch, "randperm", counted)
    estimator.train_epoch([arch] * estimator.steps_per_epoch)
    assert drawn_at == [0]
    assert estimator.position == 0 and estimator.step == estimator.steps_per_epoch


def test_the_loss_is_taken_in_training_mode(images: str) -> None:
    estimator = image_estimator("nb201", images)
    arch = estimator.space.sample(np.random.default_rng(0))
    estimator.model.eval()
    estimator.loss(arch, estimator.batch("train"))
    assert estimator.model.training
