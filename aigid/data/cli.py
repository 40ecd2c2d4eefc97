"""`aigid data ...`: look inside a dataset folder, and write synthetic stand-ins."""
from __future__ import annotations

import sys
import time
from collections import defaultdict

from aigid.data.checks import find_unreadable
from aigid.data.index import FAKE, REAL, DataError, DatasetIndex
from aigid.data.layouts import LAYOUTS, SYNTHETIC_MARKER, scan
from aigid.data.synthetic import SYNTHETIC_LAYOUTS, make_synthetic

_SHOW_UNREADABLE = 20
_PROGRESS_EVERY = 5000


def add_data_commands(subparsers) -> None:
    """Add `data inspect` and `data make-synthetic`; each sets `func(args) -> exit code`."""
    data = subparsers.add_parser("data", help="inspect datasets, write synthetic stand-ins")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="layout, image counts and problems of a dataset folder")
    inspect.add_argument("path")
    inspect.add_argument("--layout", choices=LAYOUTS, help="skip auto-detection")
    inspect.add_argument("--skip-check", action="store_true", help="do not open every image (fast on huge trees)")
    inspect.set_defaults(func=_inspect)

    make = commands.add_parser("make-synthetic", help="write a small synthetic stand-in benchmark (not real data)")
    make.add_argument("out")
    make.add_argument("--layout", choices=SYNTHETIC_LAYOUTS, default="genimage")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--n-train", type=int, default=24, help="real and fake train images per subset, each")
    make.add_argument("--n-test", type=int, default=12, help="real and fake test images per subset, each")
    make.add_argument("--force", action="store_true", help="replace an earlier synthetic set at OUT")
    make.set_defaults(func=_make_synthetic)


def _count_table(index: DatasetIndex, unreadable: frozenset[str] = frozenset()) -> str:
    """Readable images per subset x split, real and fake columns; unreadable ones in a column of their own."""
    rows: dict[tuple[str, str], dict] = defaultdict(lambda: {REAL: 0, FAKE: 0, "bad": 0})
    for sample in index.samples:
        rows[sample.subset, sample.split]["bad" if sample.path in unreadable else sample.label] += 1
    width = max(len("subset"), *(len(subset) for subset, _ in rows))
    bad = "  unreadable" if unreadable else ""
    lines = [f"{'subset':<{width}}  {'split':<5}  {'real':>7}  {'fake':>7}{bad}"]
    total = {REAL: 0, FAKE: 0, "bad": 0}
    for (subset, split), n in sorted(rows.items()):
        lines.append(f"{subset:<{width}}  {split:<5}  {n[REAL]:>7}  {n[FAKE]:>7}"
                     + (f"  {n['bad']:>10}" if unreadable else ""))
        total = {k: total[k] + n[k] for k in total}
    lines.append(f"{'total':<{width}}  {'':<5}  {total[REAL]:>7}  {total[FAKE]:>7}"
                 + (f"  {total['bad']:>10}" if unreadable else ""))
    return "\n".join(lines)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():  # one line, rewritten in place
        print(f"\rchecked {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)
    else:
        print(f"checked {done}/{total} images", file=sys.stderr, flush=True)


def _inspect(args) -> int:
    try:
        index = scan(args.path, layout=args.layout)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = sorted({s.path for s in index.samples})
    print(f"root: {index.root}")
    print(f"layout: {index.layout} ({'given' if args.layout else 'detected'}); "
          f"train split: {index.train_split}, test split: {index.test_split}")
    if index.synthetic:
        print(f"synthetic: yes ({SYNTHETIC_MARKER}): a generated stand-in, not a real benchmark")
    else:
        print("synthetic: no")
    bad = []
    if not args.skip_check:  # before the table, so that it counts readable images only
        progress = _progress if len(files) >= _PROGRESS_EVERY else None
        bad = find_unreadable(files, progress=progress, every=_PROGRESS_EVERY)
    print()
    print(_count_table(index, frozenset(path for path, _ in bad)))
    if len(files) < len(index.samples):
        print(f"({len(files)} distinct files: a real image paired with several generators counts in each)")
    print()
    print(f"problems ({len(index.problems)}):" if index.problems else "problems: none")
    for problem in index.problems:
        print(f"  - {problem}")
    if args.skip_check:
        return 0
    print(f"unreadable images: {len(bad)} of {len(files)} (not counted in the table above)")
    for path, reason in bad[:_SHOW_UNREADABLE]:
        print(f"  - {path}: {reason}")
    if len(bad) > _SHOW_UNREADABLE:
        print(f"  ... and {len(bad) - _SHOW_UNREADABLE} more")
    return 0


def _make_synthetic(args) -> int:
    start = time.perf_counter()
    try:
        path = make_synthetic(args.out, layout=args.layout, seed=args.seed, n_train=args.n_train,
                              n_test=args.n_test, force=args.force)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_images = len({sample.path for sample in scan(path).samples})
    print(f"wrote a synthetic {args.layout} stand-in (not real data): {n_images} images, seed {args.seed}, "
          f"in {time.perf_counter() - start:.1f}s, to {path}")
    return 0
