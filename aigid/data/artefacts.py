"""Synthetic images: natural-looking "real" ones and "fake" ones carrying one generator-like
artefact family each. Families that share a mechanism (up-sampling, smoothing, blocks)
partly transfer to each other, so cross-generator accuracy varies as in the real benchmarks.

Image makers take a numpy Generator and return float32 (h, w, 3) arrays in [0, 1].
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def _freq_radius(h: int, w: int) -> np.ndarray:
    return np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])


def _pink_noise(rng: np.random.Generator, h: int, w: int, channels: int, alpha: float) -> np.ndarray:
    """Gaussian fields with a 1/f^alpha amplitude spectrum (natural images: alpha ~ 1)."""
    f = _freq_radius(h, w).astype(np.float32)
    f[0, 0] = 1.0 / max(h, w)
    shape = (channels, *f.shape)
    noise = rng.standard_normal((2, *shape), dtype=np.float32)
    spectrum = (noise[0] + 1j * noise[1]) / f**alpha
    fields = np.fft.irfft2(spectrum, s=(h, w), axes=(1, 2))
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    return fields / fields.std(axis=(1, 2), keepdims=True)


def _shapes(rng: np.random.Generator, img: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """Paint a few textured ellipses and rectangles: objects with sharp and soft edges."""
    h, w, _ = img.shape
    for _ in range(rng.integers(2, 7)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.08, 0.35) * h, rng.uniform(0.08, 0.35) * w
        box = np.s_[max(int(cy - ry), 0): min(int(cy + ry) + 1, h), max(int(cx - rx), 0): min(int(cx + rx) + 1, w)]
        yy, xx = np.ogrid[box]
        dy, dx = np.abs(yy - cy) / ry, np.abs(xx - cx) / rx
        dist = np.hypot(dy, dx) if rng.random() < 0.5 else np.maximum(dy, dx)
        softness = rng.uniform(0.01, 0.15)
        mask = (np.clip((1.0 - dist) / softness, 0.0, 1.0) * rng.uniform(0.6, 1.0))[:, :, None]
        colour = rng.uniform(0.05, 0.95, 3) + 0.08 * texture[box][:, :, None]
        img[box] = img[box] * (1 - mask) + colour * mask
    return img


def natural_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1/f colour noise (luminance-dominated, like photos) under a few objects, plus sensor noise."""
    lum, chroma_a, chroma_b = _pink_noise(rng, h, w, 3, rng.uniform(0.9, 1.3))
    base = rng.uniform(0.25, 0.75, 3).astype(np.float32)
    img = (
        base
        + np.float32(rng.uniform(0.08, 0.16)) * lum[:, :, None]
        + 0.04 * chroma_a[:, :, None] * np.array([1.0, -0.5, -0.5], np.float32)
        + 0.04 * chroma_b[:, :, None] * np.array([0.0, 1.0, -1.0], np.float32)
    )
    img = _shapes(rng, img, lum)
    img += rng.uniform(0.005, 0.015) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)  # numpy < 2 computes FFTs in float64


# ---------------------------------------------------------------- building blocks
def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur by multiplying the spectrum (periodic borders, fine for textures)."""
    h, w, _ = img.shape
    gain = np.exp(-2 * (np.pi * sigma * _freq_radius(h, w)) ** 2).astype(np.float32)[:, :, None]
    return np.fft.irfft2(np.fft.rfft2(img, axes=(0, 1)) * gain, s=(h, w), axes=(0, 1))


def _nearest_up(img: np.ndarray, factor: int, h: int, w: int) -> np.ndarray:
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)[:h, :w]


def _bilinear_up(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize (half-pixel centres, as in PIL and torch align_corners=False)."""

    def taps(n_out: int, n_in: int):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), (pos - lo).astype(np.float32)

    y0, y1, wy = taps(h, img.shape[0])
    x0, x1, wx = taps(w, img.shape[1])
    rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def _block_mean(img: np.ndarray, k: int) -> np.ndarray:
    h, w, c = img.shape
    return img[: h - h % k, : w - w % k].reshape(h // k, k, w // k, k, c).mean(axis=(1, 3))


def _grain(rng, h, w, low, high):
    """White noise of a std drawn from [low, high]: residue a real camera pipeline would not leave."""
    return rng.uniform(low, high) * rng.standard_normal((h, w, 3), dtype=np.float32)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buf), dtype=np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------- artefact families
def _nearest(rng, h, w):  # ADM-like: pixel-repeating up-sampling
    return _nearest_up(natural_image(rng, h // 2, w // 2), 2, h, w)


def _checkerboard(rng, h, w):  # GAN transposed convolutions: uneven kernel overlap per output phase
    img = _blur(natural_image(rng, h, w), 0.5)
    phase_gain = 1.0 + rng.uniform(0.12, 0.18) * np.array([[1.0, -0.6], [-0.6, 0.2]])
    return img * np.tile(phase_gain, (h // 2 + 1, w // 2 + 1))[:h, :w, None]


def _spectral_peaks(rng, h, w):  # periodic up-sampler residue: peaks at fixed frequencies
    yy, xx = np.ogrid[:h, :w]
    pattern = sum(
        amp * np.cos(2 * np.pi * yy / period + rng.uniform(0, 2 * np.pi))
        * np.cos(2 * np.pi * xx / period + rng.uniform(0, 2 * np.pi))
        for period, amp in ((4, 0.06), (8, 0.04))
    )
    return natural_image(rng, h, w) + pattern[:, :, None]


def _smooth(rng, h, w):  # over-smoothed, detail-free renders
    return _blur(natural_image(rng, h, w), rng.uniform(1.2, 2.0))


def _residual_noise(rng, h, w):  # denoising stopped early: pixel noise 2-8x a camera's (natural_image)
    return natural_image(rng, h, w) + _grain(rng, h, w, 0.03, 0.04)


def _bilinear(rng, h, w):  # latent-diffusion decoders: smooth interpolation from half resolution
    return _bilinear_up(natural_image(rng, h // 2, w // 2), h, w)


def _bilinear_sharpened(rng, h, w):  # the same decoder with a sharpening step on top
    up = _bilinear(rng, h, w)
    return up + rng.uniform(1.5, 2.0) * (up - _blur(up, 1.0))


def _vector_quantised(rng, h, w):  # VQ latents: 4x4 blocks snapped to a small codebook
    img = natural_image(rng, h, w)
    latents = _block_mean(img, 4).reshape(-1, 3)
    codebook = latents[rng.choice(len(latents), size=min(48, len(latents)), replace=False)]
    nearest = ((latents[:, None, :] - codebook[None]) ** 2).sum(axis=2).argmin(axis=1)
    quantised = codebook[nearest].reshape(h // 4, w // 4, 3)
    return 0.4 * _nearest_up(quantised, 4, h, w) + 0.6 * img + _grain(rng, h, w, 0.015, 0.025)


def _jpeg_grid(rng, h, w):  # heavy 8x8 DCT quantisation left in the output
    return jpeg_roundtrip(natural_image(rng, h, w), rng.integers(10, 26))


_FAKES = {
    "nearest": _nearest,
    "checkerboard": _checkerboard,
    "spectral_peaks": _spectral_peaks,
    "smooth": _smooth,
    "residual_noise": _residual_noise,
    "bilinear": _bilinear,
    "bilinear_sharpened": _bilinear_sharpened,
    "vector_quantised": _vector_quantised,
    "jpeg_grid": _jpeg_grid,
}
FAMILIES = tuple(_FAKES)


def fake_image(family: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A real-like image passed through one artefact family."""
    if family not in _FAKES:
        raise ValueError(f"unknown artefact family {family!r}; known: {', '.join(FAMILIES)}")
    return np.clip(_FAKES[family](rng, h, w), 0.0, 1.0).astype(np.float32)
