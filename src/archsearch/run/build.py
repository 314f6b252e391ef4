"""From a resolved configuration to the objects that search: the method composition.

What the CLI used to hold (which estimator a method trains, how ENAS's controller is made,
SPOS's two phases, evolution's proxy warm start, Hyperband's rung continuation) lives here,
driven by a :class:`~archsearch.run.run.Run`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsearch import methods
from archsearch.errors import UserError
from archsearch.experiment.experiment import Experiment, best_trial
from archsearch.experiment.trial import build_estimator, build_space
from archsearch.registry import ESTIMATORS, STRATEGIES, Spec
from archsearch.types import TrialRecord, TrialState

if TYPE_CHECKING:
    from archsearch.run.run import Progress, Run

log = logging.getLogger(__name__)
RUN_FOLDER = "{run}"  # an option's text standing for the run folder (e.g. "{run}/rungs")


def method_of(resolved: dict[str, Any]) -> methods.Method:
    return methods.get(resolved["run"]["method"])


def spec(section: dict[str, Any], folder: Path | None = None) -> Spec:
    """A section as a component Spec, ``{run}`` in its text options made the run folder."""
    options = {k: v for k, v in section.items() if k != "name"}
    if folder is not None:
        options = {k: v.replace(RUN_FOLDER, str(folder)) if isinstance(v, str) else v
                   for k, v in options.items()}
    return Spec(section["name"], options)


def space_spec(resolved: dict[str, Any]) -> Spec:
    return spec(resolved["space"])


def check_buildable(resolved: dict[str, Any]) -> None:
    """Build what reads data, tables or proxies (and throw it away), so that a bad path or
    file fails before a run folder exists. One-shot supernets are built by the search."""
    try:
        _build_once(resolved)
    except UserError:
        raise
    except (TypeError, ValueError) as exc:  # a component refusing its options (evolution's
        # sample_size above its population_size): the user's to fix, said in one line
        raise UserError(f"the run's options are refused: {exc}") from None


def _build_once(resolved: dict[str, Any]) -> None:
    space = build_space(space_spec(resolved))
    estimator = resolved["estimator"]
    if method_of(resolved).kind == "trials":
        build_estimator(space_spec(resolved), spec(estimator))
    elif method_of(resolved).kind == "loop":
        from archsearch.data import load_image_data

        if estimator["name"] == "shared-weights":
            load_image_data(estimator["data"])
        else:
            from archsearch.data.text import load_corpus

            load_corpus(estimator["data"])
    final = resolved["final"]  # the final protocol's options are checked now, not after
    build_estimator(space_spec(resolved), spec(final))
    method = method_of(resolved)
    if method.kind == "trials":
        options = strategy_options(resolved)
        STRATEGIES.create(method.name, space=space, seed=resolved["run"]["seed"], **options)
    proxy = resolved["method"].get("prior") or resolved["method"].get("warm_start_proxy")
    if proxy is not None:
        from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator

        ZeroCostEstimator(space, proxy=proxy, data=resolved["run"]["data"])


def record_inputs(resolved: dict[str, Any], storage: Any) -> None:
    """Fingerprints of input files a resumed run must find unchanged (benchmark tables)."""
    checksums = {}
    for section in ("estimator", "final"):
        if resolved[section]["name"] == "tabular":
            from archsearch.estimators.tabular import table_checksum

            checksums[resolved[section]["benchmark"]] = table_checksum(
                resolved[section]["benchmark"])
    if checksums:
        storage.set_meta("checksums", checksums)


def check_inputs(resolved: dict[str, Any], storage: Any) -> None:
    from archsearch.estimators.tabular import table_checksum

    for path, checksum in (storage.get_meta("checksums") or {}).items():
        if not Path(path).is_file():
            raise UserError(f"the run's benchmark table {path!r} is gone: restore it to resume")
        if table_checksum(path) != checksum:
            raise UserError(f"the benchmark table {path!r} changed since this run started (its "
                            "SHA-256 differs): restore the original to resume, or start a new "
                            "--run with the new table")


# ---- trials methods -----------------------------------------------------------------------

def strategy_options(resolved: dict[str, Any]) -> dict[str, Any]:
    method = method_of(resolved)
    extras = {n for n, *_ in method.extras.field_specs()} if method.extras else set()
    return {k: v for k, v in resolved["method"].items() if k not in extras}


def search_trials(run: Run, progress: Progress | None, executor: Any) -> str | None:
    resolved, storage = run.resolved, run.storage
    space = build_space(space_spec(resolved))
    options = strategy_options(resolved)
    proxy = resolved["method"].get("warm_start_proxy")
    if proxy is not None:  # evolution warm-started by a training-free proxy
        options["warm_start"] = storage.get_meta("warm_start") or _warm_start(
            space, resolved, proxy, progress)
        storage.set_meta("warm_start", options["warm_start"])
    strategy = STRATEGIES.create(resolved["run"]["method"], space=space,
                                 seed=resolved["run"]["seed"], **options)
    experiment = Experiment(space_spec(resolved), spec(resolved["estimator"], run.folder),
                            strategy, storage, executor,
                            max_retries=resolved["run"]["retries"])
    n_trials, limit = resolved["run"]["trials"], resolved["run"]["time"]
    if n_trials is None and limit is None:
        n_trials = 40
    records = _run_experiment(experiment, n_trials, limit, progress)
    best = best_trial(records)
    return None if best is None else best.arch


def _warm_start(space: Any, resolved: dict[str, Any], proxy: str,
                progress: Progress | None) -> list[str]:
    from archsearch.estimators.zero_cost import warm_start
    from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator

    run, options = resolved["run"], resolved["method"]
    keep = int(options.get("population_size", 20))
    if progress is not None:
        progress("note", {"text": f"warm start: the best {keep} of "
                                  f"{options['warm_start_pool']} random architectures by {proxy}"})
    estimator = ZeroCostEstimator(space, proxy=proxy, data=run["data"], seed=run["seed"])
    return warm_start(estimator, options["warm_start_pool"], keep, run["seed"])


def _run_experiment(experiment: Experiment, n_trials: int | None, limit: float | None,
                    progress: Progress | None) -> list[TrialRecord]:
    done = [r for r in experiment.storage.trials() if r.state is not TrialState.RUNNING]
    best = max((r.objective for r in done if r.objective is not None), default=None)
    if progress is not None:
        progress("start", {"total": n_trials, "initial": len(done), "unit": "trial",
                           "desc": "search", "best": best})

    def on_trial(record: TrialRecord) -> None:
        nonlocal best
        if record.objective is not None and (best is None or record.objective > best):
            best = record.objective
        if progress is not None:
            progress("step", {"best": best})

    try:
        return experiment.run(n_trials=n_trials, time_limit=limit, on_trial=on_trial)
    finally:
        experiment.executor.shutdown()
        if progress is not None:
            progress("end", {})


# ---- one-shot methods ---------------------------------------------------------------------

def oneshot(resolved: dict[str, Any]) -> Any:
    """The one-shot search of a resolved configuration (its method's builder), untrained."""
    space = build_space(space_spec(resolved))
    section = resolved["estimator"]
    estimator = ESTIMATORS.create(section["name"], space=space,
                                  **{k: v for k, v in section.items() if k != "name"})
    name = resolved["run"]["method"]
    method = methods.get(name)
    assert method.config is not None and method.builder is not None, name
    config = method.config.from_options(resolved["method"], f"method {name}")
    return method.builder(estimator, config, resolved["run"]["seed"], resolved)


def checkpoint_path(run: Run) -> Path:
    return run.folder / f"{run.resolved['run']['method']}.pt"


def search_oneshot(run: Run, progress: Progress | None, executor: Any) -> str | None:
    search = oneshot(run.resolved)
    checkpoint = checkpoint_path(run)
    if checkpoint.exists():
        search.load(checkpoint)
    elif run.epochs():
        log.warning("%s: the search checkpoint is missing; the search restarts from epoch 0",
                    checkpoint)
        if progress is not None:
            progress("note", {"text": f"warning: {checkpoint} is missing: the search restarts "
                                      "from epoch 0"})
    if progress is not None:
        progress("start", {"total": search.epochs, "initial": search.epoch, "unit": "epoch",
                           "desc": run.resolved["run"]["method"]})

    def on_epoch(record: dict[str, Any]) -> None:
        if progress is not None:
            progress("step", {k: record.get(k) for k in ("shared_loss", "reward", "entropy",
                                                         "derived_score")})

    try:
        search.run(on_epoch=on_epoch, checkpoint=checkpoint, storage=run.storage)
    finally:
        if progress is not None:
            progress("end", {})
    derived = search.derived
    if run.resolved["run"]["method"] == "spos" and derived is not None:
        return _spos_evolution(run, checkpoint, progress, executor)
    return None if derived is None else derived.to_str()


def _spos_evolution(run: Run, checkpoint: Path, progress: Progress | None,
                    executor: Any) -> str | None:
    """SPOS's search phase: evolution over the trained supernet, trials in the run."""
    from archsearch.strategies.regularized_evolution import RegularizedEvolution

    resolved, options = run.resolved, run.resolved["method"]
    # eval_batches is the training phase's (one minibatch per reward); each candidate of the
    # search is scored on the whole validation split, as SPOS does
    section = {k: v for k, v in resolved["estimator"].items()
               if k not in ("name", "epochs", "eval_batches")}
    estimator = Spec("supernet-checkpoint", {**section, "checkpoint": str(checkpoint),
                                             "calibration_batches":
                                             options["calibration_batches"]})
    space = build_space(space_spec(resolved))
    strategy = RegularizedEvolution(space, seed=resolved["run"]["seed"],
                                    population_size=options["population_size"],
                                    sample_size=options["sample_size"])
    experiment = Experiment(space_spec(resolved), estimator, strategy, run.storage, executor,
                            max_retries=resolved["run"]["retries"])
    records = _run_experiment(experiment, options["search_trials"], None, progress)
    best = best_trial(records)
    return None if best is None else best.arch


# ---- the final protocol -------------------------------------------------------------------

def final_rows(run: Run, best: str, k: int, final: dict[str, Any],
               progress: Progress | None) -> dict[str, Any]:
    from archsearch.experiment.final import final_evaluation

    space = build_space(space_spec(run.resolved))
    total = 1 + k + (1 if final["name"] == "lm-training" else 0)  # + the LSTM baseline
    if progress is not None:
        progress("start", {"total": total, "initial": 0, "unit": "model", "desc": "final"})
    try:
        return final_evaluation(
            space, spec(final, run.folder), space.parse(best), k, run.resolved["run"]["seed"],
            on_result=lambda *_: progress("step", {}) if progress is not None else None,
            save_best=run.folder / "best_model.pt")
    finally:
        if progress is not None:
            progress("end", {})
