"""What the cache entries' checksums cost (aigid/cache.py), on a paper-scale feature store file.

Writes one RINE ViT-L/14 view set (`block_cls_ln2`: 24 x 1024 float16 per image, 48 KiB) of
--images images (default 43,690: 2 GiB) into an entry in a temporary folder twice, streamed
through `RowsFile` (CRC-32 summed as written) and with plain `tofile` writes, then times, in the
same process: `damage()` (the check a sweep makes before reading the entry: every byte's CRC-32)
against a full read of the array (np.load, what the trials' epochs read in total) and prints
both ratios. The file is then in the page cache, as it is right after the pass that wrote it.

    python benchmarks/checksum.py [--images N] [--dir /tmp]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from aigid.cache import RowsFile, damage, seal

ROW = (24, 1024)  # RINE, ViT-L/14: the CLS token after each of its 24 blocks' ln_2 (rine.txt §3)
BATCH = 128


def write(path: Path, images: int, streamed: bool) -> float:
    """Seconds to stream `images` rows in batches, through RowsFile (summed) or plain tofile writes."""
    block = np.random.default_rng(0).standard_normal((BATCH, *ROW)).astype(np.float16)
    start = time.perf_counter()
    if streamed:
        rows = RowsFile(path, images, ROW, np.float16)
        for first in range(0, images, BATCH):
            rows.append(block[: min(BATCH, images - first)])
        seal(path.parent, {path.name: rows.close()})
    else:
        with open(path, "wb") as file:
            header = {"descr": "<f2", "fortran_order": False, "shape": (images, *ROW)}
            np.lib.format.write_array_header_1_0(file, header)
            for first in range(0, images, BATCH):
                block[: min(BATCH, images - first)].tofile(file)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=43_690)
    parser.add_argument("--dir", default="/tmp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        entry, plain = Path(tmp) / "entry", Path(tmp) / "plain"
        entry.mkdir(), plain.mkdir()
        rows = entry / "block_cls_ln2.npy"
        summed = write(rows, args.images, streamed=True)
        unsummed = write(plain / rows.name, args.images, streamed=False)
        (plain / rows.name).unlink()
        size = rows.stat().st_size
        print(f"RINE ViT-L/14 view set: {args.images} images x {ROW[0]}x{ROW[1]} float16 = {size / 2**30:.2f} GiB")
        print(f"write: {summed:.2f} s with the CRC-32 streamed, {unsummed:.2f} s without ({summed / unsummed:.2f}x)")
        np.load(rows)  # the file in the page cache, as after its pass
        start = time.perf_counter()
        assert damage(entry) is None
        check = time.perf_counter() - start
        start = time.perf_counter()
        np.load(rows)
        load = time.perf_counter() - start
        print(f"check before a sweep reads it: {check:.2f} s ({size / 2**30 / check:.2f} GiB/s); "
              f"full read (np.load): {load:.2f} s ({size / 2**30 / load:.2f} GiB/s)")
        print(f"check / full read: {check / load:.2f}")


if __name__ == "__main__":
    main()
