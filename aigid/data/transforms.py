"""Image -> tensor pipelines for CLIP-based detectors; classes only, so they pickle into
DataLoader workers and Ray trials."""
from __future__ import annotations

import torch
from PIL import Image
from torchvision import transforms as T

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def tile_to_size(img: Image.Image, size: int) -> Image.Image:
    """At least size x size, growing a too-small image by repeating its content. LoL: "Images
    that did not meet the minimum crop requirements were expanded by stitching repeated
    content"; unlike resizing, tiling keeps the pixel-level traces a detector looks for."""
    w, h = img.size
    if w >= size and h >= size:
        return img
    out = Image.new(img.mode, (max(w, size), max(h, size)))
    for top in range(0, out.height, h):
        for left in range(0, out.width, w):
            out.paste(img, (left, top))
    return out


class TileToSize:
    """tile_to_size as a transform."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"crop size must be >= 1, got {size}")
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        return tile_to_size(img, self.size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class RandomRot90:
    """Rotation by a random multiple of 90 degrees. The LoL paper says "rotation" without an
    angle; right angles are lossless, so no interpolation blurs the generator's artefacts."""

    _TURNS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)

    def __call__(self, img: Image.Image) -> Image.Image:
        turn = self._TURNS[int(torch.randint(4, (1,)))]  # torch RNG: seeded per DataLoader worker
        return img if turn is None else img.transpose(turn)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def train_transform(crop=224, *, flip=True, rotate=True, mean=CLIP_MEAN, std=CLIP_STD) -> T.Compose:
    steps = [TileToSize(crop), T.RandomCrop(crop)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if rotate:
        steps.append(RandomRot90())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def centre_crop_pixels(crop=224) -> T.Compose:
    """The test view as uint8 (3, crop, crop): tiled if small, centre-cropped, not yet scaled."""
    return T.Compose([TileToSize(crop), T.CenterCrop(crop), T.PILToTensor()])


def test_transform(crop=224, *, mean=CLIP_MEAN, std=CLIP_STD) -> T.Compose:
    """centre_crop_pixels, scaled to [0, 1] (as ToTensor) and normalised."""
    return T.Compose([*centre_crop_pixels(crop).transforms, T.ConvertImageDtype(torch.float32), T.Normalize(mean, std)])
