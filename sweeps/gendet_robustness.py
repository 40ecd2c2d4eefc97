"""GenDet, Table 4: degraded image classification (gendet.txt §4, "Degraded Image Classification").

"The models are trained and evaluated on SD V1.4" (GenImage): each trial trains GenDet on SD v1.4
and tests it on SD v1.4's test images (real and fake), degraded "following the setting in GenImage"
(test images only; aigid.data.perturb.GENDET_TABLE4): the shorter side resized to 112 or 64 (LR),
JPEG at quality 65 or 30, Gaussian blur of sigma 3 or 5; the clean images are a column of ours
for reference. Table 4's "Avg Acc" is the mean over its six degraded columns, and so is ours
(the clean column is not in it). ACC at threshold 0.5 (§4.1). The training images' frozen CLIP
pass runs once, the test images' once per degradation. With --data pass a GenImage root; offline,
the synthetic GenImage stand-in. GenDet's centre crop zero-pads an image smaller than 224 px
(`SMALL_IMAGES`), so the LR columns see a downscaled image on a black border, not an upscaled one.
"""
from dataclasses import replace

import numpy as np

from aigid.data.perturb import GENDET_TABLE4, NONE
from aigid.methods import GENDET
from aigid.report import final, render
from aigid.trials import finished, where
from trainables.launcher import main
from trainables.sweep import Sweep, grid

SUBSET = "sdv14"  # Table 4: trained and evaluated on SD V1.4
HEADINGS = {"lr112": "LR (112)", "lr64": "LR (64)", "jpeg65": "JPEG (q=65)", "jpeg30": "JPEG (q=30)",
            "blur3": "Blur (σ=3)", "blur5": "Blur (σ=5)"}  # Table 4's columns, in its order
DEGRADED = [GENDET_TABLE4[name].spec() for name in HEADINGS]
PAPER = {  # Table 4: ACC (%) per column, then Avg Acc; * = the authors' runs of the official code
    "ResNet-50": (96.2, 57.4, 51.9, 51.2, 97.9, 69.4, 70.6), "DeiT-S": (97.1, 54.0, 55.6, 50.5, 94.4, 67.2, 69.8),
    "Swin-T": (97.4, 54.6, 52.5, 50.9, 94.5, 52.5, 67.0), "CNNDet": (50.0, 50.0, 97.3, 97.3, 97.4, 77.9, 78.3),
    "Spec": (50.0, 49.9, 50.8, 50.4, 49.9, 49.9, 50.1), "F3Net": (50.0, 50.0, 89.0, 74.4, 57.9, 51.7, 62.1),
    "GramNet": (98.8, 94.9, 68.8, 53.4, 95.9, 81.6, 82.2), "DIRE*": (64.1, 53.5, 85.4, 65.0, 88.8, 56.5, 68.9),
    "Ojha et al.*": (88.2, 78.5, 85.8, 83.0, 69.7, 65.7, 78.3), "GenDet": (85.4, 84.1, 94.4, 94.3, 84.6, 82.9, 87.6)}
ACC = f"test/{SUBSET}/acc"


def average(trials) -> str:
    """Table 4's Avg Acc: the mean over the six degraded columns of each seed, mean (±std) over seeds."""
    seeds = sorted({t.config["seed"] for t in finished(trials)})
    means = [np.mean([t.last(ACC) for t in finished(where(trials, seed=s)) if t.config["test_perturb"] in DEGRADED])
             for s in seeds if len(finished(where(trials, seed=s))) == len(DEGRADED) + 1]
    return f"{100 * np.mean(means):.1f} (±{100 * np.std(means):.1f})" if means else "—"


def table(trials):
    ours = ["GenDet (ours)", final(where(trials, test_perturb=NONE), ACC),
            *(final(where(trials, test_perturb=spec), ACC) for spec in DEGRADED), average(trials)]
    header = ["Method", "clean (not in Avg)", *HEADINGS.values(), "Avg Acc (%)"]
    paper = [[name, "—", *map(str, values)] for name, values in PAPER.items()]
    return render([header, ours, *paper], title=f"GenDet Table 4 — ACC (%) on degraded SD v1.4 test images "
                  f"({SUBSET} real + fake), trained on {SUBSET}; Avg over the six degraded columns; "
                  "our row above the paper's")


SWEEP = Sweep(
    name="gendet_robustness",
    method=replace(GENDET, layout="genimage"),  # the stand-in is GenImage: Table 4 trains on SD v1.4
    plan=grid(test_perturb=[NONE, *DEGRADED]),
    fixed={"train_subset": SUBSET, "test_subsets": [SUBSET]},
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
