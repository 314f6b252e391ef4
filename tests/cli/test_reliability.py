"""The CLI's reliability (issue 21): each defect of the QA pass turned into a test.

Every refusal is exit code 2 with one line on stderr and no traceback; where the defect was
about state, the test also checks that nothing was left behind (no run folder, no file
written) or lost (finished trials, the run's stored configuration). Most commands run in this
process through ``main``; locks, signals, killed drivers and closed pipes need real processes,
which run this worktree's code (``PYTHONPATH`` set to its ``src``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import pickle
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.cli.main import main
from archsearch.spaces.nb201 import NB201Space

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
ENV.pop("PYTHONUNBUFFERED", None)  # stdout buffered, as for a user: a closed pipe shows late
# a toy search whose trials cost nothing and whose final retraining is a fraction of an epoch
TOY = ["--space", "toy", "--estimator", "toy", "--method", "random", "--final-epochs", "0.05",
       "--baseline-random", "0", "--no-progress"]
NB201_TINY = "build={'channels': 4, 'cells_per_stage': 1}"


# ---- helpers ------------------------------------------------------------------------------

def cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    """``archsearch ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *needles: str) -> str:
    """The single error line of ``err`` (no traceback), holding every needle."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert lines[0].startswith("archsearch ") and ": error: " in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def refused(capsys: pytest.CaptureFixture[str], argv: list[Any], *needles: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    return one_line(err, *needles)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def rows(run: Path, query: str = "SELECT number, arch, state, objective, error FROM trials "
         "ORDER BY number") -> list[tuple]:
    """Rows of a run's database, read-only (it may be in use by another process)."""
    db = sqlite3.connect(f"file:{run / 'trials.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def n_complete(run: Path) -> int:
    try:
        return rows(run, "SELECT count(*) FROM trials WHERE state = 'complete'")[0][0]
    except sqlite3.Error:  # not created yet
        return 0


def edit_db(run: Path, sql: str, *params: Any) -> None:
    db = sqlite3.connect(run / "trials.db")
    try:
        with db:
            db.execute(sql, params)
    finally:
        db.close()


def snapshot(run: Path) -> dict[str, Any]:
    """What a run holds: its meta and trial rows, and every other file's bytes (by hash)."""
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir()
             if p.is_file() and p.name != "lock" and not p.name.startswith("trials.db")}
    return {"meta": rows(run, "SELECT key, value FROM meta ORDER BY key"),
            "trials": rows(run, "SELECT * FROM trials ORDER BY number"), "files": files}


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def archsearch(*argv: Any) -> list[str]:
    return [sys.executable, "-m", "archsearch", *map(str, argv)]


def slow_search(run: Path, *extra: Any) -> list[str]:
    """A real process searching for about 20 s (100 trials of 0.2 s; the tests stop it)."""
    return archsearch("search", *TOY, "--estimator-opt", "delay=0.2", "--trials", 100,
                      "--run", run, *extra)


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def toy_csv(path: Path, extra: str = "", bad: str | None = None) -> Path:
    """A table over the toy space (256 architectures): acc = the sum of the choices; ``bad``
    replaces the first row's value; ``extra`` lines are appended."""
    lines = ["arch_str,acc"]
    for choices in itertools.product(range(4), repeat=4):
        lines.append(f"toy:{'-'.join(map(str, choices))},{sum(choices)}")
    if bad is not None:
        lines[1] = lines[1].rsplit(",", 1)[0] + "," + bad
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def tabular(table: Path, run: Path, trials: int = 5) -> list[Any]:
    return ["search", "--space", "toy", "--method", "random", "--estimator", "tabular",
            "--benchmark", table, "--metric", "acc", "--trials", trials, "--run", run,
            "--no-progress"]


def bench(table: Path, *extra: Any, space: str = "toy") -> list[Any]:
    return ["bench", "--space", space, "--benchmark", table, "--metric", "acc", "--seeds", 2,
            "--queries", 20, "--workers", 1, "--strategies", "random,evolution",
            "--no-progress", *extra]


def in_process(*argv: Any) -> None:
    """Run ``archsearch ARGV`` for a fixture (no capsys there), which must succeed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    assert code == 0, f"{out.getvalue()}\n{err.getvalue()}"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (4 toy trials, the best retrained for 0.05 epochs on digits);
    tests copy it before changing anything."""
    run = tmp_path_factory.mktemp("toy") / "run"
    in_process("search", *TOY, "--trials", 4, "--run", run)
    return run


@pytest.fixture(scope="module")
def enas_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch ENAS search over tiny NB201 cells on 80 random 8x8 images (its
    checkpoint enas.pt and one stored epoch); the space's presets that cost time (a synflow
    prior, a derive window, uniform-iso sampling) are turned off."""
    folder = tmp_path_factory.mktemp("enas")
    rng = np.random.default_rng(0)
    images = folder / "tiny.npz"
    np.savez(images, x=rng.integers(0, 256, (80, 8, 8, 3), dtype=np.uint8),
             y=rng.integers(0, 4, 80))
    run = folder / "run"
    in_process("search", "--space", "nb201", "--data", images, "--run", run, "--epochs", 1,
               "--final-epochs", 0.2, "--baseline-random", 0, "--no-progress", "--device", "cpu",
               "--strategy-opt", "controller_steps=1", "--strategy-opt", "aggregate=2",
               "--strategy-opt", "derive_samples=3", "--strategy-opt", "warmup_epochs=0",
               "--strategy-opt", "prior=none", "--strategy-opt", "derive_window=0",
               "--strategy-opt", "derive_batches=1", "--strategy-opt", "shared_sampling=controller",
               "--estimator-opt", "supernet={'channels': 4, 'cells_per_stage': 1}",
               "--estimator-opt", "batch_size=16", "--final-opt", NB201_TINY)
    assert (run / "enas.pt").is_file()
    return run


# ---- 1. one process per run folder ---------------------------------------------------------

@pytest.mark.slow
def test_two_processes_on_one_run_folder_one_runs_the_other_is_refused(tmp_path: Path,
                                                                         capsys) -> None:
    run = tmp_path / "run"
    procs = [subprocess.Popen(slow_search(run), env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        wait_for(lambda: any(p.poll() is not None for p in procs), 90, "one of two to stop")
        loser = next(p for p in procs if p.poll() is not None)
        winner = next(p for p in procs if p is not loser)
        assert winner.poll() is None, "both stopped: " + winner.communicate()[1]
        _, err = loser.communicate()
        assert loser.returncode == 2, err
        line = one_line(err)
        # the later of the two met the lock (naming its holder) or, if it looked after the
        # first had written the run, the run itself
        assert f"is in use by process {winner.pid} " in line or "already holds a run" in line
        # while the first runs, a resume and a retraining of the folder are refused alike
        wait_for(lambda: n_complete(run) >= 1, 60, "a first trial")
        for argv in (["search", "--run", run, "--resume", "--no-progress"],
                     ["train", run, "--no-progress"]):
            refused(capsys, argv, f"run folder {str(run)!r} is in use by process {winner.pid} ")
        assert winner.poll() is None
        numbers = [r[0] for r in rows(run)]
        assert numbers == list(range(len(numbers)))  # one search's trials, none twice
    finally:
        stop(*procs)


def test_a_run_made_while_another_checked_its_options_is_not_overwritten(tmp_path: Path,
                                                                         capsys,
                                                                         monkeypatch) -> None:
    """Two searches of one new folder: the second checks its options while the first runs to
    its end and lets the lock go; the second must not then take the folder over."""
    from archsearch.run import build

    run, real = tmp_path / "run", build.check_buildable

    def the_other_search_meanwhile(resolved: dict[str, Any]) -> None:
        real(resolved)
        monkeypatch.setattr(build, "check_buildable", real)
        assert main(["search", *TOY, "--trials", "2", "--run", str(run)]) == 0

    monkeypatch.setattr(build, "check_buildable", the_other_search_meanwhile)
    refused(capsys, ["search", *TOY, "--trials", 3, "--seed", 1, "--run", run],
            "already holds a run")
    assert [r[2] for r in rows(run)] == ["complete", "complete"]
    config = json.loads(rows(run, "SELECT value FROM meta WHERE key = 'config'")[0][0])
    assert config["run"]["seed"] == 0  # the first search's configuration, kept


# ---- 2. a run folder without its configuration ---------------------------------------------

def test_a_run_without_its_stored_configuration_is_refused(toy_run: Path, tmp_path: Path,
                                                           capsys) -> None:
    deleted = copy_run(toy_run, tmp_path / "deleted")
    edit_db(deleted, "DELETE FROM meta WHERE key = 'config'")
    before = rows(deleted)
    refused(capsys, ["search", "--run", deleted, "--resume", "--no-progress"],
            "holds no run configuration")
    assert rows(deleted) == before  # no trial lost, none added
    emptied = copy_run(toy_run, tmp_path / "emptied")
    (emptied / "trials.db").write_bytes(b"")
    refused(capsys, ["search", "--run", emptied, "--resume", "--no-progress"],
            "holds no run configuration")
    # show reads: an empty file, named directly or through its folder, stays empty
    for name in ("show-folder", "show-file"):
        folder = copy_run(toy_run, tmp_path / name)
        (folder / "trials.db").write_bytes(b"")
        files = sorted(p.name for p in folder.iterdir())
        target = folder if name == "show-folder" else folder / "trials.db"
        refused(capsys, ["show", target], "not an archsearch run database")
        assert (folder / "trials.db").read_bytes() == b""
        assert sorted(p.name for p in folder.iterdir()) == files  # no -wal or -shm either


# ---- 3. bad options: refused before the run folder exists, then the fix runs there --------

@pytest.mark.parametrize("bad, good, message", [
    pytest.param(["--seed", "-1"], ["--seed", "1"], "seed must be at least 0", id="seed"),
    pytest.param(["--method", "evolution", "--method-opt", "sample_size=50"],
                 ["--method", "evolution", "--method-opt", "sample_size=5"],
                 "sample_size <= population_size", id="sample-size-over-population"),
    pytest.param(["--method-opt", "nope=1"], ["--method-opt", "dedup=True"],
                 "unknown option 'nope'", id="method-opt-unknown"),
    pytest.param(["--final-opt", "nope=1"], ["--final-opt", "cutout=1"],
                 "unknown option 'nope'", id="final-opt-unknown"),
    pytest.param(["--final-opt", "cutout=abc"], ["--final-opt", "cutout=2"],
                 "cutout must be int, not 'abc'", id="final-opt-type"),
    pytest.param(["--final-opt", "drop_path=1.5"], ["--final-opt", "drop_path=0.1"],
                 "drop_path in [0, 1)", id="final-opt-range"),
])
def test_bad_options_are_refused_before_the_run_folder_exists(bad, good, message,
                                                              tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    command = ["search", *TOY, "--trials", 2, "--run", run]
    refused(capsys, [*command, *bad], message)
    assert not run.exists()
    code, out, err = cli(capsys, *command, *good)
    assert code == 0, err
    assert "trials: 2 (2 complete)" in out and "final protocol" in out


def test_empty_ptb_files_are_refused_before_the_run_folder_exists(tmp_path: Path,
                                                                  capsys) -> None:
    corpus, run = tmp_path / "ptb", tmp_path / "run"
    corpus.mkdir()
    for split in ("train", "valid", "test"):
        (corpus / f"ptb.{split}.txt").write_text("")
    tiny = ["--estimator-opt", "hidden=8", "--estimator-opt", "batch_size=2",
            "--estimator-opt", "bptt=4", "--final-opt", "hidden=8", "--final-opt",
            "batch_size=2", "--final-opt", "bptt=4"]
    command = ["search", "--space", "enas-rnn", "--data", corpus, "--method", "random",
               "--estimator", "lm-training", "--trials", 1, "--epochs", 1, "--final-epochs", 1,
               "--baseline-random", 0, "--run", run, "--no-progress", *tiny]
    refused(capsys, command, "ptb.train.txt holds no words")
    assert not run.exists()
    for split in ("train", "valid", "test"):
        (corpus / f"ptb.{split}.txt").write_text("the cat sat on the mat\na dog ran\n"
                                                  "<unk> the dog sat\n")
    code, out, err = cli(capsys, *command)
    assert code == 0, err
    assert "trials: 1 (1 complete)" in out


# ---- 4. train RUN --final-opt: corrected final options -------------------------------------

def test_train_takes_corrected_final_options(toy_run: Path, tmp_path: Path, capsys) -> None:
    run = copy_run(toy_run, tmp_path / "run")
    before = snapshot(run)
    refused(capsys, ["train", run, "--final-opt", "cutout=-1", "--no-progress"], "cutout")
    refused(capsys, ["train", run, "--final-opt", "nope=1", "--no-progress"],
            "unknown option 'nope'")
    refused(capsys, ["train", run, "--final-opt", "cutout=abc", "--no-progress"],
            "cutout must be int")
    assert snapshot(run) == before  # the refused commands changed nothing in the run
    out_json = tmp_path / "train.json"
    code, out, err = cli(capsys, "train", run, "--final-opt", "cutout=2", "--no-progress",
                         "--json", out_json)
    assert code == 0, err
    assert "final protocol (retrained from scratch for 0.05 epochs)" in out
    report = json.loads(out_json.read_text())
    assert report["protocol"]["cutout"] == 2 and report["protocol"]["epochs"] == 0.05
    assert report["best"]["arch"] == json.loads(rows(run, "SELECT value FROM meta WHERE key "
                                                     "= 'best_arch'")[0][0])
    stored = json.loads(rows(run, "SELECT value FROM meta WHERE key = 'final'")[0][0])
    assert stored["key"]["final"]["cutout"] == 2  # the run keeps the corrected protocol's rows


# ---- 5. divergence, and impossible values ---------------------------------------------------

@pytest.mark.slow
def test_a_diverged_training_fails_its_trial(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    code, out, err = cli(capsys, "search", "--space", "nb201", "--method", "random",
                         "--trials", 2, "--epochs", 1, "--retries", 0, "--estimator-opt",
                         "lr=1e9", "--estimator-opt", NB201_TINY, "--estimator-opt",
                         "train_subset=64", "--estimator-opt", "batch_size=16",
                         "--final-epochs", 0.05, "--baseline-random", 0, "--run", run,
                         "--no-progress")
    assert "Traceback" not in err
    assert code == 1 and "trials: 2 (2 failed)" in out and "no architecture found" in out
    trials = rows(run)
    assert [t[2] for t in trials] == ["failed", "failed"]
    assert all(t[3] is None and "training diverged: the loss is nan" in t[4] for t in trials)


@pytest.mark.parametrize("argv, message", [
    pytest.param(["search", *TOY, "--epochs", "0"], "epochs must be positive, not 0",
                 id="epochs-0"),
    pytest.param(["search", *TOY, "--epochs", "-2"], ("epochs must be", "not -2"),
                 id="epochs-negative"),
    pytest.param(["search", *TOY, "--final-epochs", "-1"], ("final_epochs must be", "not -1"),
                 id="final-epochs-negative"),
    pytest.param(["search", *TOY, "--baseline-random", "-1"], "baseline_random must be at least 0",
                 id="baseline-random-negative"),
    pytest.param(["search", *TOY, "--time", "0"], "time must be positive", id="time-0"),
    pytest.param(["search", "--space", "nb201", "--method", "random", "--estimator-opt",
                  "batch_size=-4", "--no-progress"], "batch_size must be at least 1, not -4",
                 id="batch-size-negative"),
    pytest.param(["train", "RUN", "--epochs", "-1", "--no-progress"],
                 "--epochs must be positive, not -1", id="train-epochs-negative"),
    pytest.param(["score", "--archs", "0", "--no-progress"], "--archs must be at least 1",
                 id="score-archs-0"),
    pytest.param(["show", "RUN", "--top", "-3"], "--top must be at least 0, not -3",
                 id="show-top-negative"),
])
def test_impossible_values_are_refused(argv, message, toy_run: Path, tmp_path: Path,
                                       capsys) -> None:
    run = copy_run(toy_run, tmp_path / "existing")
    before = snapshot(run)
    argv = [run if a == "RUN" else a for a in argv]
    new = tmp_path / "new"
    if argv[0] == "search":
        argv += ["--run", new]
    refused(capsys, argv, *([message] if isinstance(message, str) else message))
    assert not new.exists() and snapshot(run) == before


# ---- 6. non-finite values ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_table_values_are_refused(value: str, tmp_path: Path, capsys) -> None:
    table = toy_csv(tmp_path / "table.csv", bad=value)
    run = tmp_path / "run"
    refused(capsys, tabular(table, run), "line 2: acc is", "not a finite number")
    assert not run.exists()
    refused(capsys, bench(table), "line 2: acc is", "not a finite number")


def test_show_json_is_strict_json_when_metrics_are_not_finite(toy_run: Path, tmp_path: Path,
                                                              capsys) -> None:
    run = copy_run(toy_run, tmp_path / "run")
    # a trial whose metrics hold NaN and infinities, and an epoch record with a NaN (as the
    # recurrent search writes shared_acc), stored as Python's json writes them
    edit_db(run, "UPDATE trials SET metrics = ? WHERE number = 0",
            json.dumps({"score": float("nan"), "high": float("inf"), "low": float("-inf")}))
    edit_db(run, "INSERT OR REPLACE INTO meta (key, value) VALUES ('epochs', ?)",
            json.dumps([{"epoch": 1, "shared_acc": float("nan"), "derived": "toy:0-0-0-0",
                         "seconds": 1.0}]))

    def not_json(constant: str) -> None:
        raise ValueError(f"show --json wrote {constant}, which is not JSON")

    code, out, err = cli(capsys, "show", run, "--json")
    assert code == 0, err
    shown = json.loads(out, parse_constant=not_json)
    assert shown["trials"][0]["metrics"] == {"score": None, "high": None, "low": None}
    assert shown["epochs"][0]["shared_acc"] is None
    code, out, err = cli(capsys, "show", run)  # and the table prints them
    assert code == 0 and "Traceback" not in err


# ---- 7. conflicting, foreign and replaced tables -------------------------------------------

def test_conflicting_duplicate_rows_are_refused(tmp_path: Path, capsys) -> None:
    table = toy_csv(tmp_path / "table.csv", extra="toy:0-0-0-0,7\n")
    run = tmp_path / "run"
    refused(capsys, tabular(table, run), "'toy:0-0-0-0' is listed twice with different acc",
            "lines 2 and 258")
    assert not run.exists()
    refused(capsys, bench(table), "listed twice")
    same = toy_csv(tmp_path / "same.csv", extra="toy:0-0-0-0,0\n")  # a repeat that agrees
    assert cli(capsys, *tabular(same, run))[0] == 0


def test_a_table_of_another_space_is_refused(tmp_path: Path, capsys) -> None:
    space, rng = NB201Space(), np.random.default_rng(0)
    cells = {str(space.sample(rng)) for _ in range(30)}
    table = tmp_path / "nb201.csv"
    table.write_text("arch_str,acc\n" + "".join(f"{c},{90 + i}\n" for i, c in enumerate(cells)))
    run = tmp_path / "run"
    refused(capsys, ["search", "--space", "enas-micro", "--method", "random", "--estimator",
                     "tabular", "--benchmark", table, "--metric", "acc", "--run", run,
                     "--no-progress"],
            "is not an architecture of space 'enas-micro'", "is this the right --space?")
    assert not run.exists()
    refused(capsys, bench(table, space="enas-micro"),
            "is not an architecture of space 'enas-micro'")


def test_a_table_replaced_before_resume_is_refused(tmp_path: Path, capsys) -> None:
    table, run = toy_csv(tmp_path / "table.csv"), tmp_path / "run"
    original = table.read_bytes()
    assert cli(capsys, *tabular(table, run))[0] == 0
    before = rows(run)
    table.write_text(original.decode().replace(",12\n", ",11\n"))  # the same path, other values
    resume = ["search", "--run", run, "--resume", "--trials", 8, "--no-progress"]
    refused(capsys, resume, f"the benchmark table {str(table)!r} changed since this run started")
    assert rows(run) == before
    table.write_bytes(original)  # restored: the resume goes on
    code, _, err = cli(capsys, *resume)
    assert code == 0, err
    after = rows(run)
    assert after[:5] == before and len(after) == 8


# ---- 8. a crafted pickle -------------------------------------------------------------------

class _CreatesFile:
    """Pickled, it reads "call open(path, 'w')": a plain ``pickle.load`` creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (str(self.path), "w"))


def test_a_crafted_cifar_pickle_runs_no_code(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "marker"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = pickle.dumps({b"data": _CreatesFile(marker), b"labels": [0]})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(batch)
    run = tmp_path / "run"
    refused(capsys, ["search", *TOY, "--data", folder, "--run", run],
            "data_batch_1 is not a CIFAR-10 batch", "a CIFAR-10 batch holds no io.open")
    assert not marker.exists() and not run.exists()
    readme = " ".join((REPO / "README.md").read_text().split())
    data = readme[readme.index("Data: `--data digits`"):]
    assert "Pickle data must come from a trusted source" in data[:600]


# ---- 9. data validation --------------------------------------------------------------------

def _npz(**arrays: Any) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        np.savez(folder / "data.npz", **arrays)
        return folder / "data.npz"
    return make


def _bytes_file(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(np.random.default_rng(0).bytes(4000))
        return folder / name
    return make


def _cifar(content: Callable[[np.random.Generator], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        rng, batches = np.random.default_rng(0), folder / "cifar-10-batches-py"
        batches.mkdir()
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (batches / name).write_bytes(content(rng))
        return batches
    return make


def _ptb(content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        corpus = folder / "ptb"
        corpus.mkdir()
        for split in ("train", "valid", "test"):
            (corpus / f"ptb.{split}.txt").write_bytes(content)
        return corpus
    return make


IMAGES = np.zeros((20, 8, 8, 3), dtype=np.uint8)
LABELS = np.arange(20) % 4


@pytest.mark.parametrize("make, flags, message", [
    pytest.param(_npz(x=IMAGES[:0], y=LABELS[:0]), TOY, "holds no images", id="npz-no-images"),
    pytest.param(_npz(x=IMAGES, y=np.array(["cat"] * 20)), TOY, "labels must be integers",
                 id="npz-string-labels"),
    pytest.param(_npz(x=IMAGES[..., 0], y=LABELS), TOY, "x must be uint8 (N, H, W, 3)",
                 id="npz-no-channel-axis"),
    pytest.param(_npz(x=IMAGES[..., :1], y=LABELS), TOY, "got x uint8 (20, 8, 8, 1)",
                 id="npz-one-channel"),
    pytest.param(_npz(x=np.array([None] * 20, dtype=object), y=LABELS), TOY,
                 "Object arrays cannot be loaded", id="npz-object-array"),
    pytest.param(_bytes_file("data.npz"), TOY, "is not a readable .npz", id="npz-corrupt"),
    pytest.param(_npz(x=IMAGES, y=np.full(20, -1)), TOY, "labels range over -1..-1",
                 id="labels-minus-one"),
    pytest.param(_npz(x=IMAGES, y=np.full(20, 1_000_000)), TOY,
                 "labels range over 1000000..1000000", id="labels-a-million"),
    pytest.param(_cifar(lambda rng: rng.bytes(3000)), TOY, "is not a CIFAR-10 batch",
                 id="cifar-garbage"),
    pytest.param(_cifar(lambda rng: pickle.dumps({b"data": b"xx", b"labels": [1]})), TOY,
                 "is not a CIFAR-10 batch", id="cifar-wrong-content"),
    pytest.param(_ptb(b""), ["--space", "enas-rnn", "--no-progress"], "holds no words",
                 id="ptb-empty"),
    pytest.param(_ptb(np.random.default_rng(0).bytes(3000)),
                 ["--space", "enas-rnn", "--no-progress"], "is not a text file",
                 id="ptb-binary"),
])
def test_bad_data_is_refused_in_one_line(make, flags, message, tmp_path: Path,
                                         capsys) -> None:
    data, run = make(tmp_path), tmp_path / "run"
    refused(capsys, ["search", *flags, "--data", data, "--run", run], message)
    assert not run.exists()


def test_a_binary_csv_benchmark_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    table, run = _bytes_file("table.csv")(tmp_path), tmp_path / "run"
    refused(capsys, tabular(table, run), "is not a readable CSV table")
    assert not run.exists()
    refused(capsys, bench(table), "is not a readable CSV table")


# ---- 10. SIGTERM, and a killed driver ------------------------------------------------------

@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(slow_search(run), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: n_complete(run) >= 2 or proc.poll() is not None, 90, "two trials")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: finished work is saved" in err
    assert f"archsearch search --run {run} --resume" in err
    kept = [r for r in rows(run) if r[2] == "complete"]
    assert len(kept) >= 2
    total = len(kept) + 2
    code, _, err = cli(capsys, "search", "--run", run, "--resume", "--trials", total,
                         "--no-progress")
    assert code == 0, err
    after = rows(run)
    assert [r[0] for r in after] == list(range(total))
    assert all(r[2] == "complete" for r in after)
    assert [r for r in after if r[0] in {k[0] for k in kept}] == kept  # kept, not re-run


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="workers die with their driver on Linux (PR_SET_PDEATHSIG)")
def test_killing_the_driver_leaves_no_worker_alive(tmp_path: Path) -> None:
    pid_dir, run = tmp_path / "pids", tmp_path / "run"
    pid_dir.mkdir()
    # each trial sleeps 30 s: a worker outliving its driver would still be there
    proc = subprocess.Popen(archsearch("search", *TOY, "--estimator-opt", "delay=30",
                                       "--estimator-opt", f"pid_dir={pid_dir}", "--trials", 10,
                                       "--workers", 2, "--run", run),
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        wait_for(lambda: len(list(pid_dir.iterdir())) >= 2 or proc.poll() is not None, 120,
                 "two workers to start trials")
        workers = [int(p.name) for p in pid_dir.iterdir()]
        assert proc.poll() is None and len(workers) == 2 and proc.pid not in workers
        assert all(alive(pid) for pid in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not any(alive(pid) for pid in workers), 10,
                 f"workers {workers} to die with their driver")
    finally:
        stop(proc)
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---- 11. damaged or older run files --------------------------------------------------------

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("damage, message", [
    pytest.param(lambda run: _truncate(run / "trials.db"), "database disk image is malformed",
                 id="truncated"),
    pytest.param(lambda run: (run / "trials.db").write_bytes(
        np.random.default_rng(0).bytes(20480)), "file is not a database", id="garbled"),
    pytest.param(lambda run: edit_db(run, "UPDATE meta SET value = '{\"run\": ' WHERE key = "
                                     "'config'"), "its stored 'config' is damaged",
                 id="bad-json-config"),
    pytest.param(lambda run: edit_db(run, "UPDATE meta SET value = '[1, 2' WHERE key = "
                                     "'final'"), "its stored 'final' is damaged",
                 id="bad-json-final"),
])
def test_damaged_run_files_give_one_line(damage, message, toy_run: Path, tmp_path: Path,
                                         capsys) -> None:
    run = copy_run(toy_run, tmp_path / "run")
    damage(run)
    refused(capsys, ["search", "--run", run, "--resume", "--no-progress"], message)
    refused(capsys, ["show", run], message)


def test_a_stored_configuration_without_an_option_gets_its_default(toy_run: Path,
                                                                   tmp_path: Path, capsys,
                                                                   caplog) -> None:
    """A run written before an option existed: resume fills the option's default, warning."""
    run = copy_run(toy_run, tmp_path / "run")
    config = json.loads(rows(run, "SELECT value FROM meta WHERE key = 'config'")[0][0])
    del config["estimator"]["delay"]
    edit_db(run, "UPDATE meta SET value = ? WHERE key = 'config'", json.dumps(config))
    before = rows(run)
    with caplog.at_level(logging.WARNING):
        code, _, err = cli(capsys, "search", "--run", run, "--resume", "--trials", 6,
                             "--no-progress")
    assert code == 0, err
    assert "lacks options this version has" in caplog.text
    assert "estimator.delay: run has '(unset)', now 0.0" in caplog.text
    after = rows(run)
    assert after[:4] == before and len(after) == 6


@pytest.mark.slow
def test_a_truncated_enas_checkpoint_gives_one_line(enas_run: Path, tmp_path: Path,
                                                    capsys) -> None:
    run = copy_run(enas_run, tmp_path / "run")
    _truncate(run / "enas.pt")
    refused(capsys, ["search", "--run", run, "--resume", "--no-progress"],
            "enas.pt: the search checkpoint is damaged", "delete it to restart")


# ---- 12. OS errors -------------------------------------------------------------------------

def test_run_paths_that_cannot_be_run_folders(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for path in (afile, Path("/dev/null")):
        refused(capsys, ["search", *TOY, "--run", path], "is a file, not a folder")
    assert afile.read_text() == "keep me"
    long = tmp_path / ("é" * 130)  # 130 characters, 260 bytes
    refused(capsys, ["search", *TOY, "--run", long],
            "run folder name is 260 bytes long; the file system allows 255")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_read_only_parent_folder(tmp_path: Path, capsys) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("this user (root?) may write into a read-only folder")
        refused(capsys, ["search", *TOY, "--run", parent / "run"], "cannot use run folder",
                "Permission denied")
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o700)


def test_unwritable_outputs_fail_before_any_work(toy_run: Path, tmp_path: Path, capsys,
                                                 monkeypatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr("archsearch.run.build.final_rows", forbidden)
    monkeypatch.setattr("archsearch.cli.score.score_architectures", forbidden)
    monkeypatch.setattr("archsearch.cli.bench.run_benchmark", forbidden)
    run = copy_run(toy_run, tmp_path / "run")
    table = toy_csv(tmp_path / "table.csv")
    missing = tmp_path / "no" / "such" / "out.json"
    gone = f"folder {str(missing.parent)!r} does not exist"
    # --epochs 0.1 is not the run's protocol (0.05): the retraining would really run
    refused(capsys, ["train", run, "--epochs", 0.1, "--no-progress", "--json", missing], gone)
    refused(capsys, ["train", run, "--epochs", 0.1, "--no-progress", "--json", tmp_path],
            "is a folder; give a file name")
    refused(capsys, ["score", "--space", "toy", "--proxies", "naswot", "--archs", 2,
                     "--no-progress", "--json", missing], gone)
    refused(capsys, bench(table, "--json", missing), gone)
    refused(capsys, bench(table, "--plot", tmp_path / "no" / "plot.png"), "does not exist")


# ---- 13. devices ---------------------------------------------------------------------------

@pytest.mark.parametrize("device, message", [
    pytest.param("cuda", "device 'cuda': this machine has no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
    pytest.param("bogus", "unknown device 'bogus'; valid: auto, cpu, cuda, cuda:N"),
])
def test_an_unusable_device_is_refused(device: str, message: str, tmp_path: Path,
                                       capsys) -> None:
    run = tmp_path / "run"
    refused(capsys, ["search", *TOY, "--device", device, "--run", run], message)
    assert not run.exists()


# ---- 14. score --proxies vote --------------------------------------------------------------

def test_score_reports_the_vote(tmp_path: Path, capsys) -> None:
    table = toy_csv(tmp_path / "table.csv")
    out_json = tmp_path / "score.json"
    code, out, err = cli(capsys, "score", "--space", "toy", "--proxies", "vote", "--archs", 4,
                         "--benchmark", table, "--metric", "acc", "--workers", 1,
                         "--batch-size", 8, "--no-progress", "--json", out_json)
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines()[3:] if line.strip()]
    assert names[0] == "vote" and {"synflow", "jacob_cov", "snip"} <= set(names)
    report = json.loads(out_json.read_text())
    assert -1 <= report["proxies"]["vote"]["spearman"] <= 1
    scores = report["scores"]
    assert len(scores) == 4 and all(1 <= s["vote"] <= 4 for s in scores.values())  # mean ranks


# ---- 15. an estimator option of the wrong type ---------------------------------------------

def test_an_estimator_option_of_the_wrong_type_is_refused_before_any_trial(tmp_path: Path,
                                                                           capsys) -> None:
    run = tmp_path / "run"
    refused(capsys, ["search", *TOY, "--estimator-opt", "delay=abc", "--run", run],
            "estimator toy: delay must be float, not 'abc'")
    assert not run.exists()


# ---- 16. bench shows the last query count --------------------------------------------------

def test_bench_shows_a_column_for_the_last_query(tmp_path: Path, capsys) -> None:
    code, out, err = cli(capsys, *bench(toy_csv(tmp_path / "table.csv")))
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("strategy"))
    assert header.split() == ["strategy", "Q=10", "Q=20"]


# ---- 17. a closed output pipe --------------------------------------------------------------

@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(toy_run: Path, tmp_path: Path) -> None:
    big = copy_run(toy_run, tmp_path / "big")  # 3,000 more trials: ~200 kB of table
    db = sqlite3.connect(big / "trials.db")
    with db:
        db.executemany("INSERT INTO trials (number, arch, state, objective, metrics) "
                       "VALUES (?, ?, 'complete', 1.0, '{\"score\": 1.0}')",
                       [(n, "toy:1-2-3-0") for n in range(4, 3004)])
    db.close()
    table = toy_csv(tmp_path / "table.csv")
    bench_command = shlex.join(archsearch(*bench(table)))
    pipelines = [  # head -1 leaves while the writer writes; true reads nothing at all
        f"{shlex.join(archsearch('show', big))} | head -1",
        f"{bench_command} | head -1",
        f"{shlex.join(archsearch('show', toy_run, '--json'))} | true",
        f"{bench_command} | true",
    ]
    for pipeline in pipelines:
        done = subprocess.run(f"{pipeline}; echo \"exit ${{PIPESTATUS[0]}}\" >&2", shell=True,
                              executable="/bin/bash", env=ENV, capture_output=True, text=True,
                              timeout=120)
        assert "BrokenPipe" not in done.stderr and "Traceback" not in done.stderr, pipeline
        assert done.stderr.strip().splitlines()[-1] == "exit 0", (pipeline, done.stderr)
        if "head" in pipeline:
            assert done.stdout.count("\n") == 1


# ---- 18. a huge architecture string, too many workers, a lost ENAS checkpoint -------------

def test_a_huge_architecture_string_gives_a_short_error(capsys) -> None:
    arch = ("|nor_conv_3x3~0|+" * 6000)[:100_000]
    code, _, err = cli(capsys, "show", "--space", "nb201", "--arch", arch)
    assert code == 2
    one_line(err, "characters)")
    assert len(err) < 2000


def test_too_many_workers_are_refused(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    refused(capsys, ["search", *TOY, "--trials", 2, "--workers", 100_000, "--run", run],
            "--workers 100000 is more than")
    assert not run.exists()


@pytest.mark.slow
def test_a_lost_enas_checkpoint_warns_that_the_search_restarts(enas_run: Path,
                                                               tmp_path: Path,
                                                               capsys) -> None:
    run = copy_run(enas_run, tmp_path / "run")
    (run / "enas.pt").unlink()
    code, out, err = cli(capsys, "search", "--run", run, "--resume", "--no-progress")
    assert code == 0, err
    assert f"warning: {run / 'enas.pt'} is missing: the search restarts from epoch 0" in out
    assert (run / "enas.pt").is_file()


# ---- found while writing these tests -------------------------------------------------------

@pytest.mark.parametrize("option", [
    pytest.param(["--method", "evolution", "--method-opt", "population_size=0"],
                 id="evolution-population-0"),  # the strategy raises ValueError
    pytest.param(["--space-opt", "n_options=0"], id="space-no-options"),  # the space: ValueError
    pytest.param(["--estimator-opt", "fail_on=5"], id="estimator-wrong-type"),  # TypeError
])
def test_options_a_component_refuses_are_one_line(option: list[str], tmp_path: Path,
                                                  capsys) -> None:
    run = tmp_path / "run"
    refused(capsys, ["search", *TOY, "--trials", 2, "--run", run, *option],
            "the run's options are refused")
    assert not run.exists()


RNN_CELL = ("sigmoid|identity~0|relu~1|tanh~0|tanh~0|sigmoid~0|sigmoid~3|identity~3|identity~7|"
            "identity~5|sigmoid~5|sigmoid~3")


def test_show_arch_of_a_recurrent_and_a_toy_cell(capsys) -> None:
    code, out, err = cli(capsys, "show", "--space", "enas-rnn", "--arch", RNN_CELL, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["params_m"] > 0 and info["flops_m"] is None and info["input"] is None
    code, out, err = cli(capsys, "show", "--space", "enas-rnn", "--arch", RNN_CELL)
    assert code == 0 and "FLOPs:" not in out, err
    code, out, err = cli(capsys, "show", "--space", "toy", "--arch", "toy:1-1-1-1", "--json")
    assert code == 0, err
    assert json.loads(out)["flops_m"] > 0


def test_score_refuses_a_negative_seed(capsys) -> None:
    refused(capsys, ["score", "--space", "toy", "--archs", 2, "--seed", -1, "--no-progress"],
            "--seed must be at least 0, not -1")
