"""The end of a sweep: Tune's results as typed trials, the paper's table, and the parent run's artifacts."""
from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

from mlflow.entities import Metric, RunTag

from aigid.figures import sweep_figures
from aigid.metrics import subset_key, subsets_in
from aigid.report import Table
from aigid.selection import SCORE, Selection
from aigid.trials import FAILED, FINISHED, Trial, best_point, point_name
from trainables.trainable import decode

HEADLINE = ("test/mean/acc", "test/mean/ap")  # what every method's tables report, logged for the best point


def collect(result_grid, tune_trials, records: list[list[dict]], method, axes, layout: str) -> list[Trial]:
    """Each trial: full config, final metrics, history of evaluations (from `records`, recovery.reported),
    status and node. A trial that died before its first report has no result config: Tune's trial has it."""
    trials = []
    for result, tune_trial, record in zip(result_grid, tune_trials, records):
        epochs = [row for row in record if row.get("epoch_end")]
        final = result.metrics or {}
        if epochs and epochs[-1]["epoch"] > final.get("epoch", 0):  # its last epochs came from the checkpoint
            final = {**final, **epochs[-1]}
        config = method.config_cls.from_flat(decode(result.config or tune_trial.config)).to_flat()
        trials.append(Trial(
            name=point_name(config, axes), config=config, status=FAILED if result.error else FINISHED,
            final=final, history=tuple(record),
            node=f"{final.get('node_ip', '')}/{str(final.get('node_id', ''))[:8]}" if final else "",
            error=str(result.error).strip().splitlines()[-1] if result.error else "", layout=layout,
        ))
    return trials


def predicts_one_class(final: dict) -> bool:
    """Every test image called real, or every one fake: on each test set one class is all right and the
    other all wrong (whatever the sets' balance, which moves their ACC)."""
    outcomes = {(final[subset_key(s, "real_acc")], final[subset_key(s, "fake_acc")])
                for s in subsets_in(final, "real_acc") if subset_key(s, "fake_acc") in final}
    return outcomes in ({(1.0, 0.0)}, {(0.0, 1.0)})


def outcome(trials: list[Trial], best: tuple[list[Trial], float] | None, selection: Selection) -> str:
    """One line per trial (its grid values, how it ended, its score); the best grid point by the
    method's selection rule; trials stopped early; where the trials ran."""
    lines = [f"{t.name}: " + (f"score {t.score:.4f}" if t.finished else f"FAILED ({t.error})") for t in trials]
    early = [t for t in trials if t.finished and t.final.get("epoch", 0) < t.config.get("epochs", 0)]
    if early:
        lines.append(f"{len(early)} trial(s) stopped early by the scheduler")
    done = [t for t in trials if t.finished]
    same_score = len({round(t.score, 6) for t in done}) == 1 and len(done) > 1
    if best is not None:
        here, score = best
        seeds = f" (mean of {len(here)} seeds)" if len(here) > 1 else ""
        lines.append(f"best by {selection.describe(here[0].config)}: {here[0].point} = {score:.4f}{seeds}")
        if same_score:
            chance = selection.chance(here[0].config)
            lines.append(f"every trial scored {score:.4f}{' (chance)' if abs(score - chance) < 1e-6 else ''}: "
                         "too little training to tell the settings apart (--smoke, or a demo on the synthetic "
                         "stand-in); the first trial is named best")
    one_class = [t for t in done if predicts_one_class(t.final)]
    if one_class and not same_score:
        lines.append(f"{len(one_class)} of {len(done)} finished trials call every test image real, or every one "
                     "fake: those settings did not learn in this run (too few steps for them, e.g. on the "
                     "synthetic stand-in)")
    nodes = sorted({t.node for t in trials if t.node})
    lines.append(f"trials ran on {len(nodes)} node(s): {', '.join(nodes)}")
    return "\n".join(lines)


def failures(trials: list[Trial], max_failures: int, run: str) -> str:
    """The closing lines of a sweep whose trials failed: how many, then the first error of each kind
    (its exception type) with how many trials it stopped."""
    failed = [t for t in trials if not t.finished]
    kinds: dict[str, list[Trial]] = {}
    for trial in failed:
        kinds.setdefault(trial.error.split(":")[0], []).append(trial)
    lines = [f"error: {len(failed)} of {len(trials)} trials failed (each after {max_failures} retries, --max-failures); "
             f"fix the cause and rerun them with --resume {run}"]
    lines += [f"  {len(here)} × {kind}, first in {here[0].name}: {here[0].error}" for kind, here in kinds.items()]
    return "\n".join(lines)


def headline(trials: list[Trial], best: tuple[list[Trial], float] | None, axes) -> tuple[list[Metric], list[RunTag]]:
    """What the parent run shows in MLflow's run table and charts: the best grid point's score and
    headline metrics, its grid values (tags, which a resumed sweep may update), trials finished/failed."""
    now = int(time.time() * 1000)
    metrics = [Metric("trials/finished", sum(t.finished for t in trials), now, 0),
               Metric("trials/failed", sum(not t.finished for t in trials), now, 0)]
    tags = []
    if best is not None:
        here, score = best
        metrics.append(Metric(f"best/{SCORE}", score, now, 0))
        for key in HEADLINE:
            values = [t.last(key) for t in here if key in t.epochs[-1]]
            if values:
                metrics.append(Metric(f"best/{key}", sum(values) / len(values), now, 0))
        tags = [RunTag("best_trial", here[0].point)] + [RunTag(f"best.{axis}", str(here[0].config.get(axis))) for axis in axes]
    return metrics, tags


def rerun_command(method: str, config_path: str, data_root: str | None) -> str:
    """The command that trains the best config again, alone and without Ray."""
    data = f" --data {shlex.quote(data_root)}" if data_root else ""
    return f"aigid train {method} --config {shlex.quote(config_path)}{data}"


def write_report(folder: str, meta: dict, tables: list[Table], text: str, trials: list[Trial],
                 best: tuple[list[Trial], float] | None, mode: str) -> str | None:
    """The sweep's report files in `folder` (what `aigid results` reads back); returns the best
    config's path (None if no trial scored)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sweep.json"), "w") as f:
        json.dump(meta, f, indent=1, default=list)
    with open(os.path.join(folder, "summary.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(folder, "summary.md"), "w") as f:  # MLflow's artifact viewer shows it whole
        f.write("\n\n".join(t.formatted("github") for t in tables) + "\n\n```\n" + text + "\n```\n")
    with open(os.path.join(folder, "tables.tex"), "w") as f:
        f.write("\n\n".join(t.formatted("latex_booktabs") for t in tables) + "\n")
    for n, table in enumerate(tables, 1):
        with open(os.path.join(folder, f"table{n}.csv" if len(tables) > 1 else "table.csv"), "w") as f:
            f.write(table.csv())
    with open(os.path.join(folder, "trials.json"), "w") as f:
        json.dump([t.to_dict() for t in trials], f, indent=1, default=str)
    if best is None:
        return None
    top = (max if mode == "max" else min)(best[0], key=lambda t: t.score)  # of the best point's seeds, the best
    path = os.path.join(folder, "best_config.json")
    with open(path, "w") as f:
        json.dump(top.config, f, indent=1, default=list)
    return path


def draw_figures(sweep, trials: list[Trial], axes: dict, folder: str, *, synthetic: bool) -> list[str]:
    """The sweep's own figures (the paper's), then every sweep's: parallel coordinates, parameter
    importance, and a heat map (two varying fields) or a curve (one), over the trials' score."""
    if sweep.figures:
        sweep.figures(trials, folder, synthetic)
    config = trials[0].config if trials else {}
    selection = sweep.method.selection
    sweep_figures(trials, axes, lambda t: t.score, folder, name=sweep.name, score_label=selection.label(config),
                  chance=selection.chance(config), synthetic=synthetic)
    return sorted(str(p) for p in Path(folder).glob("*.png"))


def report(sweep, trials: list[Trial], client, parent: str, meta: dict, *, folder: str) -> None:
    """Print the paper's tables, every trial, the best config and how to re-run it; write them with
    the figures to `folder` and log them, with the headline numbers, on the parent run.
    `meta`: the run's name, axes (field -> values), synthetic, data_root (for the report's sweep.json)."""
    selection = sweep.method.selection
    best = best_point(trials, selection.mode)
    metrics, tags = headline(trials, best, list(meta["axes"]))
    client.log_batch(parent, metrics=metrics, tags=tags)
    tables = sweep.tables(trials)
    text = "\n\n".join(part for part in (*map(str, tables), outcome(trials, best, selection)) if part)
    meta = {"sweep": sweep.name, "method": sweep.method.name, **meta,
            "ranked_by": selection.describe(trials[0].config if trials else None)}
    config_path = write_report(folder, meta, tables, text, trials, best, selection.mode)
    print("\n" + text + "\n", flush=True)
    figures = draw_figures(sweep, trials, meta["axes"], folder, synthetic=meta["synthetic"])
    client.log_artifacts(parent, folder)
    print(f"[aigid] report (tables as .md/.csv/.tex, trials.json): {folder}\n"
          f"[aigid] figures: {', '.join(os.path.basename(f) for f in figures) or 'none'}", flush=True)
    if config_path:
        print(f"[aigid] best config: {config_path}\n[aigid] re-run it: "
              f"{rerun_command(sweep.method.name, config_path, meta['data_root'])}", flush=True)
