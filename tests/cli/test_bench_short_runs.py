"""``archsearch bench`` with a strategy that finishes before ``--queries`` (PNAS after its last
level): its row shows ``-`` past its curve, and the output says when it finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archsearch.cli.main import main
from archsearch.spaces.nb201 import NB201Space


@pytest.mark.slow
def test_a_strategy_that_finishes_early_gets_dashes_past_its_curve(tmp_path: Path,
                                                                   capsys) -> None:
    space = NB201Space()
    rows = ["arch_str,acc"]
    for i in range(space.size()):
        arch = space.decode([(i // 5**k) % 5 for k in range(6)])
        rows.append(f"{arch},{80 + 2 * arch.ops.count('nor_conv_3x3')}")
    table = tmp_path / "table.csv"
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "b.json"
    assert main(["bench", "--benchmark", str(table), "--metric", "acc", "--strategies",
                 "pnas,random", "--seeds", "1", "--queries", "100", "--workers", "1",
                 "--no-progress", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())["results"]
    finished = len(results["pnas"]["mean"])
    assert finished <= 85 and len(results["random"]["mean"]) == 100  # 5 + 5 x beam 16 at most
    pnas_row = next(line for line in printed.splitlines() if line.startswith("pnas "))
    assert pnas_row.split()[-1] == "-" and f"pnas finished after {finished} queries" in printed
    assert results["pnas"]["mean"][-1] == 92.0  # the all-conv cell: 80 + 2 x 6
