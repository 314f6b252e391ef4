"""Encodings: pure, fixed-length, and the path encoding counted by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.encodings import adjacency, one_hot, path_encoding, path_length, vector_encoder
from archsearch.encodings.paths import cell_paths
from archsearch.errors import UnknownNameError, UserError
from archsearch.registry import SPACES
from archsearch.spaces.nb201 import EDGES, NB201Cell
from tests.spaces.test_enas_spaces import choice_vectors

GRAPH_SPACES = {"nb201": (155, 8, 7), "darts": (2 * 2 * (7 + 49 + 343 + 2401), 22, 10),
                "enas-micro": (2 * 2 * (5 + 25 + 125 + 625 + 3125), 26, 8)}
# (path bits, adjacency nodes, node features) per space, as the modules' docstrings derive them
NB201 = SPACES.create("nb201")


def encodings(space, arch):
    out = [one_hot(space, arch)]
    if space.name in GRAPH_SPACES:
        out += [path_encoding(space, arch), *adjacency(space, arch)]
    return out


@pytest.mark.parametrize("name", ["toy", "nb201", "darts", "enas-micro", "enas-macro", "nasnet"])
def test_encodings_are_pure_functions_of_fixed_length(name: str) -> None:
    space = SPACES.create(name)
    width = sum(d.n_options for d in space.decisions())

    @settings(max_examples=30, deadline=None)
    @given(choice_vectors(space))
    def check(choices) -> None:
        arch = space.decode(choices)
        first = encodings(space, arch)
        again = encodings(space, space.parse(arch.to_str()))  # a parsed copy: the same arrays
        for a, b in zip(first, again):
            assert a.dtype == np.float32 and np.array_equal(a, b)
        assert first[0].shape == (width,) and first[0].sum() == len(space.decisions())
        assert np.array_equal(np.flatnonzero(first[0]),
                              np.cumsum([0] + [d.n_options for d in space.decisions()][:-1])
                              + np.array(choices))
        if name in GRAPH_SPACES:
            bits, nodes, features = GRAPH_SPACES[name]
            assert first[1].shape == (bits,) and path_length(space) == bits
            assert set(np.unique(first[1])) <= {0.0, 1.0}
            assert first[2].shape == (nodes, nodes) and first[3].shape == (nodes, features)
            assert np.all(first[3].sum(axis=1) <= 1)  # one label per node, padding none
            assert np.all(np.triu(first[2], 1) == first[2])  # forward wiring only (a DAG)

    check()


def cell(text: str) -> NB201Cell:
    return NB201.parse(text)


# (cell, its input -> output paths without none, counted by hand, distinct op sequences)
HAND_COUNTED = [
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 0, 0),
    ("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",
     3, 3),  # [avg], [conv3, skip], [conv1, conv3]; the 3-op path crosses none
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
     "nor_conv_3x3~2|", 4, 3),  # both 2-op paths are [conv3, conv3]: one bit
    ("|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|", 2, 2),
    ("|none~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|nor_conv_1x1~2|", 1, 1),
]


@pytest.mark.parametrize("text, paths, distinct", HAND_COUNTED)
def test_set_bits_count_the_paths_without_none(text: str, paths: int, distinct: int) -> None:
    arch = cell(text)
    assert len(cell_paths(NB201.graphs(arch)[0], inputs=1)) == paths
    assert path_encoding(NB201, arch).sum() == distinct


def test_path_bits_sit_where_the_docstring_says() -> None:
    ops = NB201.decisions()[0].options  # none, skip, conv1, conv3, pool
    bits = path_encoding(NB201, cell(HAND_COUNTED[1][0]))
    pool, skip, conv1, conv3 = (ops.index(o) for o in ("avg_pool_3x3", "skip_connect",
                                                       "nor_conv_1x1", "nor_conv_3x3"))
    assert list(np.flatnonzero(bits)) == sorted([pool, 5 + 5 * conv1 + conv3,
                                                 5 + 5 * conv3 + skip])
    assert np.array_equal(path_encoding(NB201, cell(HAND_COUNTED[1][0]), max_paths=30),
                          bits[:30])


def test_isomorphic_cells_have_equal_path_encodings() -> None:
    """Over every NB201 cell without skip_connect (4,096): equal iso_key, equal encoding. On
    these cells the iso_key merges what dead edges and none make equal (it keeps the hidden
    nodes apart: the swap is the next test's). With skips the iso_key is coarser than any
    path set (a skip is the identity, so [skip, conv] and [conv, skip] are one class): see
    test_skip_order_is_kept_although_the_iso_key_merges_it."""
    seen: dict[str, bytes] = {}
    ops = [o for o in NB201.decisions()[0].options if o != "skip_connect"]
    for combo in itertools.product(ops, repeat=6):
        arch = NB201Cell(combo)
        code = path_encoding(NB201, arch).tobytes()
        assert seen.setdefault(NB201.iso_key(arch), code) == code, arch.to_str()
    assert len(seen) > 1000


@settings(max_examples=300, deadline=None)
@given(choice_vectors(NB201), st.data())
def test_graph_isomorphisms_and_dead_edges_keep_the_path_encoding(choices, data) -> None:
    """Swapping the hidden nodes 1 and 2 when no edge joins them is a graph isomorphism; an
    edge on no input -> output path (node 1 unreachable, say) changes no path."""
    arch = NB201.decode(choices)
    ops = dict(zip(EDGES, arch.ops))  # (to, from) -> op
    code = path_encoding(NB201, arch)
    if ops[(2, 1)] == "none":
        swap = {1: 2, 2: 1, 0: 0, 3: 3}
        swapped = {(swap[t], swap[f]): op for (t, f), op in ops.items() if (t, f) != (2, 1)}
        swapped[(2, 1)] = "none"
        assert np.array_equal(path_encoding(NB201, NB201Cell(tuple(swapped[e] for e in EDGES))),
                              code)
    if ops[(1, 0)] == "none":  # node 1 reads nothing: its out-edges are dead
        other = data.draw(st.sampled_from(NB201.decisions()[0].options))
        ops[(2, 1)] = ops[(3, 1)] = other
        assert np.array_equal(path_encoding(NB201, NB201Cell(tuple(ops[e] for e in EDGES))),
                              code)


def test_skip_order_is_kept_although_the_iso_key_merges_it() -> None:
    a = cell("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    b = cell("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert NB201.iso_key(a) == NB201.iso_key(b)
    assert not np.array_equal(path_encoding(NB201, a), path_encoding(NB201, b))


def test_darts_paths_counted_by_hand() -> None:
    darts = SPACES.create("darts")
    # normal: every node reads the two inputs (8 one-op paths, 3 distinct (input, op) pairs:
    # sep3 from 0 and 1, skip from 1); reduce: a chain 0 -> 2 -> 3 -> 4 -> 5 with side inputs
    normal = "|".join(["sep_conv_3x3~0,sep_conv_3x3~1"] * 2 + ["sep_conv_3x3~0,skip_connect~1"] * 2)
    reduce = ("max_pool_3x3~0,max_pool_3x3~1|skip_connect~1,skip_connect~2|"
              "avg_pool_3x3~0,skip_connect~3|avg_pool_3x3~0,skip_connect~4")
    arch = darts.parse(f"normal:{normal};reduce:{reduce}")
    # reduce paths: node 2: [max]x2 (one per input); node 3: [skip] from 1, 2's two extended;
    # node 4: [avg] from 0, node 3's four extended; node 5: [avg] from 0, node 4's six extended
    reduce_paths = {(0, ("max_pool_3x3",)), (1, ("max_pool_3x3",)), (1, ("skip_connect",)),
                    (0, ("max_pool_3x3", "skip_connect")), (1, ("max_pool_3x3", "skip_connect")),
                    (0, ("avg_pool_3x3",)), (1, ("skip_connect", "skip_connect")),
                    (0, ("max_pool_3x3", "skip_connect", "skip_connect")),
                    (1, ("max_pool_3x3", "skip_connect", "skip_connect")),
                    (0, ("avg_pool_3x3", "skip_connect")),
                    (1, ("skip_connect", "skip_connect", "skip_connect")),
                    (0, ("max_pool_3x3", "skip_connect", "skip_connect", "skip_connect")),
                    (1, ("max_pool_3x3", "skip_connect", "skip_connect", "skip_connect"))}
    assert path_encoding(darts, arch).sum() == 3 + len(reduce_paths)
    # shortest first across cells and inputs: the first 2 x 2 x 7 bits are the one-op paths
    one_op = 3 + sum(len(ops) == 1 for _, ops in reduce_paths)
    assert path_encoding(darts, arch, max_paths=28).sum() == one_op == 7


def test_adjacency_of_an_nb201_cell_wires_op_nodes_through_the_hidden_nodes() -> None:
    a, x = adjacency(NB201, cell(HAND_COUNTED[1][0]))
    # nodes: input, op slots (conv3 0->1, conv1 0->2, avg 0->3, skip 1->3, conv3 2->3), padding,
    # output; none 1->2 is no edge
    labels = [int(np.argmax(row)) if row.any() else -1 for row in x]
    assert labels == [0, 5, 4, 6, 3, 5, -1, 1]  # features: input, output, none, skip, ...
    wired = {(int(i), int(j)) for i, j in zip(*np.nonzero(a))}
    assert wired == {(0, 1), (0, 2), (0, 3), (1, 4), (2, 5), (3, 7), (4, 7), (5, 7)}


def test_unknown_encodings_and_spaces_are_refused_by_name() -> None:
    with pytest.raises(UnknownNameError, match="one_hot, path"):
        vector_encoder(NB201, "paths")
    with pytest.raises(UserError, match="darts, enas-micro, nb201"):
        vector_encoder(SPACES.create("toy"), "path")
    with pytest.raises(UserError, match="max_paths"):
        path_encoding(NB201, cell(HAND_COUNTED[0][0]), max_paths=0)
