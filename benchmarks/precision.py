"""Images/s of the frozen feature pass in float32 and under bf16 autocast, same process, same images.

The pass RINE, GenDet and UnivFD sweeps run once (`aigid.features.compute_table`): decoding in
DataLoader workers, the backbone, the rows streamed into a store entry. On CUDA the sweeps use
bf16 autocast; this measures what that buys for ViT-L/14 (random init has the paper's compute;
its weights cannot be downloaded here). Each rate is also a fraction of the device's bf16 arithmetic
limit (projection.py). Ends with `bf16 speedup: <ratio>x; bf16 <rate and its fraction of the limit>`
(the GPU suite's summary line).

    python benchmarks/precision.py                      # ViT-L/14 on CUDA, 2048 images
    python benchmarks/precision.py --device cpu --backbone aigid-tiny-vit --images 64
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FeatureStore, FixedView, _build_encoder, compute_table
from projection import device_name, of_limit


def images_per_second(request: FeatureRequest, visual, store: FeatureStore, args) -> float:
    partial = store.partial(request.key())
    start = time.perf_counter()
    compute_table(request, visual, device=args.device, batch_size=args.batch, num_workers=args.workers, folder=partial)
    if args.device == "cuda":
        torch.cuda.synchronize()
    return len(request.paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", default="ViT-L-14", help="open_clip name, random init")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers decoding")
    parser.add_argument("--output", default="block_cls_ln2", help="RINE's per-block CLS tokens by default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        per_leaf = max(1, args.images // 40)  # the UFD stand-in has 40 image folders
        paths = tuple(s.path for s in scan(make_synthetic(f"{tmp}/data", layout="ufd", n_train=per_leaf,
                                                          n_test=per_leaf)).samples)[: args.images]
        visual = _build_encoder(args.backbone, None, args.device)
        store = FeatureStore(f"{tmp}/store")
        print(f"{args.backbone} ({args.output}) on {args.device}: {len(paths)} images, batch {args.batch}, "
              f"{args.workers} decoding workers", flush=True)
        rates = {}
        for precision in ("float32", "bfloat16", "float32", "bfloat16"):  # twice each: the first warms up
            request = FeatureRequest(args.backbone, None, (args.output,), paths, FixedView(test_transform(224, small="pad")),
                                     precision=precision)
            rates[precision] = images_per_second(request, visual, store, args)
        device = device_name(args.device)
        for precision, rate in rates.items():
            print(f"{precision:9s} {of_limit(rate, args.backbone, device)}")
    bf16 = of_limit(rates["bfloat16"], args.backbone, device)
    print(f"bf16 speedup: {rates['bfloat16'] / rates['float32']:.2f}x; bf16 {bf16}")


if __name__ == "__main__":
    main()
