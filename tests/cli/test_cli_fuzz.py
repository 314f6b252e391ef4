"""Random command lines through ``archsearch.cli.main.main``: valid, invalid, extreme,
non-ASCII and empty values of every subcommand's flags. Whatever the line, the command ends
with exit 0, or exit 2 and a one-line error (argparse's usage lines may come first), never a
traceback.

Hypothesis draws a seed per example and the seed a command line (so examples are independent
draws, not small mutations of each other); derandomized, the suite runs the same 300 lines
each time. Cost is kept small by the value pools, not by luck: a forced prefix of cheap
settings (toy space and estimator, two trials, a final retraining of 0.02 epochs, one worker,
one seed, few queries) comes before the drawn flags, which override it, and the pools hold no
valid value that would train for long (no process pools, no Ray, no 'all' architectures, no
large budgets).
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.cli.main import main
from tests.cli.test_reliability import in_process

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
RNN_CELL = "sigmoid|identity~0|relu~1|tanh~0|tanh~0|sigmoid~0|sigmoid~3|identity~3|" \
    "identity~7|identity~5|sigmoid~5|sigmoid~3"
# values any flag may be given (but those a flag's "no_odd" leaves out: "" picks a default that
# trains for long, "٣" is a valid 3 that would start worker processes)
ODD = ["", " ", "é", "名前", "-1", "0", "nan", "inf", "1e309", "abc", "٣", "x" * 300, "--"]
WORKERS = {"--workers": {"٣"}}

# <NAME> stands for a path made per example (see ``paths``)
COMMANDS: dict[str, dict[str, Any]] = {
    "search": {
        "positional": [None],
        "prefix": ["--space", "toy", "--estimator", "toy", "--method", "random", "--trials", "2",
                   "--final-epochs", "0.02", "--baseline-random", "0", "--no-progress",
                   "--run", "<RUN>"],
        "flags": {
            "--method": ["random", "evolution", "reinforce", "enas", "nope"],
            "--space": ["toy", "nope", "Toy"],
            "--estimator": ["toy", "tabular", "nope", "zero-cost:nope", "shared-weights"],
            "--data": ["digits", "<MISSING>", "<BADNPZ>", "<FILE>"],
            "--benchmark": ["<TABLE>", "<MISSING>", "<BINARY>"],
            "--metric": ["acc", "nope"],
            "--trials": ["1", "3", "0", "-3", "٢", "2.5"],
            "--time": ["0", "-1", "0.5", "1e309"],
            "--seed": ["0", "-1", "1" + "0" * 30, "٣"],
            "--epochs": ["1", "0", "-2", "0.5"],
            "--final-epochs": ["0.02", "0", "-1", "1e-9"],
            "--baseline-random": ["0", "1", "-1"],
            "--device": ["cpu", "auto", "cuda", "bogus", "cuda:99"],
            "--workers": ["1", "0", "-1", "100000"],
            "--executor": ["inline", "nope"],  # not ray: it would start a Ray instance
            "--ray-address": ["127.0.0.1:1", "auto"],
            "--cpus-per-trial": ["1", "0", "-1"],
            "--gpus-per-trial": ["0", "1", "-1"],
            "--retries": ["0", "1", "-1"],
            "--method-opt": ["sample_size=50", "population_size=0", "nope=1", "=", "x",
                             "dedup=True", "dedup=maybe"],
            "--estimator-opt": ["delay=abc", "delay=0", "nope=1", "x", "target=[1, 2]",
                                "fail_on=5", "benchmark=<TABLE>"],
            "--final-opt": ["cutout=abc", "cutout=-1", "nope=1", "drop_path=2",
                            "build={'chanels': 4}", "cutout=1", "epochs=-1"],
            "--space-opt": ["n_options=0", "nope=1", "n_decisions=2", "n_options=abc"],
            "--config": ["<MISSING>", "<BADTOML>", "<FILE>"],
            "--run": ["<RUN>", "<FINISHED>", "<FILE>", "é", "x" * 300, "/dev/null"],
            "--resume": None,
        },
        "no_odd": {**WORKERS, "--estimator": {""}, "--space": {""}},
    },
    "train": {
        "positional": ["<FINISHED>", "<MISSING>", '{"space": "toy", "arch": "toy:9-9-9-9"}',
                       '{"space": "nope", "arch": "x"}', '{"arch": 1}', "{bad", "é"],
        "prefix": ["--no-progress"],
        "flags": {
            "--epochs": ["0.02", "0", "-1", "nan", "inf"],
            "--baseline-random": ["0", "1", "-1"],
            "--data": ["digits", "<MISSING>", "<BADNPZ>"],
            "--seed": ["0", "-1"],
            "--device": ["cpu", "bogus", "cuda"],
            "--final-opt": ["cutout=-1", "nope=1", "cutout=1", "build={'chanels': 4}"],
            "--json": ["<OUT>", "<NODIR>", "<DIR>"],
        },
    },
    "show": {
        "positional": [None, "<FINISHED>", "<MISSING>", "<EMPTY>", "<FILE>"],
        "prefix": [],
        "flags": {
            "--top": ["5", "0", "-3", "1" + "0" * 30],
            "--json": None,
            "--space": ["nb201", "toy", "enas-rnn", "nope"],
            "--arch": [CELL, "toy:1-1-1-1", RNN_CELL, "|bad~0|", "{bad", '{"space": "nb201"}',
                       "|nor_conv_3x3~0|+" * 2000],
        },
        "without_positional": ["--space", "--arch"],  # show an architecture
    },
    "bench": {
        "positional": [None],
        "prefix": ["--benchmark", "<TABLE>", "--metric", "acc", "--space", "toy", "--seeds", "1",
                   "--queries", "5", "--workers", "1", "--no-progress"],
        "flags": {
            "--benchmark": ["<TABLE>", "<MISSING>", "<BINARY>", "<NANTABLE>"],
            "--metric": ["acc", "nope"],
            "--space": ["toy", "nb201", "nope"],
            "--strategies": ["random", "random,evolution", ",", "nope", "random,nope"],
            "--seeds": ["1", "2", "0", "-1"],
            "--queries": ["5", "20", "0", "-1"],
            "--protocol": ["oracle", "validation", "nope", "Oracle"],
            "--valid-seeds": ["<SEEDTABLE>", "<MISSING>", "<TABLE>", "<BINARY>"],
            "--workers": ["1", "0", "-1"],
            "--json": ["<OUT>", "<NODIR>", "<DIR>"],
            "--plot": ["<OUT>.png", "<NODIR>"],
        },
        "no_odd": WORKERS,
    },
    "score": {
        "positional": [None],
        "prefix": ["--space", "toy", "--proxies", "naswot", "--archs", "2", "--workers", "1",
                   "--batch-size", "8", "--no-progress"],
        "flags": {
            "--space": ["toy", "nb201", "nope"],
            "--proxies": ["naswot", "vote", "params", "nope", ",", "naswot,nope"],
            "--data": ["digits", "<MISSING>", "<BADNPZ>"],
            "--archs": ["1", "0", "-1", "abc"],
            "--benchmark": ["<TABLE>", "<MISSING>"],
            "--metric": ["acc", "nope"],
            "--batch-size": ["4", "0", "-1"],
            "--seed": ["0", "-1"],
            "--workers": ["1", "0", "-1"],
            "--json": ["<OUT>", "<NODIR>"],
        },
        "no_odd": WORKERS,
    },
    "methods": {"positional": [None, "enas", "random", "nope", "é"], "prefix": [], "flags": {}},
    "export": {
        "positional": ["<FINISHED>", "<MISSING>", "<FILE>"],
        "prefix": [],
        "flags": {"--out": ["<DIR>/export", "<FILE>"]},
    },
}
GLOBAL = ["-v", "--version", "--help", "--nope"]  # not -vv: it shows OS errors' tracebacks


# search, the command with the most flags, drawn most often
NAMES = ["search"] * 3 + ["train", "show", "score"] * 2 + ["bench", "methods", "export", "(none)"]


def command_line(rng: random.Random) -> list[str]:
    """A command line: mostly values of the flags' own pools (so that lines get past argparse
    to the checks behind it), a quarter odd values, rarely an odd positional, a global flag,
    --help or an unknown flag."""

    def rarely() -> bool:
        return rng.random() < 0.1

    name = rng.choice(NAMES)
    head = [rng.choice(GLOBAL)] if rarely() else []
    if name == "(none)":
        return head
    spec = COMMANDS[name]
    argv = [*head, name]
    positional = rng.choice(ODD if rarely() else spec["positional"])
    if positional is not None:
        argv.append(positional)
    argv += spec["prefix"]
    flags = sorted(spec["flags"])
    drawn = [rng.choice(flags) for _ in range(rng.randint(0, 4))] if flags else []
    if positional is None:
        drawn = spec.get("without_positional", []) + drawn
    for flag in drawn:
        pool = spec["flags"][flag]
        if pool is None:
            argv.append(flag)
            continue
        odd = [v for v in ODD if v not in spec.get("no_odd", {}).get(flag, ())]
        argv += [flag, rng.choice(odd if rng.random() < 0.25 else pool)]
    if rarely():
        argv.append(rng.choice(["--help", "--nope"]))
    return argv


def paths(folder: Path, finished: Path, files: dict[str, Path]) -> dict[str, str]:
    """The <NAME> placeholders of one example, made inside its own folder."""
    run = shutil.copytree(finished, folder / "finished")
    return {"<RUN>": str(folder / "run"), "<FINISHED>": str(run), "<OUT>": str(folder / "out"),
            "<NODIR>": str(folder / "no" / "such" / "out.json"), "<DIR>": str(folder),
            **{k: str(v) for k, v in files.items()}}


def substitute(argv: list[str], names: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        text = arg
        for key, value in names.items():
            text = text.replace(key, value)
        out.append(text)
    return out


def check(argv: list[str], code: int, out: str, err: str) -> None:
    shown = f"argv: {argv!r}\nexit {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert code in (0, 2), shown
    assert "Traceback" not in err and "Traceback" not in out, shown
    if code == 0:
        return
    lines = [line for line in err.splitlines() if line.strip()]
    if not lines:  # no subcommand: the help, on stdout
        assert out.startswith("usage: archsearch"), shown
        return
    errors = [i for i, line in enumerate(lines) if ": error: " in line]
    assert len(errors) == 1, shown
    first = errors[0]
    if first > 0:  # argparse: its usage lines, then the one error line, last
        assert lines[0].startswith("usage: ") and first == len(lines) - 1, shown
        return
    assert lines[0].startswith("archsearch"), shown
    # ours: short (a long value, such as a 34,000-character architecture, is cut)
    assert all(len(line) <= 500 for line in lines), shown
    rest = lines[1:]
    if rest:  # the one message of several lines: a resume's list of differences
        assert lines[0].endswith("--resume with a different configuration; the differences:"), \
            shown
        assert all(line.startswith("  ") for line in rest[:-1]), shown
        assert rest[-1].startswith("resume without these options"), shown


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished tiny run and the odd files the pools name."""
    folder = tmp_path_factory.mktemp("fuzz-inputs")
    finished = folder / "finished"
    in_process("search", "--space", "toy", "--estimator", "toy", "--method", "random",
               "--trials", 3, "--final-epochs", 0.02, "--baseline-random", 0, "--no-progress",
               "--run", finished)
    rng = np.random.default_rng(0)
    table = folder / "table.csv"
    table.write_text("arch_str,acc\n" + "".join(
        f"toy:{'-'.join(map(str, c))},{sum(c)}\n" for c in itertools.product(range(4), repeat=4)))
    seed_table = folder / "seeds.csv"  # two training seeds per cell (bench --valid-seeds)
    seed_table.write_text("arch_str,seed_slot,val_acc_200ep\n" + "".join(
        f"toy:{'-'.join(map(str, c))},{slot},{sum(c) + slot}\n"
        for c in itertools.product(range(4), repeat=4) for slot in range(2)))
    nan_table = folder / "nan.csv"
    nan_table.write_text(table.read_text().replace(",0\n", ",nan\n", 1))
    binary = folder / "binary.csv"
    binary.write_bytes(rng.bytes(3000))
    bad_npz = folder / "bad.npz"
    np.savez(bad_npz, x=np.zeros((20, 8, 8), dtype=np.uint8), y=np.full(20, -1))
    bad_toml = folder / "bad.toml"
    bad_toml.write_text("[run\nmethod = ")
    afile = folder / "afile"
    afile.write_text("not a run")
    empty = folder / "empty.db"
    empty.write_bytes(b"")
    files = {"<TABLE>": table, "<SEEDTABLE>": seed_table, "<NANTABLE>": nan_table,
             "<BINARY>": binary, "<BADNPZ>": bad_npz, "<BADTOML>": bad_toml, "<FILE>": afile, "<EMPTY>": empty,
             "<MISSING>": folder / "missing.npz"}
    return {"finished": finished, "files": files}


@settings(max_examples=300, deadline=timedelta(seconds=20), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**64))
def test_any_command_line_exits_0_or_with_one_line(seed: int, inputs: dict[str, Any],
                                                   tmp_path: Path, capsys,
                                                   monkeypatch) -> None:
    """Each example a seed, and the command line it draws (the failure report shows both;
    ``command_line(random.Random(SEED))`` repeats one)."""
    monkeypatch.chdir(tmp_path)  # relative paths (and a default runs/ folder) land here
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    argv = substitute(command_line(random.Random(seed)),
                      paths(folder, inputs["finished"], inputs["files"]))
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    out, err = capsys.readouterr()
    check(argv, code, out, err)
    assert os.getcwd() == str(tmp_path)
