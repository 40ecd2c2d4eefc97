"""A resumed sweep finds its state whole and restores each trial from a checkpoint that exists.

Tune writes its experiment state on the driver and copies it into --storage in place; a driver
killed during that copy leaves a state file cut short, and the resume fails. `repair_state_files`
puts back the intact copy the killed driver left on this machine (Ray's session folder).

Tune deletes a trial's older checkpoint as soon as it registers a newer one (`num_to_keep`), and
writes the experiment state that names the newer one a moment later. A driver killed in between
leaves a state naming a deleted checkpoint, and the resumed Tune then fails that trial on restore
("does not exist on storage anymore"), even one that had finished. Before the first trial starts,
`CheckpointRepair` points such trials at the newest checkpoint in their folder, with Tune's count of
results that the checkpoint itself records (trainables/trainable.py, PROGRESS_FILE).
"""
from __future__ import annotations

import glob
import json
import os
import pickletools
import shutil

import pyarrow.fs
from ray import tune
from ray.train._internal.session import _TrainingResult
from ray.tune.result import EXPR_RESULT_FILE

from aigid.errors import StorageError
from trainables.trainable import ITERATION, checkpoint_progress

PICKLE_START = b"\x80"  # the PROTO opcode every pickle since protocol 2 begins with
CHECKPOINT_PREFIX = "checkpoint_"  # Tune's trial-folder names: checkpoint_000000, checkpoint_000001, ...


def intact(path: str) -> bool:
    """Whether a Tune state file reads back whole: JSON (the trials), or a pickle under a .json name
    (the search algorithm's state), whose opcodes are walked to its end without running any."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:1] == PICKLE_START:
            list(pickletools.genops(data))  # every opcode up to STOP, decoded and none run
        else:
            json.loads(data)
    except Exception:  # a file cut short fails in its decoder, whatever the format's own error type
        return False
    return True


def repair_state_files(run_dir: str, ray_temp_dir: str) -> None:
    """Replace each of the run's top-level state files (the trials', the search's) that does not read
    back with the newest intact copy in a Ray session's staging folder of this run; a one-line error
    when there is none."""
    if "://" in run_dir:
        return  # an object store writes each object whole
    run = os.path.basename(os.path.normpath(run_dir))
    for path in sorted(glob.glob(os.path.join(run_dir, "*.json"))):
        if intact(path):
            continue
        name = os.path.basename(path)
        staged = glob.glob(os.path.join(ray_temp_dir, "session_*", "artifacts", "*", run, "driver_artifacts", name))
        copies = sorted((c for c in staged if intact(c)), key=os.path.getmtime)
        if not copies:
            raise StorageError(f"cannot resume {run_dir}: its Tune state file {name} was cut short when the driver "
                               "was killed and no intact copy is left on this machine; run the sweep again under a "
                               "new --name (the finished trials stay in MLflow)")
        shutil.copyfile(copies[-1], f"{path}.repair")
        os.replace(f"{path}.repair", path)
        print(f"[aigid] {name} was cut short when the driver was killed; restored the copy it left in "
              f"{os.path.dirname(copies[-1])}", flush=True)


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
    from the trial's checkpoint with the results (epoch ends and mid-epoch evaluations) a killed driver
    wrote there but never synced."""
    try:
        with trial.storage.storage_filesystem.open_input_stream(f"{trial.path}/{EXPR_RESULT_FILE}") as f:
            lines = f.read().decode().splitlines()
    except FileNotFoundError:
        lines = []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a copy a killed driver cut short
            pass
    progress = checkpoint_progress(trial.checkpoint) if trial.checkpoint is not None else None
    saved = [*(progress or {}).get("epochs", []), *(progress or {}).get("steps", [])]
    by_iteration = {row[ITERATION]: row for row in saved}
    by_iteration.update({row[ITERATION]: {k: v for k, v in row.items() if k != "config"} for row in rows if ITERATION in row})
    return [by_iteration[i] for i in sorted(by_iteration)]
