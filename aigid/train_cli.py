"""`aigid train lol`: one LoL run on one machine, no Ray, no MLflow — for debugging a config."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from aigid.data.layouts import LAYOUTS, DataError, scan
from aigid.data.synthetic import ensure_synthetic
from aigid.methods import lol
from aigid.overrides import parse_overrides


def add_train_commands(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one detector without Ray (a single run)")
    methods = parser.add_subparsers(dest="method", required=True)
    run = methods.add_parser("lol", help="Learning on Less: masked fine-tuning of a CLIP image encoder",
                             description="Without --data: the synthetic stand-in benchmark and a tiny random-init "
                                         "model. With --data: the paper's defaults (see aigid/methods/lol.py).")
    run.add_argument("--data", help="dataset root; default: the synthetic stand-in in ./aigid_data")
    run.add_argument("--layout", choices=LAYOUTS, help="override the auto-detected layout")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    run.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader workers")
    run.add_argument("--save", help="write the final checkpoint (model, optimiser, history) here")
    run.set_defaults(func=train_lol)


def train_lol(args) -> int:
    try:
        if args.data:
            index, overrides = scan(os.path.abspath(args.data), args.layout), {}
        else:
            root = ensure_synthetic(Path("aigid_data").absolute() / "synthetic-genimage", layout="genimage")
            print(f"no --data: training on the SYNTHETIC stand-in at {root}")
            index, overrides = scan(root), dict(lol.OFFLINE_OVERRIDES)
        config = lol.LoLConfig.from_flat({**overrides, **parse_overrides(args.set)})
        lol.check_data(config, index)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    trainer = lol.LoLTrainer(config, index, device=args.device, num_workers=args.workers)
    print(f"LoL on {index.layout}{' (SYNTHETIC)' if index.synthetic else ''}: {len(trainer.train_samples)} training "
          f"images, test subsets {', '.join(trainer.test_loaders)}")
    for report in trainer.run():
        summary = {k: round(v, 4) for k, v in report.items() if k in ("train/loss", "test/mean/acc", "test/mean/ap")}
        print(f"epoch {report['epoch']}/{config.epochs} step {report['step']}: {json.dumps(summary)}", flush=True)
    if trainer.skipped_files:
        print(f"skipped {trainer.skipped_files} unreadable image(s); see the warnings above")
    if args.save:
        torch.save(trainer.state_dict(), args.save)
        print(f"checkpoint written to {args.save}")
    return 0
