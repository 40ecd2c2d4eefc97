"""RINE, Table 4: ablations for the 1-, 2- and 4-class settings.

Each setting uses its best configuration (Table 1, `paper_config=1`); rows remove one
component: the contrastive loss (ξ = 0), the TIE (plain mean over blocks), the
intermediate blocks (last block only, i.e. UFD's features). Cells are average ACC / AP
over the paper's 20 test sets ("all generators") and over its non-GAN ones (those outside
Table 2's seven "Generative Adversarial Networks" columns), as the authors' ablations()
averages them; a test folder the paper did not use is never averaged.
"""
import numpy as np

from aigid.methods import RINE
from aigid.metrics import subset_key
from aigid.report import averaged_note, render
from aigid.trials import finished, layout_of, test_sets, where
from trainables.launcher import main
from trainables.sweep import Sweep, grid

SETTINGS = [1, 2, 4]  # Table 4 columns
ABLATED = ["contrastive", "tie", "intermediate", None]  # Table 4 rows: w/o contr. loss, w/o TIE, w/o intermediate, full
GANS = {"progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan"}  # Table 2's GAN group
ROW_NAMES = {"contrastive": "w/o contr. loss", "tie": "w/o TIE", "intermediate": "w/o intermediate", None: "full"}


def average(trial, metric, sets):
    """`metric` averaged over the test `sets` the trial reports."""
    values = [trial.final[subset_key(s, metric)] for s in sets if subset_key(s, metric) in trial.final]
    return float(np.mean(values)) if values else float("nan")


def table(trials):
    done = finished(trials)
    averaged = RINE.test_sets.averaged(layout_of(trials), test_sets(trials))
    blocks = []
    for title, sets in (("all generators", averaged), ("non-GAN generators", [s for s in averaged if s not in GANS])):
        rows = [["", *[f"{c}-class {m}" for c in SETTINGS for m in ("ACC", "AP")], "AVG ACC", "AVG AP"]]
        for ablated in ABLATED:
            cells = []
            for classes in SETTINGS:
                here = where(done, without=ablated, classes=classes)
                cells += [np.mean([average(t, m, sets) for t in here]) if here else float("nan") for m in ("acc", "ap")]
            means = [np.nanmean(cells[0::2]) if not np.all(np.isnan(cells[0::2])) else float("nan"),
                     np.nanmean(cells[1::2]) if not np.all(np.isnan(cells[1::2])) else float("nan")]
            rows.append([ROW_NAMES[ablated], *["—" if np.isnan(v) else f"{100 * v:.1f}" for v in cells + means]])
        blocks.append(render(rows, title=f"RINE Table 4 — ablations, average ACC / AP (%), {title}: "
                                         f"{len(sets)} sets ({averaged_note(trials, RINE.test_sets)})"))
    return blocks


SWEEP = Sweep(name="rine_ablation", method=RINE, plan=grid(classes=SETTINGS, without=ABLATED),
              fixed={"paper_config": 1}, table=table, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
