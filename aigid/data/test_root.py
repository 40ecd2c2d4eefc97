"""A config's `test_root`: the dataset a trial is scored on when it is not the one it trains on.

APN Table 3 (DiffusionForensics across scenes), RINE Table 6 (Synthbuster) and GenDet Tables 6-7
(CogView2, StyleGAN, IF) train on one dataset and test on another. Offline, `test_root="synthetic"`
writes (or reuses) a small stand-in of the layout the table tests on, beside the synthetic training set.
"""
from __future__ import annotations

from pathlib import Path

from aigid.data.index import DataError, DatasetIndex
from aigid.data.layouts import scan
from aigid.data.synthetic import ensure_synthetic

SYNTHETIC_TEST_ROOT = "synthetic"  # the test_root value of the offline stand-in


def open_test_root(test_root: str | None, index: DatasetIndex, *, stand_in: str, layout: str, what: str,
                   scan_as: str | None = None, **synthetic) -> DatasetIndex | None:
    """The scanned dataset at `test_root` (None without one). "synthetic" is a `layout` stand-in in the folder
    `stand_in` beside a synthetic `index` (`synthetic`: ensure_synthetic's seed/n_train/n_test); with real
    training data it is refused, naming `what` the root should be. `scan_as` fixes the layout scanned."""
    if test_root is None:
        return None
    root = test_root
    if root == SYNTHETIC_TEST_ROOT:
        if not index.synthetic:
            raise DataError(f"test_root='{SYNTHETIC_TEST_ROOT}' pairs only with the synthetic training stand-in; "
                            f"pass test_root=<{what}>")
        root = ensure_synthetic(Path(index.root).parent / stand_in, layout=layout, **synthetic)
    return scan(root, scan_as)
