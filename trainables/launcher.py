"""The one launcher every sweep script calls: arguments, validation, Ray, MLflow, the table.

Order matters for a researcher's GPU hours: everything that can be wrong (data path,
layout, grid values, backbone names, the MLflow store) is checked before Ray starts a
single trial, and every error message names the fix.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from aigid.backbones import BackboneError, check_backbone
from aigid.data.layouts import LAYOUTS, DataError, scan
from aigid.data.synthetic import ensure_synthetic
from aigid.overrides import parse_overrides
from trainables import tracking
from trainables.method import Method

DEFAULT_DATA_DIR = "aigid_data"
DEFAULT_STORAGE = "aigid_results"
DEFAULT_CACHE = "aigid_cache"


@dataclass(frozen=True)
class Sweep:
    """A published grid: its axes, the paper's settings beyond the method defaults, its table."""

    name: str  # MLflow experiment and Ray run name
    method: Method
    grid: dict[str, list]  # axis -> the paper's values, in the paper's order
    table: Callable[[list[dict]], str]  # trials -> the paper-shaped table
    doc: str = ""  # which table/figure of the paper this reproduces
    paper: dict = field(default_factory=dict)  # overrides that hold with real data (--data)
    offline: dict = field(default_factory=dict)  # extra overrides on the synthetic stand-in
    offline_grid: dict = field(default_factory=dict)  # axes replaced on the synthetic stand-in (tiny models, small volumes)
    prune: Callable | None = None  # (grid, index, base) -> (grid, note): drop values the data cannot hold
    artifacts: Callable | None = None  # (trials, out_dir) -> None: figures for the parent run


def parse_args(sweep: Sweep, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python sweeps/{sweep.name}.py",
        description=f"{sweep.doc}\n\nGrid: " + " × ".join(f"{k} {v}" for k, v in sweep.grid.items())
        + "\n\nWithout --data it runs offline on a generated SYNTHETIC stand-in benchmark with a tiny "
          "random-init model (a demo of the pipeline, not the paper's numbers). With --data every "
          "default is the paper's.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data and model")
    data.add_argument("--data", help="dataset root (GenImage, UniversalFakeDetect, DiffusionForensics or real/+fake/); "
                                     "check it first with `aigid data inspect PATH`")
    data.add_argument("--test-data", help="a second dataset tested too (apn_cross_scene: the DiffusionForensics root)")
    data.add_argument("--layout", choices=LAYOUTS, help="override the auto-detected dataset layout")
    data.add_argument("--backbone", help="CLIP image encoder (open_clip name: RN50, RN101, ViT-L-14, ...)")
    data.add_argument("--pretrained", help="open_clip tag (openai), a local checkpoint path, or none")
    data.add_argument("--epochs", type=int, help="epochs per trial")
    data.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any config field for every trial, e.g. --set lr=1e-5 (repeatable)")
    data.add_argument("--smoke", action="store_true", help="a minutes-long check of the whole pipeline")
    run = parser.add_argument_group("running")
    run.add_argument("--seeds", type=int, default=1, help="repeat the grid with seeds 0..N-1 (default 1)")
    run.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPU share per trial, e.g. 0.25 packs 4 on a GPU")
    run.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (torch threads + loader workers)")
    run.add_argument("--max-concurrent", type=int, default=0, help="cap on concurrent trials (0: as resources allow)")
    run.add_argument("--max-failures", type=int, default=1, help="retries of a failed trial from its last checkpoint")
    run.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                     help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--storage", default=DEFAULT_STORAGE, help="where trial checkpoints and results go")
    run.add_argument("--cache-dir", default=DEFAULT_CACHE,
                     help="frozen-backbone feature cache, reused across sweeps (shared storage on a cluster)")
    run.add_argument("--name", help="run name under --storage (default: the sweep name and a timestamp)")
    run.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    run.add_argument("--shared-storage", action="store_true",
                     help="declare a local --storage path to be the same shared mount on every node")
    run.add_argument("--resume", nargs="?", const="latest", metavar="NAME",
                     help="continue an interrupted sweep (its newest run, or NAME): finished trials are not rerun")
    search = parser.add_argument_group("search")
    search.add_argument("--search", choices=("grid", "optuna"), default="grid",
                        help="grid: the paper's grid (default); optuna: TPE over the same axes (--num-samples)")
    search.add_argument("--num-samples", type=int, default=16, help="trials for --search optuna")
    search.add_argument("--scheduler", choices=("none", "asha"), default="none",
                        help="asha: stop weak trials early on the method's selection metric")
    run.add_argument("--dry-run", action="store_true", help="validate and list the trials, run nothing")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.search == "optuna" and args.seeds != 1:
        parser.error("--seeds repeats the grid; with --search optuna set --num-samples instead")
    if args.num_samples < 1:
        parser.error("--num-samples must be >= 1")
    if args.gpus_per_trial < 0 or args.cpus_per_trial <= 0:
        parser.error("--gpus-per-trial must be >= 0 and --cpus-per-trial > 0")
    return args


def base_overrides(sweep: Sweep, args: argparse.Namespace) -> dict:
    """Config overrides shared by all trials: presets first, explicit flags last."""
    method = sweep.method
    base = dict(sweep.paper) if args.data else {**method.offline, **sweep.offline}
    if args.smoke:
        base.update(method.smoke)
    shortcuts = {"backbone": args.backbone, "pretrained": args.pretrained, "epochs": args.epochs}
    base.update(parse_overrides([f"{k}={v}" for k, v in shortcuts.items() if v is not None]))
    base.update(parse_overrides(args.set))
    if args.test_data:
        base["test_root"] = os.path.abspath(args.test_data)
    clash = sorted(set(base) & set(sweep.grid))
    if clash:
        raise ValueError(f"{clash} is swept by this grid; it cannot also be set for every trial")
    return base


def expand(grid: dict[str, list], base: dict, seeds: int) -> list[dict]:
    """Every trial's flat config: the grid's cartesian product, repeated per seed."""
    axes = list(grid)
    trials = []
    for values in itertools.product(*(grid[a] for a in axes)):
        for seed in range(seeds):
            trials.append({**base, **dict(zip(axes, values)), "seed": base.get("seed", 0) + seed})
    return trials


def validate(sweep: Sweep, trials: list[dict], index) -> list:
    """Build every trial's config and check its data and backbone: errors surface before launch.
    Returns the configs as they will run on `index` (per-dataset defaults filled in)."""
    checked, configs = set(), []
    for flat in trials:
        config = sweep.method.config_cls.from_flat(flat)
        backbone = (getattr(config, "backbone", None), getattr(config, "pretrained", None))
        if backbone[0] and backbone not in checked:
            check_backbone(*backbone)
            checked.add(backbone)
        sweep.method.check_data(config, index)
        configs.append(config.for_layout(index.layout))
    return configs


def dataset_defaults(sweep: Sweep, flat: dict, resolved, grid: dict) -> dict:
    """The fields a config leaves None and the dataset's layout fills in (APN's epochs, GenDet's
    learning rates): the same for every trial of a sweep, so they join the shared overrides and
    MLflow shows the values that ran rather than None."""
    unresolved = sweep.method.config_cls.from_flat(flat)
    return {k: v for k, v in resolved.to_flat().items()
            if getattr(unresolved, k) is None and v is not None and k not in grid}


def resolve_data(sweep: Sweep, args: argparse.Namespace):
    if args.data:
        return scan(os.path.abspath(args.data), args.layout)
    root = Path(DEFAULT_DATA_DIR).absolute() / f"synthetic-{sweep.method.layout}"
    print(f"[aigid] no --data given: using the SYNTHETIC stand-in benchmark at {root} "
          "(generated if absent; not a real dataset, results are a pipeline demo)", flush=True)
    return scan(ensure_synthetic(root, layout=sweep.method.layout), sweep.method.layout)


def main(sweep: Sweep, argv: Sequence[str] | None = None) -> list[dict]:
    """Entry point of every sweep script. Exits 2 with a one-line reason on bad input."""
    args = parse_args(sweep, argv)
    try:
        if args.scheduler == "asha" and not sweep.method.early_stopping:
            raise ValueError(f"--scheduler asha cannot rank {sweep.method.name} trials early: {sweep.method.metric} "
                             "measures its final detector only in the last epochs; run without --scheduler")
        index = resolve_data(sweep, args)
        base = base_overrides(sweep, args)
        grid = sweep.grid if args.data else {**sweep.grid, **sweep.offline_grid}
        grid, note = sweep.prune(grid, index, base) if sweep.prune else (grid, "")
        if note:
            print(f"[aigid] {note}", flush=True)
        trials = expand(grid, base, args.seeds)
        configs = validate(sweep, trials, index)
        filled = dataset_defaults(sweep, trials[0], configs[0], grid)
        base.update(filled)
        trials = [{**flat, **filled} for flat in trials]
        if filled:
            print(f"[aigid] {index.layout} defaults of the paper: {filled}", flush=True)
        uri = tracking.tracking_uri(args.mlflow_uri)
        client = None if args.dry_run else tracking.connect(uri)
    except (DataError, BackboneError, ValueError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"[aigid] {sweep.name}: {len(trials)} trials on {index.layout} data at {index.root}"
          f"{' (SYNTHETIC)' if index.synthetic else ''}", flush=True)
    if args.dry_run:
        for flat in trials:
            print("  ", {k: flat[k] for k in [*grid, "seed"]})
        return []
    from trainables.run import PrepareError, run_trials  # Ray is imported only when a sweep really runs
    from trainables.storage import StorageError

    try:
        return run_trials(sweep, args, index, base, grid, configs, client, uri)
    except (StorageError, PrepareError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
