"""Images/s of LoL's and APN's own training steps in float32 (AIGID_PLAIN_CUDA=1) and under the device rule
(bf16 autocast + channels_last on CUDA, aigid/methods/device.py), same process, same inputs, so the ratio is
what counts (on CPU the rule changes nothing: a ratio near 1 is the noise). Then, per trial:

- against the device's limit: FLOPs per image counted by torch's FlopCounterMode on one real step (the
  matmuls and convolutions; APN's step includes its q_θ updates), so achieved FLOP/s; on CUDA as a share of
  the H200's dense peak (benchmarks/projection.py), beside projection.py's 3 x 2 x MACs for LoL's backbone;
- against decoding: the trainer's own training loader in one process (decode, crop, flip, rotate) against
  the fast step's rate, so the CPUs a trial needs to keep its GPU share fed (prepare_trial: c - 1 workers).

    python benchmarks/finetune_step.py                                # tiny models (CPU)
    python benchmarks/finetune_step.py --preset paper --device cuda   # LoL's RN50, APN's ResNet-18 + Swin-T, 224 px
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.methods import apn, lol
from aigid.methods.device import PLAIN_ENV
from projection import BF16_FLOPS, GMACS, device_name

# offline: the tiny stand-ins; paper: the papers' networks at random init (the same arithmetic as their weights)
PRESETS = {
    "offline": {"lol": lol.OFFLINE_OVERRIDES, "apn": apn.OFFLINE_OVERRIDES},
    "paper": {"lol": {"pretrained": None}, "apn": {}},  # LoL §4.2: RN50, batch 4; APN §4.2.2: batch 32
}


def build(method: str, overrides: dict, index, device: str):
    """A method's trainer on `index` (its training loader reads all the training images)."""
    if method == "lol":
        return lol.LoLTrainer(lol.LoLConfig.from_flat({**overrides, "train_volume": None}), index, device=device)
    config = apn.APNConfig.from_flat({**overrides, "train_volume": None})
    return apn.APNTrainer(config.for_layout(index.layout), index, device=device)


def training_step(trainer):
    """A no-argument function doing one of `trainer`'s training steps on fixed random images of its batch and crop."""
    config, generator = trainer.config, torch.Generator().manual_seed(0)
    images = torch.randn(config.batch_size, 3, config.crop, config.crop, generator=generator)
    labels = torch.randint(0, 2, (config.batch_size,), generator=generator).float()
    if isinstance(trainer, lol.LoLTrainer):
        return lambda: trainer.train_step(images, labels)
    q_batches = iter(lambda: images, None)  # the same images for q_θ: only speed is measured
    return lambda: trainer.train_step(images, labels, q_batches)


def images_per_second(step, batch: int, device: torch.device, steps: int) -> float:
    """Median over `steps` timed steps (after one warm-up) of batch / step time."""
    times = []
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def flops_per_image(step, batch: int) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch


def decode_rate(loader, batches: int) -> float:
    """Images/s of a training loader in this process alone (num_workers=0: one worker's share)."""
    images, start = 0, time.perf_counter()
    for i, (_, labels, _) in enumerate(loader):
        images += len(labels)
        if i + 1 == batches:
            break
    return images / (time.perf_counter() - start)


def measure(method: str, overrides: dict, index, args) -> tuple[list[str], float]:
    """(lines to print, the device rule's images/s over float32's)."""
    device, rates = torch.device(args.device), {}
    for variant, plain in (("float32", "1"), ("device rule", "0")):
        os.environ[PLAIN_ENV] = plain  # read at the trainer's placement and at each step (autocast)
        trainer = build(method, overrides, index, args.device)
        config, step = trainer.config, training_step(trainer)
        rates[variant] = images_per_second(step, config.batch_size, device, args.steps)
    flops = flops_per_image(step, config.batch_size)
    decoding = decode_rate(trainer.train_loader, args.decode_batches)
    os.environ.pop(PLAIN_ENV)
    fast = rates["device rule"]
    ratio, achieved, workers = fast / rates["float32"], fast * flops, math.ceil(fast / decoding)
    name = config.backbone if method == "lol" else f"{config.freq_backbone} + {config.spatial_backbone}"
    limit = (f" = {achieved / BF16_FLOPS:.1%} of the H200's dense bf16 peak ({BF16_FLOPS / flops:.0f} images/s there)"
             if device.type == "cuda" else "")
    assumed = f" (projection.py: 3 x 2 x {GMACS[name]} GMACs = {6 * GMACS[name]:.1f})" if name in GMACS else ""
    return [f"{method} ({name}, batch {config.batch_size}, crop {config.crop}): float32 {rates['float32']:.1f} "
            f"images/s, device rule {fast:.1f} images/s, ratio {ratio:.2f}x",
            f"  per trial: {flops / 1e9:.2f} GFLOP per training image counted{assumed}; "
            f"{achieved / 1e12:.4f} TFLOP/s achieved{limit}",
            f"  decoding: {decoding:.1f} images/s per loader process; {fast:.1f} images/s takes {workers} "
            f"decoding worker(s), i.e. --cpus-per-trial {workers + 1} (prepare_trial: c - 1 workers)"], ratio


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="offline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--methods", nargs="+", choices=("lol", "apn"), default=["lol", "apn"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median)")
    parser.add_argument("--decode-batches", type=int, default=4, help="training batches decoded to time the loader")
    args = parser.parse_args(argv)
    print(f"device={args.device} ({device_name(args.device)}) preset={args.preset} torch threads={torch.get_num_threads()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:  # the trainers want a dataset; the timed steps use random tensors
        index = scan(make_synthetic(f"{tmp}/data", n_train=32, n_test=1))
        results = {method: measure(method, PRESETS[args.preset][method], index, args) for method in args.methods}
    print("\n".join(line for lines, _ in results.values() for line in lines))
    print("device rule over float32: " + ", ".join(f"{method} {ratio:.2f}x" for method, (_, ratio) in results.items()))


if __name__ == "__main__":
    main()
