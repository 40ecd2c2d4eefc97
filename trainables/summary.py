"""The end of a sweep: Tune's results as typed trials, the paper's table, and the parent run's artifacts."""
from __future__ import annotations

import json
import os
import tempfile
import time

from mlflow.entities import Metric, RunTag

from aigid.report import failures
from aigid.trials import FAILED, FINISHED, Trial, point_name
from trainables.trainable import decode


def collect(result_grid, method, axes) -> list[Trial]:
    """Each trial: full config, final metrics, epoch-end history, status and node."""
    trials = []
    # A trial that died before its first report has no result config: take it from Tune's trial.
    tune_trials = result_grid._experiment_analysis.trials  # ResultGrid keeps results in this order
    for result, tune_trial in zip(result_grid, tune_trials):
        history = result.metrics_dataframe
        epochs = []
        if history is not None and "epoch_end" in history:
            epochs = history[history["epoch_end"] == True].to_dict("records")  # noqa: E712 (pandas mask)
        final = result.metrics or {}
        config = method.config_cls.from_flat(decode(result.config or tune_trial.config)).to_flat()
        trials.append(Trial(
            name=point_name(config, axes), config=config, status=FAILED if result.error else FINISHED,
            final=final, history=tuple(epochs),
            node=f"{final.get('node_ip', '')}/{str(final.get('node_id', ''))[:8]}" if final else "",
            error=str(result.error).strip().splitlines()[-1] if result.error else "",
        ))
    return trials


def outcome(trials: list[Trial], best, metric: str) -> str:
    """Best config by `metric` (Tune's best result), trials stopped early, and where each trial ran."""
    lines = []
    early = [t for t in trials if t.finished and t.final.get("epoch", 0) < t.config.get("epochs", 0)]
    if early:
        lines.append(f"{len(early)} trial(s) stopped early by the scheduler")
    if best is not None:
        lines.append(f"best by final {metric} = {best.final[metric]:.4f}: {best.name}")
    nodes = sorted({t.node for t in trials if t.node})
    lines.append(f"trials ran on {len(nodes)} node(s): {', '.join(nodes)}")
    return "\n".join(lines)


def headline(trials: list[Trial], best: Trial | None, metric: str, axes) -> tuple[list[Metric], list[RunTag]]:
    """What the parent run shows in MLflow's run table and charts: the best trial's metric and its
    grid values (tags, which a resumed sweep may update), and how many trials finished or failed."""
    now = int(time.time() * 1000)
    metrics = [Metric("trials/finished", sum(t.finished for t in trials), now, 0),
               Metric("trials/failed", sum(not t.finished for t in trials), now, 0)]
    tags = []
    if best is not None:
        metrics.append(Metric(f"best/{metric}", float(best.final[metric]), now, 0))
        tags = [RunTag("best_trial", best.name)] + [RunTag(f"best.{axis}", str(best.config.get(axis))) for axis in axes]
    return metrics, tags


def report(sweep, trials: list[Trial], best, client, parent: str, axes) -> None:
    """Print the paper's table and the outcome; log them, every trial, the figures and the headline
    numbers on the parent run."""
    metrics, tags = headline(trials, best, sweep.method.metric, axes)
    client.log_batch(parent, metrics=metrics, tags=tags)
    summary = "\n\n".join(part for part in (sweep.table(trials), outcome(trials, best, sweep.method.metric),
                                            failures(trials)) if part)
    print("\n" + summary + "\n", flush=True)
    with tempfile.TemporaryDirectory() as out:
        with open(os.path.join(out, "summary.txt"), "w") as f:
            f.write(summary + "\n")
        with open(os.path.join(out, "trials.json"), "w") as f:
            json.dump([t.to_dict() for t in trials], f, indent=1, default=str)
        if sweep.figures:
            sweep.figures(trials, out)
        client.log_artifacts(parent, out)
