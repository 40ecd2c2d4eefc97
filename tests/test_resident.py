"""Feature rows held on the device: the rows asked for, in their order, read once per process; on the
CPU only up to a small budget, larger sets read from the memory map per batch (issue 23)."""

import numpy as np
import torch

from aigid import resident
from aigid.features import FeatureTable
from aigid.resident import resident_rows


def table(n: int, width: int = 3) -> FeatureTable:
    features = np.arange(n * 2 * width, dtype=np.float16).reshape(n, 2, width)
    return FeatureTable(tuple(f"img{i}.png" for i in range(n)), {"block_cls_ln2": features}, np.ones(n, bool))


def test_rows_come_in_the_order_asked_for_in_the_stored_dtype():
    t = table(10)
    rows = np.array([7, 2, 9, 2, 0])
    got = resident_rows(t, "block_cls_ln2", rows, "cpu")
    assert got.dtype == torch.float16 and torch.equal(got, torch.from_numpy(t.features["block_cls_ln2"][rows]))


def test_a_second_request_for_the_same_rows_is_not_read_again():
    t = table(10)
    first = resident_rows(t, "block_cls_ln2", np.array([1, 3]), "cpu")
    assert resident_rows(t, "block_cls_ln2", np.array([1, 3]), "cpu") is first
    assert resident_rows(t, "block_cls_ln2", np.array([3, 1]), "cpu") is not first  # other rows, another set


def test_a_table_mapped_again_from_the_store_finds_its_rows_loaded(tmp_path):
    """What a reused trial process sees: each trial unpickles the tables, which map the same store entry."""
    stored = table(6)
    stored.location = str(tmp_path / "entry")
    first = resident_rows(stored, "block_cls_ln2", np.arange(6), "cpu")
    again = FeatureTable(stored.paths, stored.features, stored.ok, stored.location)  # as __setstate__ re-opens it
    assert resident_rows(again, "block_cls_ln2", np.arange(6), "cpu") is first


def test_least_recently_used_sets_go_past_the_budget(monkeypatch):
    monkeypatch.setattr(resident, "_loaded", type(resident._loaded)())
    t = table(100, width=8)  # a set of 50 rows is 50 * 16 * 2 = 1600 bytes
    monkeypatch.setattr(resident, "CPU_BUDGET_BYTES", 3200)
    a = resident_rows(t, "block_cls_ln2", np.arange(50), "cpu")
    b = resident_rows(t, "block_cls_ln2", np.arange(50, 100), "cpu")
    assert resident_rows(t, "block_cls_ln2", np.arange(50), "cpu") is a  # a is now the most recent
    resident_rows(t, "block_cls_ln2", np.arange(25, 75), "cpu")  # over budget: b goes
    assert resident_rows(t, "block_cls_ln2", np.arange(50), "cpu") is a
    assert resident_rows(t, "block_cls_ln2", np.arange(50, 100), "cpu") is not b


def test_on_the_cpu_a_set_over_the_budget_is_read_from_the_map_per_batch_and_nothing_is_held(tmp_path, monkeypatch):
    monkeypatch.setattr(resident, "_loaded", type(resident._loaded)())
    monkeypatch.setattr(resident, "CPU_BUDGET_BYTES", 1000)  # a set of 50 rows of 2 x 8 float16 is 1600 bytes
    np.save(tmp_path / "rows.npy", table(100, width=8).features["block_cls_ln2"])
    stored = np.load(tmp_path / "rows.npy", mmap_mode="r")
    t = FeatureTable(tuple(f"img{i}.png" for i in range(100)), {"block_cls_ln2": stored}, np.ones(100, bool))
    rows = np.arange(99, 49, -1)
    got = resident_rows(t, "block_cls_ln2", rows, "cpu")
    assert not isinstance(got, torch.Tensor) and len(resident._loaded) == 0  # no copy of the set
    assert len(got) == 50 and got.dtype == torch.float16
    batch = torch.tensor([7, 0, 49])
    assert torch.equal(got[batch], torch.from_numpy(np.asarray(stored[rows[batch.numpy()]])))  # as a tensor's gather
    assert torch.equal(torch.cat(list(got.split(16))), torch.from_numpy(np.asarray(stored[rows])))  # scoring chunks
    small = resident_rows(t, "block_cls_ln2", np.arange(10), "cpu")  # under the budget: held, as before
    assert isinstance(small, torch.Tensor) and resident_rows(t, "block_cls_ln2", np.arange(10), "cpu") is small
