"""`aigid train <method>`: one run on one machine, no Ray, no MLflow — one command per registered method.

The run resolves its config and prepares what a sweep would share (frozen-backbone features or
decoded test images, in --cache-dir: the sweeps' cache) exactly as a sweep does, then trains.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from aigid import checkpoints
from aigid.data.layouts import LAYOUTS, scan
from aigid.data.synthetic import ensure_synthetic
from aigid.errors import ConfigError, UserError
from aigid.methods import METHODS
from aigid.methods.spec import MethodSpec, PrepareContext
from aigid.overrides import parse_overrides

SHOWN = ("train/loss", "test/mean/acc", "test/mean/ap")


def add_train_commands(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one detector without Ray (a single run)")
    methods = parser.add_subparsers(dest="method", required=True)
    for name, method in METHODS.items():
        run = methods.add_parser(name, help=method.summary, formatter_class=HelpFormatter,
                                 description=f"{method.summary}.\n\nWithout --data: the synthetic stand-in benchmark "
                                             "and a tiny random-init model. With --data: the paper's defaults "
                                             f"(`aigid config {name}` lists every field --set takes).")
        add_run_arguments(run)
        run.add_argument("--config", metavar="JSON", help="a flat config to start from, e.g. a sweep's best_config.json")
        run.add_argument("--save", help="write the final checkpoint (model, optimiser, history) here")
        run.set_defaults(func=train)


def add_run_arguments(run) -> None:
    """The options a single run shares with `aigid eval`: the data, --set, the device and the sweeps' cache."""
    run.add_argument("--data", help="dataset root; default: the synthetic stand-in in ./aigid_data")
    run.add_argument("--layout", choices=LAYOUTS, help="override the auto-detected layout")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    run.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers")
    run.add_argument("--cache-dir", default="aigid_cache",
                     help="frozen-backbone features and decoded test images, shared with the sweeps")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's line breaks and shows every default."""


def build(method: MethodSpec, args):
    """(index, resolved config, trainer) for one run, preparing what a sweep would share."""
    index, overrides = open_data(method, args.data, args.layout)
    config = method.resolve({**overrides, **read_config(args.config), **parse_overrides(args.set)}, index)
    shared = method.prepare(index, [config], context_of(args)) if method.prepare else {}
    return index, config, method.trainer(config, index, shared, device=args.device, num_workers=args.workers)


def open_data(method: MethodSpec, data: str | None, layout: str | None):
    """(index, the overrides the data calls for): `data`, or the synthetic stand-in with the method's offline
    overrides (tiny models, small steps)."""
    if data:
        return scan(os.path.abspath(data), layout), {}
    root = ensure_synthetic(Path("aigid_data").absolute() / f"synthetic-{method.layout}", layout=method.layout)
    print(f"no --data: running on the SYNTHETIC stand-in at {root}")
    return scan(root, method.layout), dict(method.offline)


def context_of(args) -> PrepareContext:
    return PrepareContext(os.path.abspath(args.cache_dir), device=args.device, num_workers=args.workers)


def read_config(path: str | None) -> dict:
    """A flat config saved as JSON (lists back to tuples); {} without --config."""
    if not path:
        return {}
    try:
        with open(path) as f:
            flat = json.load(f)
    except (OSError, ValueError) as error:
        raise ConfigError(f"--config {path}: cannot read a JSON config ({error})") from None
    if not isinstance(flat, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of config fields")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}


def train(args) -> int:
    method = METHODS[args.method]
    try:
        index, config, trainer = build(method, args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.method} on {index.layout}{' (SYNTHETIC)' if index.synthetic else ''} at {index.root}")
    skipped = 0
    try:
        for report in trainer.run():
            summary = {k: round(v, 4) for k, v in report.items() if k in SHOWN}
            print(f"epoch {report['epoch']}/{config.epochs} step {report['step']}: {json.dumps(summary)}", flush=True)
            skipped = report.get("data/skipped_files", skipped)
    except FloatingPointError as error:  # a diverged run: the trainer's message names the field to lower
        print(f"error: {error}", file=sys.stderr)
        return 2
    if skipped:
        print(f"skipped {skipped} unreadable image(s); see the warnings above")
    if args.save:
        checkpoints.save(trainer.state_dict(), args.save)
        print(f"checkpoint written to {args.save}")
    return 0
