"""Frozen-backbone feature cache: run a frozen CLIP image encoder once per (model, weights,
images, view) and let every trial of a grid read the stored outputs.

A method opts in by naming the backbone outputs it needs (`OUTPUTS`: "block_cls_ln2",
"block_cls", "embedding") in a `FeatureRequest`. One request is one *view set*: a list of
images seen through one transform, with a view index and a seed (a training view draws
its augmentation from a per-image RNG seeded by (seed, view, path), so view v of an image
is the same whichever list it is in). Its cache key hashes exactly the inputs that decide
the features: the resolved model name, the weights id, the sorted image paths with their
sizes and mtimes, the transform's full description, the view, the seed and the outputs.

Entries are written to a temporary file and moved into place with os.replace, so a killed
run leaves no file under an entry's name, and an entry that does not load (or does not
match its request) is recomputed rather than read. Features are computed in float32 and
stored (on disk and in memory) as float16: half the disk and object-store memory; the
heads that read them train in float32.
"""
from __future__ import annotations

import os
import secrets
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from aigid.backbones import block_cls_tokens, create_image_encoder, patch_tokens, resolve_model_name
from aigid.data.datasets import IndexedImages, collate_indexed
from aigid.data.files import content_key
from aigid.data.index import DataError

CACHE_VERSION = 1
STORED_DTYPE = np.float16

# output name -> (frozen visual tower, normalised images) -> (B, ...) float32
OUTPUTS: dict[str, Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]] = {
    "block_cls_ln2": lambda visual, x: block_cls_tokens(visual, x, tap="ln_2"),  # RINE (authors' hook)
    "block_cls": lambda visual, x: block_cls_tokens(visual, x, tap="block"),  # block outputs
    "embedding": lambda visual, x: visual(x),  # the pooled, projected image embedding (GenDet's default)
    "patch_tokens": patch_tokens,  # the last block's patch tokens after ln_post (GenDet's patch reading)
}


class FixedView:
    """A deterministic image -> tensor transform (e.g. a centre crop) in the seeded-transform form."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img, rng: np.random.Generator) -> torch.Tensor:
        return self.transform(img)

    def __repr__(self) -> str:
        return f"FixedView({self.transform!r})"


def _weights_id(pretrained: str | None) -> str:
    """What identifies the weights: a tag, a file with its size and mtime, or seeded random init."""
    if pretrained is None:
        return "random-init(torch seed 0)"
    path = Path(pretrained).expanduser()
    if path.is_file():
        stat = path.stat()
        return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return f"tag:{pretrained}"


@dataclass(frozen=True)
class FeatureRequest:
    """One view set: `paths` seen through `transform` (a callable (PIL image, rng) -> tensor
    whose repr describes every parameter), view `view` drawn with `seed`."""

    backbone: str
    pretrained: str | None
    outputs: tuple[str, ...]
    paths: tuple[str, ...]
    transform: object = field(compare=False)
    view: int = 0
    seed: int = 0
    label: str = field(default="", compare=False)  # for progress lines only

    def __post_init__(self):
        unknown = sorted(set(self.outputs) - set(OUTPUTS))
        if unknown or not self.outputs:
            raise ValueError(f"unknown backbone output(s) {unknown or '(none given)'}; known: {sorted(OUTPUTS)}")
        object.__setattr__(self, "outputs", tuple(sorted(set(self.outputs))))
        object.__setattr__(self, "paths", tuple(sorted(set(self.paths))))
        if self.pretrained in ("", "none", "None"):
            object.__setattr__(self, "pretrained", None)

    def image_rng(self, path: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.view, zlib.crc32(path.encode())])

    def view_of(self, image, path: str) -> torch.Tensor:
        """The image as this view set sees it (its augmentation drawn from `image_rng(path)`)."""
        return self.transform(image, self.image_rng(path))

    def describe(self) -> dict:
        return {"version": CACHE_VERSION, "model": resolve_model_name(self.backbone, self.pretrained),
                "weights": _weights_id(self.pretrained), "transform": repr(self.transform),
                "view": self.view, "seed": self.seed, "outputs": list(self.outputs), "images": len(self.paths)}

    def key(self) -> str:
        """Content hash of everything that decides the features (stats every image file)."""
        return content_key(self.describe(), self.paths)


@dataclass
class FeatureTable:
    """Stored outputs of one view set: row i of every array belongs to paths[i]."""

    paths: tuple[str, ...]
    features: dict[str, np.ndarray]  # output name -> (N, ...) float16
    ok: np.ndarray  # (N,) bool; False for an image that could not be decoded (its rows are zeros)

    def rows(self, paths: Iterable[str]) -> np.ndarray:
        """Row numbers of `paths`; a path not in this table is a KeyError naming it."""
        if not hasattr(self, "_row_of"):
            self._row_of = {p: i for i, p in enumerate(self.paths)}
        try:
            return np.fromiter((self._row_of[p] for p in paths), dtype=np.int64)
        except KeyError as error:
            raise KeyError(f"image {error.args[0]} has no cached features in this view set") from None

    def __getstate__(self):  # the row map is rebuilt where needed, not shipped through Ray
        return {k: v for k, v in self.__dict__.items() if k != "_row_of"}


def tensor_view(table: FeatureTable, output: str) -> torch.Tensor:
    """`output` of a table as a tensor sharing its memory (a read-only view of Ray's object store or a
    memory map; trainers only gather rows from it, never write)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return torch.from_numpy(table.features[output])


class LabelledRows:
    """The rows of a feature table that belong to `samples`, with their labels as a float tensor;
    images that could not be decoded are dropped and counted in `skipped`."""

    def __init__(self, table: FeatureTable, samples):
        self.table = table
        rows = table.rows(s.path for s in samples)
        keep = table.ok[rows]
        self.rows = rows[keep]
        self.labels = torch.tensor([s.label for s, k in zip(samples, keep) if k], dtype=torch.float32)
        self.skipped = int((~keep).sum())


class FeatureCache:
    """Entries `<root>/<key>.pt`, each written whole (temp file + os.replace) or not at all."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, request: FeatureRequest, key: str) -> FeatureTable | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            table = FeatureTable(tuple(entry["paths"]), {k: v.numpy() for k, v in entry["features"].items()},
                                 entry["ok"].numpy())
            valid = (entry["meta"] == request.describe() and table.paths == request.paths
                     and all(len(a) == len(table.paths) for a in table.features.values()))
        except Exception as error:  # a damaged file is a miss, never a result
            warnings.warn(f"ignoring unreadable feature cache entry {path}: {error}")
            return None
        return table if valid else None

    def store(self, request: FeatureRequest, key: str, table: FeatureTable) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{key}.{os.getpid()}-{secrets.token_hex(4)}.partial"
        entry = {"meta": request.describe(), "paths": list(table.paths), "ok": torch.from_numpy(table.ok),
                 "features": {k: torch.from_numpy(v) for k, v in table.features.items()}}
        try:
            torch.save(entry, partial)
            os.replace(partial, self.path(key))
        finally:
            partial.unlink(missing_ok=True)


@torch.no_grad()
def compute_table(request: FeatureRequest, visual: torch.nn.Module, *, device="cpu", batch_size: int = 64,
                  num_workers: int = 0, log: Callable[[str], None] | None = None, log_every: int = 10) -> FeatureTable:
    """Run the frozen `visual` over one view set (no cache involved)."""
    visual.eval()
    n = len(request.paths)
    loader = DataLoader(IndexedImages(request.paths, request.view_of), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_indexed, pin_memory=torch.device(device).type == "cuda")
    arrays: dict[str, np.ndarray] = {}
    ok = np.zeros(n, dtype=bool)
    start, done = time.perf_counter(), 0
    for batch_number, (rows, images) in enumerate(loader, 1):
        done += batch_size
        if images is not None:
            images = images.to(device, non_blocking=True)
            for name in request.outputs:
                out = OUTPUTS[name](visual, images).float().cpu().numpy()
                if name not in arrays:
                    arrays[name] = np.zeros((n, *out.shape[1:]), dtype=STORED_DTYPE)
                arrays[name][rows.numpy()] = out
            ok[rows.numpy()] = True
        if log and (batch_number % log_every == 0 or done >= n):
            rate = min(done, n) / max(time.perf_counter() - start, 1e-9)
            log(f"[aigid] features {request.label or request.backbone}: {min(done, n)}/{n} images ({rate:.0f}/s)")
    if not arrays:
        raise DataError(f"none of the {n} images of view set {request.label!r} could be decoded")
    return FeatureTable(request.paths, arrays, ok)


def _build_encoder(backbone: str, pretrained: str | None, device) -> torch.nn.Module:
    """The frozen encoder; random init is seeded so a random-init cache entry is reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        visual, _ = create_image_encoder(backbone, pretrained, device=device)
    return visual.eval().requires_grad_(False)


def extract(requests: Sequence[FeatureRequest], cache_dir=None, *, device="cpu", batch_size: int = 64,
            num_workers: int = 0, log: Callable[[str], None] | None = print) -> tuple[list[FeatureTable], dict]:
    """Tables for `requests`, read from `cache_dir` where present, else computed (and stored).

    Each backbone is built once, and only if some view set misses. Returns the tables in
    request order and {"computed": k, "cached": m}. cache_dir=None computes everything.
    """
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    keys = [request.key() for request in requests] if cache else [None] * len(requests)
    tables = [cache.load(request, key) for request, key in zip(requests, keys)] if cache else [None] * len(requests)
    cached = sum(table is not None for table in tables)
    encoders: dict[tuple, torch.nn.Module] = {}
    for i in sorted(range(len(requests)), key=lambda i: (requests[i].backbone, str(requests[i].pretrained))):
        request = requests[i]
        if tables[i] is not None:
            continue
        which = (request.backbone, request.pretrained)
        if which not in encoders:
            encoders.clear()  # one backbone in memory at a time
            encoders[which] = _build_encoder(*which, device)
        tables[i] = compute_table(request, encoders[which], device=device, batch_size=batch_size,
                                  num_workers=num_workers, log=log)
        if cache:
            cache.store(request, keys[i], tables[i])
    return tables, {"computed": len(requests) - cached, "cached": cached}


def shared_features(feature_requests: Callable) -> Callable:
    """A MethodSpec `prepare` for heads trained on frozen features (RINE, GenDet, UnivFD):
    `feature_requests(configs, index)` names the view sets the grid reads; they are read from
    `context.cache_dir` or computed once, and every trial gets {"features": {view name: table}}."""

    def prepare(index, configs, context) -> dict:
        requests = feature_requests(configs, index)
        on_gpu = torch.device(context.device).type == "cuda"
        context.log(f"[aigid] feature pass: {len(requests)} view set(s) for {len(configs)} trials on "
                    f"{context.device}, cache {context.cache_dir}")
        tables, stats = extract(list(requests.values()), context.cache_dir, device=context.device,
                                batch_size=128 if on_gpu else 32, num_workers=context.num_workers, log=context.log)
        if stats["computed"]:
            context.log(f"[aigid] features computed once for {len(configs)} trials: {stats['computed']} view set(s) "
                        f"computed, {stats['cached']} read from the cache")
        else:
            context.log(f"[aigid] feature cache hit: all {stats['cached']} view set(s) read from {context.cache_dir}; "
                        f"no backbone pass for {len(configs)} trials")
        return {"features": dict(zip(requests, tables))}

    return prepare
