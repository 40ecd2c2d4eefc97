"""Frozen-backbone feature cache: run a frozen CLIP image encoder once per (model, weights,
images, view) and let every trial of a grid read the stored outputs.

A method opts in by naming the backbone outputs it needs (`OUTPUTS`: "block_cls_ln2",
"block_cls", "embedding") in a `FeatureRequest`. One request is one *view set*: a list of
images seen through one transform, with a view index and a seed (a training view draws
its augmentation from a per-image RNG seeded by (seed, view, path), so view v of an image
is the same whichever list it is in). Its cache key hashes exactly the inputs that decide
the features: the resolved model name, the weights id, the sorted image paths with their
sizes and mtimes, the transform's full description, the view, the seed and the outputs.

Entries are folders `<cache_dir>/<key>/` holding one `.npy` file per output (float16, row i
for paths[i]), `ok.npy`, `meta.json` and their checksums (aigid.cache). A pass checks that the
store has room, streams its rows into a hidden partial folder batch by batch (on a thread, behind the
device: `_Writer`) and renames the folder into place when complete: the pass's memory does not grow
with the dataset, a killed pass leaves no folder under an entry's name, and an entry whose bytes are
not those written (or that does not match its request) is recomputed rather than read. Trials
memory-map the entry's files (a table pickles as its folder's path), so a 7 GB view set is never
copied into a trial or through Ray's object store. On CUDA the frozen pass runs under bf16 autocast
(`precision`, part of the key); heads read the float16 rows and train in float32.
"""
from __future__ import annotations

import ctypes
import json
import os
import queue
import shutil
import socket
import threading
import warnings
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from aigid.cache import (RowsFile, check_room, damage, disk_full_is_an_error, partial_folder,
                         remove_dead_partials, seal)
from aigid.backbones import block_cls_tokens, create_image_encoder, patch_tokens, random_init_id, resolve_model_name
from aigid.data import perturb as perturbations
from aigid.data.datasets import IndexedImages, collate_indexed
from aigid.data.device_decode import DeviceDecoder, EncodedImages, collate_encoded, tensor_steps
from aigid.data.files import content_key
from aigid.data.index import DataError
from aigid.errors import StorageError
from aigid.progress import PassProgress

CACHE_VERSION = 4  # 3: training views drawn per path relative to `root`; 4: entries carry checksums
STORED_DTYPE = np.float16
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}  # autocast dtype of the frozen pass
META_FILE, OK_FILE = "meta.json", "ok.npy"
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
IN_FLIGHT = 3  # host buffer sets of a pass: one being copied into, one waiting, one being written

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


def decodes_on_device(request: "FeatureRequest") -> bool:
    """Whether a view set's JPEGs can be decoded on the pass's device: a fixed view of tensor-form steps,
    unperturbed (a perturbation is a PIL operation drawn per path)."""
    return (request.perturb == perturbations.NONE and isinstance(request.transform, FixedView)
            and tensor_steps(request.transform.transform) is not None)


def _weights_id(backbone: str, pretrained: str | None) -> str:
    """What identifies the weights: a tag, a file with its size and mtime, or seeded random init (torch
    seed 0, `_build_encoder`) of the architecture as it is now."""
    if pretrained is None:
        return f"torch seed 0, {random_init_id(backbone)}"
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
    precision: str = "float32"  # "bfloat16": the pass runs under autocast (CUDA's default, see SharedFeatures)
    root: str = ""  # the dataset's root: views are drawn per path below it, the same wherever the data lies
    perturb: str = perturbations.NONE  # applied to each image before `transform` (aigid.data.perturb)
    perturb_seed: int = 0
    # None: PIL decodes in the loader workers; "cuda" (or "cpu"): torchvision decodes the JPEGs on that device,
    # the pass's (aigid.data.device_decode; only where `decodes_on_device`, checked here)
    decode_device: str | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        unknown = sorted(set(self.outputs) - set(OUTPUTS))
        if unknown or not self.outputs:
            raise ValueError(f"unknown backbone output(s) {unknown or '(none given)'}; known: {sorted(OUTPUTS)}")
        object.__setattr__(self, "outputs", tuple(sorted(set(self.outputs))))
        object.__setattr__(self, "paths", tuple(sorted(set(self.paths))))
        if self.pretrained in ("", "none", "None"):
            object.__setattr__(self, "pretrained", None)
        perturbations.parsed(self.perturb)  # a bad spec fails here, not in a DataLoader worker
        if self.decode_device and not decodes_on_device(self):  # it would drop a perturbation or augmentation
            raise ValueError(f"view set {self.label or self.backbone!r} cannot decode on {self.decode_device}: only an "
                             "unperturbed FixedView of tensor-form steps can (aigid.data.device_decode)")

    def image_rng(self, path: str) -> np.random.Generator:
        name = os.path.relpath(path, self.root) if self.root else path
        return np.random.default_rng([self.seed, self.view, zlib.crc32(name.encode())])

    def view_of(self, image, path: str) -> torch.Tensor:
        """The image as this view set sees it: perturbed, then its augmentation drawn from `image_rng(path)`."""
        image = perturbations.apply(self.perturb, image, seed=self.perturb_seed, path=path, root=self.root)
        return self.transform(image, self.image_rng(path))

    def describe(self) -> dict:
        described = {"version": CACHE_VERSION, "model": resolve_model_name(self.backbone, self.pretrained),
                     "weights": _weights_id(self.backbone, self.pretrained), "transform": repr(self.transform),
                     "view": self.view, "seed": self.seed, "outputs": list(self.outputs), "images": len(self.paths),
                     "precision": self.precision}
        if self.decode_device:  # nvjpeg's pixels differ from PIL's (aigid.data.device_decode): its own entries
            described["decode"] = f"torchvision decode_jpeg on {self.decode_device}"
        perturb = perturbations.described(self.perturb, self.perturb_seed, self.root)
        return {**described, "perturb": perturb} if perturb else described

    def key(self) -> str:
        """Content hash of everything that decides the features (stats every image file)."""
        return content_key(self.describe(), self.paths)


@dataclass
class FeatureTable:
    """Stored outputs of one view set: row i of every array belongs to paths[i]."""

    paths: tuple[str, ...]
    features: dict[str, np.ndarray]  # output name -> (N, ...) float16, in memory or memory-mapped
    ok: np.ndarray  # (N,) bool; False for an image that could not be decoded (its rows are zeros)
    location: str | None = None  # the store entry the arrays are mapped from, if any

    @classmethod
    def open(cls, entry: Path) -> "FeatureTable":
        """The table of a store entry, its outputs memory-mapped read-only (nothing is read yet)."""
        meta = json.loads((entry / META_FILE).read_text())
        paths = tuple(meta["paths"])
        features = {name: np.load(entry / f"{name}.npy", mmap_mode="r") for name in meta["request"]["outputs"]}
        ok = np.load(entry / OK_FILE)
        if any(len(a) != len(paths) for a in (ok, *features.values())):
            raise ValueError(f"row counts differ from the {len(paths)} paths")
        return cls(paths, features, ok, str(entry))

    def rows(self, paths: Iterable[str]) -> np.ndarray:
        """Row numbers of `paths`; a path not in this table is a KeyError naming it."""
        if not hasattr(self, "_row_of"):
            self._row_of = {p: i for i, p in enumerate(self.paths)}
        try:
            return np.fromiter((self._row_of[p] for p in paths), dtype=np.int64)
        except KeyError as error:
            raise KeyError(f"image {error.args[0]} has no cached features in this view set") from None

    def __getstate__(self):
        if self.location:  # mapped again wherever it is unpickled, never copied
            return {"location": self.location}
        return {k: v for k, v in self.__dict__.items() if k != "_row_of"}  # the row map is rebuilt where needed

    def __setstate__(self, state: dict):
        if "features" in state:
            self.__dict__.update(state)
            return
        try:
            self.__dict__.update(FeatureTable.open(Path(state["location"])).__dict__)
        except FileNotFoundError:
            raise StorageError(
                f"feature store entry {state['location']} is not on node {socket.gethostname()}: on a cluster, "
                "--cache-dir must be storage every node mounts at the same path (NFS, EFS, Filestore)") from None


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


class FeatureStore:
    """Entries `<root>/<key>/`, each renamed into place complete or not there at all."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def load(self, request: FeatureRequest, key: str, note: Callable[[str], None] | None = None) -> FeatureTable | None:
        """The entry's table if its checksums hold and it matches `request`; a damaged entry is a miss,
        never a result, and `note` gets one line saying it is recomputed."""
        entry = self.path(key)
        if not entry.is_dir():
            return None
        try:
            problem = damage(entry)
            if problem is None:
                table = FeatureTable.open(entry)
                if json.loads((entry / META_FILE).read_text())["request"] == request.describe() \
                        and table.paths == request.paths:
                    return table
                problem = "it was stored for another request"
        except Exception as error:  # unreadable despite its checksums (e.g. written by another version)
            problem = f"{type(error).__name__}: {error}"
        if note:
            note(f"[aigid] feature store entry {entry} is damaged ({problem}): recomputing it")
        return None

    def partial(self, key: str) -> Path:
        """A fresh hidden folder for a pass to stream an entry into."""
        return partial_folder(self.root, key)

    def install(self, request: FeatureRequest, key: str, partial: Path) -> FeatureTable:
        """Add the meta to a sealed partial folder (after the rows: a full disk is met with their size
        known) and rename it into place; a concurrent pass that got there first with the same entry
        wins (its rows are the same)."""
        (partial / META_FILE).write_text(json.dumps({"request": request.describe(), "paths": list(request.paths)}))
        seal(partial)
        entry = self.path(key)
        try:
            partial.rename(entry)
        except OSError:  # the entry exists: replace it only if it does not load
            if self.load(request, key) is None:
                shutil.rmtree(entry, ignore_errors=True)
                partial.rename(entry)
        return FeatureTable.open(entry)


class _Rows:
    """The rows of one pass, appended in order: streamed into `.npy` files in `folder` (memory stays
    flat whatever the image count), or kept in memory without one."""

    def __init__(self, n: int, folder: Path | None):
        self.n, self.folder = n, folder
        self.files: dict[str, RowsFile] = {}
        self.blocks: dict[str, list[np.ndarray]] = {}
        self.need = 0  # bytes the pass writes, known with the outputs' shapes

    def start(self, shapes: dict[str, tuple]) -> None:
        """Open one file per output once their shapes are known, after checking the store has room for them."""
        if self.folder is None:
            return
        row_bytes = sum(int(np.prod(shape)) for shape in shapes.values()) * np.dtype(STORED_DTYPE).itemsize
        self.need = self.n * (row_bytes + 1)  # + ok.npy
        check_room(self.folder.parent, self.need)
        self.files = {name: RowsFile(self.folder / f"{name}.npy", self.n, shape, STORED_DTYPE)
                      for name, shape in shapes.items()}

    def guarded(self):
        """A full disk met while writing becomes the one line `check_room` gives, naming this pass's bytes."""
        return disk_full_is_an_error(self.folder.parent, lambda: self.need) if self.folder else nullcontext()

    def append(self, name: str, block: np.ndarray) -> None:
        if self.folder is None:
            self.blocks.setdefault(name, []).append(np.array(block, dtype=STORED_DTYPE))  # its buffer is reused
        else:
            self.files[name].append(block)

    def finish(self, ok: np.ndarray) -> dict[str, np.ndarray]:
        """The in-memory arrays; with a folder, its files are closed, `ok` is written beside them and the
        folder is sealed (it is read back as memory maps by `FeatureTable.open` once installed)."""
        if self.folder is not None:
            streamed = {file.path.name: file.close() for file in self.files.values()}
            np.save(self.folder / OK_FILE, ok)
            seal(self.folder, streamed)
        return {name: np.concatenate(blocks) for name, blocks in self.blocks.items()}


class _Writer:
    """The host side of a pass, on a thread of its own, so the device never waits for the host: each batch's
    outputs are copied without blocking into one of IN_FLIGHT host buffer sets (pinned on CUDA) and the
    thread, once the copy is done, writes them to their rows in `_Rows` and frees the set. The pass waits
    only when every set is in flight; the thread's error is raised in the pass by `check` and `close`."""

    def __init__(self, written: _Rows, batch_size: int, device: torch.device):
        self.written, self.batch_size, self.device = written, batch_size, device
        self.shapes: dict[str, tuple] = {}  # known from the first batch with a readable image
        self.pending = 0  # leading rows without a readable image, written as zeros once the shapes are known
        self.sets, self.free, self.batches = 0, queue.Queue(), queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="aigid-feature-writer", daemon=True)
        self.thread.start()

    def put(self, first: int, size: int, rows: torch.Tensor, outs: dict[str, torch.Tensor]) -> None:
        """Hand over batch rows [first, first + size): `outs` (float16, on the device) for its readable `rows`."""
        self.check()
        host, done = None, None
        if outs:
            host = self._host_set(outs)
            for name, out in outs.items():
                host[name][: len(out)].copy_(out, non_blocking=True)
            if self.device.type == "cuda":
                done = torch.cuda.Event()
                done.record()
        self.batches.put((first, size, rows, host, done))

    def _host_set(self, outs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.sets == IN_FLIGHT:
            return self.free.get()  # the thread frees a set whatever happens, so this never waits forever
        self.sets += 1
        return {name: torch.empty((self.batch_size, *out.shape[1:]), dtype=torch.float16,
                                  pin_memory=self.device.type == "cuda") for name, out in outs.items()}

    def _run(self) -> None:
        while (batch := self.batches.get()) is not None:
            first, size, rows, host, done = batch
            if self.error is None:
                try:
                    if done is not None:
                        done.synchronize()
                    self._write(first, size, rows.numpy(),
                                {name: h[: len(rows)].numpy() for name, h in host.items()} if host else {})
                except BaseException as error:  # raised in the pass (check, close)
                    self.error = error
            if host is not None:
                self.free.put(host)

    def _write(self, first: int, size: int, rows: np.ndarray, outs: dict[str, np.ndarray]) -> None:
        """Rows [first, first + size) in order: each readable image's outputs in its row, zeros in the others."""
        if outs and not self.shapes:
            self.shapes = {name: out.shape[1:] for name, out in outs.items()}
            self.written.start(self.shapes)
            for name, shape in self.shapes.items():
                self.written.append(name, np.zeros((self.pending, *shape), STORED_DTYPE))
        if not self.shapes:
            self.pending += size
        for name, shape in self.shapes.items():
            if len(rows) == size:  # every image of the batch decoded: its rows as they are
                self.written.append(name, outs[name])
                continue
            block = np.zeros((size, *shape), STORED_DTYPE)
            if outs:
                block[rows - first] = outs[name]
            self.written.append(name, block)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Wait for every batch handed over to be written (or skipped after an error), then `check`."""
        self.batches.put(None)
        self.thread.join()
        self.check()


@torch.no_grad()
def compute_table(request: FeatureRequest, visual: torch.nn.Module, *, device="cpu", batch_size: int = 64,
                  num_workers: int = 0, folder: Path | None = None,
                  log: Callable[[str], None] | None = None) -> FeatureTable:
    """Run the frozen `visual` over one view set; its rows are streamed into `folder` when one is given
    (`FeatureStore.partial`; a StorageError naming the bytes needed when its disk lacks room), else
    returned in memory. The device's work is queued batch after batch; `_Writer` brings the rows home."""
    visual.eval()
    device, n = torch.device(device), len(request.paths)
    autocast = PRECISIONS[request.precision]
    images_of = IndexedImages(request.paths, request.view_of)
    decoder = None
    if request.decode_device:
        if torch.device(request.decode_device).type != device.type:
            raise ValueError(f"view set {request.label!r} decodes on {request.decode_device}, the pass runs on {device}")
        decoder = DeviceDecoder(request.transform.transform, images_of, device)
    loader = DataLoader(EncodedImages(request.paths, request.view_of) if decoder else images_of,
                        batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_encoded if decoder else collate_indexed, pin_memory=device.type == "cuda")
    written, ok = _Rows(n, folder), np.zeros(n, dtype=bool)
    progress = PassProgress(f"features {request.label or request.backbone}", n, log)
    with written.guarded():  # a full disk is one line naming the bytes, not a traceback
        writer = _Writer(written, batch_size, device)
        try:
            for first, (rows, images) in zip(range(0, n, batch_size), loader):  # batches in row order (no shuffle)
                size, outs = min(batch_size, n - first), {}
                if decoder:
                    rows, images = decoder(rows, images)
                if images is not None:
                    images = images.to(device, non_blocking=True)
                    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                        outs = {name: OUTPUTS[name](visual, images).to(torch.float16) for name in request.outputs}
                    ok[rows.numpy()] = True
                writer.put(first, size, rows, outs)
                progress.advance(first + size)
        finally:
            writer.close()
        if not writer.shapes:
            raise DataError(f"none of the {n} images of view set {request.label!r} could be decoded")
        return FeatureTable(request.paths, written.finish(ok), ok)


def _build_encoder(backbone: str, pretrained: str | None, device) -> torch.nn.Module:
    """The frozen encoder; random init is seeded so a random-init cache entry is reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        visual, _ = create_image_encoder(backbone, pretrained, device=device)
    return visual.eval().requires_grad_(False)


def _heap_that_gives_back() -> None:
    """Fix glibc's mmap threshold at 4 MiB in this process. glibc raises the threshold whenever a large
    block is freed; the pass's per-batch tensors (tens of MB) then come from a heap that fragments,
    and peak memory grew with the image count (benchmarks/paper_scale.py: +0.3 GiB from 20K to 80K
    images). Fixed, such blocks are mapped and unmapped whole: flat memory, the same images/s."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to fix
        return
    libc.mallopt(M_MMAP_THRESHOLD, 4 << 20)


def extract(requests: Sequence[FeatureRequest], cache_dir=None, *, device="cpu", batch_size: int = 64,
            num_workers: int = 0, log: Callable[[str], None] | None = print) -> tuple[list[FeatureTable], dict]:
    """Tables for `requests`, read from the store in `cache_dir` where present, else computed (and stored).

    Each backbone is built once, and only if some view set misses. Returns the tables in
    request order and {"computed": k, "cached": m}. cache_dir=None computes everything in memory.
    """
    _heap_that_gives_back()
    note = log or warnings.warn  # a damaged or leftover entry is said even when progress is not
    store = FeatureStore(cache_dir) if cache_dir is not None else None
    keys = [request.key() for request in requests] if store else [None] * len(requests)
    tables = ([store.load(request, key, note) for request, key in zip(requests, keys)] if store
              else [None] * len(requests))
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
        if not store:
            tables[i] = compute_table(request, encoders[which], device=device, batch_size=batch_size,
                                      num_workers=num_workers, log=log)
            continue
        for leftover in remove_dead_partials(store.root):
            note(f"[aigid] removed {leftover} from {store.root}: left by a killed feature pass")
        with disk_full_is_an_error(store.root, lambda: None):  # the rows' writes name their size (compute_table)
            partial = store.partial(keys[i])
            try:
                compute_table(request, encoders[which], device=device, batch_size=batch_size,
                              num_workers=num_workers, folder=partial, log=log)
                tables[i] = store.install(request, keys[i], partial)
            finally:
                shutil.rmtree(partial, ignore_errors=True)  # gone already once installed
    return tables, {"computed": len(requests) - cached, "cached": cached}


class SharedFeatures:
    """A MethodSpec `prepare` for heads trained on frozen features (RINE, GenDet, UnivFD):
    `feature_requests(configs, index)` names the view sets the grid reads; they are read from the
    store in `context.cache_dir` or computed into it once (bf16 autocast on CUDA; there, with
    AIGID_DEVICE_DECODE=1, the JPEGs of fixed views decoded on the GPU), and every trial gets
    {"features": {view name: table}}, memory-mapped from the store."""

    def __init__(self, feature_requests: Callable):
        self.feature_requests = feature_requests

    def __call__(self, index, configs, context) -> dict:
        on_gpu = torch.device(context.device).type == "cuda"
        precision = "bfloat16" if on_gpu else "float32"
        on_device = on_gpu and os.environ.get("AIGID_DEVICE_DECODE", "0") == "1"  # opt-in: nvjpeg's pixels differ
        requests = {name: replace(request, precision=precision,
                                  decode_device="cuda" if on_device and decodes_on_device(request) else None)
                    for name, request in self.feature_requests(configs, index).items()}
        context.log(f"[aigid] feature pass: {len(requests)} view set(s) for {len(configs)} trials on "
                    f"{context.device} ({precision}), store {context.cache_dir}")
        tables, stats = extract(list(requests.values()), context.cache_dir, device=context.device,
                                batch_size=128 if on_gpu else 32, num_workers=context.num_workers, log=context.log)
        if stats["computed"]:
            context.log(f"[aigid] features computed once for {len(configs)} trials: {stats['computed']} view set(s) "
                        f"computed, {stats['cached']} read from the store")
        else:
            context.log(f"[aigid] feature store hit: all {stats['cached']} view set(s) read from {context.cache_dir}; "
                        f"no backbone pass for {len(configs)} trials")
        return {"features": dict(zip(requests, tables))}
