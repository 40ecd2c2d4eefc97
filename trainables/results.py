"""`aigid results`: a finished sweep's tables, best config and figures again, read-only.

A sweep's report (trials.json, sweep.json, best_config.json) is on its MLflow parent run and in
the report folder beside its results; this reads either, recomputes the tables with the sweep's
own table function (sweeps/<name>.py) and redraws the figures into --out, or else into a new
temporary folder it prints: it writes nothing beside the sweep or in the working directory, starts
no Ray and creates no MLflow run. `--compare` prints two sweeps' tables side by side.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aigid.errors import UserError
from aigid.trials import Trial, best_point

SWEEPS_DIR = Path(__file__).resolve().parent.parent / "sweeps"


@dataclass(frozen=True)
class Finished:
    """A finished sweep as its report recorded it."""

    where: str  # the report folder or the MLflow parent run it was read from
    meta: dict  # sweep.json: sweep, method, run, axes, synthetic, data_root
    trials: list[Trial]
    best_config: dict | None
    summary: str  # the tables and outcome as printed when the sweep ended


def sweeps_by_name() -> dict:
    """Every Sweep the scripts under sweeps/ define (their SWEEP and its variants), by name."""
    found = {}
    for path in sorted(SWEEPS_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"aigid_sweep_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sweep = getattr(module, "SWEEP", None)
        if sweep is not None:
            found.update({s.name: s for s in (sweep, *(v.sweep for v in sweep.variants))})
    return found


def read_folder(folder: Path) -> Finished:
    """A report folder (or the run folder holding `report/`) written by a sweep."""
    if (folder / "report" / "sweep.json").exists():
        folder = folder / "report"
    if not (folder / "sweep.json").exists():
        raise UserError(f"{folder} holds no sweep report (sweep.json): pass a sweep's report folder, "
                        "its run folder under --storage, or an MLflow run or experiment")
    meta = json.loads((folder / "sweep.json").read_text())
    trials = [Trial.from_dict(t) for t in json.loads((folder / "trials.json").read_text())]
    best, summary = folder / "best_config.json", folder / "summary.txt"
    return Finished(str(folder), meta, trials, json.loads(best.read_text()) if best.exists() else None,
                    summary.read_text() if summary.exists() else "")


def parent_runs(client, target: str) -> list:
    """The sweep parent runs `target` names: a run id, a run name (aigid_run), or an experiment (newest first)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(target)
        return [run] if run.data.tags.get("aigid_parent") == "true" else []
    except MlflowException:
        pass
    experiments = client.search_experiments()
    ids = [e.experiment_id for e in experiments]
    by_name = client.search_runs(ids, filter_string=f"tags.aigid_run = '{target}' and tags.aigid_parent = 'true'") if ids else []
    if by_name:
        return by_name
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string="tags.aigid_parent = 'true'",
                              order_by=["attributes.start_time DESC"])


def read_mlflow(client, target: str) -> Finished:
    runs = parent_runs(client, target)
    if not runs:
        raise UserError(f"no sweep found for {target!r} in MLflow: pass a parent run id, a run name "
                        "(the [aigid] lines print it), an experiment (a sweep's name) or a report folder")
    run = runs[0]
    from trainables.tracking import environ

    with tempfile.TemporaryDirectory() as out, environ({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
        for name in ("sweep.json", "trials.json", "best_config.json", "summary.txt"):
            try:
                client.download_artifacts(run.info.run_id, name, out)
            except Exception:  # an older sweep without this file; sweep.json and trials.json are checked below
                continue
        found = read_folder(Path(out))
    return Finished(f"MLflow run {run.info.run_id} ({run.data.tags.get('aigid_run')})", found.meta, found.trials,
                    found.best_config, found.summary)


def load(target: str, uri: str | None) -> Finished:
    if os.path.isdir(target):
        return read_folder(Path(target).resolve())
    from trainables import tracking

    uri = tracking.tracking_uri(uri)
    if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///"):]):
        raise UserError(f"{target!r} is not a folder and there is no MLflow store at {uri} "
                        "(run from the sweep's working directory or pass --mlflow-uri)")
    return read_mlflow(tracking.connect(uri, read_only=True), target)


def tables_text(finished: Finished, sweeps: dict) -> str:
    """The sweep's tables recomputed from its trials by its sweep script, or as the sweep printed
    them when no script under sweeps/ has its name (a sweep defined elsewhere)."""
    sweep = sweeps.get(finished.meta["sweep"])
    if sweep is None:
        return (f"(as printed when it ended: {finished.meta['sweep']!r} is not a Sweep of sweeps/ that recomputes its "
                f"tables, e.g. compare.py's five sweeps in one)\n{finished.summary}")
    return "\n\n".join(map(str, sweep.tables(finished.trials)))


def side_by_side(left: str, right: str, gap: int = 4) -> str:
    a, b = left.splitlines(), right.splitlines()
    width = max(map(len, a), default=0) + gap
    return "\n".join(f"{x:<{width}}{y}".rstrip() for x, y in zip(a + [""] * (len(b) - len(a)), b + [""] * (len(a) - len(b))))


def show(args) -> int:
    from trainables.summary import draw_figures

    try:
        first = load(args.target, args.mlflow_uri)
        sweeps = sweeps_by_name()
        text = tables_text(first, sweeps)
        if args.compare:
            other = load(args.compare, args.mlflow_uri)
            print(side_by_side(f"A: {first.meta['run']}\n\n{text}", f"B: {other.meta['run']}\n\n"
                                                                    f"{tables_text(other, sweeps)}"))
            return 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    meta, sweep = first.meta, sweeps.get(first.meta["sweep"])
    print(f"{meta['sweep']} ({meta['method']}), run {meta['run']}, from {first.where}"
          f"{' — SYNTHETIC stand-in data' if meta.get('synthetic') else ''}\n\n{text}\n")
    best = best_point(first.trials, sweep.method.selection.mode if sweep else "max")
    if best:
        print(f"best by {meta.get('ranked_by', 'score')}: {best[0][0].point} = {best[1]:.4f}")
    if first.best_config:
        print("best config: " + json.dumps(first.best_config))
    if sweep is not None:
        out = os.path.abspath(args.out) if args.out else tempfile.mkdtemp(prefix="aigid-results-")
        os.makedirs(out, exist_ok=True)
        figures = draw_figures(sweep, first.trials, meta["axes"], out, synthetic=meta.get("synthetic", False))
        print(f"figures in {out}: {', '.join(os.path.basename(f) for f in figures) or 'none (too few finished trials)'}")
    return 0


def add_results_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "results", help="print a finished sweep's tables, best config and figures (read-only)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="a report folder, a run folder under --storage, an MLflow parent run id, "
                                       "a run name (e.g. rine_grid-20261125-073330) or an experiment (the newest sweep)")
    parser.add_argument("--compare", metavar="OTHER", help="a second sweep: print both tables side by side")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    parser.add_argument("--out", help="where to draw the figures (default: a new temporary folder, printed)")
    parser.set_defaults(func=show)
