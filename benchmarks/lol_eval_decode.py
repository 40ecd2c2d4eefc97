"""LoL's evaluation with test images decoded once per sweep vs. decoded by each trial at each evaluation.

Both arms in this one process, on the synthetic GenImage stand-in and the offline preset of
`python sweeps/lol_mask_grid.py` (tiny random-init RN, every test subset): N evaluations
(a sweep's trials × epochs) through the trial's own DataLoaders, then the one-off decode into
the shared uint8 cache plus N evaluations reading it. Prints both times and `speedup: <ratio>x`.

    python benchmarks/lol_eval_decode.py [--evaluations N] [--threads T] [--workers W]
"""
import argparse
import tempfile
import time

import torch

from aigid.data.decoded import decode_once
from aigid.methods.lol.config import SMALL_IMAGES
from aigid.methods.lol.evaluation import entry_key
from aigid.data.layouts import scan
from aigid.data.synthetic import ensure_synthetic
from aigid.methods.lol import OFFLINE_OVERRIDES, LoLConfig, LoLTrainer, select_test_samples


def timed(trainer, evaluations: int) -> float:
    start = time.perf_counter()
    for _ in range(evaluations):
        trainer.evaluate()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=int, default=30, help="evaluations per arm (default 30: 15 trials × 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the per-trial arm and the decode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    index = scan(ensure_synthetic("aigid_data/synthetic-genimage", layout="genimage"), "genimage")
    config = LoLConfig.from_flat(OFFLINE_OVERRIDES)
    paths = [s.path for samples in select_test_samples(index, config).values() for s in samples]
    print(f"{len(paths)} test images (synthetic GenImage stand-in), {config.backbone}, crop {config.crop}, "
          f"{args.evaluations} evaluations, {args.threads} torch threads, {args.workers} loader workers", flush=True)
    per_trial = timed(LoLTrainer(config, index, num_workers=args.workers), args.evaluations)
    print(f"decoded at every evaluation: {per_trial:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        entry = decode_once(paths, config.crop, cache, small=SMALL_IMAGES, num_workers=args.workers, log=None)
        decode = time.perf_counter() - start
        shared = timed(LoLTrainer(config, index, {"test_images": {entry_key(config): entry}}), args.evaluations)
    print(f"decoded once ({decode:.1f} s) + evaluations from the shared crops ({shared:.1f} s): {decode + shared:.1f} s")
    print(f"speedup: {per_trial / (decode + shared):.1f}x")


if __name__ == "__main__":
    main()
