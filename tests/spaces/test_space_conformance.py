"""Every registered space passes the shipped space conformance checks, and its encoding
round-trips for any valid choice vector (a property test)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ArchitectureError
from archsearch.registry import SPACES
from archsearch.testing import space_conformance

# small networks per space (the conformance checks only run a forward pass)
SMALL = {
    "nb201": ({}, {"channels": 4, "cells_per_stage": 1}),
    "enas-micro": ({"n_nodes": 3}, {"channels": 4, "cells_per_stage": 1}),
    "enas-macro": ({"n_layers": 4}, {"channels": 4}),
    "enas-rnn": ({"n_nodes": 4}, {"hidden": 8}),
    "nasnet": ({"blocks": 2}, {"channels": 4, "cells_per_stage": 1}),
    "darts": ({}, {"channels": 4, "cells": 3}),
    "nasrl-cnn": ({"depth": 3}, {}),
    "toy": ({}, {}),
}


def test_every_space_has_small_sizes_here() -> None:
    assert set(SPACES.names()) <= set(SMALL), "add the new space's small sizes to SMALL"


@pytest.mark.parametrize("name", SPACES.names())
def test_space_conforms(name: str) -> None:
    options, net = SMALL[name]
    space_conformance.check_all(SPACES.create(name, **options), build=net)


@pytest.mark.parametrize("name", SPACES.names())
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_valid_choice_vector_round_trips(name: str, data) -> None:
    space = SPACES.create(name, **SMALL[name][0])
    choices = [data.draw(st.integers(0, d.n_options - 1)) for d in space.decisions()]
    try:
        arch = space.decode(choices)
    except ArchitectureError:  # a space may hold invalid combinations
        return
    assert list(space.encode(arch)) == choices
    assert space.parse(arch.to_str()) == arch
