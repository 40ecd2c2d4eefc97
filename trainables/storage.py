"""Where a sweep's checkpoints live, and finding a sweep again to resume it."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow.fs
import ray
from ray import tune

from aigid.errors import StorageError

SETTINGS_FILE = "aigid_sweep.json"  # in the run's folder: what its trials were asked for, written before any pass
# Filesystems that every node of a cluster can mount at the same path.
SHARED_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "glusterfs", "beegfs", "fuse")


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding `path` (longest mount point that contains it)."""
    target, best, kind = os.path.realpath(path), "", "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best, kind = point, fields[2]
    return kind


def node_local(path: str, declared_shared: bool) -> tuple[str, int] | None:
    """(filesystem type, alive nodes) when `path` cannot be shared by this cluster's nodes: more
    than one node, a filesystem that is not a network one, and not declared shared; else None."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    kind = filesystem_type(path) if os.path.exists("/proc/mounts") else "unknown"
    if len(nodes) > 1 and not declared_shared and not kind.startswith(SHARED_FILESYSTEMS):
        return kind, len(nodes)
    return None


def check_shared_storage(storage: str, declared_shared: bool) -> str:
    """The storage location to give Tune; refuse a node-local path on a multi-node cluster.

    Trials that move between nodes (a retry after a node died) read their checkpoints back
    from storage, so it must be the same for every node: an object store URI or a network
    filesystem mounted at the same path everywhere.
    """
    if "://" in storage:
        return storage
    path = os.path.abspath(storage)
    unshared = node_local(path, declared_shared)
    if unshared:
        raise StorageError(
            f"--storage {path} is on a node-local filesystem ({unshared[0]}) but this Ray cluster has {unshared[1]} nodes: "
            "a trial retried on another node could not read its checkpoints. Pass a shared location: "
            "an object store URI (--storage s3://bucket/aigid or gs://...), or a network filesystem mounted at "
            "the same path on every node (NFS, EFS, Filestore); if this path is such a mount, add --shared-storage."
        )
    return path


def check_shared_cache(cache_dir: str, declared_shared: bool) -> str:
    """The feature store's folder; refuse a node-local one on a multi-node cluster, where trials on
    other nodes memory-map the entries the pass wrote (a path every node mounts, not a URI)."""
    path = os.path.abspath(cache_dir)
    unshared = node_local(path, declared_shared)
    if unshared:
        raise StorageError(
            f"--cache-dir {path} is on a node-local filesystem ({unshared[0]}) but this Ray cluster has {unshared[1]} nodes: "
            "trials on other nodes could not read the frozen features. Pass a network filesystem mounted at the "
            "same path on every node (NFS, EFS, Filestore); if this path is such a mount, add --shared-storage.")
    return path


def settings_path(storage: str, run: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The run's settings file on its filesystem (a local folder or an object store URI)."""
    fs, root = pyarrow.fs.FileSystem.from_uri(storage if "://" in storage else os.path.abspath(storage))
    return fs, f"{root}/{run}/{SETTINGS_FILE}"


def has_trial_state(storage: str, run: str) -> bool:
    """Whether Tune saved the run's trials (an experiment_state file): a run stopped before that, in its
    preparation or by a full --storage at its first step, has only Tune's tuner.pkl and restarts its Tuner."""
    fs, path = settings_path(storage, run)
    folder = path.rsplit("/", 1)[0]
    try:
        found = fs.get_file_info(pyarrow.fs.FileSelector(folder))
    except FileNotFoundError:
        return False
    return any(f.base_name.startswith("experiment_state-") for f in found)


def stored_settings(storage: str, run: str) -> dict | None:
    """The settings the run was started with, or None if it never got that far."""
    fs, path = settings_path(storage, run)
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def store_settings(storage: str, run: str, settings: dict) -> None:
    """Record a run's settings in its folder before any work: they mark the run as started (a
    killed preparation can be resumed) and a resume compares the new command's with them."""
    fs, path = settings_path(storage, run)
    fs.create_dir(path.rsplit("/", 1)[0])
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(settings, indent=1, sort_keys=True, default=list).encode())


def check_unchanged(run: str, stored: dict, new: dict) -> None:
    """Refuse to resume `run` under settings other than its own: Tune would keep the old trials'
    configs and silently ignore the change, or fail them against the newly prepared features."""
    new = json.loads(json.dumps(new, default=list))  # as stored: tuples become lists
    diff = [f"{key}: {stored.get(key, '(unset)')} -> {new.get(key, '(unset)')}"
            for key in sorted(set(stored) | set(new)) if stored.get(key) != new.get(key)]
    if diff:
        raise StorageError(f"--resume {run} with other settings than it was started with ({'; '.join(diff)}); "
                           "repeat its original options, or start a new --name")


def started(storage: str, run: str) -> bool:
    """Whether a run of this name was begun under `storage` (its settings file, or a Tune state
    of a run begun before settings files were written)."""
    return stored_settings(storage, run) is not None or tune.Tuner.can_restore(f"{storage}/{run}")


def taken(run: str) -> StorageError:
    return StorageError(f"{run} exists; --resume {run} or a new --name (a second set of trials under one run "
                        "would mix in its MLflow parent)")


def resolve_run(sweep_name: str, storage: str, name: str | None, resume: str | None) -> tuple[str, bool]:
    """(run name, resuming?). `--resume` alone picks this sweep's newest run under a local storage;
    a new run may not take the name of one that exists. A default name ends in the process id, so two
    sweeps started in the same second (from a script) get two runs, not one folder."""
    if resume is None:
        run = name or f"{sweep_name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        if started(storage, run):
            raise taken(run)
        return run, False
    run = name if resume == "latest" and name else resume
    if run == "latest":
        if "://" in storage:
            raise StorageError("--resume with an object-store --storage needs the run's name: --resume NAME")
        candidates = sorted((p for p in Path(storage).glob(f"{sweep_name}-*") if started(storage, p.name)),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise StorageError(f"nothing to resume: no run of {sweep_name} under {storage}")
        run = candidates[-1].name
    if not started(storage, run):
        raise StorageError(f"cannot resume {storage}/{run}: no run of that name there (check --storage and the name)")
    return run, True


def _folder_bytes(path: str) -> int:
    return sum(entry.stat().st_size for entry in Path(path).rglob("*") if entry.is_file())


class StorageRoom(tune.Callback):
    """Stops a sweep before a local --storage fills up, instead of letting every later checkpoint fail
    (and Tune retry its state sync forever). Room is checked every few seconds against twice the largest
    trial checkpoint seen so far plus a margin for Tune's own state; when it runs short the driver stops
    as if killed, keeping every finished trial, and `--resume` after freeing space runs the rest."""

    MARGIN = 1 << 20  # Tune's experiment state and the trials' result files

    def __init__(self, storage: str, every_s: float = 2.0):
        self.path = None if "://" in storage else storage  # an object store reports no free space
        self.every_s, self.checked, self.largest = every_s, 0.0, 0
        self.error: StorageError | None = None

    @property
    def need(self) -> int:
        return 2 * self.largest + self.MARGIN

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if self.path is not None and os.path.isdir(checkpoint.path):
            self.largest = max(self.largest, _folder_bytes(checkpoint.path))

    def on_step_begin(self, iteration, trials, **info):
        if self.path is None or time.monotonic() - self.checked < self.every_s:
            return
        self.checked = time.monotonic()
        free = shutil.disk_usage(self.path).free
        if free < self.need:
            self.error = StorageError(
                f"--storage {self.path} is full: {free} bytes free, the next checkpoints need about {self.need} "
                "(twice the largest so far, plus Tune's state); the sweep stopped there with every finished trial "
                "kept: free space and run the same command with --resume")
            raise self.error
