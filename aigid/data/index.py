"""The data model every reader produces: labelled image samples and queries over them.

Kept apart from the on-disk readers so trainers can pass an index around (it pickles)
without knowing which layout it came from.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aigid.errors import UserError

REAL, FAKE = 0, 1


class DataError(UserError):
    """A dataset path, layout or request that cannot be served; the message says the fix."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled image. A real image shared by several generator subsets appears once per subset."""

    path: str  # absolute path
    label: int  # 0 real, 1 fake
    subset: str  # normalised generator id ('sdv14', 'progan', 'adm', 'folder')
    split: str  # on-disk split name: 'train' | 'val' | 'test'
    group: str = ""  # UFD object class, DiffusionForensics scene, '' otherwise


def _sort_key(s: Sample) -> tuple[str, str, str, str, int]:
    return (s.path, s.subset, s.split, s.group, s.label)


@dataclass
class DatasetIndex:
    """All samples found under one dataset root, plus what looked wrong while reading it."""

    root: str
    layout: str
    synthetic: bool
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)
    train_split: str = "train"
    test_split: str = "test"
    # ensure_synthetic's arguments when the driver generated this stand-in itself (the offline default):
    # a node that does not share the driver's disk regenerates it at the same path (synthetic.ensure_here).
    stand_in: dict | None = None

    def splits(self) -> list[str]:
        return sorted({s.split for s in self.samples})

    def subsets(self, split: str) -> list[str]:
        """Sorted generator ids present in `split`."""
        self._check_split(split)
        return sorted({s.subset for s in self.samples if s.split == split})

    def select(self, split: str, subsets=None, labels=None, groups=None) -> list[Sample]:
        """Samples of one split filtered by subset/label/group, sorted by path so runs agree."""
        self._check_split(split)
        if subsets is not None:
            subsets = set(subsets)
            unknown = subsets - set(self.subsets(split))
            if unknown:
                raise DataError(
                    f"subset(s) {sorted(unknown)} not in split {split!r} of {self.root}; "
                    f"available: {self.subsets(split)}"
                )
        if labels is not None:
            labels = set(labels)
            if not labels <= {REAL, FAKE}:
                raise DataError(f"labels must be 0 (real) and/or 1 (fake), got {sorted(labels)}")
        groups = None if groups is None else set(groups)
        chosen = [
            s
            for s in self.samples
            if s.split == split
            and (subsets is None or s.subset in subsets)
            and (labels is None or s.label in labels)
            and (groups is None or s.group in groups)
        ]
        return sorted(chosen, key=_sort_key)

    def counts(self) -> dict[tuple[str, str, int], int]:
        """(subset, split, label) -> number of images."""
        return dict(Counter((s.subset, s.split, s.label) for s in self.samples))

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DataError(
                f"split {split!r} not found under {self.root} ({self.layout} layout); "
                f"available splits: {self.splits()}"
            )
