"""`aigid eval <method>`: score a trained detector on a dataset's test sets, without training.

The detector is a trial's checkpoint (trainer.pt, or the Tune checkpoint folder holding it), the
best trial of a finished sweep (--from its run folder), or the authors' released file. Its test
images may be perturbed first (--perturb, aigid.data.perturb). The method's `MethodSpec.evaluate`
scores it with the trainer's own scoring code, so a trial's checkpoint gives the numbers the trial
reported; the frozen-backbone features come from the sweeps' cache (--cache-dir) when they are there.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from aigid import checkpoints
from aigid.errors import ConfigError, UserError
from aigid.methods import METHODS
from aigid.methods.released import FORMATS
from aigid.methods.spec import MethodSpec
from aigid.overrides import parse_overrides
from aigid.report import averaged_note, choices_table, paper_columns, render
from aigid.train_cli import HelpFormatter, add_run_arguments, context_of, open_data
from aigid.trials import FINISHED, Trial, best_point, label

COLUMNS = {"ACC": "acc", "AP": "ap", "real ACC": "real_acc", "fake ACC": "fake_acc"}
HEADLINE = ("test/mean/acc", "test/mean/ap")


@dataclass(frozen=True)
class Source:
    """What is evaluated: its flat config (overrides for a released file), its state, and for --from the sweep."""

    where: str
    flat: dict
    state: dict
    data_root: str | None = None  # the sweep's data (--from), None for the synthetic stand-in or a checkpoint
    reported: dict | None = None  # the sweep's final metrics of the trial (--from)


def add_eval_commands(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="score a trained detector on a dataset's test sets (no training)")
    methods = parser.add_subparsers(dest="method", required=True)
    for name, method in METHODS.items():
        run = methods.add_parser(name, help=method.summary, formatter_class=HelpFormatter, description=__doc__)
        source = run.add_mutually_exclusive_group(required=True)
        source.add_argument("--checkpoint", metavar="PATH", help="a trial's trainer.pt, the Tune checkpoint folder "
                                                                 "holding it, or the authors' released file")
        source.add_argument("--from", dest="run_dir", metavar="RUN_DIR",
                            help="a finished sweep's run folder under --storage: its best trial, on its data")
        add_run_arguments(run)
        run.add_argument("--backbone", help="the frozen backbone (e.g. for a released file: aigid-tiny-vit)")
        run.add_argument("--pretrained", help="the backbone's weights: an open_clip tag, a file, or none")
        run.add_argument("--perturb", metavar="SPEC", help="perturb every test image first, e.g. jpeg=30 or blur=3")
        run.add_argument("--perturb-seed", type=int, help="seeds the perturbation's per-image draws")
        run.add_argument("--out", help="report folder; default: a new folder under ./aigid_eval")
        run.set_defaults(func=evaluate)


def owner(flat) -> str | None:
    """The method whose config class has every field of `flat` (a checkpoint older than a field lacks it)."""
    keys = set(flat) if isinstance(flat, dict) else set()
    return next((n for n, m in METHODS.items() if keys and keys <= {f.name for f in fields(m.config_cls)}), None)


def check_owner(method: MethodSpec, path, state: dict) -> dict:
    """A trial's checkpoint state, refused with one line when it is another method's."""
    found = owner(state.get("config"))
    if found != method.name:
        raise ConfigError(f"{path} is a {found} trial's checkpoint (its config is {found}'s): "
                          f"evaluate it with `aigid eval {found}`" if found else
                          f"{path} holds a config of no known method: {sorted(state.get('config', {}))[:6]}")
    return state


def read(path: Path):
    """A checkpoint file read weights-only; one line when it is missing or not a checkpoint."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint file")
    try:
        state = checkpoints.load(path, fix="evaluate only checkpoints aigid or the authors wrote")
    except (RuntimeError, EOFError, OSError) as error:
        raise ConfigError(f"{path} is not a checkpoint torch.load can read: {str(error).splitlines()[0]}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds {type(state).__name__}, not a checkpoint")
    return state


def from_checkpoint(method: MethodSpec, given: str) -> Source:
    """A trial's checkpoint (or its Tune folder), or the authors' released file of `method`."""
    from trainables.trainable import CHECKPOINT_FILE

    path = Path(given).expanduser()
    path = path / CHECKPOINT_FILE if path.is_dir() else path
    state = read(path)
    if "config" in state:
        return Source(str(path), state["config"], check_owner(method, path, state))
    other = [name for name, f in FORMATS.items() if f.match(set(state)) and name != method.name]
    if other:
        raise ConfigError(f"{path} looks like {FORMATS[other[0]].what}, not a {method.name} checkpoint: "
                          f"evaluate it with `aigid eval {other[0]}`")
    if method.released is None:
        raise ConfigError(f"{path} is not a trial's checkpoint ({CHECKPOINT_FILE}), and aigid reads no released "
                          f"file of {method.name}")
    flat, state = method.released(path)  # a ConfigError naming its keys unless it is the authors' format
    return Source(f"{path} ({FORMATS[method.name].what})", flat, state)


def from_run(method: MethodSpec, run_dir: str) -> Source:
    """The best trial of a finished sweep (the best grid point's highest-scoring seed) and its latest checkpoint."""
    from trainables.results import read_folder  # Ray and MLflow load only for --from
    from trainables.trainable import CHECKPOINT_FILE, decode

    run = Path(run_dir).expanduser().absolute()
    run = run.parent if run.name == "report" else run
    finished = read_folder(run)
    if finished.meta["method"] != method.name:
        raise ConfigError(f"{run} is a {finished.meta['method']} sweep: evaluate it with "
                          f"`aigid eval {finished.meta['method']} --from {run_dir}`")
    best = best_point(finished.trials, method.selection.mode)
    if best is None:
        raise UserError(f"{run}: no trial of the sweep finished with a score, so there is no best trial to evaluate")
    top = (max if method.selection.mode == "max" else min)(best[0], key=lambda t: t.score)
    folders = [p.parent for p in sorted(run.glob("*/params.json"))
               if top.matches(**method.config_cls.from_flat(decode(json.loads(p.read_text()))).to_flat())]
    saved = sorted(folders[0].glob(f"checkpoint_*/{CHECKPOINT_FILE}")) if folders else []
    if not saved:
        raise UserError(f"{run} holds no checkpoint of its best trial {top.name!r} (no trial folder with "
                        f"params.json matching its config, or no checkpoint_*/{CHECKPOINT_FILE} in it)")
    state = check_owner(method, saved[-1], read(saved[-1]))
    return Source(f"{saved[-1]} (best trial {top.name!r} of {finished.meta['run']})", top.config, state,
                  finished.meta.get("data_root"), top.final)


def flags(args) -> dict:
    """The config fields the command line sets, over the checkpoint's."""
    named = {"backbone": args.backbone, "pretrained": args.pretrained, "test_perturb": args.perturb,
             "perturb_seed": args.perturb_seed}
    return parse_overrides([f"{k}={v}" for k, v in named.items() if v is not None] + args.set)


def table(method: MethodSpec, trial: Trial, where: str):
    """Per test set ACC, AP, real and fake ACC (%), then the mean row as the paper's tables average."""
    cells = lambda subset: [f"{100 * trial.final[f'test/{subset}/{k}']:.1f}" for k in COLUMNS.values()]  # noqa: E731
    rows = [["test set", *COLUMNS]] + [[s, *cells(s)] for s in paper_columns([trial], method.test_sets)]
    rows.append(["mean", *cells("mean")])
    perturb = trial.config["test_perturb"]
    return render(rows, title=f"{method.name} on {trial.layout} test sets{f', perturbed {perturb}' if perturb != 'none' else ''}"
                              f" ({where}) — %; {averaged_note([trial], method.test_sets)}")


def write(folder: str, method: MethodSpec, trial: Trial, tables: list, text: str, meta: dict) -> None:
    """The report files a sweep's report folder has (trainables.summary.write_report), and config.json."""
    from trainables.summary import write_report  # MLflow loads only when a report is written

    write_report(folder, {"sweep": "eval", "method": method.name, **meta}, tables, text, [trial], None,
                 method.selection.mode)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(trial.config, f, indent=1, default=list)


def evaluate(args) -> int:
    method = METHODS[args.method]
    try:
        source = from_run(method, args.run_dir) if args.run_dir else from_checkpoint(method, args.checkpoint)
        index, offline = open_data(method, args.data or source.data_root, args.layout)
        config = method.resolve({**offline, **source.flat, **flags(args)}, index)
        print(f"{method.name}: {source.where}\non {index.layout}{' (SYNTHETIC)' if index.synthetic else ''} at "
              f"{index.root}, test images perturbed: {config.test_perturb}", flush=True)
        metrics = method.evaluate(config, source.state, index, context_of(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    flat = config.to_flat()
    trial = Trial(name=f"eval {label(flat['test_perturb'])}", config=flat, status=FINISHED, final=metrics,
                  history=(metrics,), layout=index.layout)
    tables = [table(method, trial, "synthetic stand-in" if index.synthetic else str(index.root)),
              choices_table(method.choices)]
    tables = [t for t in tables if t]
    text = "\n\n".join(map(str, tables))
    if source.reported:
        text += "\n\n" + "\n".join(f"{key}: the sweep reported {source.reported.get(key, float('nan')):.6f}, "
                                   f"eval gives {metrics[key]:.6f}" for key in HEADLINE)
    out = os.path.abspath(args.out or os.path.join("aigid_eval", f"{method.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"))
    write(out, method, trial, tables, text, {"run": os.path.basename(out), "axes": {}, "synthetic": index.synthetic,
                                             "data_root": None if index.synthetic else str(index.root),
                                             "evaluated": source.where})
    print(f"\n{text}\n\nreport (table.csv, trials.json, config.json, summary.txt): {out}")
    return 0
