"""What the on-disk caches (the feature store, the decoded test images) share: an entry is written in a
hidden partial folder after checking that --cache-dir has room for it, its arrays are checksummed
as they are streamed out, and the sums are checked before the entry is read again.

Why a full CRC-32 and not a sample: one overwritten byte anywhere in a table changes a trial's
features, and a sample of blocks misses most such damage. The check streams each file once per sweep
(in the preparation, never per trial) in less time than one full read of the array (0.7x on a
2 GiB RINE ViT-L/14 view set, benchmarks/RESULTS.md, Checksums); the trials then read the same pages
from the page cache. Summing while writing costs nothing measurable next to the writes.
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import socket
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from aigid.errors import StorageError

SEAL = "checksums.json"  # written last: {file name: [bytes, crc32]} of every other file of the entry
CHUNK = 1 << 24
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
_PARTIAL = re.compile(r"\.[^.]+\.(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}\.partial")  # partial_folder's names


def crc32_of(path: Path) -> int:
    """CRC-32 of a whole file, streamed in 16 MiB chunks (flat memory whatever its size)."""
    crc, buffer = 0, bytearray(CHUNK)
    with open(path, "rb", buffering=0) as file:
        while n := file.readinto(buffer):
            crc = zlib.crc32(memoryview(buffer)[:n], crc)
    return crc


class RowsFile:
    """An `.npy` of (n, *shape) rows written block by block in row order, its CRC-32 summed as written."""

    def __init__(self, path: Path, n: int, shape: tuple, dtype):
        self.path, self.dtype, self.crc = Path(path), np.dtype(dtype), 0
        self.file = open(self.path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (n, *shape)}
        np.lib.format.write_array_header_1_0(self, header)  # through write(): summed like the rows

    def write(self, data) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.file.write(data)

    def append(self, block: np.ndarray) -> None:
        self.write(np.ascontiguousarray(block, dtype=self.dtype).reshape(-1).view(np.uint8))

    def close(self) -> tuple[int, int]:
        """(bytes, crc32) of the file."""
        self.file.close()
        return self.path.stat().st_size, self.crc


def seal(folder: Path, streamed: dict[str, tuple[int, int]] | None = None) -> None:
    """Write the entry's checksums, or add those of files written since: `streamed` (from RowsFile.close),
    any other file summed now (small ones: ok.npy, meta.json)."""
    sums = json.loads((folder / SEAL).read_text()) if (folder / SEAL).is_file() else {}
    sums.update(streamed or {})
    for path in sorted(folder.iterdir()):
        if path.name != SEAL and path.name not in sums:
            sums[path.name] = (path.stat().st_size, crc32_of(path))
    (folder / SEAL).write_text(json.dumps(sums))


def damage(folder: Path, names: Iterable[str] | None = None) -> str | None:
    """What is wrong with a sealed entry (a file missing, of another size, or with other bytes), or None;
    only its files `names` when given (a reader that trusts those alone need not read the rest)."""
    try:
        sums = json.loads((folder / SEAL).read_text())
    except (OSError, ValueError) as error:
        return f"no readable {SEAL}: {error}"
    for name in sums if names is None else names:
        if name not in sums:
            return f"{name} is not among the sealed files"
        size, crc = sums[name]
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
        if crc32_of(path) != crc:
            return f"{name} has other bytes than were written (CRC-32 differs)"
    return None


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def no_room(cache_dir: Path, need: int | None, free: int) -> StorageError:
    """`need` None: the disk was full before the pass knew its size (it could not create its folder)."""
    writes = f"writes {need} bytes ({_size(need)})" if need is not None else "could not even create its folder"
    return StorageError(
        f"--cache-dir {cache_dir} is full: this pass {writes} there and {free} bytes ({_size(free)}) are free; "
        "free space there or pass a --cache-dir with room (entries already stored are kept, and a rerun "
        "computes only the rest)")


def check_room(cache_dir: Path, need: int) -> None:
    """A StorageError naming the bytes needed when `cache_dir` has less free space than `need`."""
    free = shutil.disk_usage(cache_dir).free
    if free < need:
        raise no_room(cache_dir, need, free)


@contextmanager
def disk_full_is_an_error(cache_dir: Path, need: Callable[[], int | None]):
    """A full disk met while writing (another writer took the room after `check_room`) becomes the same
    one line as `check_room`'s, instead of a traceback."""
    try:
        yield
    except OSError as error:
        if error.errno not in FULL_DISK:
            raise
        raise no_room(cache_dir, need(), shutil.disk_usage(cache_dir).free) from None


def partial_folder(cache_dir: Path, name: str) -> Path:
    """A fresh hidden folder to write entry `name` into, named by host and process so that a later
    pass can tell it from a live writer's (`remove_dead_partials`)."""
    folder = cache_dir / f".{name}.{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.partial"
    folder.mkdir(parents=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_partials(cache_dir: Path) -> list[str]:
    """Remove partial folders left by killed passes of this host (their process is gone), so they do not
    hold disk space forever; another host's are left to it. Returns the removed folders' names."""
    host, removed = socket.gethostname(), []
    for folder in Path(cache_dir).glob(".*.partial"):
        owner = _PARTIAL.fullmatch(folder.name)
        if owner and owner["host"] == host and not _alive(int(owner["pid"])):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
