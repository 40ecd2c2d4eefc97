"""All five detectors on one training split and one set of test sets, clean and perturbed (issue 22).

Every detector trains on the UniversalFakeDetect layout's ProGAN images (train/, subset "progan")
and tests on its test/ generators: LoL and APN with train_subset=progan, GenDet by its UFD default
(§4.1), UnivFD on every ProGAN class found (the authors' 20), RINE on its 4-class setting (§4.1:
car, cat, chair, horse; RINE has no 20-class setting). On the synthetic stand-in, which holds
exactly those 4 classes, the five training splits are identical; with --data RINE's is the
4-class subset of the others'. APN has no UFD setting: it takes its GenImage ones (§4.1.3:
15 proposals, 10 epochs; offline 5 proposals, its DF setting).

`--perturb SPEC` (repeatable; aigid.data.perturb's grammar, e.g. `--perturb jpeg=30 blur=3`) adds
a test perturbation: each detector's grid is test_perturb = [none, SPEC...], every trial trains
and then tests under its perturbation. A perturbed row that changed no test metric at all is
marked NO EFFECT: that detector does not apply test_perturb (yet). --set, --epochs and
--backbone go to all five detectors (a field one of them lacks is an error).

One table (detector x test set, ACC / AP and the mean; each detector's mean follows its own
paper's test-set list, as its title says) and one figure: mean ACC / AP per detector (clean),
or against the perturbation (aigid.figures.robustness, one line per detector).

MLflow: one parent run for the comparison; below it one child per detector, which is that
detector's own sweep parent (its table, best config and report), with its trials nested below
it. This reuses the launcher whole (validation, Ray, per-method preparation, recovery, the
trial logger) instead of a second trial loop that would mix five config classes in one Tuner.
The comparison's report (sweep.json, trials.json, summary.txt, the figure) is in
<storage>/<run>/report and on the parent run: `aigid results <run>` prints it again (as printed).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from aigid.data.perturb import NONE
from aigid.errors import UserError
from aigid.figures import SYNTHETIC, pyplot, robustness, save
from aigid.methods import METHODS
from aigid.report import averaged_note, final, mean_std, render
from aigid.trials import Trial, finished, layout_of, test_sets, where
from trainables import tracking
from trainables.arguments import build_parser, check_run_names, parse_settings
from trainables.launcher import fail, quiet_libraries, validate
from trainables.sweep import Offline, Sweep, grid

NAME = "compare"
LAYOUT = "ufd"  # the one layout every detector can train on with one ProGAN split (see above)
DETECTOR = "detector"  # the config field the comparison adds to each trial: the figure's series
# Each detector's settings for the shared split, beyond its paper defaults (the docstring says why).
DETECTORS = {
    "lol": {"train_subset": "progan"},
    "rine": {"classes": 4},  # RINE §4.1, the 4-class setting
    # APN §4.1.3's GenImage setting (15 proposals, 10 epochs), for want of a UFD one; on the stand-in (4x
    # APN's own 48 training images) its DF setting's 5 proposals keep the demo to minutes.
    "apn": {"train_subset": "progan", "num_proposals": Offline(15, 5),
            "epochs": Offline(10, METHODS["apn"].offline["epochs"])},
    "gendet": {},  # GenDet §4.1: train_subset progan on UFD is its default
    "univfd": {},  # UnivFD: every ProGAN class found (classes=20) is its default
}
ALL = ",".join(DETECTORS)  # the comparison's `method`, in its MLflow tags and report


def table(trials: list[Trial]):
    """Rows: detector x test perturbation; columns: each test set's ACC / AP (%), then the mean."""
    sets = test_sets(trials)
    perturbs = list(dict.fromkeys(t.config["test_perturb"] for t in trials))
    rows = [[DETECTOR, "test_perturb", *sets, "mean"]]
    notes = []
    for name in DETECTORS:
        mine = where(trials, **{DETECTOR: name})
        if not mine:
            continue
        notes.append(f"{name}: {averaged_note(mine, METHODS[name].test_sets)}")
        for perturb in perturbs:
            here = where(mine, test_perturb=perturb)
            shown = perturb + (" (NO EFFECT: ignored?)" if ignored(here, mine) else "")
            rows.append([name, shown, *(both(here, f"test/{s}") for s in sets), both(here, "test/mean")])
    layout = layout_of(trials)
    return render(rows, title=f"All detectors on one {layout} training split — ACC / AP (%) after the last epoch, "
                              "mean (±std) over seeds; each detector's mean follows its own paper's test sets:\n  "
                              + "\n  ".join(notes))


def both(trials: list[Trial], prefix: str) -> str:
    return f"{final(trials, f'{prefix}/acc')} / {final(trials, f'{prefix}/ap')}"


def ignored(perturbed: list[Trial], trials: list[Trial]) -> bool:
    """Every perturbed trial's test metrics (losses included) equal its clean twin's in `trials` (one
    detector's: same seed) to the last bit: the detector did not apply the perturbation, and the row must
    not pass for a result."""
    pairs = [(t, where(trials, test_perturb=NONE, seed=t.config["seed"])) for t in finished(perturbed)
             if t.config["test_perturb"] != NONE]
    tests = lambda t: {k: v for k, v in t.epochs[-1].items() if k.startswith("test/")}  # noqa: E731
    return bool(pairs) and all(clean and tests(t) == tests(clean[0]) for t, clean in pairs)


def marked(trials: list[Trial]) -> list[Trial]:
    """The trials, a detector that changed no score under any perturbation named `<detector> (NO EFFECT)`."""
    ignoring = {name for name in DETECTORS if ignored(mine := where(trials, **{DETECTOR: name}), mine)}
    return [replace(t, config={**t.config, DETECTOR: f"{t.config[DETECTOR]} (NO EFFECT)"})
            if t.config[DETECTOR] in ignoring else t for t in trials]


def figures(trials: list[Trial], out_dir: str, synthetic: bool) -> str | None:
    """The robustness figure with perturbations, else a bar chart of each detector's mean ACC / AP."""
    perturbs = list(dict.fromkeys(t.config["test_perturb"] for t in trials))
    title = f"All detectors on one {layout_of(trials)} training split"
    if len(perturbs) > 1:
        return robustness(marked(trials), DETECTOR, os.path.join(out_dir, "robustness.png"), title,
                          perturbations=perturbs, synthetic=synthetic)
    names = [n for n in DETECTORS if finished(where(trials, **{DETECTOR: n}))]
    if not names:
        return None
    fig, ax = pyplot().subplots(figsize=(2 + 1.1 * len(names), 4))
    x = np.arange(len(names))
    for offset, metric in ((-0.2, "acc"), (0.2, "ap")):
        stats = [mean_std([t.last(f"test/mean/{metric}") for t in finished(where(trials, **{DETECTOR: n}))])
                 for n in names]
        ax.bar(x + offset, [100 * m for m, _ in stats], 0.4, yerr=[100 * s for _, s in stats], capsize=3,
               label=f"mean {metric.upper()}")
    ax.axhline(50, color="grey", linestyle="--", linewidth=0.8, label="chance")
    ax.set_xticks(x, names)
    ax.set(ylabel="% over the test sets (bars: ± std over seeds)", ylim=(0, 100))
    ax.set_title(f"{SYNTHETIC if synthetic else ''}{title}: clean test sets", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, os.path.join(out_dir, "detectors.png"))


def sweep_of(name: str, perturbs: list[str]) -> Sweep:
    """A detector's part of the comparison: its own sweep on the shared split, test_perturb its one axis."""
    spec = METHODS[name]
    method = replace(spec, layout=LAYOUT,  # the stand-in every detector trains on offline
                     smoke={k: v for k, v in spec.smoke.items() if k != "test_limit"})  # all test on every image
    return Sweep(name=NAME, method=method, plan=grid(test_perturb=[NONE, *perturbs]), fixed=DETECTORS[name],
                 table=lambda trials: table(tagged(trials, name)), doc=__doc__)


def tagged(trials: list[Trial], name: str) -> list[Trial]:
    """A detector's trials as the comparison reads them: the detector in config (the figure's series) and name."""
    return [replace(t, name=f"{DETECTOR}={name} {t.name}", config={**t.config, DETECTOR: name}) for t in trials]


def add_perturb(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--perturb", action="extend", nargs="+", default=[], metavar="SPEC",
                        help="a test perturbation besides none (aigid.data.perturb's grammar, e.g. jpeg=30 blur=3; "
                             "repeatable)")
    return parser


def parser_for(sweeps: dict[str, Sweep]) -> argparse.ArgumentParser:
    """The flags all five sweeps take, and --perturb, under the comparison's own description."""
    parser = add_perturb(build_parser(sweeps["univfd"]))
    rules = "\n".join(f"  {name}: {sweep.method.selection.describe()}" for name, sweep in sweeps.items())
    parser.prog = "python sweeps/compare.py"
    parser.description = (
        f"{__doc__}\nEach detector's best trial follows its own paper's rule:\n{rules}\n\n"
        "Without --data it runs offline on a generated SYNTHETIC stand-in benchmark with tiny random-init models "
        "(a demo of the pipeline, not the papers' numbers). `aigid config <detector>` lists the fields --set "
        "takes. --resume is refused: resume each detector's run with its own sweep.")
    return parser


def main(argv=None) -> list[Trial]:
    """Validate all five detectors' trials, then run them one sweep after another under one MLflow parent."""
    known, _ = add_perturb(argparse.ArgumentParser(add_help=False)).parse_known_args(argv)
    perturbs = list(dict.fromkeys(p for p in known.perturb if p != NONE))
    sweeps = {name: sweep_of(name, perturbs) for name in DETECTORS}
    settings = parse_settings(sweeps["univfd"], argv, parser_for(sweeps))  # --set and --epochs go to all five
    quiet_libraries()
    try:
        check_run_names(settings)
        if settings.resume:
            raise UserError("compare cannot --resume yet: resume each detector's run with its own sweep's "
                            "--resume NAME-<detector>, or rerun the comparison")
        run = settings.name or f"{NAME}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        parts = {name: (sweep, replace(settings, name=f"{run}-{name}")) for name, sweep in sweeps.items()}
        launches = {name: validate(sweep, part) for name, (sweep, part) in parts.items()}
        uri = tracking.tracking_uri(settings.mlflow_uri)
        client = None if settings.dry_run else tracking.connect(uri)
    except UserError as error:
        fail(error)
    for name, launch in launches.items():
        print(f"[aigid] {NAME}: {name}: {len(launch.points)} trials", flush=True)
        if settings.dry_run:
            for point in launch.points:
                print("  ", {k: point[k] for k in [*launch.axes, "seed"]})
    if settings.dry_run:
        return []
    return run_all(parts, launches, settings, client, uri, run, perturbs)


def run_all(parts, launches, settings, client, uri, run, perturbs) -> list[Trial]:
    from trainables.results import read_folder
    from trainables.run import report_folder, run_sweep
    from trainables.summary import write_report

    index = next(iter(launches.values())).index
    experiment = tracking.experiment_id(client, NAME)
    tags = {"sweep": NAME, "method": ALL, "dataset": index.layout, "data_root": index.root,
            "synthetic": str(index.synthetic).lower(), "git_commit": tracking.git_commit(), "aigid_run": run}
    parent = tracking.parent_run(client, experiment, run, tags, {"detectors": list(DETECTORS),
                                                                 "perturbations": [NONE, *perturbs]})
    print(f"[aigid] MLflow: experiment '{NAME}', parent run {parent} at {uri}", flush=True)
    trials, failed = [], []
    try:
        for name, (sweep, part) in parts.items():
            try:
                trials += tagged(run_sweep(sweep, part, launches[name], client, uri, nest_under=parent), name)
            except (SystemExit, UserError) as error:  # run_sweep said why; the other detectors still run
                if isinstance(error, UserError):
                    print(f"error: {name}: {error}", file=sys.stderr, flush=True)
                failed.append(name)
                folder = report_folder(settings.storage, part.name)
                if os.path.exists(os.path.join(folder, "trials.json")):  # the trials that did finish
                    trials += tagged(read_folder(Path(folder)).trials, name)
        folder = report_folder(settings.storage, run)
        tables = [table(trials)]
        text = str(tables[0])
        write_report(folder, {"sweep": NAME, "method": ALL, "run": run,
                              "axes": {"test_perturb": [NONE, *perturbs], DETECTOR: list(DETECTORS)},
                              "synthetic": index.synthetic, "data_root": None if index.synthetic else index.root},
                     tables, text, trials, None, "max")
        figure = figures(trials, folder, index.synthetic)
        client.log_artifacts(parent, folder)
        print(f"\n{text}\n\n[aigid] {NAME} report: {folder}\n[aigid] figure: {figure or 'none'}", flush=True)
    finally:
        client.set_terminated(parent, status="FAILED" if failed or len(trials) == 0 else "FINISHED",
                              end_time=int(time.time() * 1000))
    if failed:  # after the table, as a single sweep does: exit 1
        print(f"error: the trials of {', '.join(failed)} failed (see above); the table shows what finished",
              file=sys.stderr, flush=True)
        raise SystemExit(1)
    return trials


if __name__ == "__main__":
    main()
