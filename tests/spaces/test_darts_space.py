"""The DARTS space: the genotype is a canonical value whose string round-trips (and refuses
malformed text, saying where), networks have the official parameter counts, the supernet on
one-hot weights computes the genotype, and ``derive`` picks what the official code picks, for
DARTS (top-2 edges by their strongest non-none op) and NB201 (argmax, none included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ArchitectureError
from archsearch.nn.mixed import Relaxed, one_hot, uniform
from archsearch.nn.ops import count_params_m
from archsearch.registry import SPACES
from archsearch.spaces.darts import (
    DARTS_V2,
    EDGES,
    OPS,
    PAIRS,
    PRIMITIVES,
    DARTSGenotype,
    DARTSSpace,
)
from archsearch.spaces.darts_network import DARTSCell, make_op
from archsearch.spaces.nb201 import NB201Cell

SPACE = DARTSSpace()
V2_TEXT = ("normal:sep_conv_3x3~0,sep_conv_3x3~1|sep_conv_3x3~0,sep_conv_3x3~1|"
           "skip_connect~0,sep_conv_3x3~1|skip_connect~0,dil_conv_3x3~2;"
           "reduce:max_pool_3x3~0,max_pool_3x3~1|max_pool_3x3~1,skip_connect~2|"
           "max_pool_3x3~0,skip_connect~2|max_pool_3x3~1,skip_connect~2")


# ---- the genotype ------------------------------------------------------------------------

def test_the_space_is_registered_with_darts_published_cell() -> None:
    assert "darts" in SPACES.names()
    assert DARTS_V2.to_str() == V2_TEXT
    assert SPACE.parse(V2_TEXT) == DARTS_V2
    assert len(SPACE.decisions()) == 24 and len(SPACE.relaxed_decisions()) == 28
    assert SPACE.relaxed_cells() == (("normal", 14), ("reduce", 14))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_genotype_round_trips_whatever_order_its_edges_are_listed_in(data) -> None:
    choices = [data.draw(st.integers(0, d.n_options - 1)) for d in SPACE.decisions()]
    arch = SPACE.decode(choices)
    assert SPACE.parse(arch.to_str()) == arch and SPACE.encode(arch) == tuple(choices)
    # DARTS lists a node's strongest edge first: any order is the same (canonical) value
    swaps = [data.draw(st.booleans()) for _ in range(8)]
    cells = [[(node[::-1] if swap else node) for node, swap in zip(arch.cell(kind), flips)]
             for kind, flips in (("normal", swaps[:4]), ("reduce", swaps[4:]))]
    again = DARTSGenotype(*cells)
    assert again == arch and again.to_str() == arch.to_str() and hash(again) == hash(arch)


@pytest.mark.parametrize("text, message", [
    ("", "expected 'normal:...;reduce:...'"),
    (V2_TEXT.replace("reduce:", "reduced:"), "must start with 'reduce:'"),
    (V2_TEXT.replace("|skip_connect~0,dil_conv_3x3~2;", ";"), "expected 4 nodes"),
    (V2_TEXT.replace("dil_conv_3x3~2", "dil_conv_3x3"), "expected 'op~input'"),
    (V2_TEXT.replace("dil_conv_3x3~2", "dil_conv_3x3~x"), "expected 'op~input'"),
    (V2_TEXT.replace("dil_conv_3x3~2", "conv_9x9~2"), "unknown op 'conv_9x9'"),
    (V2_TEXT.replace("dil_conv_3x3~2", "none~2"), "'none' is not an op"),
    (V2_TEXT.replace("dil_conv_3x3~2", "dil_conv_3x3~6"), "node 5: reads node 6"),
    (V2_TEXT.replace("dil_conv_3x3~2", "dil_conv_3x3~0"), "both edges read node 0"),
    (V2_TEXT.replace("skip_connect~0,dil_conv_3x3~2", "skip_connect~0"), "two \\(op, input\\)"),
])
def test_malformed_strings_are_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ArchitectureError, match=message):
        SPACE.parse(text)


def test_the_encoding_is_one_input_pair_and_two_ops_per_node() -> None:
    assert [d.n_options for d in SPACE.decisions()[:12]] == [1, 7, 7, 3, 7, 7, 6, 7, 7, 10, 7, 7]
    choices = SPACE.encode(DARTS_V2)
    # normal node 5 reads (0, 2): pair 1 of node 5's (0,1), (0,2), (0,3), (1,2), ...
    assert PAIRS[3][choices[9]] == (0, 2)
    assert OPS[choices[10]] == "skip_connect" and OPS[choices[11]] == "dil_conv_3x3"


# ---- networks ------------------------------------------------------------------------------

def test_darts_v2_evaluation_network_has_the_official_parameter_count() -> None:
    """quark0/darts cnn/train.py logs ``param size = 3.349342MB`` for DARTS_V2 at 36 channels,
    20 cells, auxiliary on: ``utils.count_parameters_in_MB`` leaves out the parameters named
    ``auxiliary`` (f276dd3). We match it exactly; with the auxiliary head 3,825,768."""
    net = SPACE.build(DARTS_V2, channels=36, cells=20, auxiliary=True)
    without_aux = sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)
    assert without_aux == 3_349_342
    assert sum(p.numel() for p in net.parameters()) == 3_825_768
    assert round(count_params_m(SPACE.build(DARTS_V2, channels=36, cells=20)), 6) == 3.349342


def test_the_search_network_has_the_official_parameter_count() -> None:
    """16 channels, 8 cells: 1,930,618 parameters, the size automl/NASLib's tests pin for
    the same DARTS search network (tests/test_nb301_search_space.py, get_model_size()
    == 1.930618 MB); the cells' BatchNorm has no affine parameters, the stem's has."""
    net = SPACE.supernet()
    assert sum(p.numel() for p in net.parameters()) == 1_930_618
    stem_bn, *cell_bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert stem_bn.affine and not any(m.affine for m in cell_bns)
    assert not any(m.track_running_stats for m in [stem_bn, *cell_bns])
    pool = net.cells[0].ops["1_3_avg_pool_3x3"]  # the official MixedOp: pool, then BN
    assert isinstance(pool[1], torch.nn.BatchNorm2d) and not pool[1].affine
    tracked = SPACE.supernet(channels=4, cells=3, bn_affine=True, bn_track=True)
    assert all(m.affine and m.track_running_stats for m in tracked.modules()
               if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("name, params", [  # C = 16, the official operations.py
    ("none", 0), ("max_pool_3x3", 0), ("avg_pool_3x3", 0), ("skip_connect", 0),
    ("sep_conv_3x3", 2 * (16 * 9 + 16 * 16 + 2 * 16)),  # twice dw kxk, pw, BN
    ("sep_conv_5x5", 2 * (16 * 25 + 16 * 16 + 2 * 16)),
    ("dil_conv_3x3", 16 * 9 + 16 * 16 + 2 * 16),  # dw kxk (dilation 2), pw, BN
    ("dil_conv_5x5", 16 * 25 + 16 * 16 + 2 * 16),
])
def test_each_op_has_the_official_parameters_and_keeps_the_shape(name: str, params: int) -> None:
    for stride in (1, 2):
        op = make_op(name, 16, stride)
        extra = 2 * 16 * 8 + 2 * 16 if name == "skip_connect" and stride == 2 else 0  # reduce
        assert sum(p.numel() for p in op.parameters()) == params + extra, (name, stride)
        assert op(torch.randn(2, 16, 8, 8)).shape == (2, 16, 8 // stride, 8 // stride)


def test_the_evaluation_network_runs_and_its_auxiliary_head_trains() -> None:
    net = SPACE.build(DARTS_V2, channels=4, cells=5, num_classes=3, auxiliary=True)
    x = torch.randn(2, 3, 32, 32)
    logits, aux = net.train()(x)
    assert logits.shape == aux.shape == (2, 3)
    assert net.eval()(x).shape == (2, 3)  # no auxiliary output at evaluation
    small = net.train()(torch.randn(2, 3, 8, 8))  # 2x2 maps: the head pools adaptively
    assert small[1].shape == (2, 3)


def test_every_cell_reads_both_inputs_so_the_network_holds_only_what_runs() -> None:
    assert PAIRS[0] == ((0, 1),)  # node 2's only pair: both cell inputs
    net = SPACE.build(DARTS_V2, channels=4, cells=6, num_classes=3)
    assert net.kinds == ["normal", "normal", "reduce", "normal", "reduce", "normal"]
    assert all(isinstance(c, DARTSCell) for c in net.cells)


def test_the_supernet_on_one_hot_weights_computes_the_genotype() -> None:
    torch.manual_seed(0)
    net = SPACE.supernet(channels=4, cells=3, num_classes=3).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    rng = np.random.default_rng(0)
    for arch in [DARTS_V2, *(SPACE.sample(rng) for _ in range(3))]:
        path = one_hot(SPACE, arch)
        chosen = [PRIMITIVES[int(w.argmax())] for w in path.weights]
        assert chosen.count("none") == 2 * (len(EDGES) - 8)  # 6 edges a cell left out
        got = net(x, Relaxed(tuple(w.double() for w in path.weights)))
        assert torch.allclose(got, net(x, arch), atol=1e-12), arch.to_str()
    weights = tuple(w.double().requires_grad_() for w in uniform(SPACE).weights)
    net(x, Relaxed(weights)).sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


# ---- derive ---------------------------------------------------------------------------------

def edge(j: int, i: int) -> int:
    return EDGES.index((j, i))


def test_darts_derive_keeps_the_two_strongest_edges_by_their_best_non_none_op() -> None:
    op = PRIMITIVES.index
    normal = torch.full((14, 8), 0.1)
    normal[:, op("none")] = 0.2  # none weighs most everywhere: never picked, never ranks
    normal[edge(2, 0), op("sep_conv_3x3")] = 0.5
    normal[edge(2, 1), op("skip_connect")] = 0.4
    normal[edge(3, 2), op("dil_conv_5x5")] = 0.6  # node 3: edges from 2 and 0
    normal[edge(3, 0), op("max_pool_3x3")] = 0.3
    normal[edge(3, 1), op("avg_pool_3x3")] = 0.25
    normal[edge(3, 1), op("none")] = 0.9  # a heavy none does not lift its edge
    normal[edge(4, 3), op("sep_conv_5x5")] = 0.7  # node 4: from 3 and 1
    normal[edge(4, 1), op("dil_conv_3x3")] = 0.35
    normal[edge(4, 1), op("sep_conv_3x3")] = 0.34
    # node 5: no edge stands out (all 0.1 but none): the first two inputs, the first op
    reduce = torch.full((14, 8), 0.1)
    reduce[edge(5, 4), op("skip_connect")] = 0.8
    reduce[edge(5, 2), op("avg_pool_3x3")] = 0.15
    arch = SPACE.derive(list(normal) + list(reduce))
    assert arch.normal == ((("sep_conv_3x3", 0), ("skip_connect", 1)),
                           (("max_pool_3x3", 0), ("dil_conv_5x5", 2)),
                           (("dil_conv_3x3", 1), ("sep_conv_5x5", 3)),
                           (("max_pool_3x3", 0), ("max_pool_3x3", 1)))
    assert arch.reduce[3] == (("avg_pool_3x3", 2), ("skip_connect", 4))
    assert arch.reduce[0] == (("max_pool_3x3", 0), ("max_pool_3x3", 1))
    with pytest.raises(ArchitectureError, match="28 weight vectors"):
        SPACE.derive(list(normal))


def test_darts_derive_of_one_hot_weights_is_the_genotype() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        arch = SPACE.sample(rng)
        assert SPACE.derive(one_hot(SPACE, arch).weights) == arch


def test_nb201_derive_is_the_argmax_per_edge_none_included() -> None:
    nb201 = SPACES.create("nb201")
    weights = [torch.tensor(w) for w in (
        [0.5, 0.1, 0.1, 0.2, 0.1],  # none is heaviest: kept (AutoDL's NB201 derive)
        [0.1, 0.6, 0.1, 0.1, 0.1],
        [0.1, 0.1, 0.3, 0.4, 0.1],
        [0.1, 0.1, 0.1, 0.1, 0.6],
        [0.3, 0.3, 0.2, 0.1, 0.1],  # a tie: the earlier op
        [0.0, 0.1, 0.8, 0.1, 0.0],
    )]
    assert nb201.derive(weights) == NB201Cell(("none", "skip_connect", "nor_conv_3x3",
                                               "avg_pool_3x3", "none", "nor_conv_1x1"))
    with pytest.raises(ArchitectureError, match="6 weight vectors"):
        nb201.derive(weights[:5])
