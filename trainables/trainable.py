"""The one Ray Tune trainable every method runs through, built from its MethodSpec.

Resources come from the trial (`{"cpu": c, "gpu": g}`): torch threads are capped to the
trial's CPUs, the trial runs on the GPU Ray assigned it (a fraction is also a memory cap),
and the method's trainer is driven epoch by epoch with a checkpoint at every epoch end.
"""
from __future__ import annotations

import ast
import json
import logging
import os
import tempfile
import time

import ray
import torch
from ray import tune

from aigid import checkpoints
from aigid.cache import FULL_DISK
from aigid.errors import StorageError
from aigid.data.synthetic import ensure_here
from aigid.methods.spec import MethodSpec, Trainer
from aigid.selection import SCORE, Selection

CHECKPOINT_FILE = "trainer.pt"
# What a trial has reported so far, beside its weights: Tune's count of results (`training_iteration`)
# and the epoch-end results, each with its count, and the mid-epoch evaluations (`steps`, LoL Fig. 2). A resumed trial's score needs the epochs, and the
# checkpoint is the one record of them that a killed driver cannot leave behind (trainables/recovery.py).
PROGRESS_FILE = "progress.json"
ITERATION = "training_iteration"
# An epoch-end checkpoint costs a save, an upload to storage and Tune bookkeeping (~30 ms here): for
# trials of sub-second epochs (a RINE head on cached features) that was a third of the sweep. A
# trial checkpoints at an epoch end once this long has passed since its last one, and always at
# its last epoch; a retry redoes at most this much work, and MLflow skips the steps it already has.
# AIGID_CHECKPOINT_EVERY_S=0 checkpoints every epoch (the fault tests kill trials mid-run).
CHECKPOINT_EVERY_S = float(os.environ.get("AIGID_CHECKPOINT_EVERY_S", 2.0))


def encode(flat: dict) -> dict:
    """Tuples as their repr: Tune's variant generator and Optuna's categoricals take scalars only."""
    return {k: repr(tuple(v)) if isinstance(v, (tuple, list)) else v for k, v in flat.items()}


def decode(config: dict) -> dict:
    """Undo `encode`."""
    return {k: ast.literal_eval(v) if isinstance(v, str) and v.startswith("(") else v for k, v in config.items()}


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


def drive(trainer: Trainer, config, selection: Selection) -> None:
    """Restore `trainer` from the trial's checkpoint if any, then report each result to Tune with
    its `score` (the method's selection rule over the epoch ends so far, this result included).

    Checkpoints are written at epoch ends only (see CHECKPOINT_EVERY_S), so a retried or
    resumed trial continues from a finished epoch.
    """
    flat, progress = config.to_flat(), {ITERATION: 0, "epochs": [], "steps": []}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            # A file aigid did not write fails this trial with one line; the other trials go on.
            trainer.load_state_dict(checkpoints.load(
                os.path.join(directory, CHECKPOINT_FILE), fix=f"aigid did not write it: delete {checkpoint.path} (the "
                "trial restarts from its previous checkpoint or from scratch) and let only trusted users write to --storage"))
            with open(os.path.join(directory, PROGRESS_FILE)) as f:
                progress = json.load(f)
    epochs, steps = progress["epochs"], progress.setdefault("steps", [])
    node = ray.get_runtime_context().get_node_id()  # several nodes may share an IP (one host, containers)
    last_checkpoint = time.monotonic()
    for result in trainer.run():
        progress[ITERATION] += 1  # Tune counts each report, from the restored checkpoint's count
        result = {**result, "node_id": node, SCORE: selection.score([*epochs, result], flat)}
        (epochs if result.get("epoch_end") else steps).append(
            {**{k: v for k, v in result.items() if isinstance(v, (int, float))}, ITERATION: progress[ITERATION]})
        due = result.get("epoch") >= config.epochs or (getattr(trainer, "checkpoints_mid_run", True)
                                                       and time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY_S)
        if not (result.get("epoch_end") and due):
            tune.report(result)
            continue
        with tempfile.TemporaryDirectory() as directory:
            checkpoints.save(trainer.state_dict(), os.path.join(directory, CHECKPOINT_FILE))
            with open(os.path.join(directory, PROGRESS_FILE), "w") as f:
                json.dump(progress, f)
            report_checkpoint(result, directory)
        last_checkpoint = time.monotonic()


def report_checkpoint(result: dict, directory: str) -> None:
    """`tune.report` with the checkpoint in `directory`; a --storage too full to take it fails the trial
    with one line (its size and where it went), not pyarrow's traceback."""
    try:
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
    except OSError as error:
        if error.errno not in FULL_DISK:
            raise
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(directory) for f in files)
        raise StorageError(f"--storage is full: this trial's {size}-byte checkpoint did not fit in "
                           f"{tune.get_context().get_trial_dir()}; free space and --resume the run "
                           "(finished trials are kept)") from None


def checkpoint_progress(checkpoint) -> dict | None:
    """The progress a checkpoint holds (`PROGRESS_FILE`), read alone: the weights beside it may be GBs."""
    try:
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{PROGRESS_FILE}") as f:
            return json.loads(f.read().decode())
    except FileNotFoundError:
        return None


def trainable_for(method: MethodSpec):
    """A function trainable for `method`: `train(config, index=..., shared=...)` inside a Tune trial."""

    def train(config: dict, index, shared: dict) -> None:
        ensure_here(index)
        device, workers = prepare_trial(*trial_resources())
        config = method.config_cls.from_flat(decode(config))  # resolved before launch (launcher.validate)
        drive(method.trainer(config, index, shared, device=device, num_workers=workers), config, method.selection)

    train.__name__ = train.__qualname__ = f"train_{method.name}"  # Ray names trials after it
    return train
