"""Where a sweep's checkpoints live, and finding a sweep again to resume it."""
from __future__ import annotations

import os
import time
from pathlib import Path

import ray
from ray import tune

from aigid.errors import StorageError

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


def resolve_run(sweep_name: str, storage: str, name: str | None, resume: str | None) -> tuple[str, bool]:
    """(run name, resuming?). `--resume` alone picks this sweep's newest run under a local storage."""
    if resume is None:
        return name or f"{sweep_name}-{time.strftime('%Y%m%d-%H%M%S')}", False
    run = name if resume == "latest" and name else resume
    if run == "latest":
        if "://" in storage:
            raise StorageError("--resume with an object-store --storage needs the run's name: --resume NAME")
        candidates = sorted((p for p in Path(storage).glob(f"{sweep_name}-*") if tune.Tuner.can_restore(str(p))),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise StorageError(f"nothing to resume: no run of {sweep_name} under {storage}")
        run = candidates[-1].name
    if not tune.Tuner.can_restore(f"{storage}/{run}"):
        raise StorageError(f"cannot resume {storage}/{run}: no Tune experiment state there (check --storage and the name)")
    return run, True
