"""The end of a sweep: Tune's results as typed trials, the paper's table, and the parent run's artifacts."""
from __future__ import annotations

import json
import os
import tempfile

from aigid.report import failures
from aigid.trials import FAILED, FINISHED, Trial, point_name
from trainables.trainable import decode


def collect(result_grid, method, axes) -> list[Trial]:
    """Each trial: full config, final metrics, epoch-end history, status and node."""
    trials = []
    for result in result_grid:
        history = result.metrics_dataframe
        epochs = []
        if history is not None and "epoch_end" in history:
            epochs = history[history["epoch_end"] == True].to_dict("records")  # noqa: E712 (pandas mask)
        final = result.metrics or {}
        config = method.config_cls.from_flat(decode(result.config)).to_flat()
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


def report(sweep, trials: list[Trial], best, client, parent: str) -> None:
    """Print the paper's table and the outcome; log them, every trial and the figures on the parent run."""
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
