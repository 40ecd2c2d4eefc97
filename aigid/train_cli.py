"""`aigid train lol|rine|gendet`: one run on one machine, no Ray, no MLflow — for debugging a config.

RINE and GenDet first read (or compute and store) their frozen-backbone features in
--cache-dir, the cache the sweeps use, then train on them.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from aigid.backbones import BackboneError
from aigid.data.layouts import LAYOUTS, DataError, scan
from aigid.data.synthetic import ensure_synthetic
from aigid.features import extract
from aigid.methods import gendet, lol, rine
from aigid.overrides import parse_overrides


@dataclass(frozen=True)
class Command:
    help: str
    config_cls: type
    check_data: Callable
    layout: str  # of the synthetic stand-in used without --data
    offline: dict
    trainer: Callable  # (config, index, args) -> a trainer with run() and state_dict()


def _lol_trainer(config, index, args):
    return lol.LoLTrainer(config, index, device=args.device, num_workers=args.workers)


def _cached_feature_trainer(feature_requests: Callable, trainer_cls: type) -> Callable:
    def build(config, index, args):
        requests = feature_requests([config], index)
        tables, _ = extract(list(requests.values()), args.cache_dir, device=args.device, num_workers=args.workers)
        return trainer_cls(config, index, dict(zip(requests, tables)), device=args.device)

    return build


COMMANDS = {
    "lol": Command("Learning on Less: masked fine-tuning of a CLIP image encoder", lol.LoLConfig, lol.check_data,
                   "genimage", lol.OFFLINE_OVERRIDES, _lol_trainer),
    "rine": Command("RINE: intermediate CLIP blocks, on cached features", rine.RINEConfig, rine.check_data,
                    "ufd", rine.OFFLINE_OVERRIDES, _cached_feature_trainer(rine.feature_requests, rine.RINETrainer)),
    "gendet": Command("GenDet: teacher-student discrepancy, on cached CLIP features", gendet.GenDetConfig,
                      gendet.check_data, "ufd", gendet.OFFLINE_OVERRIDES, _cached_feature_trainer(gendet.feature_requests, gendet.GenDetTrainer)),
}


def add_train_commands(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one detector without Ray (a single run)")
    methods = parser.add_subparsers(dest="method", required=True)
    for name, command in COMMANDS.items():
        run = methods.add_parser(name, help=command.help,
                                 description="Without --data: the synthetic stand-in benchmark and a tiny random-init "
                                             f"model. With --data: the paper's defaults (see aigid/methods/{name}).")
        run.add_argument("--data", help="dataset root; default: the synthetic stand-in in ./aigid_data")
        run.add_argument("--layout", choices=LAYOUTS, help="override the auto-detected layout")
        run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
        run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        run.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers")
        run.add_argument("--cache-dir", default="aigid_cache", help="frozen-backbone feature cache (rine, gendet)")
        run.add_argument("--save", help="write the final checkpoint (model, optimiser, history) here")
        run.set_defaults(func=train)


def train(args) -> int:
    command = COMMANDS[args.method]
    try:
        if args.data:
            index, overrides = scan(os.path.abspath(args.data), args.layout), {}
        else:
            root = ensure_synthetic(Path("aigid_data").absolute() / f"synthetic-{command.layout}", layout=command.layout)
            print(f"no --data: training on the SYNTHETIC stand-in at {root}")
            index, overrides = scan(root), dict(command.offline)
        config = command.config_cls.from_flat({**overrides, **parse_overrides(args.set)})
        command.check_data(config, index)
        trainer = command.trainer(config, index, args)
    except (DataError, BackboneError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    epochs = config.for_layout(index.layout).epochs
    print(f"{args.method} on {index.layout}{' (SYNTHETIC)' if index.synthetic else ''} at {index.root}")
    skipped = 0
    for report in trainer.run():
        summary = {k: round(v, 4) for k, v in report.items() if k in ("train/loss", "test/mean/acc", "test/mean/ap")}
        print(f"epoch {report['epoch']}/{epochs} step {report['step']}: {json.dumps(summary)}", flush=True)
        skipped = report.get("data/skipped_files", skipped)
    if skipped:
        print(f"skipped {skipped} unreadable image(s); see the warnings above")
    if args.save:
        torch.save(trainer.state_dict(), args.save)
        print(f"checkpoint written to {args.save}")
    return 0
