"""RINE's training view (§4.2), the CNNDetection recipe as the authors implement it.

mever-team/rine `data_augment` + `get_transforms`: Gaussian blur with probability 0.5 and
σ ~ U[0, 3] (scipy's gaussian_filter per channel); JPEG with probability 0.5 at quality 30
or 100; then random crop 224 without resizing, horizontal flip 0.5, CLIP normalisation.
Differences, both documented choices: JPEG is always PIL's encoder (the authors pick
OpenCV or PIL at random; both are libjpeg at the same quality), and an image smaller than
the crop is grown by the method's `small` rule (RINE's SMALL_IMAGES: zero-padded, as the
authors' test CenterCrop does; their RandomCrop would fail; ProGAN images are 256 px).
All randomness comes from the `rng` passed in, so a cached view is reproducible per image.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torchvision.transforms import functional as F

from aigid.data.artefacts import jpeg_roundtrip, to_uint8
from aigid.data.transforms import CLIP_MEAN, CLIP_STD, grow_to


class CNNDetectionAugment:
    """(PIL image, numpy Generator) -> normalised (3, crop, crop) tensor."""

    def __init__(self, crop: int = 224, *, small: str, blur_prob=0.5, blur_sigma=(0.0, 3.0), jpeg_prob=0.5,
                 jpeg_quality=(30, 100), flip_prob=0.5, mean=CLIP_MEAN, std=CLIP_STD):
        self.crop, self.blur_prob, self.blur_sigma = crop, blur_prob, tuple(blur_sigma)
        self.small, self.grow = small, grow_to(small, crop)
        self.jpeg_prob, self.jpeg_quality, self.flip_prob = jpeg_prob, tuple(jpeg_quality), flip_prob
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        pixels = np.asarray(img)
        if rng.random() < self.blur_prob:
            sigma = rng.uniform(*self.blur_sigma)
            pixels = gaussian_filter(pixels, sigma=(sigma, sigma, 0))  # per channel, uint8 out, as the authors
        if rng.random() < self.jpeg_prob:
            pixels = to_uint8(jpeg_roundtrip(pixels / 255.0, int(rng.choice(self.jpeg_quality))))
        img = self.grow(Image.fromarray(pixels))
        top = int(rng.integers(0, img.height - self.crop + 1))
        left = int(rng.integers(0, img.width - self.crop + 1))
        img = img.crop((left, top, left + self.crop, top + self.crop))
        if rng.random() < self.flip_prob:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return F.normalize(F.to_tensor(img), self.mean, self.std)

    def __repr__(self) -> str:
        return (f"CNNDetectionAugment(crop={self.crop}, small={self.small!r}, blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, "
                f"jpeg_prob={self.jpeg_prob}, jpeg_quality={self.jpeg_quality}, flip_prob={self.flip_prob}, "
                f"mean={self.mean}, std={self.std})")
