"""A sweep script's command line, turned into one frozen `Settings` object."""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, fields
from typing import Sequence

from aigid.data.layouts import LAYOUTS
from aigid.errors import StorageError
from trainables.sweep import Sweep

DEFAULT_STORAGE = "aigid_results"
DEFAULT_CACHE = "aigid_cache"
RUN_NAME = re.compile(r"[A-Za-z0-9._-]+")  # one folder under --storage, on any filesystem or object store
SHORTCUTS = ("backbone", "pretrained", "epochs")  # flags for config fields, where the method's config has them


@dataclass(frozen=True)
class Settings:
    """Everything a run of a sweep was asked for, after argparse's checks."""

    data: str | None
    layout: str | None
    set: tuple[str, ...]  # KEY=VALUE overrides, in order (shortcut flags first)
    options: tuple[tuple[str, str], ...]  # (config field, value) of the sweep's own flags
    variant: str | None  # the flag of the chosen Variant, if any
    smoke: bool
    seeds: int
    gpus_per_trial: float
    cpus_per_trial: float
    max_concurrent: int
    max_failures: int
    address: str | None
    storage: str
    cache_dir: str
    name: str | None
    mlflow_uri: str | None
    shared_storage: bool
    resume: str | None
    search: str
    num_samples: int
    scheduler: str
    dry_run: bool
    verbose: bool

    @property
    def synthetic(self) -> bool:
        return self.data is None


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the docstring's line breaks and shows every default."""


def _config_fields(sweep: Sweep) -> set[str]:
    return {f.name for f in fields(sweep.method.config_cls)}


def build_parser(sweep: Sweep) -> argparse.ArgumentParser:
    plan = "\n".join("  " + " × ".join(f"{k} {v}" for k, v in part.resolved_axes(False).items()) for part in sweep.plan)
    parser = argparse.ArgumentParser(
        prog=f"python sweeps/{sweep.name}.py",
        description=f"{sweep.doc}\nPlan (the paper's values):\n{plan}\n\n"
                    f"Best trial: {sweep.method.selection.describe()}; the sweep ends with its table(s), figures, "
                    "best_config.json and the command that re-runs it (`aigid results` prints them again).\n\n"
                    "Without --data it runs offline on a generated SYNTHETIC stand-in benchmark with a tiny "
                    "random-init model (a demo of the pipeline, not the paper's numbers). With --data every "
                    f"default is the paper's. `aigid config {sweep.method.name}` lists the fields --set takes.",
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data and model")
    data.add_argument("--data", help="dataset root (GenImage, UniversalFakeDetect, DiffusionForensics or real/+fake/); "
                                     "check it first with `aigid data inspect PATH`")
    data.add_argument("--layout", choices=LAYOUTS, help="override the auto-detected dataset layout")
    own = _config_fields(sweep)
    descriptions = {"backbone": "CLIP image encoder (open_clip name: RN50, RN101, ViT-L-14, ...)",
                    "pretrained": "open_clip tag (openai), a local checkpoint path, or none",
                    "epochs": "epochs per trial"}
    for name in SHORTCUTS:
        if name in own:
            data.add_argument(f"--{name}", type=int if name == "epochs" else str, help=descriptions[name])
    for option in sweep.options:
        data.add_argument(option.flag, dest=f"option_{option.field}", help=option.help)
    data.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override any config field for every trial, e.g. --set lr=1e-5 (repeatable)")
    data.add_argument("--smoke", action="store_true", help="a minutes-long check of the whole pipeline")
    for variant in sweep.variants:
        data.add_argument(variant.flag, action="store_true", help=variant.help)
    run = parser.add_argument_group("running")
    run.add_argument("--seeds", type=int, default=1, help="repeat the plan with seeds 0..N-1")
    run.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPU share per trial, e.g. 0.25 packs 4 on a GPU")
    run.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (torch threads + loader workers)")
    run.add_argument("--max-concurrent", type=int, default=0, help="cap on concurrent trials (0: as resources allow)")
    run.add_argument("--max-failures", type=int, default=1, help="retries of a failed trial from its last checkpoint")
    run.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                     help="Ray cluster to join ($RAY_ADDRESS; none: a local Ray)")
    run.add_argument("--storage", default=DEFAULT_STORAGE, help="where trial checkpoints and results go")
    run.add_argument("--cache-dir", default=DEFAULT_CACHE,
                     help="frozen-backbone features and decoded test images, reused across sweeps "
                          "(shared storage on a cluster)")
    run.add_argument("--name", help="run name under --storage (default: the sweep name and a timestamp)")
    run.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    run.add_argument("--shared-storage", action="store_true",
                     help="declare local --storage and --cache-dir paths to be shared mounts, the same on every node")
    run.add_argument("--resume", nargs="?", const="latest", metavar="NAME",
                     help="continue an interrupted sweep (its newest run, or NAME): finished trials are not rerun")
    run.add_argument("--dry-run", action="store_true", help="validate and list the trials, run nothing")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="a line per epoch and per finished trial (default: a status line with an ETA every 15 s)")
    search = parser.add_argument_group("search")
    search.add_argument("--search", choices=("grid", "optuna"), default="grid",
                        help="grid: the paper's plan; optuna: TPE over the same axes (--num-samples)")
    search.add_argument("--num-samples", type=int, default=16, help="trials for --search optuna")
    search.add_argument("--scheduler", choices=("none", "asha"), default="none",
                        help="asha: stop weak trials early on the method's selection metric")
    return parser


def parse_settings(sweep: Sweep, argv: Sequence[str] | None, parser: argparse.ArgumentParser | None = None) -> Settings:
    """`argv` read by `parser` (default: `build_parser(sweep)`; sweeps/compare.py adds its own flags)."""
    parser = parser or build_parser(sweep)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.search == "optuna" and args.seeds != 1:
        parser.error("--seeds repeats the grid; with --search optuna set --num-samples instead")
    if args.num_samples < 1:
        parser.error("--num-samples must be >= 1")
    if args.gpus_per_trial < 0 or args.cpus_per_trial <= 0:
        parser.error("--gpus-per-trial must be >= 0 and --cpus-per-trial > 0")
    if args.gpus_per_trial > 1 and not float(args.gpus_per_trial).is_integer():
        parser.error(f"--gpus-per-trial {args.gpus_per_trial:g}: Ray shares a GPU only below 1; above 1 use whole GPUs")
    if args.max_concurrent < 0 or args.max_failures < 0:
        parser.error("--max-concurrent and --max-failures must be >= 0")
    chosen = [v.flag for v in sweep.variants if getattr(args, v.flag.lstrip("-").replace("-", "_"))]
    if len(chosen) > 1:
        parser.error(f"choose one of {', '.join(chosen)}")
    shortcuts = [f"{name}={getattr(args, name)}" for name in SHORTCUTS if getattr(args, name, None) is not None]
    options = []
    for option in sweep.options:
        value = getattr(args, f"option_{option.field}")
        given_by_set = any(item.partition("=")[0].strip() == option.field for item in args.set)
        if value is None and option.required_with_data and args.data and not given_by_set:
            parser.error(f"{sweep.name} with --data needs {option.flag}: {option.help}")
        if value is not None:
            options.append((option.field, os.path.abspath(value) if option.path else value))
    return Settings(
        data=args.data, layout=args.layout, set=tuple(shortcuts + args.set), options=tuple(options),
        variant=chosen[0] if chosen else None, smoke=args.smoke, seeds=args.seeds,
        gpus_per_trial=args.gpus_per_trial, cpus_per_trial=args.cpus_per_trial, max_concurrent=args.max_concurrent,
        max_failures=args.max_failures, address=args.address, storage=args.storage, cache_dir=args.cache_dir,
        name=args.name, mlflow_uri=args.mlflow_uri, shared_storage=args.shared_storage, resume=args.resume,
        search=args.search, num_samples=args.num_samples, scheduler=args.scheduler, dry_run=args.dry_run,
        verbose=args.verbose,
    )


def check_run_names(settings: Settings) -> None:
    """--name and --resume NAME are one folder under --storage: '../x' or '/abs' would write elsewhere."""
    for flag, name in (("--name", settings.name), ("--resume", settings.resume)):
        if name is not None and (not RUN_NAME.fullmatch(name) or name in (".", "..")):
            raise StorageError(f"{flag} {name!r} is not a run name: use one folder name of letters, digits, "
                               "'.', '_' and '-' (not '.' or '..'); the run goes under --storage")
