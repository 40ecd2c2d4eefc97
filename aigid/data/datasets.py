"""Decode images into tensors for training, surviving the odd broken file in a large benchmark."""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from aigid.data import perturb as perturbations
from aigid.data.index import DataError, Sample

_DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# The largest images the papers use are Synthbuster's RAISE photographs (RINE §4.5, ten-crop "due to the
# images' size"), about 4928x3264 = 16 Mpx; GenImage's largest (Midjourney) are 1024x1024. 40 Mpx (an
# 8K UHD frame is 33 Mpx) leaves room above them and bounds a decode at 120 MB of RGB per DataLoader worker;
# a 12000x12000 file (432 MB) is skipped like an unreadable one instead. PIL's own limit (89 Mpx, with only
# a warning below 179 Mpx) is higher.
MAX_PIXELS = 40_000_000
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class UnreadableImage(DataError):
    """A file that cannot be decoded (truncated, garbage, unsupported)."""

    def __init__(self, path, reason: str):
        super().__init__(str(path), reason)  # args kept so the error pickles out of worker processes
        self.path, self.reason = str(path), reason

    def __str__(self) -> str:
        return f"cannot read image {self.path}: {self.reason}"


class UnreadableImageWarning(UserWarning):
    """Emitted once per unreadable file that a dataset skips."""


def _deep_to_rgb(img: Image.Image) -> Image.Image:
    """16/32-bit grey and float images scaled (not clipped, as PIL's convert does) to 8 bits."""
    a = np.asarray(img).astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if img.mode.startswith("I;16"):
        lo, hi = 0.0, 65535.0
    elif img.mode == "I" and lo >= 0 and hi <= 65535:  # 32-bit container: use the usual depth that holds it
        lo, hi = 0.0, 255.0 if hi <= 255 else 65535.0
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        lo, hi = 0.0, 1.0
    grey = np.round((a - lo) * (255.0 / max(hi - lo, 1e-12))).clip(0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as RGB. Alpha is dropped, not composited: the colour channels are what
    the generator wrote, and compositing on a background would invent new pixel statistics."""
    if img.mode in _DEEP_MODES:
        return _deep_to_rgb(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # a palette with transparency must pass through RGBA
    if img.mode in _ALPHA_MODES:
        img = img.convert("RGBA")
    return img.convert("RGB")  # RGBA drops alpha; L, 1, P, CMYK, YCbCr map as PIL defines


def open_image(path) -> Image.Image:
    """PIL's lazy image (its header read, no pixels decoded), refused above MAX_PIXELS before any decode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS says it, in one line
        img = Image.open(path)
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise ValueError(f"{img.width}x{img.height} px is over aigid's limit of {MAX_PIXELS / 1e6:.0f} Mpx "
                         "(aigid.data.datasets.MAX_PIXELS); downscale it to use it")
    return img


def load_rgb(path) -> Image.Image:
    """Decode fully (so truncation shows up here, not in a transform) and return RGB."""
    try:
        with open_image(path) as img:
            img.load()
            return _to_rgb(img)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error... per plugin
        raise UnreadableImage(path, f"{type(exc).__name__}: {exc}") from exc


class ImageDataset(Dataset):
    """Samples -> (image tensor, label); an unreadable file gives None so its batch survives. Each image is
    first perturbed by `perturb`, drawn per path relative to `root` (aigid.data.perturb): the transform
    alone cannot, as it never sees the path."""

    def __init__(self, samples: list[Sample], transform, *, perturb: str = perturbations.NONE, perturb_seed: int = 0,
                 root: str = ""):
        self.samples = list(samples)
        self.transform = transform
        self.perturb, self.perturb_seed, self.root = perturb, perturb_seed, root
        self._warned: set[str] = set()  # per process: each DataLoader worker warns on its own

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        sample = self.samples[i]
        try:
            img = load_rgb(sample.path)
        except UnreadableImage as exc:
            if sample.path not in self._warned:
                self._warned.add(sample.path)
                warnings.warn(f"skipping {exc}", UnreadableImageWarning, stacklevel=2)
            return None
        img = perturbations.apply(self.perturb, img, seed=self.perturb_seed, path=sample.path, root=self.root)
        return self.transform(img), sample.label


def collate_skip_bad(batch) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(images, float32 labels, number of unreadable items dropped). An all-bad batch gives
    empty tensors, so callers test `labels.numel()` before a forward pass."""
    good = [item for item in batch if item is not None]
    skipped = len(batch) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.float32), skipped
    images = torch.stack([image for image, _ in good])
    labels = torch.tensor([label for _, label in good], dtype=torch.float32)
    return images, labels, skipped


class IndexedImages(Dataset):
    """paths[i] -> (i, view(image, path)), or (i, None) for an unreadable file (warned), so a reader
    (the feature cache, the decoded test images) can write each result to its own row."""

    def __init__(self, paths, view: Callable[[Image.Image, str], torch.Tensor]):
        self.paths, self.view = paths, view

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            image = load_rgb(self.paths[i])
        except UnreadableImage as error:
            warnings.warn(f"skipping {error}", UnreadableImageWarning, stacklevel=2)
            return i, None
        return i, self.view(image, self.paths[i])


def collate_indexed(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Batches of (row, tensor or None): the rows and stacked tensors of the readable items
    (None when none was), so a reader writes each result back to its own row."""
    good = [(i, x) for i, x in batch if x is not None]
    if not good:
        return torch.empty(0, dtype=torch.long), None
    return torch.tensor([i for i, _ in good]), torch.stack([x for _, x in good])


def make_loader(samples, transform, batch_size, *, shuffle, num_workers=0, seed=0, drop_last=False,
                **perturbation) -> DataLoader:
    """A DataLoader whose shuffling (and, with workers, augmentation) is fixed by `seed`; `perturbation`:
    ImageDataset's perturb, perturb_seed and root.

    With num_workers=0 the augmentations draw from torch's global RNG: seed it with
    torch.manual_seed for repeatable runs.
    """
    if not samples:
        raise DataError("no samples to load; check the split/subset/label selection passed to DatasetIndex.select")
    return DataLoader(
        ImageDataset(samples, transform, **perturbation),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_skip_bad,
        generator=torch.Generator().manual_seed(seed),
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
