"""Feature rows held on a trial's device, loaded once per worker process and kept across its trials.

A head trained on cached features (RINE) reads the same rows every epoch and, in a sweep, every
trial at another (q, d', ξ) of the same view set reads them again. Gathering each batch from the
memory-mapped store costs a random read and a host-to-device copy per step; instead a trial's rows
are read once into one tensor on its device, in the stored dtype (float16: exact, and half the
bytes of float32), and a batch is an index gather there. Tune reuses trial processes
(`reuse_actors`, trainables/run.py), so the next trial in the same process finds them loaded.

On the CPU the "device" is the host memory the page cache already maps the store into: a copy
there saves only a gather per batch, and copies of the paper's sets (GiBs per worker) would make
memory grow with the dataset. So the CPU holds sets only up to a small budget; a larger set is
read from the map batch by batch (`MappedRows`), and memory stays flat however large the data.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict

import numpy as np
import torch

from aigid.features import FeatureTable

# What one process keeps loaded on a GPU, in bytes (least recently used sets go first; the set in use
# always stays). 16 GiB holds the paper's 4-class training view and the 20 test sets (144K and ~110K
# rows of 24 x 1024 float16 = 6.9 + 5.3 GB) together; AIGID_RESIDENT_GIB lowers it for fractional GPUs.
BUDGET_BYTES = int(float(os.environ.get("AIGID_RESIDENT_GIB", 16)) * 2**30)
# On the CPU: the synthetic stand-in and benchmarks/heads.py's shapes fit, the paper's sets do not.
CPU_BUDGET_BYTES = int(float(os.environ.get("AIGID_RESIDENT_CPU_GIB", 1)) * 2**30)
_loaded: OrderedDict[tuple, tuple[FeatureTable, torch.Tensor]] = OrderedDict()


def _read(stored: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`stored[rows]`, read front to back through the store, then put in the order asked for."""
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *stored.shape[1:]), dtype=stored.dtype)
    out[order] = stored[rows[order]]
    return out


class MappedRows:
    """`stored[rows]` on the CPU without a copy: indexed with a batch of positions, or split into
    chunks, like the tensor `resident_rows` returns; each batch is read from the map when asked for."""

    def __init__(self, stored: np.ndarray, rows: np.ndarray):
        self.stored, self.rows = stored, np.asarray(rows)
        self.dtype = torch.from_numpy(np.empty(0, stored.dtype)).dtype

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.stored.shape[1:])

    def __getitem__(self, positions) -> torch.Tensor:
        return torch.from_numpy(_read(self.stored, self.rows[np.asarray(positions)]))

    def split(self, size: int):
        return (self[np.arange(i, min(i + size, len(self)))] for i in range(0, len(self), size))


def resident_rows(table: FeatureTable, output: str, rows: np.ndarray, device) -> torch.Tensor | MappedRows:
    """`table.features[output][rows]` as one tensor on `device`, read from the store the first time only
    (on the CPU, a set over CPU_BUDGET_BYTES as `MappedRows`, read per batch)."""
    device, stored, rows = torch.device(device), table.features[output], np.asarray(rows)
    budget = CPU_BUDGET_BYTES if device.type == "cpu" else BUDGET_BYTES
    if device.type == "cpu" and len(rows) * stored[:1].nbytes > budget:
        return MappedRows(stored, rows)
    key = (table.location or id(table), output, str(device), hashlib.sha1(rows.tobytes()).hexdigest())
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key][1]
    tensor = torch.from_numpy(_read(stored, rows)).to(device)
    _loaded[key] = (table, tensor)  # the table stays alive with its rows: its id is not reused while cached
    here = [k for k in _loaded if k[2] == str(device)]  # oldest first; each device against its own budget
    while sum(_loaded[k][1].nbytes for k in here) > budget and len(here) > 1:
        del _loaded[here.pop(0)]
    return tensor
