"""A feature-cache method's offline grid with the frozen-feature cache vs. per-trial extraction.

--method rine: the 48-trial grid of `python sweeps/rine_grid.py`; --method gendet: the
9-trial grid of `python sweeps/gendet_margin_alpha.py`. Both arms run in this one process,
on the same synthetic UFD stand-in, tiny ViT and offline preset as the sweep, without Ray
(the ratio measures the feature pass, not the scheduler). Cached: every view set computed
once into an empty cache, then every trial trained on it. Per-trial: each trial extracts its
own features (as a naive sweep would) and trains. Prints both times and `speedup: <ratio>x`.

--backbone swaps the tiny ViT for a paper-sized one at random init (the same compute as its
CLIP weights, which cannot be downloaded here), e.g. ViT-L-14 with --trials 2.

    python benchmarks/feature_cache.py [--method rine|gendet] [--trials N] [--threads T] [--backbone NAME]
"""
import argparse
import dataclasses
import importlib
import sys
import tempfile
import time
from pathlib import Path

import torch

from aigid.data.layouts import scan
from aigid.data.synthetic import ensure_synthetic
from aigid.features import extract
from aigid.methods import gendet, rine
from trainables.arguments import parse_settings
from trainables.launcher import base_overrides
from trainables.sweep import expand

SWEEPS = {"rine": (rine, "rine_grid"), "gendet": (gendet, "gendet_margin_alpha")}  # method -> (package, sweep script)


def grid_configs(script: str, index) -> tuple:
    """(method spec, configs): the sweep script's offline grid, resolved on `index` as its trials are."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sweeps"))
    sweep = importlib.import_module(script).SWEEP
    points = expand(sweep, True, base_overrides(sweep, parse_settings(sweep, [])), 1)
    return sweep.method, [sweep.method.resolve(point, index) for point in points]


def train(trainer_cls, config, index, features):
    for _ in trainer_cls(config, index, {"features": features}).run():
        pass


def cached(method, trainer_cls, configs, index, cache_dir):
    requests = method.feature_requests(configs, index)
    tables, _ = extract(list(requests.values()), cache_dir, log=None)
    features = dict(zip(requests, tables))
    for config in configs:
        train(trainer_cls, config, index, features)


def per_trial(method, trainer_cls, configs, index):
    for config in configs:
        requests = method.feature_requests([config], index)
        tables, _ = extract(list(requests.values()), None, log=None)
        train(trainer_cls, config, index, dict(zip(requests, tables)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=sorted(SWEEPS), default="rine")
    parser.add_argument("--trials", type=int, default=0, help="first N trials of the grid (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--backbone", help="open_clip ViT at random init instead of aigid-tiny-vit, e.g. ViT-L-14")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    method, script = SWEEPS[args.method]
    index = scan(ensure_synthetic("aigid_data/synthetic-ufd", layout="ufd"), "ufd")
    spec, configs = grid_configs(script, index)
    trainer_cls, configs = spec.trainer_cls, configs[: args.trials or None]
    if args.backbone:
        configs = [dataclasses.replace(c, backbone=args.backbone, pretrained=None) for c in configs]
    print(f"{args.method}: {len(configs)} trials, {len(index.samples)} images (synthetic UFD stand-in), backbone "
          f"{configs[0].backbone}, {configs[0].epochs} epochs per trial, {args.threads} torch threads", flush=True)
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        cached(method, trainer_cls, configs, index, cache_dir)
        with_cache = time.perf_counter() - start
    print(f"cached grid (features once, then {len(configs)} trials): {with_cache:.1f} s", flush=True)
    start = time.perf_counter()
    per_trial(method, trainer_cls, configs, index)
    without = time.perf_counter() - start
    print(f"per-trial extraction grid: {without:.1f} s", flush=True)
    print(f"speedup: {without / with_cache:.1f}x")


if __name__ == "__main__":
    main()
