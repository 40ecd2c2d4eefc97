"""RINE's 48-trial grid with the frozen-feature cache vs. per-trial feature extraction.

Both arms run in this one process, on the same synthetic UFD stand-in, tiny ViT and
offline preset as `python sweeps/rine_grid.py`, without Ray (the ratio measures the
feature pass, not the scheduler). Cached: every view set computed once into an empty
cache, then 48 heads trained on it. Per-trial: each trial extracts its own features (as
a naive sweep would, the paper's way of training) and trains its head. Prints both
times and `speedup: <ratio>x`.

    python benchmarks/rine_feature_cache.py [--trials N] [--threads T]
"""
import argparse
import itertools
import tempfile
import time

import torch

from aigid.data.layouts import scan
from aigid.data.synthetic import ensure_synthetic
from aigid.features import extract
from aigid.methods.rine import OFFLINE_OVERRIDES, RINEConfig, RINETrainer, feature_requests


def grid_configs():
    """The offline grid of sweeps/rine_grid.py: q × d' (scaled to the tiny ViT) × ξ."""
    return [RINEConfig.from_flat({**OFFLINE_OVERRIDES, "q": q, "proj_dim": d, "xi": xi})
            for q, d, xi in itertools.product([1, 2, 4], [8, 16, 32, 64], [0.1, 0.2, 0.4, 0.8])]


def train(config, index, features):
    for _ in RINETrainer(config, index, features).run():
        pass


def cached(configs, index, cache_dir):
    requests = feature_requests(configs, index)
    tables, _ = extract(list(requests.values()), cache_dir, log=None)
    features = dict(zip(requests, tables))
    for config in configs:
        train(config, index, features)


def per_trial(configs, index):
    for config in configs:
        requests = feature_requests([config], index)
        tables, _ = extract(list(requests.values()), None, log=None)
        train(config, index, dict(zip(requests, tables)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=48, help="first N trials of the grid (default all 48)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = grid_configs()[: args.trials]
    index = scan(ensure_synthetic("aigid_data/synthetic-ufd", layout="ufd"), "ufd")
    print(f"{len(configs)} trials, {len(index.samples)} images (synthetic UFD stand-in), backbone aigid-tiny-vit, "
          f"{OFFLINE_OVERRIDES['epochs']} epochs, {args.threads} torch threads", flush=True)
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        cached(configs, index, cache_dir)
        with_cache = time.perf_counter() - start
    print(f"cached grid (features once, then {len(configs)} heads): {with_cache:.1f} s", flush=True)
    start = time.perf_counter()
    per_trial(configs, index)
    without = time.perf_counter() - start
    print(f"per-trial extraction grid: {without:.1f} s", flush=True)
    print(f"speedup: {without / with_cache:.1f}x")


if __name__ == "__main__":
    main()
