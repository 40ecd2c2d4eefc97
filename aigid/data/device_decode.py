"""JPEGs decoded on the feature pass's device (issue 23, item 2): torchvision's `decode_jpeg`, a batch
at a time (nvjpeg on CUDA), then the view's fixed steps (grow, centre crop, scale, normalise) as tensor
ops there, instead of PIL in the DataLoader workers.

Only a view set that is a fixed view (no random crop) and not perturbed can move: a perturbation and an
augmentation are PIL operations drawn per path. Loader workers still read each file's header (the
pixel limit, the format) and its bytes; a file that is not an RGB or grey JPEG (a PNG, a CMYK JPEG) is
decoded and viewed in the worker as before, and a JPEG the device cannot decode is retried in this
process with PIL, so an unreadable file is skipped exactly as `IndexedImages` skips it.

On the CPU torchvision's libjpeg-turbo gives PIL's pixels (tests/test_device_decode.py: bit-identical
features). nvjpeg does not: torchvision runs it with default flags, which upsample 4:2:0 chroma by
nearest neighbour where libjpeg interpolates, a systematic colour difference at the pixel level these
detectors read. A grid would then see the clean test images through another decoder than its
training images and its perturbed tests, so the sweeps decode on the GPU only when asked
(AIGID_DEVICE_DECODE=1, `SharedFeatures`), and the store keys each table on its decoder
(`FeatureRequest.decode_device`). Whole images are decoded before the crop: a batch of large photos
takes GBs of GPU memory. (`decode_jpeg` is deprecated since torchvision 0.29 in favour of TorchCodec;
the pinned 0.29 has it.)
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import functional as F

from aigid.data.datasets import IndexedImages, open_image
from aigid.data.transforms import PadToSize, TileToSize

JPEG_MODES = ("RGB", "L")  # what decode_jpeg turns into RGB as PIL's convert("RGB") does (CMYK differs)
ELEMENTWISE = (T.ConvertImageDtype, T.Normalize)  # the same on a batch as on each of its images


def _tile(image: torch.Tensor, size: int) -> torch.Tensor:
    """`tile_to_size` on a (C, H, W) tensor: the image repeated from the top left, cut at the grown size."""
    _, h, w = image.shape
    height, width = max(h, size), max(w, size)
    return image.repeat(1, math.ceil(height / h), math.ceil(width / w))[:, :height, :width]


def _pad(image: torch.Tensor, size: int) -> torch.Tensor:
    """`pad_to_size` on a tensor: the same torchvision centre crop, which zero-pads a small image."""
    return F.center_crop(image, [max(image.shape[1], size), max(image.shape[2], size)])


def tensor_steps(transform) -> list | None:
    """A fixed view's transform as steps on a decoded (3, H, W) uint8 tensor, or None where a step has no
    exact tensor form (then the view set decodes with PIL)."""
    steps = []
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, PadToSize):  # before TileToSize: PadToSize is one
            steps.append(lambda image, size=step.size: _pad(image, size))
        elif isinstance(step, TileToSize):
            steps.append(lambda image, size=step.size: _tile(image, size))
        elif isinstance(step, (T.CenterCrop, *ELEMENTWISE)):
            steps.append(step)  # torchvision's own, the same arithmetic on tensors as on PIL images
        elif not isinstance(step, T.PILToTensor):  # decode_jpeg gives what PILToTensor gives
            return None
    return steps


class EncodedImages(Dataset):
    """paths[i] -> (i, True, the file's bytes) for a JPEG the device decodes, else `IndexedImages`'
    (i, False, the view decoded here) or (i, False, None) for an unreadable file."""

    def __init__(self, paths, view):
        self.paths, self.decoded_here = paths, IndexedImages(paths, view)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            with open_image(self.paths[i]) as image:  # the header only; refused above the pixel limit
                jpeg = image.format == "JPEG" and image.mode in JPEG_MODES
            if jpeg:
                return i, True, torch.frombuffer(bytearray(Path(self.paths[i]).read_bytes()), dtype=torch.uint8)
        except Exception:  # noqa: BLE001 -- IndexedImages says what is wrong with the file, and skips it
            pass
        row, view = self.decoded_here[i]
        return row, False, view


def collate_encoded(batch) -> tuple[torch.Tensor, list]:
    """The rows and (encoded, tensor) items of a batch's readable files."""
    good = [(i, encoded, x) for i, encoded, x in batch if x is not None]
    return torch.tensor([i for i, _, _ in good], dtype=torch.long), [(encoded, x) for _, encoded, x in good]


class DeviceDecoder:
    """A batch of `collate_encoded` -> (its rows, their views stacked on `device`): JPEGs decoded there in
    one call, each grown and cropped by `tensor_steps`, the crops scaled and normalised as one batch; a
    JPEG the device refuses is decoded by `decoded_here` (PIL, in this process)."""

    def __init__(self, transform, decoded_here: IndexedImages, device):
        steps, self.decoded_here, self.device = tensor_steps(transform), decoded_here, torch.device(device)
        if steps is None:
            raise ValueError(f"{transform!r} has a step with no tensor form: decode this view set with PIL")
        # the steps up to the last that is not elementwise (the crop) run per image, whose sizes differ
        last_sized = max((k for k, step in enumerate(steps) if not isinstance(step, ELEMENTWISE)), default=-1)
        self.per_image, self.per_batch = steps[:last_sized + 1], steps[last_sized + 1:]

    def _decode(self, data: list[torch.Tensor]) -> list[torch.Tensor | None]:
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:  # one bad file fails the whole call: find it
            if len(data) == 1:
                return [None]
            return [image for one in data for image in self._decode([one])]

    def _crop(self, image: torch.Tensor) -> torch.Tensor:
        for step in self.per_image:
            image = step(image)
        return image

    def _finish(self, crops: torch.Tensor) -> torch.Tensor:
        for step in self.per_batch:
            crops = step(crops)
        return crops

    def __call__(self, rows: torch.Tensor, items: list) -> tuple[torch.Tensor, torch.Tensor | None]:
        encoded = iter(self._decode([x for is_jpeg, x in items if is_jpeg]) if any(e for e, _ in items) else [])
        kept, crops, slots = [], [], []  # a slot: the index of its crop, or a view decoded by PIL
        for row, (is_jpeg, x) in zip(rows.tolist(), items):
            image = next(encoded) if is_jpeg else None
            if image is not None:
                crops.append(self._crop(image))
                slots.append(len(crops) - 1)
                kept.append(row)
                continue
            view = x if not is_jpeg else self.decoded_here[row][1]  # decoded in the worker, or refused here
            if view is not None:
                slots.append(view.to(self.device, non_blocking=True))
                kept.append(row)
        if not kept:
            return torch.empty(0, dtype=torch.long), None
        finished = self._finish(torch.stack(crops)) if crops else None
        views = [finished[slot] if isinstance(slot, int) else slot for slot in slots]
        return torch.tensor(kept, dtype=torch.long), torch.stack(views)
