"""RINE, Table 4: ablations for the 1-, 2- and 4-class settings.

Each setting uses its best configuration (Table 1, `paper_config=1`); rows remove one
component: the contrastive loss (ξ = 0), the TIE (plain mean over blocks), the
intermediate blocks (last block only, i.e. UFD's features). Cells are average ACC / AP
over all test sets and over the non-GAN ones (every test set outside Table 2's seven
"Generative Adversarial Networks" columns).
"""
import numpy as np

from aigid.report import render
from trainables.launcher import Sweep, main
from trainables.rine import RINE

SETTINGS = [1, 2, 4]  # Table 4 columns
ABLATED = ["contrastive", "tie", "intermediate", None]  # Table 4 rows: w/o contr. loss, w/o TIE, w/o intermediate, full
GANS = {"progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan"}  # Table 2's GAN group
ROW_NAMES = {"contrastive": "w/o contr. loss", "tie": "w/o TIE", "intermediate": "w/o intermediate", None: "full"}


def average(trial, metric, keep):
    values = [v for k, v in trial["final"].items() if k.startswith("test/") and k.endswith(f"/{metric}")
              and k.split("/")[1] != "mean" and keep(k.split("/")[1])]
    return float(np.mean(values)) if values else float("nan")


def table(trials):
    done = [t for t in trials if t["status"] == "TERMINATED" and t["final"]]
    blocks = []
    for title, keep in (("all generators", lambda s: True), ("non-GAN generators", lambda s: s not in GANS)):
        rows = [["", *[f"{c}-class {m}" for c in SETTINGS for m in ("ACC", "AP")], "AVG ACC", "AVG AP"]]
        for ablated in ABLATED:
            cells = []
            for classes in SETTINGS:
                here = [t for t in done if t["config"].get("without") == ablated and t["config"]["classes"] == classes]
                cells += [np.mean([average(t, m, keep) for t in here]) if here else float("nan") for m in ("acc", "ap")]
            means = [np.nanmean(cells[0::2]) if not np.all(np.isnan(cells[0::2])) else float("nan"),
                     np.nanmean(cells[1::2]) if not np.all(np.isnan(cells[1::2])) else float("nan")]
            rows.append([ROW_NAMES[ablated], *["—" if np.isnan(v) else f"{100 * v:.1f}" for v in cells + means]])
        blocks.append(render(rows, title=title))
    return "RINE Table 4 — ablations, average ACC / AP (%)\n" + "\n\n".join(blocks)


SWEEP = Sweep(
    name="rine_ablation",
    method=RINE,
    grid={"classes": SETTINGS, "without": ABLATED},
    paper={"paper_config": 1},
    offline={"paper_config": 1},
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
