"""Images/s of one APN training step (3 q_θ updates + 1 APN update, eq. 9), K = 1 and K = 25,
with the K proposals folded into the backbone batch versus a per-proposal loop (proposal_chunk=1).

Both variants run in this process on the same device and inputs, so the ratio is what counts
(a noisy shared machine moves both). Ends with `speedup: <ratio>x`, batched over the loop at
the largest K.

    python benchmarks/apn_step.py                       # tiny backbones, 64 px crop (CPU)
    python benchmarks/apn_step.py --preset paper --device cuda   # ResNet-18 + Swin-T at 224, bf16
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.methods.apn import OFFLINE_OVERRIDES, APNConfig, APNTrainer
from finetune_step import images_per_second, training_step

PRESETS = {"offline": OFFLINE_OVERRIDES, "paper": {}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="offline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--proposals", type=int, nargs="+", default=[1, 25])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:  # the trainer wants a dataset; the steps use random tensors
        index = scan(make_synthetic(f"{tmp}/data", n_train=1, n_test=1))
        base = {**PRESETS[args.preset], "batch_size": args.batch, "q_batch_size": args.batch}
        print(f"device={args.device} preset={args.preset} batch={args.batch} torch threads={torch.get_num_threads()}")
        results = {}
        for k in args.proposals:
            for name, chunk in (("batched", 0), ("loop", 1)):
                config = APNConfig.from_flat({**base, "num_proposals": k, "proposal_chunk": chunk})
                trainer = APNTrainer(config.for_layout(index.layout), index, device=args.device)
                results[k, name] = images_per_second(training_step(trainer), args.batch, trainer.device, args.steps)
                del trainer
            print(f"K={k:<3} batched {results[k, 'batched']:8.2f} img/s   loop {results[k, 'loop']:8.2f} img/s")
    k = max(args.proposals)
    print(f"speedup: {results[k, 'batched'] / results[k, 'loop']:.2f}x")


if __name__ == "__main__":
    main()
