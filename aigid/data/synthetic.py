"""A small synthetic stand-in benchmark, written in a real benchmark's on-disk layout, so the
whole pipeline (scan, decode, crop, train, evaluate) runs offline. It is not real data: the
marker file says so and `DatasetIndex.synthetic` reports it.

Every image is determined by (seed, its relative path), so the same seed always gives the
same files, whatever the image counts.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from aigid.data.artefacts import fake_image, natural_image, to_uint8
from aigid.data.index import DataError
from aigid.data.layouts import SYNTHETIC_MARKER

GENERATOR_VERSION = 3  # bump when images change, so ensure_synthetic regenerates old copies
SIZES = (128, 192, 256, 320)  # some below the usual 224 crop, to exercise tiling
BIGGAN_SIZE = 128  # GenImage's BigGAN fakes are 128 px

# GenImage subset id -> (folder name, artefact family)
GENIMAGE = {
    "adm": ("imagenet_ai_0508_adm", "nearest"),
    "biggan": ("imagenet_ai_0419_biggan", "checkerboard"),
    "glide": ("imagenet_glide", "spectral_peaks"),
    "midjourney": ("imagenet_midjourney", "residual_noise"),
    "sdv14": ("imagenet_ai_0419_sdv4", "bilinear"),
    "sdv15": ("imagenet_ai_0424_sdv5", "bilinear_sharpened"),
    "vqdm": ("imagenet_ai_0419_vqdm", "vector_quantised"),
    "wukong": ("imagenet_ai_0424_wukong", "jpeg_grid"),
}
UFD_CLASSES = ("car", "cat", "chair", "horse")
UFD_TEST = {"progan": "checkerboard", "stylegan": "nearest", "crn": "smooth", "deepfake": "jpeg_grid"}
DF_TRAIN = {"lsun_bedroom": {"adm": "nearest"}}
DF_TEST = {
    "lsun_bedroom": {"adm": "nearest", "iddpm": "spectral_peaks", "midjourney": "residual_noise",
                     "sdv1": "bilinear", "vqdiffusion": "vector_quantised"},
    "imagenet": {"adm": "nearest", "sdv1": "bilinear"},
}


@dataclass(frozen=True)
class _Job:
    stem: str  # relative path without extension; also seeds the image
    family: str | None  # None: a real image
    size: int | None = None  # None: drawn from SIZES


def _ufd_pairs(folder: str, family: str, n: int) -> list[_Job]:
    return [_Job(f"{folder}/0_real/real_{i:04d}", None) for i in range(n)] + [
        _Job(f"{folder}/1_fake/fake_{i:04d}", family) for i in range(n)
    ]


def _plan_genimage(n_train: int, n_test: int) -> list[_Job]:
    jobs = []
    for subset, (folder, family) in GENIMAGE.items():
        size = BIGGAN_SIZE if subset == "biggan" else None
        for split, n in (("train", n_train), ("val", n_test)):
            jobs += [_Job(f"{folder}/{split}/nature/real_{i:04d}", None) for i in range(n)]
            jobs += [_Job(f"{folder}/{split}/ai/fake_{i:04d}", family, size) for i in range(n)]
    return jobs


def _plan_ufd(n_train: int, n_test: int) -> list[_Job]:
    jobs = []
    for split, n in (("train", n_train), ("val", n_test)):
        for cls in UFD_CLASSES:
            jobs += _ufd_pairs(f"{split}/{cls}", UFD_TEST["progan"], n)
    for generator, family in UFD_TEST.items():
        jobs += _ufd_pairs(f"test/{generator}", family, n_test)
    return jobs


def _plan_diffusionforensics(n_train: int, n_test: int) -> list[_Job]:
    jobs = []
    for split, scenes, n in (("train", DF_TRAIN, n_train), ("test", DF_TEST, n_test)):
        for scene, generators in scenes.items():
            jobs += [_Job(f"{split}/{scene}/real/real_{i:04d}", None) for i in range(n)]
            for generator, family in generators.items():
                jobs += [_Job(f"{split}/{scene}/{generator}/fake_{i:04d}", family) for i in range(n)]
    return jobs


_PLANS = {"genimage": _plan_genimage, "ufd": _plan_ufd, "diffusionforensics": _plan_diffusionforensics}
SYNTHETIC_LAYOUTS = tuple(_PLANS)


def _write(job: _Job, root: Path, seed: int) -> None:
    """Render one image and save it as PNG or JPEG (coin flip for real and fake alike, so the
    file format is no shortcut; JPEG's own blocks are then an artefact of both classes)."""
    rng = np.random.default_rng([seed, zlib.crc32(job.stem.encode())])
    size = job.size or int(rng.choice(SIZES))
    pixels = natural_image(rng, size, size) if job.family is None else fake_image(job.family, rng, size, size)
    image = Image.fromarray(to_uint8(pixels))
    path = root / job.stem
    path.parent.mkdir(parents=True, exist_ok=True)
    if rng.random() < 0.5:
        image.save(path.with_suffix(".JPEG"), format="JPEG", quality=int(rng.integers(90, 97)))
    else:
        image.save(path.with_suffix(".png"), format="PNG", compress_level=1)


def _params(layout: str, seed: int, n_train: int, n_test: int) -> dict:
    return {"layout": layout, "seed": seed, "n_train": n_train, "n_test": n_test, "version": GENERATOR_VERSION}


def _read_params(root: Path) -> dict | None:
    try:
        return json.loads((root / SYNTHETIC_MARKER).read_text())["params"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_replaceable(out: Path) -> None:
    """Only an empty folder or an earlier synthetic set may be replaced: anything else may be real data."""
    if out.exists() and any(out.iterdir()) and _read_params(out) is None:
        raise DataError(
            f"{out} is not empty and has no {SYNTHETIC_MARKER} marker, so it may hold real data; "
            f"refusing to replace it: choose another path or remove it yourself"
        )


def _install(partial: Path, out: Path, params: dict) -> None:
    """Move the finished set into place; a concurrent run that got there first with the same
    params wins (the images are identical)."""
    if out.exists():
        if _read_params(out) == params:
            return
        shutil.rmtree(out)
    try:
        partial.rename(out)
    except OSError:
        if _read_params(out) != params:
            raise


def make_synthetic(out, *, layout="genimage", seed=0, n_train=24, n_test=12, force=False) -> Path:
    """Write the stand-in benchmark to `out`: per subset, n_train real + n_train fake train
    images and n_test + n_test test images. Written beside `out` and moved in when complete,
    with the marker file written last, so no half-written set is ever found at `out`."""
    if layout not in _PLANS:
        raise DataError(f"synthetic data comes in layouts {', '.join(SYNTHETIC_LAYOUTS)}; got {layout!r}")
    if n_train < 1 or n_test < 1:
        raise DataError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    out = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; pass the folder to write the synthetic set into")
    if out.exists() and any(out.iterdir()) and not force:
        raise DataError(f"{out} is not empty; pass force=True (--force) to replace it")
    _check_replaceable(out)

    params = _params(layout, seed, n_train, n_test)
    jobs = _PLANS[layout](n_train, n_test)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        for job in jobs:
            _write(job, partial, seed)
        marker = {
            "synthetic": True,
            "note": "synthetic stand-in benchmark generated by aigid; not real data",
            "params": params,
            "images": len(jobs),
        }
        (partial / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _install(partial, out, params)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out


def ensure_synthetic(out, layout="genimage", seed=0, *, n_train=24, n_test=12) -> Path:
    """`out` holding a complete synthetic set with these params: reused if present, else written."""
    out = Path(os.path.abspath(os.path.expanduser(os.fspath(out))))
    if _read_params(out) == _params(layout, seed, n_train, n_test):
        return out
    return make_synthetic(out, layout=layout, seed=seed, n_train=n_train, n_test=n_test, force=True)


def ensure_here(index) -> None:
    """Make the generated stand-in `index` reads exist on this node. Trials and the prepare task read
    images by the driver's absolute paths; on cluster nodes that share no disk with the driver the
    set is regenerated there, byte for byte the same (seeded), instead of assuming a shared filesystem."""
    if index.stand_in is None or (Path(index.root) / SYNTHETIC_MARKER).is_file():  # present (installed whole)
        return
    print(f"[aigid] {socket.gethostname()} does not have the synthetic stand-in at {index.root}: regenerating it "
          "(deterministic, same images)", flush=True)
    ensure_synthetic(index.root, **index.stand_in)
