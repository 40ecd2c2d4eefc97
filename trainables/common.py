"""What every method's trainable does the same way inside a Ray Tune trial.

Resources come from the trial (`{"cpu": c, "gpu": g}`): torch threads are capped to the
trial's CPUs, the trial runs on the GPU Ray assigned it (a fraction is also a memory cap),
and a trainer is driven epoch by epoch with a checkpoint at every epoch end.
"""
from __future__ import annotations

import logging
import os
import tempfile

import ray
import torch
from ray import tune

CHECKPOINT_FILE = "trainer.pt"


def trial_resources() -> tuple[float, float]:
    """(cpus, gpus) this trial was admitted with."""
    resources = tune.get_context().get_trial_resources().required_resources
    return float(resources.get("CPU", 1)), float(resources.get("GPU", 0))


def prepare_trial(cpus: float, gpus: float) -> tuple[torch.device, int]:
    """Pick the device and DataLoader workers for a trial; cap torch threads to its CPU share.

    One CPU goes to the training loop; the rest decode images in DataLoader workers, so
    concurrent trials do not oversubscribe the node.
    """
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # no "Checkpoint created" line per epoch
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    loader_workers = max(0, threads - 1)
    if gpus > 0 and torch.cuda.is_available():
        device = torch.device("cuda", 0)  # Ray sets CUDA_VISIBLE_DEVICES to this trial's GPU
        if gpus < 1:
            # A fractional GPU only controls admission; keep this trial inside its share of memory.
            torch.cuda.set_per_process_memory_fraction(gpus, device)
        return device, loader_workers
    return torch.device("cpu"), loader_workers


def drive(trainer) -> None:
    """Restore `trainer` from the trial's checkpoint if any, then report each result to Tune.

    A trainer has `run()` (yields flat metric dicts, each with `epoch_end`), `state_dict()`
    and `load_state_dict()`. Checkpoints are written at epoch ends only, so a retried or
    resumed trial continues from its last finished epoch.
    """
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.load_state_dict(torch.load(os.path.join(directory, CHECKPOINT_FILE), weights_only=False))
    node = ray.get_runtime_context().get_node_id()  # several nodes may share an IP (one host, containers)
    for result in trainer.run():
        result = {**result, "node_id": node}
        if not result.get("epoch_end"):
            tune.report(result)
            continue
        with tempfile.TemporaryDirectory() as directory:
            torch.save(trainer.state_dict(), os.path.join(directory, CHECKPOINT_FILE))
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
