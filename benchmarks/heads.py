"""RINE head trials at the paper's shapes, the way a sweep runs them, against their bare arithmetic.

Shapes: ViT-L/14's per-block CLS taps (24 blocks x 1024, float16 in the store), Table 1's 4-class
head (q = 2, d' = 1024; §4.2 batch 128, Adam), one epoch (§4.2) over `--train-rows` training rows,
scored on the val split (4 classes x 2 x 25) and the 20 test sets of §4.1 (`--test-rows` per set).
The features come from paper_scale.py's stand-in for ViT-L/14 (its output shape at almost no
compute), written into a real store by `aigid.features.extract`; the heads never see the backbone.

Each trial (ξ from Table 1's grid, one after another in this process, as a reused trial process
runs them) is measured twice:
- whole: what a sweep's trial does. `RINETrainer` built on the store's tables (pickled and
  unpickled, so memory-mapped afresh as in a Tune trial), then `run()`: rows loaded onto the
  device, batches gathered, forward/backward/Adam, every val and test row scored, ACC/AP computed.
- bare: the same steps' arithmetic alone, on the same rows already on the device in float32:
  contiguous batches, forward/backward/Adam, then the scoring forward passes; no metrics.
Prints trials per hour of both and, last, `data path efficiency: <bare / whole>` (1.0: the trial
is pure arithmetic). One warm-up step runs first so that neither side pays the device's start-up, and
the rows are loaded onto the device before any clock starts (a reused trial process finds them there).

`--stack` also runs the same trials as one `HeadStack` (aigid/methods/rine/stack.py: the ξ axis
vmapped, one kernel per step for all of them) and prints its speedup over the trials one after another.

    python benchmarks/heads.py [--device cpu|cuda] [--train-rows 4000] [--test-rows 100] [--trials 2]
                               [--proj-dim 1024] [--stack]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_scale import make_dataset, rine_config, standin_block_cls  # noqa: E402  (benchmarks/, then the repo)

from aigid import features  # noqa: E402
from aigid.data.layouts import scan  # noqa: E402
from aigid.methods.rine.config import TEST_SETS  # noqa: E402
from aigid.methods.rine.model import RINEHead, rine_loss  # noqa: E402
from aigid.methods.rine import RINETrainer, feature_requests  # noqa: E402
from aigid.methods.rine.scoring import EVAL_BATCH  # noqa: E402
from aigid.methods.rine.stack import HeadStack  # noqa: E402
from aigid.resident import resident_rows  # noqa: E402

XIS = (0.1, 0.2, 0.4, 0.8)  # Table 1's ξ grid; q = 2, d' = 1024 are RINEConfig's defaults (Table 1, 4-class)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """Seconds of work: on CPU this process's CPU time, so that other jobs on a shared machine stay out of
    the ratio (wall time varied 2x between identical runs here); on a GPU wall time after a sync."""
    return time.process_time() if device.type == "cpu" else time.perf_counter()


def whole_trial(configs, index, tables: dict, device: torch.device, run=RINETrainer) -> tuple[float, object]:
    """A sweep's trial (or, with `run=HeadStack`, the trials of `configs` as one stack): built on the
    store's tables and run to the end; seconds and the trainer."""
    tables = pickle.loads(pickle.dumps(tables))  # as a Tune trial receives them: mapped again from the store
    start = clock(device)
    trainer = run(configs, index, {"features": tables}, device=device)
    for _ in trainer.run():
        pass
    sync(device)
    return clock(device) - start, trainer


def as_float(tokens) -> torch.Tensor:
    """Rows as one float32 tensor: a CPU set over AIGID_RESIDENT_CPU_GIB is `MappedRows` (read per batch by
    the trial), read whole here for the bare side only."""
    return tokens.float() if isinstance(tokens, torch.Tensor) else torch.cat(list(tokens.split(EVAL_BATCH))).float()


def bare(config, tokens: torch.Tensor, labels: torch.Tensor, held_out: torch.Tensor | None) -> float:
    """The arithmetic of a trial on float32 rows already on the device: contiguous batches through
    forward/backward/Adam, then the scoring passes over `held_out`; seconds."""
    device = tokens.device
    torch.manual_seed(config.seed)
    model = RINEHead(tokens.shape[1], tokens.shape[2], config.q, config.proj_dim, dropout=config.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    sync(device)
    start = clock(device)
    model.train()
    for i in range(0, len(tokens), config.batch_size):
        logits, z = model(tokens[i:i + config.batch_size])
        loss = rine_loss(logits, z, labels[i:i + config.batch_size], config.xi, config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for chunk in () if held_out is None else held_out.split(EVAL_BATCH):
            model(chunk)
    sync(device)
    return clock(device) - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--train-rows", type=int, default=4000, help="training images (4 ProGAN classes)")
    parser.add_argument("--test-rows", type=int, default=100, help="images per test set (half real, half fake)")
    parser.add_argument("--trials", type=int, default=2, help=f"trials, ξ cycling through Table 1's {XIS}")
    parser.add_argument("--proj-dim", type=int, default=1024, help="d' (Table 1, 4-class: 1024; §4.2 grid: 128-1024)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (§4.2: 128; the offline preset: 16)")
    parser.add_argument("--stack", action="store_true", help="also run the trials as one HeadStack (ξ vmapped)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers decoding for the feature pass")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "aigid-heads",
                        help="dataset and store (kept for the next run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    tests = TEST_SETS.paper("ufd")
    data = make_dataset(args.work / "ufd", args.train_rows, jobs=os.cpu_count() or 1, tests=tests,
                        n_test=args.test_rows // 2)
    index = scan(str(data), "ufd")
    features.OUTPUTS["block_cls_ln2"] = standin_block_cls  # ViT-L/14's output shape; heads only read rows
    configs = [dataclasses.replace(rine_config("cpu"), xi=XIS[i % len(XIS)], proj_dim=args.proj_dim, batch_size=args.batch)
               for i in range(args.trials)]
    requests = feature_requests(configs, index)
    tables = dict(zip(requests, features.extract(list(requests.values()), args.work / "store", num_workers=args.workers,
                                                         log=None)[0]))

    base = configs[0]  # warm-up: one step on random rows, so that neither side pays the device's start-up
    bare(base, torch.randn(base.batch_size, 24, 1024, device=device), torch.ones(base.batch_size, device=device), None)
    loaded = RINETrainer(base, index, {"features": tables}, device=device)  # held-out rows onto the device
    for view in loaded.views:
        resident_rows(view, base.output, loaded.train.rows, device)
    print(f"RINE head trials on {device} ({args.threads} torch threads; {'CPU' if device.type == 'cpu' else 'wall'} "
          f"seconds): q={base.q} d'={base.proj_dim} batch "
          f"{base.batch_size}, 1 epoch over {args.train_rows} training rows of 24 x 1024 float16 from a memory-mapped "
          f"store, val + {len(tests)} test sets of {args.test_rows} rows", flush=True)
    whole_s = bare_s = 0.0
    for i, config in enumerate(configs, 1):
        w, trainer = whole_trial(config, index, tables, device)
        rows = resident_rows(trainer.views[0], config.output, trainer.train.rows, device)  # loaded by the trial
        b = bare(config, as_float(rows), trainer.train_labels, as_float(trainer.held_out.test_tokens[0]))
        whole_s, bare_s = whole_s + w, bare_s + b
        print(f"trial {i} (xi {config.xi}): whole {w:.2f} s, bare arithmetic {b:.2f} s", flush=True)
    print(f"whole trials (store -> rows on the device -> steps -> scores -> metrics): "
          f"{3600 * len(configs) / whole_s:.0f} trials/hour")
    print(f"bare arithmetic of the same steps: {3600 * len(configs) / bare_s:.0f} trials/hour")
    if args.stack:
        stacked_s = whole_trial(configs, index, tables, device, run=HeadStack)[0]
        print(f"the same {len(configs)} trials as one HeadStack: {stacked_s:.2f} s, "
              f"{3600 * len(configs) / stacked_s:.0f} trials/hour; stacked speedup: {whole_s / stacked_s:.2f}x")
    print(f"data path efficiency: {bare_s / whole_s:.2f}")


if __name__ == "__main__":
    main()
