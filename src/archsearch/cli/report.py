"""What the CLI prints about a run: the search's answer and the final protocol's table."""

from __future__ import annotations

from typing import Any

from archsearch.cli.common import fmt, table
from archsearch.experiment.experiment import best_trial


def print_search(run: Any) -> None:
    """A summary of the search that just ran (or resumed), and its answer."""
    method, best = run.method, run.best()
    history = run.epochs()
    if history:
        last = history[-1]
        seconds = sum(r["seconds"] for r in history)
        parts = [f"shared loss {fmt(last.get('shared_loss'))}"]
        if "reward" in last:
            parts.append(f"reward {fmt(last.get('reward'))}")
        if "entropy" in last:
            parts.append(f"entropy {fmt(last.get('entropy'), 2)}")
        if "alpha_entropy" in last:
            parts.append(f"alpha entropy {fmt(last.get('alpha_entropy'), 3)}, "
                         f"{last.get('skip_connects')} skip connection(s)")
        print(f"search: {len(history)} epochs in {seconds:.0f} s; last epoch: "
              + ", ".join(parts))
    records = run.trials()
    if records:
        counts = run.counts()
        print(f"trials: {len(records)} ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
    if best is None:
        return
    if method.kind == "loop" and method.name == "enas":
        samples = run.resolved["method"]["derive_samples"]
        print(f"derived architecture (best of {samples} samples, validation score "
              f"{fmt(history[-1]['derived_score'])}):\n  {best}")
        return
    if method.kind == "loop" and "derive" in method.requires:  # darts, gdas, snas
        print(f"derived architecture (the last epoch's, validation score "
              f"{fmt(history[-1]['derived_score'])}):\n  {best}")
        return
    trial = best_trial(records)
    if trial is not None:
        print(f"best architecture (trial {trial.number}): {trial.arch}")
        print(f"  search objective {fmt(trial.objective)}  " + "  ".join(
            f"{k} {fmt(v)}" for k, v in trial.metrics.items()))


def protocol_text(final: dict[str, Any]) -> str:
    if final["name"] in ("full-training", "lm-training"):
        return f"retrained from scratch for {final['epochs']:g} epochs"
    return "the same lookup"


def print_final(rows: dict[str, Any], final: dict[str, Any], k: int) -> None:
    metric_keys = [m for m in ("val_acc", "test_acc", "valid_ppl", "test_ppl", "params_m")
                   if m in rows["best"]["metrics"]]
    metric_keys = metric_keys or list(rows["best"]["metrics"])
    print(f"\nfinal protocol ({protocol_text(final)}), best found vs {k} random "
          "architecture(s):")
    body = [["best"] + [fmt(rows["best"]["metrics"].get(m)) for m in metric_keys]]
    for i, r in enumerate(rows["random"], 1):
        body.append([f"random {i}"] + [fmt(r["metrics"].get(m)) for m in metric_keys])
    if rows["random"]:
        body.append(["random mean"] + [
            f"{fmt(rows['random_mean'].get(m))} ± {fmt(rows['random_std'].get(m))}"
            for m in metric_keys])
    for b in rows.get("baselines", []):
        body.append([b["name"]] + [fmt(b["metrics"].get(m)) for m in metric_keys])
    print(table(body, [""] + metric_keys))
    print(f"  best:     {rows['best']['arch']}")
    for i, r in enumerate(rows["random"], 1):
        print(f"  random {i}: {r['arch']}")
