from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from archsearch.errors import ArchitectureError
from archsearch.nn.ops import count_params_m
from archsearch.spaces.nb201 import OPS, NB201Cell, NB201Space, functional_key, iso_key
from tests.conftest import shared_file

SPACE = NB201Space()
choices = st.lists(st.integers(0, len(OPS) - 1), min_size=6, max_size=6)
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@given(choices)
def test_string_and_encoding_round_trip(c: list[int]) -> None:
    arch = SPACE.decode(c)
    assert SPACE.encode(arch) == tuple(c)
    assert SPACE.parse(arch.to_str()) == arch
    assert SPACE.from_json(arch.to_json()) == arch


@given(choices, st.integers(0, 2**32 - 1))
def test_mutation_changes_exactly_one_edge_and_stays_in_space(c: list[int], seed: int) -> None:
    arch = SPACE.decode(c)
    child = SPACE.mutate(arch, np.random.default_rng(seed))
    assert isinstance(child, NB201Cell) and all(op in OPS for op in child.ops)
    assert sum(a != b for a, b in zip(SPACE.encode(arch), SPACE.encode(child))) == 1


def test_standard_string_form() -> None:
    arch = SPACE.parse(BEST)
    assert arch.to_str() == BEST
    assert arch.edge_op(3, 0) == "skip_connect" and arch.edge_op(3, 2) == "nor_conv_1x1"


@pytest.mark.parametrize("text, where", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "expected 3 nodes"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1, input 0: unknown op 'conv'"),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "node 2, input 1"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),
])
def test_malformed_strings_say_where(text: str, where: str) -> None:
    with pytest.raises(ArchitectureError, match=where.replace("'", ".")):
        SPACE.parse(text)


def test_decode_rejects_out_of_range() -> None:
    with pytest.raises(ArchitectureError, match="choice 2"):
        SPACE.decode([0, 0, 7, 0, 0, 0])


def test_iso_key_reproduces_the_benchmark_classes(nb201_csv) -> None:
    with open(nb201_csv) as f:
        rows = list(csv.DictReader(f))
    keys = [iso_key(SPACE.parse(r["arch_str"])) for r in rows]
    assert keys == [r["unique_str"] for r in rows]
    assert len(set(keys)) == 6466
    # the functional key only merges benchmark classes, never splits one
    by_class: dict[str, set[str]] = {}
    for r, k in zip(rows, keys):
        by_class.setdefault(k, set()).add(functional_key(SPACE.parse(r["arch_str"])))
    assert all(len(v) == 1 for v in by_class.values())


def test_iso_key_merges_an_obvious_isomorphism() -> None:
    # the two inputs of node 2 swapped through node 1 = skip: same function
    a = SPACE.parse("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|")
    b = SPACE.parse("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    assert iso_key(a) == iso_key(b) and a != b


@pytest.mark.slow
@pytest.mark.data
def test_parameter_counts_equal_the_published_ones() -> None:
    path = shared_file("nb201_zc_cifar10_subset.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 724
    for r in rows:
        params = count_params_m(SPACE.build(SPACE.parse(r["arch_str"])))
        assert params == pytest.approx(float(r["params"]), abs=1e-6), r["arch_str"]


def test_network_runs_forward_and_backward() -> None:
    net = SPACE.build(SPACE.parse(BEST), channels=8, cells_per_stage=1, num_classes=7,
                      in_channels=1)
    x = torch.randn(4, 1, 8, 8)
    out = net(x)
    assert out.shape == (4, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_derive_capped_gives_the_weakest_extra_skips_their_next_best_op() -> None:
    space = NB201Space()
    rows = torch.full((6, 5), 0.1)
    rows[:, OPS.index("skip_connect")] = torch.tensor([0.5, 0.9, 0.6, 0.2, 0.7, 0.8])
    rows[3, OPS.index("nor_conv_1x1")] = 0.3  # edge 3: a conv beats its skip
    rows[0, OPS.index("none")] = 0.4  # edge 0's next best is none: not excluded
    rows[2, OPS.index("avg_pool_3x3")] = 0.3
    weights = list(rows)
    assert space.derive(weights).ops.count("skip_connect") == 5
    assert space.derive_capped(weights, 2).ops == (  # the two strongest skips (edges 1, 5) stay
        "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none", "skip_connect")
    assert space.derive_capped(weights, 5) == space.derive(weights)  # under the cap: unchanged
    assert "skip_connect" not in space.derive_capped(weights, 0).ops


def test_derive_without_none_takes_each_edges_strongest_other_op() -> None:
    space = NB201Space()
    rows = torch.full((6, 5), 0.1)
    rows[:, OPS.index("none")] = 0.5  # none wins every edge
    rows[:, OPS.index("nor_conv_3x3")] = torch.tensor([0.3, 0.2, 0.3, 0.2, 0.3, 0.2])
    rows[:, OPS.index("skip_connect")] = torch.tensor([0.2, 0.3, 0.2, 0.3, 0.2, 0.25])
    weights = list(rows)
    assert space.derive(weights).ops == ("none",) * 6  # AutoDL's rule counts it
    conv, skip = "nor_conv_3x3", "skip_connect"
    assert space.derive(weights, include_none=False).ops == (conv, skip, conv, skip, conv, skip)
    # capped and without none: the weakest extra skips (edge 5, then 1: ties go to the first
    # edge) fall to their next best op that is not none
    assert space.derive_capped(weights, 1, include_none=False).ops == (
        conv, conv, conv, skip, conv, conv)
    assert space.derive_capped(weights, 1).ops == ("none",) * 6
