"""The ENAS path of ``archsearch search``: the one-shot loop, checkpointed every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch.cli.common import fmt
from archsearch.experiment.storage import SQLiteStorage
from archsearch.experiment.trial import build_space
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.registry import ESTIMATORS, Spec
from archsearch.types import Result

CHECKPOINT = "enas.pt"
LOOP_KEYS = set(ENASConfig.__dataclass_fields__)


def make_enas(config: dict[str, Any]) -> ENAS:
    space = build_space(Spec.from_json(config["space"]))
    options = dict(config["strategy"]["config"])
    seed = options.pop("seed")
    loop = {k: options.pop(k) for k in list(options) if k in LOOP_KEYS}
    loop["epochs"] = config["estimator"]["config"]["epochs"]
    enas_config = ENASConfig(**loop)
    estimator = ESTIMATORS.create(config["estimator"]["name"], space=space,
                                  **config["estimator"]["config"])
    prior = options.pop("prior", None)  # a zero-cost proxy's name: the controller's warm-up
    if prior is not None:
        prior = ESTIMATORS.create("zero-cost", space=space, proxy=prior, seed=seed,
                                  data=config["estimator"]["config"].get("data", "digits"))
    controller = enas_controller(space, seed, enas_config.aggregate, **options)
    return ENAS(estimator, controller, enas_config, prior)


def record_epochs(storage: SQLiteStorage, history: list[dict[str, Any]]) -> None:
    """One trial row per epoch: its derived architecture, scored on validation minibatches.
    Idempotent, so rows lost to a kill after a checkpoint are written on the next call."""
    have = {r.number for r in storage.trials() if r.state.value == "complete"}
    for record in history:
        number = record["epoch"] - 1
        if number in have:
            continue
        metrics = {k: float(v) for k, v in record.items()
                   if isinstance(v, (int, float)) and v is not None}
        storage.start_trial(number, record["derived"])
        storage.finish_trial(number, Result(record["derived_score"], metrics), None, 0)


def search_enas(enas: ENAS, run_dir: Path, storage: SQLiteStorage,
                progress: bool) -> str | None:
    from tqdm import tqdm

    checkpoint = run_dir / CHECKPOINT
    if checkpoint.exists():
        enas.load(checkpoint)
        record_epochs(storage, enas.history)
    bar = tqdm(total=enas.config.epochs, initial=enas.epoch, desc="enas", unit="epoch",
               disable=not progress, dynamic_ncols=True)

    def on_epoch(record: dict[str, Any]) -> None:
        record_epochs(storage, enas.history)
        bar.update(1)
        bar.set_postfix(loss=f"{record['shared_loss']:.3f}", reward=fmt(record["reward"], 3),
                        entropy=f"{record['entropy']:.1f}")

    try:
        enas.run(on_epoch=on_epoch, checkpoint=checkpoint)
    finally:
        bar.close()
    _plot(enas.history, run_dir / "search.png")
    derived = enas.derived
    if derived is None:
        return None
    last = enas.history[-1]
    seconds = sum(r["seconds"] for r in enas.history)
    print(f"search: {enas.epoch} epochs in {seconds:.0f} s; last epoch: shared loss "
          f"{fmt(last['shared_loss'])}, reward {fmt(last['reward'])}, entropy "
          f"{fmt(last['entropy'], 2)}")
    print(f"derived architecture (best of {enas.config.derive_samples} samples, validation "
          f"score {fmt(last['derived_score'])}):\n  {derived}")
    storage.set_meta("best_arch", derived.to_str())
    storage.set_meta("search_seconds", seconds)
    return derived.to_str()


def _plot(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(epochs, [r["shared_acc"] for r in history], label="shared-weights train acc")
    a.plot(epochs, [r["shared_loss"] for r in history], label="shared-weights train loss")
    a.plot(epochs, [r["reward"] if r["reward"] is not None else float("nan") for r in history],
           label="controller reward (val acc)")
    a.plot(epochs, [r["derived_score"] for r in history], label="derived architecture's score")
    a.set_xlabel("epoch")
    a.legend()
    a.grid(alpha=0.3)
    b.plot(epochs, [r["entropy"] for r in history], color="C3")
    b.set_xlabel("epoch")
    b.set_ylabel("controller entropy (nats)")
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
