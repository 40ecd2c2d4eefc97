"""A resumed sweep restores each trial from a checkpoint that exists.

Tune deletes a trial's older checkpoint as soon as it registers a newer one (`num_to_keep`), and
writes the experiment state that names the newer one a moment later. A driver killed in between
leaves a state naming a deleted checkpoint, and the resumed Tune then fails that trial on restore
("does not exist on storage anymore"), even one that had finished. Before the first trial starts,
`CheckpointRepair` points such trials at the newest checkpoint in their folder, with Tune's count of
results that the checkpoint itself records (trainables/trainable.py, PROGRESS_FILE).
"""
from __future__ import annotations

import json

import pyarrow.fs
from ray import tune
from ray.train._internal.session import _TrainingResult
from ray.tune.result import EXPR_RESULT_FILE

from trainables.trainable import ITERATION, checkpoint_progress

CHECKPOINT_PREFIX = "checkpoint_"  # Tune's trial-folder names: checkpoint_000000, checkpoint_000001, ...


class CheckpointRepair(tune.Callback):
    def __init__(self):
        self.checked = False

    def on_step_begin(self, iteration, trials, **info):
        if not self.checked:  # the first step of a run: before any trial's actor (and its restore) starts
            self.checked = True
            for trial in trials:
                repair(trial)


def exists(fs: pyarrow.fs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def repair(trial) -> None:
    """Point `trial` at its newest checkpoint on storage when the one Tune recorded is gone."""
    manager = trial.run_metadata.checkpoint_manager
    latest = manager.latest_checkpoint_result
    if latest is None or exists(latest.checkpoint.filesystem, latest.checkpoint.path):
        return
    fs = latest.checkpoint.filesystem
    folders = fs.get_file_info(pyarrow.fs.FileSelector(trial.path))
    names = sorted(f.base_name for f in folders
                   if f.type == pyarrow.fs.FileType.Directory and f.base_name.startswith(CHECKPOINT_PREFIX))
    newest = None
    for name in reversed(names):  # a checkpoint whose upload the kill cut short has no progress file
        checkpoint = tune.Checkpoint(f"{trial.path}/{name}", filesystem=fs)
        progress = checkpoint_progress(checkpoint)
        if progress is not None:
            newest = (name, checkpoint, progress)
            break
    # Tune's own bookkeeping has no public setter: these are the fields register_checkpoint sets.
    if newest is None:
        manager._latest_checkpoint_result, manager._checkpoint_results = None, []
        print(f"[aigid] {trial}: its checkpoint is gone and none is left; it starts again", flush=True)
    else:
        name, checkpoint, progress = newest
        metrics = {**(progress["epochs"][-1] if progress["epochs"] else {}), ITERATION: progress[ITERATION]}
        result = _TrainingResult(checkpoint=checkpoint, metrics=metrics)
        manager._latest_checkpoint_result, manager._checkpoint_results = result, [result]
        trial.storage.current_checkpoint_index = int(name[len(CHECKPOINT_PREFIX):])  # the next one follows it
        print(f"[aigid] {trial}: its recorded checkpoint was deleted before the killed driver saved its state;"
              f" restoring from {name}", flush=True)
    trial.invalidate_json_state()
    trial.run_metadata.invalidate_cache()


def reported(trial) -> list[dict]:
    """Every result `trial` reported, once each, in order: Tune's result file on storage, completed
    from the trial's checkpoint with the epochs a killed driver wrote there but never synced."""
    try:
        with trial.storage.storage_filesystem.open_input_stream(f"{trial.path}/{EXPR_RESULT_FILE}") as f:
            rows = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
    except FileNotFoundError:
        rows = []
    progress = checkpoint_progress(trial.checkpoint) if trial.checkpoint is not None else None
    by_iteration = {row[ITERATION]: row for row in (progress or {}).get("epochs", [])}
    by_iteration.update({row[ITERATION]: {k: v for k, v in row.items() if k != "config"} for row in rows if ITERATION in row})
    return [by_iteration[i] for i in sorted(by_iteration)]
