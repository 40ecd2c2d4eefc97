"""Images/s of a feature pass's input side for a fixed test view (RINE's and UnivFD's centre crop), JPEGs
at GenImage's size: PIL in the loader workers (the default) against torchvision's decode_jpeg on the
pass's device (aigid/data/device_decode.py; nvjpeg on CUDA), same files, same process, so the ratio is
what counts. No model runs: this is what feeds it (the H200's ViT-L/14 bf16 limit, ~6,000 images/s,
benchmarks/projection.py, is what it must keep up with). Then how far the two paths' views differ: the
largest pixel difference (0-255), and whether both skip the one cut file among the JPEGs (nvjpeg's
4:2:0 chroma upsampling differs from PIL's; aigid/data/device_decode.py).

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
from aigid.data.transforms import CLIP_STD, test_transform
from aigid.features import FeatureRequest, FixedView


def jpegs(folder: Path, n: int, size: int, quality: int) -> tuple[str, ...]:
    """`n` smooth-plus-noise JPEGs of size x size (noise alone would compress unlike photographs)."""
    rng, folder = np.random.default_rng(0), Path(folder)
    ramp = np.linspace(0, 200, size)[None, :, None] + np.linspace(0, 50, size)[:, None, None]
    for i in range(n):
        pixels = np.clip(ramp + rng.normal(0, 12, (size, size, 3)) + 5 * (i % 7), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=quality)
    whole = (folder / f"{n - 1:05d}.jpg").read_bytes()
    (folder / f"{n - 1:05d}.jpg").write_bytes(whole[:len(whole) // 2])  # cut: both paths must skip it
    return tuple(str(p) for p in sorted(folder.glob("*.jpg")))


def rate(batches, device: torch.device, n: int) -> float:
    """Images/s of iterating `batches` (each a (rows, images) on `device`) over `n` files, the device done."""
    start = time.perf_counter()
    for _ in batches:
        pass
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def agreement(pil, on_device) -> str:
    """The rows each path kept and the largest difference of their views, in 0-255 pixel steps."""
    kept, largest = [[], []], 0.0
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    for (rows, images), (device_rows, device_images) in zip(pil, on_device):
        kept[0] += rows.tolist()
        kept[1] += device_rows.tolist()
        if rows.tolist() == device_rows.tolist():
            difference = (images.float().cpu() - device_images.float().cpu()).abs() * std * 255
            largest = max(largest, float(difference.max()))
    same = "the same rows" if kept[0] == kept[1] else f"OTHER rows ({len(kept[0])} by PIL, {len(kept[1])} on the device)"
    return f"views agree to {largest:.1f} pixel steps at most; {same} kept ({len(kept[0])} of the files)"


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
        check = agreement(pil(), on_device())
    print(f"{args.images} JPEGs (1 cut) of {args.size}² px (q={args.quality}) -> 224² centre crop, batch {args.batch}, "
          f"{args.workers} loader worker(s), {device}")
    for name, value in rates.items():
        print(f"  {name:28s} {value:8.1f} images/s")
    pil_rate, device_rate = rates.values()
    print(f"decode on the device over PIL: {device_rate / pil_rate:.2f}x; {check}")  # the suite's summary line


if __name__ == "__main__":
    main()
