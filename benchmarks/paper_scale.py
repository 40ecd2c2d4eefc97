"""RINE at the paper's scale on this machine: bounded memory, the store's bytes, and the engine's overhead.

1. Dataset: the UFD layout with the 4-class ProGAN training set of §4.1 at N images (default up
   to 80K; the paper's is 144K), as small generated JPEGs: the count and the layout are what
   the pipeline sees (decoding, augmentation, one row per image).
2. Feature pass, one child process per size: the real pass (`aigid.features.extract` of RINE's
   own `feature_requests`: the CNNDetection augmentation, DataLoader workers, rows streamed into
   the store) with a stand-in for the backbone on CPU that emits ViT-L/14's RINE output,
   (24 blocks x 1024) per image, at almost no compute; `--device cuda` runs the real ViT-L/14
   (random init has the paper's compute) under bf16 autocast. Reports images/s, bytes on disk
   per image per view, and peak RSS (anonymous memory, and in total).
3. One trial: RINE's head at the paper's shapes (q=2, d'=1024) for one epoch on the largest
   store, memory-mapped, in a child process: its time and peak RSS.
4. Engine overhead: the offline RINE grid (`python sweeps/rine_grid.py`: 48 trials through Ray,
   Tune and MLflow, features included) against the same grid computed in this process.
   Prints `engine overhead: <ratio>x` last.
5. `--project`: each paper's largest grid at the paper's scale from the recorded H200 rates
   (benchmarks/projection.py), against the device's limits.

    python benchmarks/paper_scale.py [--sizes 20000 80000] [--workers 1] [--device cpu|cuda]
    python benchmarks/paper_scale.py --engine-only   # 4. alone
    python benchmarks/paper_scale.py --project       # 5. each paper's largest grid, from the recorded H200 rates
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from projection import device_name, of_limit, project  # noqa: E402  (benchmarks/ is on the path only now)
PAPER_IMAGES = 144_000  # §4.1: 4 ProGAN classes x 36K images
GRID_TRIALS = 48  # Table 1's q x d' x xi grid of one setting
CLASSES = ("car", "cat", "chair", "horse")
TESTS = ("progan", "stylegan")


class PeakMemory:
    """Peak resident memory of this process, sampled: anonymous (what the process holds) and total
    (also the file pages of its memory maps, which the kernel can drop at any time)."""

    def __init__(self, every_s: float = 0.05):
        self.anon = self.total = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, args=(every_s,), daemon=True)
        self.thread.start()

    def _sample(self, every_s: float):
        while self.running:
            fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
            self.anon = max(self.anon, int(fields["RssAnon"].split()[0]) * 1024)
            self.total = max(self.total, int(fields["VmRSS"].split()[0]) * 1024)
            time.sleep(every_s)

    def stop(self) -> dict:
        self.running = False
        self.thread.join()
        return {"peak_anon_bytes": self.anon, "peak_rss_bytes": max(self.total, resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss * 1024)}


def _write_images(args):
    folder, start, count = args
    from PIL import Image

    rng = np.random.default_rng(start)
    Path(folder).mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(f"{folder}/{i:06d}.jpg", quality=90)


def make_dataset(root: Path, n_train: int, jobs: int, tests=TESTS, n_test: int = 100) -> Path:
    """UFD layout: train/<class>/{0_real,1_fake} for the 4 classes (n_train in all), val/<class>
    and test/<generator>/{0_real,1_fake} (n_test each) small. Reused if a complete one of this size is there."""
    marker = root / "PAPER_SCALE.json"
    shape = {"n_train": n_train, "tests": list(tests), "n_test": n_test}
    if marker.is_file() and json.loads(marker.read_text()) == shape:
        return root
    shutil.rmtree(root, ignore_errors=True)
    per_leaf = n_train // (2 * len(CLASSES))
    work = []
    for split, leaves, n in (("train", CLASSES, per_leaf), ("val", CLASSES, 25), ("test", tests, n_test)):
        for leaf in leaves:
            for label in ("0_real", "1_fake"):
                folder = root / split / leaf / label
                work += [(str(folder), start, min(2000, n - start)) for start in range(0, n, 2000)]
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_write_images, work))
    marker.write_text(json.dumps(shape))
    return root


def standin_block_cls(visual, images):
    """ViT-L/14's RINE output shape, (B, 24, 1024), from the images at almost no compute."""
    import torch

    pooled = torch.nn.functional.adaptive_avg_pool2d(images, (16, 16)).flatten(1)[:, :768]  # (B, 768)
    row = torch.cat([pooled, pooled[:, :256]], dim=1)  # (B, 1024)
    return row[:, None, :] * torch.linspace(0.5, 1.5, 24)[None, :, None]


def rine_config(device: str, train_fraction: float = 1.0):
    """Table 1's 4-class RINE (q=2, d'=1024); on CPU the pass builds the tiny ViT, whose output the
    stand-in replaces (random-init ViT-L/14 would only add 1.2 GB of unused weights)."""
    from aigid.methods.rine import RINEConfig

    backbone = "ViT-L-14" if device == "cuda" else "aigid-tiny-vit"
    return RINEConfig.from_flat({"backbone": backbone, "pretrained": None, "classes": 4, "epochs": 1,
                                 "train_fraction": train_fraction})


def with_training_images(index, n: int):
    """`index` with n of its training images, spread evenly over the classes and labels."""
    train = sorted((s for s in index.samples if s.split == "train"), key=lambda s: s.path)
    index.samples = [s for s in index.samples if s.split != "train"] + [train[i * len(train) // n] for i in range(n)]
    return index


def child_extract(args) -> dict:
    """One feature pass over the first `args.images` training images (+ the small val/test view)."""
    import torch

    from aigid import features
    from aigid.data.layouts import scan
    from aigid.methods.rine import feature_requests

    memory = PeakMemory()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        features.OUTPUTS["block_cls_ln2"] = standin_block_cls
    index = with_training_images(scan(args.data, "ufd"), args.images)
    requests = list(feature_requests([rine_config(args.device)], index).values())
    if args.device == "cuda":
        requests = [dataclasses.replace(r, precision="bfloat16") for r in requests]
    start = time.perf_counter()
    tables, _ = features.extract(requests, args.store, device=args.device, batch_size=128 if args.device == "cuda"
                                 else 64, num_workers=args.workers, log=None)
    seconds = time.perf_counter() - start
    images = sum(len(t.paths) for t in tables)
    on_disk = sum(f.stat().st_size for t in tables for f in Path(t.location).iterdir())
    return {"images": images, "seconds": seconds, "bytes_per_image_view": on_disk / images,
            "device": device_name(args.device),
            **memory.stop()}


def child_trial(args) -> dict:
    """RINE's head at the paper's shapes, one epoch over `args.trial_images` rows of the store's training
    view (memory-mapped): a CPU epoch over all 80K rows would take minutes and show nothing more."""
    import torch

    from aigid import features
    from aigid.data.layouts import scan
    from aigid.methods.rine import RINETrainer, feature_requests

    memory = PeakMemory()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        features.OUTPUTS["block_cls_ln2"] = standin_block_cls
    index = with_training_images(scan(args.data, "ufd"), args.images)
    config = rine_config(args.device, min(1.0, args.trial_images / args.images))  # rows of the full view
    requests = feature_requests([config], index)
    if args.device == "cuda":
        requests = {k: dataclasses.replace(r, precision="bfloat16") for k, r in requests.items()}
    tables, stats = features.extract(list(requests.values()), args.store, log=None)
    assert stats["computed"] == 0, "the trial must read the store the pass wrote"
    start = time.perf_counter()
    trainer = RINETrainer(config, index, {"features": dict(zip(requests, tables))}, device=args.device)
    for _ in trainer.run():
        pass
    return {"images": len(trainer.train.rows), "seconds": time.perf_counter() - start, **memory.stop()}


def run_child(kind: str, args, **changes) -> dict:
    argv = [sys.executable, __file__, "--child", kind, "--data", str(args.data), "--threads", str(args.threads),
            "--workers", str(args.workers), "--device", args.device]
    for key, value in changes.items():
        argv += [f"--{key}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_process_grid(data: Path, store: Path) -> float:
    """The offline RINE grid's compute, in this process: the feature pass, then each of its trials."""
    import torch

    from aigid.data.layouts import scan
    from aigid.methods import METHODS
    from aigid.methods.spec import PrepareContext
    from trainables.launcher import base_overrides
    from trainables.arguments import parse_settings
    from trainables.sweep import expand
    sys.path.insert(0, str(REPO / "sweeps"))
    import rine_grid

    torch.set_num_threads(2)
    spec, settings = METHODS["rine"], parse_settings(rine_grid.SWEEP, [])
    index = scan(str(data), "ufd")
    configs = [spec.resolve(p, index) for p in expand(rine_grid.SWEEP, True, base_overrides(rine_grid.SWEEP, settings),
                                                      1)]
    start = time.perf_counter()
    shared = spec.prepare(index, configs, PrepareContext(str(store), device="cpu", num_workers=1, log=lambda _: None))
    for config in configs:
        for _ in spec.trainer(config, index, shared).run():
            pass
    return time.perf_counter() - start


def engine_overhead(work: Path) -> tuple[float, float]:
    """(Ray sweep wall, in-process compute) of the offline RINE grid, both on a fresh feature store."""
    from aigid.data.synthetic import ensure_synthetic

    sweep_dir = work / "sweep"
    shutil.rmtree(sweep_dir, ignore_errors=True)
    data = ensure_synthetic(sweep_dir / "aigid_data" / "synthetic-ufd", layout="ufd")  # where the sweep looks
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "sweeps" / "rine_grid.py"), "--mlflow-uri",
                           f"sqlite:///{sweep_dir}/mlflow.db"], cwd=sweep_dir, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode or f"{GRID_TRIALS}/{GRID_TRIALS} trials done" not in done.stdout:
        raise SystemExit(f"the offline RINE grid failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with tempfile.TemporaryDirectory(dir=work) as store:
        compute = in_process_grid(data, Path(store))
    return wall, compute


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 80_000], help="training images per pass")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers decoding for the pass")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: a stand-in emits ViT-L/14's output shape; cuda: the real ViT-L/14, bf16 autocast")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "aigid-paper-scale",
                        help="dataset and stores (the dataset is kept for the next run)")
    parser.add_argument("--trial-images", type=int, default=4000, help="rows the one measured trial trains on")
    parser.add_argument("--skip-grid", action="store_true", help="no engine-overhead measurement")
    parser.add_argument("--engine-only", action="store_true", help="only the engine-overhead measurement (4.)")
    parser.add_argument("--project", action="store_true",
                        help="only project each paper's largest grid from the recorded H200 rates (projection.py)")
    parser.add_argument("--child", choices=("extract", "trial"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((child_extract if args.child == "extract" else child_trial)(args)))
        return

    if args.project:
        print("\n".join(project()))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    if args.engine_only:
        return print_engine_overhead(args.work)
    largest = max(args.sizes)
    start = time.perf_counter()
    args.data = make_dataset(args.work / "ufd", largest, jobs=max(1, os.cpu_count() or 1))
    print(f"dataset: UFD layout, {largest} training images (4 ProGAN classes), {args.work / 'ufd'} "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    backbone = "ViT-L/14 stand-in (24 x 1024 per image)" if args.device == "cpu" else "ViT-L/14, random init, bf16"
    passes = {}
    for size in sorted(args.sizes):
        store = args.work / f"store-{size}"
        shutil.rmtree(store, ignore_errors=True)
        passes[size] = run_child("extract", args, images=size, store=store)
        p = passes[size]
        rate = of_limit(p["images"] / p["seconds"], rine_config(args.device).backbone, p["device"])
        print(f"feature pass, {size} images ({backbone}, {args.workers} decoding worker(s)): "
              f"{rate}, {p['bytes_per_image_view'] / 1024:.1f} KiB per image per "
              f"view, peak RSS {gib(p['peak_rss_bytes'])} (anonymous {gib(p['peak_anon_bytes'])})", flush=True)
    small, large = passes[min(args.sizes)], passes[largest]
    growth = large["peak_anon_bytes"] / small["peak_anon_bytes"]
    print(f"peak anonymous RSS x{growth:.2f} for x{largest / min(args.sizes):.0f} images "
          f"(an in-memory table would hold {gib(large['bytes_per_image_view'] * largest)} for this view)", flush=True)

    trial = run_child("trial", args, images=largest, store=args.work / f"store-{largest}",
                      **{"trial-images": args.trial_images})
    print(f"one trial (RINE head q=2 d'=1024, 1 epoch over {trial['images']} of the {largest} memory-mapped rows): "
          f"{trial['seconds']:.1f} s, peak RSS {gib(trial['peak_rss_bytes'])} "
          f"(anonymous {gib(trial['peak_anon_bytes'])})", flush=True)
    for size in args.sizes:
        shutil.rmtree(args.work / f"store-{size}", ignore_errors=True)

    rate = large["images"] / large["seconds"]
    views = 2  # one training view (1 epoch, §4.2) + the val/test view
    projected = PAPER_IMAGES * views / rate + GRID_TRIALS * trial["seconds"] * PAPER_IMAGES / trial["images"]
    print(f"projected, Table 1 grid at the paper's scale ({PAPER_IMAGES} images, {GRID_TRIALS} trials, one after "
          f"another, this machine's rates): {projected / 3600:.1f} h", flush=True)
    if not args.skip_grid:
        print_engine_overhead(args.work)


def print_engine_overhead(work: Path) -> None:
    wall, compute = engine_overhead(work)
    print(f"offline RINE grid ({GRID_TRIALS} trials): Ray sweep {wall:.1f} s (whole command), in-process compute "
          f"{compute:.1f} s; per-trial overhead {(wall - compute) / GRID_TRIALS:.2f} s", flush=True)
    print(f"engine overhead: {wall / compute:.1f}x")


if __name__ == "__main__":
    main()
