"""Evaluation images decoded once per sweep and shared by every trial that tests on them.

LoL fine-tunes its backbone, so its test images cannot be reduced to cached features, but
every trial of a grid decodes and centre-crops the same files at every evaluation. Here
they are decoded once into a uint8 array of centre crops on disk (keyed by the files'
paths, sizes and mtimes, like the feature cache; written into a temporary folder that is
renamed into place whole, its checksums checked before each sweep reads it, aigid.cache).
Trials memory-map it: the page cache keeps one copy per node
and no trial decodes a test image again. Normalisation stays with the reader, so one
entry serves every backbone that uses the same crop.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from aigid.cache import (SEAL, RowsFile, check_room, damage, disk_full_is_an_error, partial_folder,
                         remove_dead_partials, seal)
from aigid.data import perturb as perturbations
from aigid.data.datasets import IndexedImages, collate_indexed
from aigid.data.files import content_key
from aigid.data.transforms import centre_crop_pixels
from aigid.progress import PassProgress

VERSION = 2  # 2: entries carry checksums
IMAGES, OK = "images.npy", "ok.npy"


@dataclass(frozen=True)
class DecodedImages:
    """An entry on disk: `images.npy` (N, 3, crop, crop) uint8 and `ok.npy` (N,) bool, row i = paths[i]."""

    root: str
    paths: tuple[str, ...]
    crop: int

    def available(self) -> bool:
        """False on a node that cannot see the entry (a node-local --cache-dir on a cluster)."""
        return (Path(self.root) / SEAL).is_file()

    def open(self) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """(memory-mapped images, ok mask, row of each path)."""
        images = np.load(Path(self.root) / IMAGES, mmap_mode="r")
        return images, np.load(Path(self.root) / OK), {p: i for i, p in enumerate(self.paths)}


class _Pixels:
    """(image, path) -> the uint8 test view of the (perturbed) image (picklable for DataLoader workers)."""

    def __init__(self, crop: int, small: str, perturb: str, perturb_seed: int, root: str):
        self.transform = centre_crop_pixels(crop, small=small)
        self.perturb, self.perturb_seed, self.root = perturb, perturb_seed, root

    def __call__(self, image, path: str) -> torch.Tensor:
        image = perturbations.apply(self.perturb, image, seed=self.perturb_seed, path=path, root=self.root)
        return self.transform(image)


def decode_once(paths, crop: int, cache_dir, *, small: str, num_workers: int = 0, batch_size: int = 64,
                log: Callable[[str], None] | None = print, perturb: str = perturbations.NONE, perturb_seed: int = 0,
                root: str = "") -> DecodedImages:
    """The entry for `paths` at `crop` (images smaller grown by the `small` rule, aigid.data.transforms),
    each first perturbed by `perturb` (drawn per path relative to the dataset `root`, aigid.data.perturb):
    read if present and its checksums hold, else decoded now (and stored; a StorageError naming the
    bytes needed when --cache-dir lacks room)."""
    paths, cache_dir = tuple(sorted(set(paths))), Path(cache_dir)
    described = {"version": VERSION, "what": "uint8 centre crops", "crop": crop, "small": small}
    perturbed = perturbations.described(perturb, perturb_seed, root)
    key = content_key({**described, "perturb": perturbed} if perturbed else described, paths)
    folder = cache_dir / f"decoded-{key}"
    entry = DecodedImages(str(folder), paths, crop)
    note = log or warnings.warn  # a damaged or leftover entry is said even when progress is not
    if folder.is_dir():
        problem = damage(folder)
        if problem is None:
            if log:
                log(f"[aigid] test images: {len(paths)} centre crops read from {folder}, decoded by no trial")
            return entry
        note(f"[aigid] decoded test images {folder} are damaged ({problem}): decoding them again")
        shutil.rmtree(folder, ignore_errors=True)
    need = len(paths) * (3 * crop * crop + 1)
    with disk_full_is_an_error(cache_dir, lambda: need):
        cache_dir.mkdir(parents=True, exist_ok=True)
        for leftover in remove_dead_partials(cache_dir):
            note(f"[aigid] removed {leftover} from {cache_dir}: left by a killed decoding pass")
        check_room(cache_dir, need)
        pixels = _Pixels(crop, small, perturb, perturb_seed, root)
        _decode_into(partial_folder(cache_dir, folder.name), entry, pixels, num_workers, batch_size, log)
    return entry


def _decode_into(partial: Path, entry: DecodedImages, pixels: _Pixels, num_workers: int, batch_size: int, log) -> None:
    """Stream the entry's crops into `partial` in row order, seal it and rename it into place."""
    paths, crop, root = entry.paths, entry.crop, entry.root
    try:
        images = RowsFile(partial / IMAGES, len(paths), (3, crop, crop), np.uint8)
        ok = np.zeros(len(paths), dtype=bool)
        loader = DataLoader(IndexedImages(paths, pixels), batch_size=batch_size, num_workers=num_workers,
                            collate_fn=collate_indexed)
        start, progress = time.perf_counter(), PassProgress("test images decoded", len(paths), log)
        for first, (rows, batch) in zip(range(0, len(paths), batch_size), loader):  # in row order (no shuffle)
            block = np.zeros((min(batch_size, len(paths) - first), 3, crop, crop), np.uint8)
            if batch is not None:
                block[rows.numpy() - first] = batch.numpy()
                ok[rows.numpy()] = True
            images.append(block)
            progress.advance(first + len(block))
        streamed = {IMAGES: images.close()}
        np.save(partial / OK, ok)
        seal(partial, streamed)
        try:
            os.rename(partial, root)
        except OSError:  # another process stored the same entry first: theirs is as good
            if not entry.available():
                raise
        if log:
            log(f"[aigid] test images: {len(paths)} decoded once for every trial ({int(ok.sum())} readable) in "
                f"{time.perf_counter() - start:.0f} s, stored in {root}")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
