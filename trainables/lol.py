"""LoL as a Ray Tune function trainable, with its test images decoded once per sweep.

LoL fine-tunes its backbone, so nothing but the decoding of its test images is shared
between trials: `prepare_lol` decodes every test image the grid evaluates on once (one Ray
task, into --cache-dir) and each trial memory-maps the crops instead of decoding them again
at every evaluation (aigid.data.decoded).
"""
from __future__ import annotations

import time
from collections import defaultdict

import ray
import torch

from aigid.data.decoded import decode_once
from aigid.data.layouts import DatasetIndex
from aigid.methods.lol import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, LoLConfig, LoLTrainer, check_data, select_test_samples
from trainables.common import drive, prepare_trial, trial_resources
from trainables.feature_pass import pass_cpus
from trainables.method import Method


def train_lol(config: dict, index: DatasetIndex, test_images: dict | None = None) -> None:
    """One LoL trial: `config` is a flat dict of LoLConfig overrides; `index` comes from the object store."""
    device, loader_workers = prepare_trial(*trial_resources())
    config = LoLConfig.from_flat(config)
    drive(LoLTrainer(config, index, device=device, num_workers=loader_workers,
                     test_images=(test_images or {}).get(config.crop)))


@ray.remote
def _decode_task(paths, crop: int, cache_dir: str, cpus: int):
    torch.set_num_threads(1)
    return decode_once(paths, crop, cache_dir, num_workers=max(0, cpus - 1), log=None)


def prepare_lol(index: DatasetIndex, configs: list, *, cache_dir: str, gpus: float) -> dict:
    """{"test_images": {crop: DecodedImages}}: the union of the grid's test images, decoded once per crop size."""
    paths = defaultdict(set)
    for config in configs:
        paths[config.crop] |= {s.path for samples in select_test_samples(index, config).values() for s in samples}
    cpus = pass_cpus()
    start = time.perf_counter()
    tasks = {crop: _decode_task.options(num_cpus=cpus).remote(sorted(p), crop, cache_dir, cpus)
             for crop, p in paths.items()}
    decoded = {crop: ray.get(task) for crop, task in tasks.items()}
    for crop, entry in decoded.items():
        print(f"[aigid] test images for {len(configs)} trials: {len(entry.paths)} centre crops of {crop} px decoded "
              f"once (or read back) in {time.perf_counter() - start:.0f} s, shared from {entry.root}", flush=True)
    return {"test_images": decoded}


LOL = Method(
    name="lol",
    config_cls=LoLConfig,
    trainable=train_lol,
    check_data=check_data,
    layout="genimage",
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=prepare_lol,
)
