"""The frozen-backbone pass a feature-cache method (RINE, GenDet) runs once per sweep.

Before any trial, one Ray task (a whole GPU, or up to 8 CPUs) computes, or reads from the
disk cache, every view set the grid needs; the tables then reach the trials through
`tune.with_parameters` (Ray's object store: once per node), and each trial trains only its
small heads on them.
"""
from __future__ import annotations

from typing import Callable

import ray
import torch

from aigid.data.index import DatasetIndex
from aigid.features import FeatureRequest, extract
from trainables.common import drive, prepare_trial, trial_resources
from trainables.method import Method

MAX_FEATURE_CPUS = 8


def pass_cpus() -> int:
    """CPUs for a once-per-sweep pass: up to MAX_FEATURE_CPUS, but no more than the largest node has
    (a task cannot span nodes; asking for the cluster's total would never be scheduled)."""
    largest = max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]), default=1)
    return max(1, min(MAX_FEATURE_CPUS, int(largest)))


@ray.remote
def _extract_task(requests, cache_dir: str, cpus: int):
    torch.set_num_threads(cpus)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return extract(requests, cache_dir, device=device, batch_size=128 if device == "cuda" else 32,
                   num_workers=max(0, cpus - 1), log=lambda line: print(line, flush=True))


def feature_pass(requests: dict[tuple, FeatureRequest], n_trials: int, *, cache_dir: str, gpus: float) -> dict:
    """{view-set name: FeatureTable} for `requests`, computed once (or read from `cache_dir`)."""
    cpus = pass_cpus()
    options = {"num_cpus": cpus, "num_gpus": 1 if gpus > 0 else 0}
    print(f"[aigid] feature pass: {len(requests)} view set(s) for {n_trials} trials on "
          f"{'a GPU' if gpus > 0 else f'{cpus} CPU(s)'}, cache {cache_dir}", flush=True)
    tables, stats = ray.get(_extract_task.options(**options).remote(list(requests.values()), cache_dir, cpus))
    if stats["computed"]:
        print(f"[aigid] features computed once for {n_trials} trials: {stats['computed']} view set(s) computed, "
              f"{stats['cached']} read from the cache", flush=True)
    else:
        print(f"[aigid] feature cache hit: all {stats['cached']} view set(s) read from {cache_dir}; "
              f"no backbone pass for {n_trials} trials", flush=True)
    return dict(zip(requests, tables))


def feature_cache_method(*, name: str, config_cls: type, trainer_cls: type, check_data: Callable,
                         feature_requests: Callable[[list, DatasetIndex], dict], layout: str, offline: dict,
                         smoke: dict, early_stopping: bool = True) -> Method:
    """A Method whose trials train heads on cached frozen-backbone features (RINE, GenDet).

    Its prepare hook runs `feature_pass` over `feature_requests(configs, index)` before any
    trial; each trial builds `trainer_cls(config, index, features, device=...)` and drives it.
    """

    def prepare(index: DatasetIndex, configs: list, *, cache_dir: str, gpus: float) -> dict:
        return {"features": feature_pass(feature_requests(configs, index), len(configs), cache_dir=cache_dir, gpus=gpus)}

    def train(config: dict, index: DatasetIndex, features: dict) -> None:
        device, _ = prepare_trial(*trial_resources())
        drive(trainer_cls(config_cls.from_flat(config), index, features, device=device))

    train.__name__ = train.__qualname__ = f"train_{name}"  # Ray names trials after it
    return Method(name=name, config_cls=config_cls, trainable=train, check_data=check_data, layout=layout,
                  offline=offline, smoke=smoke, prepare=prepare, early_stopping=early_stopping)
