"""Images/s of a feature pass's input side for a fixed test view (RINE's and UnivFD's centre crop), JPEGs
at GenImage's size: PIL in the loader workers (the default) against torchvision's decode_jpeg on the
pass's device (aigid/data/device_decode.py; nvjpeg on CUDA), same files, same process, so the ratio is
what counts. No model runs: this is what feeds it (the H200's ViT-L/14 bf16 limit, ~6,000 images/s,
benchmarks/projection.py, is what it must keep up with).

    python benchmarks/decode.py                                  # CPU, 1 worker
    python benchmarks/decode.py --device cuda --workers 12       # what gpu_suite.sh runs
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from aigid.data.datasets import IndexedImages, collate_indexed
from aigid.data.device_decode import DeviceDecoder, EncodedImages, collate_encoded
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FixedView


def jpegs(folder: Path, n: int, size: int, quality: int) -> tuple[str, ...]:
    """`n` smooth-plus-noise JPEGs of size x size (noise alone would compress unlike photographs)."""
    rng, folder = np.random.default_rng(0), Path(folder)
    ramp = np.linspace(0, 200, size)[None, :, None] + np.linspace(0, 50, size)[:, None, None]
    for i in range(n):
        pixels = np.clip(ramp + rng.normal(0, 12, (size, size, 3)) + 5 * (i % 7), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=quality)
    return tuple(str(p) for p in sorted(folder.glob("*.jpg")))


def rate(batches, device: torch.device, n: int) -> float:
    """Images/s of iterating `batches` (each a (rows, images) on `device`) to the end, the device done."""
    start, seen = time.perf_counter(), 0
    for rows, images in batches:
        seen += len(rows)
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert seen == n, f"{seen} of {n} images came through"
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=512, help="px (GenImage's SD images: 512)")
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument("--batch", type=int, default=128, help="the pass's batch on CUDA (SharedFeatures)")
    parser.add_argument("--workers", type=int, default=1, help="loader workers (reading bytes, or decoding with PIL)")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        paths = jpegs(Path(folder), args.images, args.size, args.quality)
        request = FeatureRequest("ViT-L-14", None, ("block_cls_ln2",), paths, FixedView(test_transform(224, small="pad")))
        loader = dict(batch_size=args.batch, num_workers=args.workers, pin_memory=device.type == "cuda")
        pil_view = IndexedImages(request.paths, request.view_of)
        decoder = DeviceDecoder(request.transform.transform, pil_view, device)

        def pil():
            for rows, images in DataLoader(pil_view, collate_fn=collate_indexed, **loader):
                yield rows, images.to(device, non_blocking=True)

        def on_device():
            for rows, items in DataLoader(EncodedImages(request.paths, request.view_of), collate_fn=collate_encoded,
                                          **loader):
                yield decoder(rows, items)

        rate(on_device(), device, len(paths))  # warm-up: CUDA context, nvjpeg handles, worker start-up
        rates = {"PIL in the loader workers": rate(pil(), device, len(paths)),
                 f"decode_jpeg on {device.type}": rate(on_device(), device, len(paths))}
    print(f"{args.images} JPEGs of {args.size}² px (q={args.quality}) -> 224² centre crop, batch {args.batch}, "
          f"{args.workers} loader worker(s), {device}")
    for name, value in rates.items():
        print(f"  {name:28s} {value:8.1f} images/s")
    pil_rate, device_rate = rates.values()
    print(f"decode on the device over PIL: {device_rate / pil_rate:.2f}x")


if __name__ == "__main__":
    main()
