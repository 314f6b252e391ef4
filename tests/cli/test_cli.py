from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from archsearch.cli.main import main
from archsearch.spaces.nb201 import NB201Space
from tests.conftest import shared_file

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A synthetic NB201 table: accuracy grows with the number of 3x3 convolutions."""
    space = NB201Space()
    rows = ["arch_str,acc"]
    for i in range(space.size()):
        choices = [(i // 5**k) % 5 for k in range(6)]
        arch = space.decode(choices)
        rows.append(f"{arch},{80 + 2 * arch.ops.count('nor_conv_3x3') + 0.01 * (i % 7)}")
    path = tmp_path / "table.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def tabular(table: Path, run: Path, *extra: str) -> list[str]:
    return ["search", "--space", "nb201", "--strategy", "evolution", "--estimator", "tabular", "--benchmark", str(table), "--metric", "acc",
            "--trials", "30", "--run", str(run), "--no-progress", *extra]


@pytest.mark.parametrize("argv, message", [
    (["search", "--space", "nope"], "unknown search space 'nope'; valid search space names: darts, enas-macro, enas-micro, enas-rnn, nasnet, nasrl-cnn, nb201, toy"),
    (["search", "--strategy", "nope"],
     "valid method names: bananas, bo, darts, darts-plus, enas, evolution, gdas, hyperband, nao, "
     "nas-rl, p-darts, pc-darts, pnas, predictor-evolution, random, reinforce, snas, spos"),
    (["search", "--strategy", "random", "--estimator", "nope"],
     "valid estimator names: full-training, lm-training, predictor, shared-rnn, shared-weights, "
     "supernet-checkpoint, tabular, tabular-seeds, toy, zero-cost"),
    (["search", "--estimator", "tabular"], "drop --estimator tabular"),
    (["search", "--trials", "5"], "--trials and --time are for trials methods"),
    (["search", "--strategy", "evolution", "--estimator", "tabular"],
     "needs --benchmark CSV and --metric COLUMN"),
    (["search", "--data", "/no/such/dir"], "does not exist"),
    (["search", "--resume"], "--resume needs --run"),
    (["search", "--strategy", "random", "--space", "toy", "--estimator", "toy", "--executor",
      "ray", "--ray-address", "127.0.0.1:1"], "Ray"),
    (["search", "--strategy", "random", "--space", "toy", "--estimator", "toy",
      "--ray-address", "127.0.0.1:1"], "--ray-address and --gpus-per-trial are for --executor"),
    (["search", "--strategy", "random", "--retries", "-1"], "retries must be at least 0"),
    (["show", "--space", "nb201", "--arch", "|nor_conv_3x3~0|+|bad~0|none~1|"],
     "expected 3 nodes"),
    (["show", "--space", "nb201", "--arch",
      "|nor_conv_3x3~0|+|bad~0|none~1|+|none~0|none~1|none~2|"],
     "node 2, input 0: unknown op 'bad'"),
    (["show", "/no/such/run"], "no run at '/no/such/run'"),
    (["bench", "--benchmark", "/no/table.csv", "--metric", "acc", "--seeds", "1"],
     "does not exist"),
])
def test_user_errors_exit_2_with_a_clear_message(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_column_lists_columns(table: Path, tmp_path: Path, capsys) -> None:
    assert main(["search", "--strategy", "random", "--estimator", "tabular", "--benchmark",
                 str(table), "--metric", "accuracy", "--run", str(tmp_path / "r")]) == 2
    assert "no column 'accuracy'; its columns are: arch_str, acc" in capsys.readouterr().err


def test_bad_input_from_a_real_process_has_no_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "archsearch", "search", "--space", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "valid search space names" in out.stderr and "Traceback" not in out.stderr


def test_tabular_search_then_show(table: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(tabular(table, run)) == 0
    out = capsys.readouterr().out
    assert "best architecture" in out and "random mean" in out
    assert (run / "search.png").exists()
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["n_trials"] == {"running": 0, "complete": 30, "failed": 0}
    assert shown["best_objective"] == max(t["objective"] for t in shown["trials"])
    assert shown["best_arch"] in {t["arch"] for t in shown["trials"]}
    assert main(["show", str(run)]) == 0
    assert "best 5:" in capsys.readouterr().out


def test_resume_extends_and_refuses_a_different_configuration(table: Path, tmp_path: Path,
                                                               capsys) -> None:
    run = tmp_path / "run"
    assert main(tabular(table, run)) == 0
    assert main(tabular(table, run)) == 2  # exists, no --resume
    assert "already holds a run; resume it (--resume)" in capsys.readouterr().err
    assert main(tabular(table, run, "--resume", "--strategy", "random")) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err
    assert "run.method: run has 'evolution', now 'random'" in err
    assert not (tmp_path / "runs").exists()
    assert main(["search", "--run", str(run), "--resume", "--trials", "40",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["show", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"]["complete"] == 40


def test_a_run_repeated_from_its_config_toml_gives_the_same_trials(table: Path, tmp_path: Path,
                                                                  capsys) -> None:
    first, again = tmp_path / "first", tmp_path / "again"
    assert main(tabular(table, first, "--seed", "3")) == 0
    config = (first / "config.toml").read_text()
    assert 'strategy = "evolution"' in config or 'method = "evolution"' in config
    assert main(["search", "--config", str(first / "config.toml"), "--run", str(again),
                 "--no-progress"]) == 0
    capsys.readouterr()

    def trials(run: Path) -> list[tuple[str, float]]:
        assert main(["show", str(run), "--json"]) == 0
        return [(t["arch"], t["objective"]) for t in json.loads(capsys.readouterr().out)["trials"]]

    repeated = trials(again)
    assert len(repeated) == 30 and repeated == trials(first)
    assert (again / "config.toml").read_text() == config


def test_show_arch_params_and_flops(capsys) -> None:
    all_conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|" \
               "nor_conv_3x3~2|"
    assert main(["show", "--space", "nb201", "--arch", all_conv, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params_m"] == pytest.approx(1.531546, abs=1e-6)  # NB201's published count
    assert info["flops_m"] == pytest.approx(220.11, abs=0.05)  # and its 220.11 MFLOPs


def test_bench_prints_table_and_writes_json_and_plot(table: Path, tmp_path: Path,
                                                     capsys) -> None:
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    assert main(["bench", "--benchmark", str(table), "--metric", "acc", "--strategies",
                 "random,evolution", "--seeds", "3", "--queries", "30", "--workers", "1",
                 "--json", str(out_json), "--plot", str(out_png), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Q=10" in printed and "Q=25" in printed and "Q=50" not in printed
    assert "oracle-reward" in printed
    report = json.loads(out_json.read_text())
    assert set(report) >= {"protocol", "metric", "results"}
    for res in report["results"].values():
        assert len(res["queries"]) == len(res["mean"]) == len(res["std"]) == 30
        assert res["mean"] == sorted(res["mean"])  # best-so-far never decreases
    assert out_png.stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.data
def test_bench_on_the_real_nb201_table(tmp_path: Path, capsys) -> None:
    csv = shared_file("nb201_cifar10.csv")
    assert main(["bench", "--benchmark", str(csv), "--metric", "cifar10_test_acc_200ep",
                 "--seeds", "4", "--queries", "150", "--workers", "1", "--no-progress",
                 "--json", str(tmp_path / "b.json")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    optimum = 94.37334  # the table's best (PROVENANCE.md)
    for res in report["results"].values():
        assert res["mean"] == sorted(res["mean"]) and res["mean"][149] <= optimum
    mean = {name: res["mean"] for name, res in report["results"].items()}
    # measured, seeds 0..3: after 100 / 150 queries random search 93.68 / 93.73, evolution
    # 94.37 / 94.37 (every seed at the optimum), reinforce 94.10 / 94.20; over 12 seeds random
    # search's mean after 150 queries is 93.92 and its best seed 94.30
    assert 92.0 < mean["random"][149] < 94.0
    assert mean["evolution"][149] >= 94.3
    assert mean["evolution"][99] >= mean["random"][99] + 0.4
    assert mean["evolution"][149] >= mean["random"][149] + 0.4
    assert mean["reinforce"][149] >= mean["random"][149] + 0.2


def test_score_reports_correlations_as_json(tmp_path: Path, capsys) -> None:
    """The benchmark's "accuracy" is an increasing function of the cell's parameter count
    (params and FLOPs of an NB201 network are both affine in its numbers of 3x3 and 1x1
    convolutions, 3x3 ones weighing ~8.7x and 9x; 10x here orders every cell alike), so the
    params and flops baselines must rank the cells exactly as the benchmark does."""
    rng = np.random.default_rng(0)
    space = NB201Space()
    cells = list(dict.fromkeys(str(space.sample(rng)) for _ in range(50)))

    def acc(cell: str) -> float:
        ops = space.parse(cell).ops
        return 70 + 2 * ops.count("nor_conv_3x3") + 0.2 * ops.count("nor_conv_1x1")

    bench = tmp_path / "bench.csv"
    bench.write_text("arch_str,acc\n" + "".join(f"{c},{acc(c):.2f}\n" for c in cells))
    images = tmp_path / "imgs.npz"
    np.savez(images, x=rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 40))
    out = tmp_path / "score.json"
    assert main(["score", "--space", "nb201", "--proxies", "naswot,synflow", "--data", str(images),
                 "--archs", "6", "--benchmark", str(bench), "--metric", "acc", "--workers", "1",
                 "--batch-size", "8", "--json", str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["n_archs"] == 6 and len(report["scores"]) == 6
    assert set(report["scores"]) <= set(cells)
    assert set(report["proxies"]) == {"naswot", "synflow", "params", "flops"}
    for name in ("params", "flops"):
        assert report["proxies"][name]["spearman"] == pytest.approx(1.0)
        assert report["proxies"][name]["kendall"] == pytest.approx(1.0)
    # synflow grows with the parameterised ops too (strongly so on NB201)
    assert report["proxies"]["synflow"]["spearman"] > 0.5
    # the correlations are those of the scores written beside them
    truth = [acc(c) for c in report["scores"]]
    for name, entry in report["proxies"].items():
        ours = spearmanr([s[name] for s in report["scores"].values()], truth).statistic
        assert entry["spearman"] == pytest.approx(ours, abs=1e-9), name
        assert entry["seconds_per_arch"] >= 0
    assert "spearman" in capsys.readouterr().out
    assert main(["score", "--proxies", "nope"]) == 2
    assert "unknown proxy 'nope'" in capsys.readouterr().err


def test_score_all_with_a_benchmark_scores_exactly_its_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = tmp_path / "imgs.npz"
    np.savez(images, x=rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 20))
    space = NB201Space()
    cells = list(dict.fromkeys(str(space.sample(rng)) for _ in range(5)))
    bench = tmp_path / "subset.csv"
    bench.write_text("arch_str,acc\n" + "".join(f"{c},{90 + i}\n" for i, c in enumerate(cells)))
    out = tmp_path / "score.json"
    assert main(["score", "--proxies", "synflow", "--data", str(images), "--archs", "all",
                 "--benchmark", str(bench), "--metric", "acc", "--workers", "1",
                 "--batch-size", "8", "--json", str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["n_archs"] == len(cells) and set(report["scores"]) == set(cells)


def test_training_free_search_with_a_proxy_estimator(tmp_path: Path, capsys) -> None:
    assert main(["search", "--space", "nb201", "--strategy", "random", "--estimator",
                 "zero-cost:synflow", "--trials", "5", "--baseline-random", "1",
                 "--final-epochs", "0.2", "--run", str(tmp_path / "zc"), "--no-progress",
                 "--final-opt", "build={'channels': 4, 'cells_per_stage': 1}"]) == 0
    out = capsys.readouterr().out
    assert "trials: 5 (5 complete)" in out and "final protocol" in out


@pytest.mark.slow
def test_nas_rl_search_on_the_nasrl_space_retrains_the_best(tmp_path: Path, capsys) -> None:
    run = tmp_path / "rl"
    assert main(["search", "--strategy", "nas-rl", "--space", "nasrl-cnn", "--trials", "3",
                 "--epochs", "0.3", "--final-epochs", "0.3", "--baseline-random", "1",
                 "--estimator-opt", "train_subset=128", "--strategy-opt", "batch_size=2",
                 "--strategy-opt", "curriculum=[1,1,1]", "--run", str(run),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trials: 3 (3 complete)" in out and "random 1" in out
    from archsearch.experiment.storage import SQLiteStorage

    records = SQLiteStorage(run / "trials.db").trials()
    assert [r.arch.count("|") + 1 for r in records] == [1, 2, 3]  # the curriculum's depths
    assert all("val_acc_max_last" in r.metrics for r in records)


def test_options_read_python_literals_and_toml_booleans() -> None:
    from archsearch.cli.common import parse_options
    from archsearch.errors import UserError

    assert parse_options(["a=false", "b=TRUE", "c=False", "d=3", "e=[1, 2]", "f=text"],
                         "--method-opt") == {"a": False, "b": True, "c": False, "d": 3,
                                             "e": [1, 2], "f": "text"}
    with pytest.raises(UserError, match="--method-opt takes KEY=VALUE"):
        parse_options(["nokey"], "--method-opt")
