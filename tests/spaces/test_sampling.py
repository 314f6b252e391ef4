"""Sampling uniformly over isomorphism classes (de-isomorphic sampling)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from archsearch.errors import UserError
from archsearch.registry import SPACES
from archsearch.spaces.sampling import IsomorphismClassSampler


def test_nb201_classes_partition_the_space() -> None:
    space = SPACES.create("nb201")
    sampler = IsomorphismClassSampler(space)
    assert len(sampler) == 6466
    assert sum(len(members) for members in sampler.classes) == 15625
    for members in sampler.classes[:200]:
        assert len({space.iso_key(a) for a in members}) == 1


def test_draws_are_uniform_over_classes_not_encodings() -> None:
    space = SPACES.create("nb201")
    sampler = IsomorphismClassSampler(space)
    biggest = max(sampler.classes, key=len)
    key = space.iso_key(biggest[0])
    assert len(biggest) == 275  # e.g. the cells whose only live edge is one pooling
    n = 20_000
    rng = np.random.default_rng(0)
    by_class = collections.Counter(space.iso_key(sampler.sample(rng)) for _ in range(n))
    by_encoding = collections.Counter(space.iso_key(space.sample(rng)) for _ in range(n))
    # uniform over encodings: that class takes 275/15625 of the draws (about 350 of 20,000);
    # uniform over classes: 1/6466 of them (about 3)
    assert by_encoding[key] > 250
    assert by_class[key] < 15
    assert len(by_class) > 0.9 * len(sampler)  # 20,000 draws reach nearly every class


def test_refuses_a_space_too_large_to_enumerate() -> None:
    with pytest.raises(UserError, match="too many to sample by isomorphism class"):
        IsomorphismClassSampler(SPACES.create("enas-micro"))
