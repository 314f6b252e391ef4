"""ENAS's final CIFAR-10 networks, built as the official code builds them, against the paper.

The architectures and configurations of melodyguan/enas ``scripts/cifar10_micro_final.sh``
(15 layers = 5 cells per stage, 36 filters, auxiliary head) and ``cifar10_macro_final.sh``
(24 layers, 96 filters); parameter counts of ``space.build(arch)`` (``network="official"``)
beside the counts the official TensorFlow code gives for the same configuration (read off its
graph: micro 3,894,372 without the auxiliary head, 494,848 in it; macro 42,559,392) and the
paper's (Pham et al. 2018, Table 1: micro 4.6M, macro 21.3M).

    python benchmarks/enas_official_networks.py [--json benchmarks/results/enas_official_networks.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from archsearch.registry import SPACES

# the official final scripts' fixed_arc strings (ENAS's encodings: see the spaces' decode)
MICRO_ARC = ("0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1 "
             "1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1")
MACRO_ARC = """0
3 0
0 1 0
2 0 0 1
2 0 0 0 0
3 1 1 0 1 0
2 0 0 0 0 0 1
2 0 1 1 0 1 1 1
1 0 1 1 1 0 1 0 1
0 0 0 0 0 0 0 0 0 0
2 0 0 0 0 0 1 0 0 0 0
0 1 0 0 1 1 0 0 0 0 1 1
2 0 1 0 0 0 0 0 1 0 1 1 0
1 0 0 1 0 0 0 1 1 1 0 1 0 1
0 1 1 0 1 0 1 0 0 0 0 0 1 0 0
2 0 0 1 0 0 0 0 0 0 0 1 0 1 0 1
2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0
2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 0 0 1
3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0
3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1
0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0
3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 0
0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0
0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 0 1 1 0 0 0"""
OFFICIAL = {"micro": 3_894_372, "micro_aux": 494_848, "macro": 42_559_392}
PAPER = {"micro": 4.6e6, "macro": 21.3e6}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def networks() -> dict:
    micro_space = SPACES.create("enas-micro")
    micro = micro_space.decode([int(t) for t in MICRO_ARC.split()])
    net = micro_space.build(micro, channels=36, cells_per_stage=5, auxiliary=True)
    macro_space = SPACES.create("enas-macro", n_layers=24)
    macro = macro_space.decode([int(t) for t in MACRO_ARC.split()])
    return {
        "micro": {"arch": micro.to_str(), "params": count(net) - count(net.aux),
                  "aux_params": count(net.aux), "with_aux": count(net)},
        "macro": {"arch": macro.to_str(), "params": count(macro_space.build(macro, channels=96)),
                  "params_separable": count(macro_space.build(macro, channels=96,
                                                              separable=True))},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json")
    args = p.parse_args()
    got = networks()
    micro, macro = got["micro"], got["macro"]
    print(f"micro: {micro['params']:,} params + {micro['aux_params']:,} in the auxiliary head "
          f"= {micro['with_aux']:,} (official code {OFFICIAL['micro']:,} + "
          f"{OFFICIAL['micro_aux']:,}; paper 4.6M: {micro['with_aux'] / PAPER['micro'] - 1:+.1%}"
          " with the head)")
    print(f"macro: {macro['params']:,} params (official code {OFFICIAL['macro']:,}; paper 21.3M: "
          f"{macro['params'] / PAPER['macro'] - 1:+.1%}); separable sep_conv ops: "
          f"{macro['params_separable']:,}")
    if args.json:
        Path(args.json).write_text(json.dumps({"measured": got, "official_code": OFFICIAL,
                                               "paper": PAPER}, indent=2))


if __name__ == "__main__":
    main()
