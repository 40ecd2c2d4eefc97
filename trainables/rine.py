"""RINE as a Ray Tune function trainable, with its frozen-feature pass run once per sweep.

`prepare_rine` runs on the driver before any trial: one Ray task (a whole GPU, or CPUs)
computes or reads from the disk cache every view set the grid needs; the tables reach
the trials through `tune.with_parameters` (Ray's object store: once per node), and each
trial trains only the small head on them.
"""
from __future__ import annotations

import ray
import torch

from aigid.data.layouts import DatasetIndex
from aigid.features import extract
from aigid.methods.rine import (
    OFFLINE_OVERRIDES, SMOKE_OVERRIDES, RINEConfig, RINETrainer, check_data, feature_requests,
)
from trainables.common import drive, prepare_trial, trial_resources
from trainables.method import Method

MAX_FEATURE_CPUS = 8


def train_rine(config: dict, index: DatasetIndex, features: dict) -> None:
    """One RINE trial: `config` is a flat dict of RINEConfig overrides; `features` come from the object store."""
    device, _ = prepare_trial(*trial_resources())
    drive(RINETrainer(RINEConfig.from_flat(config), index, features, device=device))


@ray.remote
def _extract_task(requests, cache_dir: str, cpus: int):
    torch.set_num_threads(cpus)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return extract(requests, cache_dir, device=device, batch_size=128 if device == "cuda" else 32,
                   num_workers=max(0, cpus - 1), log=lambda line: print(line, flush=True))


def prepare_rine(index: DatasetIndex, configs: list, *, cache_dir: str, gpus: float) -> dict:
    """Every view set of the grid, computed once (or read from `cache_dir`), as the trials' `features`."""
    requests = feature_requests(configs, index)
    cpus = max(1, min(MAX_FEATURE_CPUS, int(ray.available_resources().get("CPU", 1))))
    options = {"num_cpus": cpus, "num_gpus": 1 if gpus > 0 else 0}
    print(f"[aigid] feature pass: {len(requests)} view set(s) for {len(configs)} trials on "
          f"{'a GPU' if gpus > 0 else f'{cpus} CPU(s)'}, cache {cache_dir}", flush=True)
    tables, stats = ray.get(_extract_task.options(**options).remote(list(requests.values()), cache_dir, cpus))
    if stats["computed"]:
        print(f"[aigid] features computed once for {len(configs)} trials: {stats['computed']} view set(s) computed, "
              f"{stats['cached']} read from the cache", flush=True)
    else:
        print(f"[aigid] feature cache hit: all {stats['cached']} view set(s) read from {cache_dir}; "
              f"no backbone pass for {len(configs)} trials", flush=True)
    return {"features": dict(zip(requests, tables))}


RINE = Method(
    name="rine",
    config_cls=RINEConfig,
    trainable=train_rine,
    check_data=check_data,
    layout="ufd",
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=prepare_rine,
)
