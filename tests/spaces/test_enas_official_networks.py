"""ENAS's final networks are built as the official code builds them: the parameter counts of
the official final scripts' architectures equal those of melodyguan/enas's TensorFlow graphs
(micro 3,894,372 + 494,848 in the auxiliary head; macro 42,559,392), and the cells' outputs
are the concatenation of their unused nodes."""

from __future__ import annotations

import numpy as np
import torch

from archsearch.registry import SPACES
from benchmarks.enas_official_networks import OFFICIAL, networks


def test_the_final_scripts_networks_have_the_official_codes_parameter_counts() -> None:
    got = networks()
    assert got["micro"]["params"] == OFFICIAL["micro"]
    assert got["micro"]["aux_params"] == OFFICIAL["micro_aux"]
    assert got["macro"]["params"] == OFFICIAL["macro"]


def test_a_cell_outputs_its_unused_nodes_inputs_included() -> None:
    space = SPACES.create("enas-micro", n_nodes=2)
    # node 2 reads input 0 twice, node 3 reads node 2 twice: unused are input 1 and node 3
    arch = space.parse("normal:identity~0,identity~0|identity~2,identity~2;"
                       "reduce:identity~0,identity~0|identity~2,identity~2")
    net = space.build(arch, channels=4, cells_per_stage=1, in_channels=3, num_classes=2)
    assert [cell.out_nodes for cell in net.cells] == [[1, 3]] * len(net.cells)
    assert net.cells[0].c_out == 8  # two nodes of C = 4, no 1x1 back to C
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    assert net(x).shape == (2, 2)
    rng = np.random.default_rng(0)
    for _ in range(5):  # any architecture trains a step
        net = space.build(space.sample(rng), channels=4, cells_per_stage=1, auxiliary=True,
                          in_channels=3, num_classes=2)
        net.drop_path_prob = 0.3
        logits, aux = net(torch.randn(4, 3, 16, 16))
        (logits.sum() + aux.sum()).backward()
        assert all(p.grad is not None for p in net.parameters())
