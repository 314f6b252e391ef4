"""ENAS micro and macro spaces: encodings, strings, and every sampled network runs (the
round trip runs over the NAS-RL and NASNet spaces too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archsearch.errors import ArchitectureError
from archsearch.registry import SPACES

SPACE_NAMES = ["enas-micro", "enas-macro", "nb201"]


def choice_vectors(space):
    return st.tuples(*[st.integers(0, d.n_options - 1) for d in space.decisions()])


@pytest.mark.parametrize("name, options", [
    ("enas-micro", {}), ("enas-macro", {}), ("enas-rnn", {}), ("nasnet", {}), ("nasrl-cnn", {}),
    ("nasrl-cnn", {"strides": True})])
def test_string_and_encoding_round_trip(name: str, options: dict) -> None:
    space = SPACES.create(name, **options)

    @settings(max_examples=60, deadline=None)
    @given(choice_vectors(space), st.integers(0, 2**32 - 1))
    def check(choices, seed) -> None:
        arch = space.decode(choices)
        assert space.encode(arch) == tuple(choices)
        assert space.parse(arch.to_str()) == arch
        child = space.mutate(arch, np.random.default_rng(seed))
        assert sum(a != b for a, b in zip(space.encode(child), choices)) == 1
        assert space.parse(child.to_str()) == child

    check()


def test_micro_iso_key_ignores_the_order_of_a_nodes_two_inputs() -> None:
    space = SPACES.create("enas-micro", n_nodes=2)
    a = space.parse("normal:sep_conv_3x3~1,identity~0|avg_pool_3x3~2,max_pool_3x3~0;"
                    "reduce:identity~0,identity~1|identity~2,identity~0")
    b = space.parse("normal:identity~0,sep_conv_3x3~1|avg_pool_3x3~2,max_pool_3x3~0;"
                    "reduce:identity~0,identity~1|identity~2,identity~0")
    assert a != b and space.iso_key(a) == space.iso_key(b)


@pytest.mark.parametrize("name, text, where", [
    ("enas-micro", "normal:sep_conv_3x3~1,identity~0", "expected 'normal:...;reduce:...'"),
    ("enas-micro", "normal:sep_conv_3x3~3,identity~0|avg_pool_3x3~2,max_pool_3x3~0;"
                   "reduce:identity~0,identity~1|identity~2,identity~0",
     "normal cell, node 2, input a: reads node 3"),
    ("enas-micro", "normal:conv~1,identity~0|avg_pool_3x3~2,max_pool_3x3~0;"
                   "reduce:identity~0,identity~1|identity~2,identity~0", "unknown op 'conv'"),
    ("enas-macro", "conv_3x3|conv_5x5/11", "layer 1 ('conv_5x5/11'): expected 'op/' and 1 bits"),
    ("enas-macro", "conv_3x3|pool/1", "layer 1: unknown op 'pool'"),
    ("enas-rnn", "tanh|relu~1", "node 1: reads node 1, must be in 0..0"),
    ("enas-rnn", "tanh~0|relu~0", "node 0 reads the input"),
    ("enas-rnn", "tanh|gelu~0", "unknown activation 'gelu'"),
])
def test_malformed_strings_say_where(name: str, text: str, where: str) -> None:
    kwargs = {"enas-micro": {"n_nodes": 2}, "enas-macro": {"n_layers": 2},
              "enas-rnn": {"n_nodes": 2}}[name]
    with pytest.raises(ArchitectureError, match=where.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        SPACES.create(name, **kwargs).parse(text)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACE_NAMES)
def test_every_sampled_architecture_trains_a_step_standalone_and_in_the_supernet(name) -> None:
    space = SPACES.create(name)
    small = {"channels": 4, "cells_per_stage": 1} if name != "enas-macro" else {"channels": 4}
    supernet = space.supernet(num_classes=3, in_channels=2, **small)
    rng = np.random.default_rng(0)
    x, y = torch.randn(4, 2, 16, 16), torch.tensor([0, 1, 2, 0])
    for _ in range(12):
        arch = space.sample(rng)
        net = space.build(arch, num_classes=3, in_channels=2, **small)
        for model, forward in ((net, lambda m: m(x)), (supernet, lambda m: m(x, arch))):
            model.zero_grad()
            out = forward(model)
            assert out.shape == (4, 3) and torch.isfinite(out).all()
            torch.nn.functional.cross_entropy(out, y).backward()
        if name == "nb201":  # the benchmark's networks (and published parameter counts) keep
            continue         # ops on edges whose node nothing reads; they get no gradient
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_micro_network_options_drop_path_and_auxiliary_head() -> None:
    space = SPACES.create("enas-micro")
    arch = space.sample(np.random.default_rng(1))
    net = space.build(arch, channels=4, cells_per_stage=1, num_classes=5, auxiliary=True)
    net.drop_path_prob = 0.5
    logits, aux = net(torch.randn(3, 3, 16, 16))
    assert logits.shape == aux.shape == (3, 5)
    net.eval()
    assert net(torch.randn(3, 3, 16, 16)).shape == (3, 5)  # no auxiliary output at test time


def test_supernet_batchnorm_keeps_no_running_statistics() -> None:
    for name in SPACE_NAMES:
        supernet = SPACES.create(name).supernet(channels=4, **(
            {} if name == "enas-macro" else {"cells_per_stage": 1}))
        norms = [m for m in supernet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(not m.track_running_stats and not m.affine for m in norms)


def test_macro_skip_bits_are_enas_s_bit_0_the_stem_bit_j_layer_j_minus_1() -> None:
    """general_child.py: layer k adds prev_layers[i] for its bits i < k, prev_layers =
    [stem, layer 0, ...]: bit 0 reads the stem, never the previous layer (the input)."""
    space = SPACES.create("enas-macro", n_layers=6)  # reductions after layers 1 and 3
    text = "conv_3x3|conv_3x3/1|conv_3x3/00|conv_3x3/000|conv_3x3/0000|conv_3x3/00000"
    torch.manual_seed(0)
    net = space.build(space.parse(text), channels=4, in_channels=3, widen=False,
                      network="shared").eval()
    seen: dict[str, torch.Tensor] = {}
    net.stem.register_forward_hook(lambda m, i, o: seen.__setitem__("stem", o))
    net.norms[1].register_forward_hook(lambda m, i, o: seen.__setitem__("sum1", i[0]))
    net.ops[1].conv_3x3.register_forward_hook(lambda m, i, o: seen.__setitem__("op1", o))
    net(torch.randn(2, 3, 12, 12))
    assert torch.allclose(seen["sum1"], seen["op1"] + seen["stem"])  # bit 0: the stem
    graph = space.graphs(space.parse(text))[0]
    assert (0, 2, "skip") in graph.edges  # drawn from the stem to layer 1
