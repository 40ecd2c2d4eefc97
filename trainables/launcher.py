"""The one entry point every sweep script calls: settings, validation before launch, then the run.

Order matters for a researcher's GPU hours: everything that can be wrong (data path, layout,
plan values, backbone names, the MLflow store) is checked before Ray starts a single trial,
and each such error is one line that names the fix (a `UserError`; anything else is a bug
and keeps its traceback).
"""
from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from aigid.backbones import check_backbone
from aigid.data.index import DatasetIndex
from aigid.data.layouts import scan
from aigid.data.synthetic import ensure_synthetic
from aigid.errors import ConfigError, UserError
from aigid.overrides import parse_overrides
from aigid.trials import Trial
from trainables import tracking
from trainables.arguments import Settings, check_run_names, parse_settings
from trainables.sweep import Sweep, expand, pick

DEFAULT_DATA_DIR = "aigid_data"


@dataclass(frozen=True)
class Launch:
    """A validated sweep: the data, the shared overrides, and each trial's full resolved config."""

    index: DatasetIndex
    base: dict  # overrides every trial shares (presets, flags, per-dataset defaults), for the parent run
    axes: dict[str, list]  # the fields the plan sets per point, with their values
    points: list[dict]  # each trial's full flat config, resolved against the data
    configs: list  # the same as config objects


def base_overrides(sweep: Sweep, settings: Settings) -> dict:
    """Overrides shared by all trials: presets first, the sweep's fixed settings, explicit flags last."""
    method = sweep.method
    base = {} if settings.data else dict(method.offline)
    base.update({k: pick(v, settings.synthetic) for k, v in sweep.fixed.items()})
    if settings.smoke:
        base.update(method.smoke)
    explicit = {**parse_overrides(settings.set), **dict(settings.options)}
    clash = sorted(set(explicit) & set(sweep.axes(settings.synthetic)))
    if clash:
        raise ConfigError(f"{clash} is swept by this grid; it cannot also be set for every trial")
    return {**base, **explicit}


@functools.cache
def announce_stand_in(root: Path) -> None:
    """Once per process and root: sweeps/compare.py validates five sweeps on one stand-in."""
    print(f"[aigid] no --data given: using the SYNTHETIC stand-in benchmark at {root} "
          "(generated if absent; not a real dataset, results are a pipeline demo)", flush=True)


def resolve_data(sweep: Sweep, settings: Settings) -> DatasetIndex:
    if settings.data:
        return scan(str(Path(settings.data).absolute()), settings.layout)
    layout = sweep.method.layout
    root = Path(DEFAULT_DATA_DIR).absolute() / f"synthetic-{layout}"
    announce_stand_in(root)
    index = scan(ensure_synthetic(root, layout=layout), layout)
    index.stand_in = {"layout": layout}  # regenerated on nodes that lack it (ensure_here)
    return index


def validate(sweep: Sweep, settings: Settings) -> Launch:
    """Expand the plan once and resolve every point against the data; every error surfaces here."""
    if settings.scheduler == "asha" and not sweep.method.early_stopping:
        raise ConfigError(f"--scheduler asha cannot rank {sweep.method.name} trials early: their score "
                          "measures the final detector only in the last epochs; run without --scheduler")
    index = resolve_data(sweep, settings)
    base = base_overrides(sweep, settings)
    if settings.search == "optuna":
        sweep.single_grid(settings.synthetic)
    trials = expand(sweep, settings.synthetic, base, settings.seeds)
    if sweep.prune:
        trials, note = sweep.prune(trials, index)
        if note:
            print(f"[aigid] {note}", flush=True)
    checked, configs = set(), []
    for flat in trials:
        unresolved = sweep.method.config_cls.from_flat(flat)
        backbone = (getattr(unresolved, "backbone", None), getattr(unresolved, "pretrained", None))
        if backbone[0] and backbone not in checked:
            check_backbone(*backbone)
            checked.add(backbone)
        configs.append(sweep.method.resolve(flat, index))
    if sweep.method.start_order and settings.search == "grid":
        order = sweep.method.start_order(configs)
        trials, configs = [trials[i] for i in order], [configs[i] for i in order]
    points = [config.to_flat() for config in configs]
    axes = sweep.axes(settings.synthetic)
    filled = {k: v for k, v in dataset_defaults(sweep, trials[0], configs[0]).items() if k not in axes}
    if filled:
        print(f"[aigid] {index.layout} defaults of the paper: {filled}", flush=True)
    return Launch(index, {**base, **filled}, axes, points, configs)


def dataset_defaults(sweep: Sweep, flat: dict, resolved) -> dict:
    """The fields the dataset's layout filled in (APN's epochs, GenDet's learning rates)."""
    unresolved = sweep.method.config_cls.from_flat(flat)
    return {k: v for k, v in resolved.to_flat().items() if getattr(unresolved, k) is None and v is not None}


def main(sweep: Sweep, argv: Sequence[str] | None = None) -> list[Trial]:
    """Entry point of every sweep script. Exits 2 with a one-line reason on bad input."""
    settings = parse_settings(sweep, argv)
    quiet_libraries()
    if settings.variant:
        sweep = next(v.sweep for v in sweep.variants if v.flag == settings.variant)
    try:
        check_run_names(settings)  # before anything is written (the synthetic data, the MLflow store)
        launch = validate(sweep, settings)
        uri = tracking.tracking_uri(settings.mlflow_uri)
        client = None if settings.dry_run else tracking.connect(uri)
    except UserError as error:
        fail(error)
    index = launch.index
    print(f"[aigid] {sweep.name}: {len(launch.points)} trials on {index.layout} data at {index.root}"
          f"{' (SYNTHETIC)' if index.synthetic else ''}", flush=True)
    for problem in index.problems:  # what the scan skipped (symlink loops, stray files), as `aigid data inspect` says
        print(f"[aigid] data: {problem}", flush=True)
    if settings.dry_run:
        for point in launch.points:
            print("  ", {k: point[k] for k in [*launch.axes, "seed"]})
        return []
    from trainables.run import run_sweep  # Ray is imported only when a sweep really runs

    try:
        return run_sweep(sweep, settings, launch, client, uri)
    except UserError as error:
        fail(error)


def quiet_libraries() -> None:
    """Keep the console to aigid's status: drop library notices a researcher cannot act on."""
    for name, level in (
        ("ray.tune.logger.tensorboardx", logging.WARNING),  # tuple params cannot go to TensorBoard
        ("ray.tune", logging.WARNING),  # "Wrote the latest version of all result files ..." after every sweep
        # "Failed to fetch metrics" for a trial that never reported (killed before its first epoch, then
        # resumed): the summary lists it with its config either way.
        ("ray.tune.analysis.experiment_analysis", logging.ERROR),
        # A local Ray turns token authentication on by default and says so at every start.
        ("ray._private.authentication.authentication_token_setup", logging.ERROR),
        ("mlflow.store.db.utils", logging.WARNING),  # "Creating initial MLflow database tables..."
        ("alembic", logging.WARNING),
    ):
        logging.getLogger(name).setLevel(level)


def fail(error: UserError):
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2) from None
