"""Image -> tensor pipelines for CLIP-based detectors; classes only, so they pickle into
DataLoader workers and Ray trials. Each method says how an image smaller than its crop is grown
(tiled or zero-padded: `SMALL_IMAGES` in its config module)."""
from __future__ import annotations

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

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


def pad_to_size(img: Image.Image, size: int) -> Image.Image:
    """At least size x size, a too-small image centred on zeros: what torchvision's CenterCrop does to
    an image smaller than its crop (the RINE and UnivFD authors' test view)."""
    return F.center_crop(img, [max(img.height, size), max(img.width, size)])


class TileToSize:
    """tile_to_size as a transform (`SMALL_IMAGES` "tile")."""

    grow = staticmethod(tile_to_size)

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"crop size must be >= 1, got {size}")
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        return self.grow(img, self.size)

    def __repr__(self) -> str:  # in the feature cache's key: a tiled view is another view than a padded one
        return f"{type(self).__name__}(size={self.size})"


class PadToSize(TileToSize):
    """pad_to_size as a transform (`SMALL_IMAGES` "pad")."""

    grow = staticmethod(pad_to_size)


# How a method grows an image smaller than its crop: a fact of each method, stated with its source
# as SMALL_IMAGES in the method's config module.
SMALL_IMAGES = {"tile": TileToSize, "pad": PadToSize}


def grow_to(small: str, size: int) -> TileToSize:
    """The step that brings an image up to the crop, by the method's `small` rule ("tile" or "pad")."""
    if small not in SMALL_IMAGES:
        raise ValueError(f"small-image rule must be one of {sorted(SMALL_IMAGES)}, got {small!r}")
    return SMALL_IMAGES[small](size)


class RandomRot90:
    """Rotation by a random multiple of 90 degrees. The LoL paper says "rotation" without an
    angle; right angles are lossless, so no interpolation blurs the generator's artefacts."""

    _TURNS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)

    def __call__(self, img: Image.Image) -> Image.Image:
        turn = self._TURNS[int(torch.randint(4, (1,)))]  # torch RNG: seeded per DataLoader worker
        return img if turn is None else img.transpose(turn)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def train_transform(crop=224, *, small: str, flip=True, rotate=True, mean=CLIP_MEAN, std=CLIP_STD) -> T.Compose:
    """An image smaller than `crop` grown by the method's `small` rule, randomly cropped, flipped, rotated."""
    steps = [grow_to(small, crop), T.RandomCrop(crop)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if rotate:
        steps.append(RandomRot90())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def centre_crop_pixels(crop=224, *, small: str) -> T.Compose:
    """The test view as uint8 (3, crop, crop): grown by the `small` rule if small, centre-cropped, not yet scaled."""
    return T.Compose([grow_to(small, crop), T.CenterCrop(crop), T.PILToTensor()])


def test_transform(crop=224, *, small: str, mean=CLIP_MEAN, std=CLIP_STD) -> T.Compose:
    """centre_crop_pixels, scaled to [0, 1] (as ToTensor) and normalised."""
    return T.Compose([*centre_crop_pixels(crop, small=small).transforms, T.ConvertImageDtype(torch.float32),
                      T.Normalize(mean, std)])
