"""LoL, Fig. 4 (and Fig. 5 for AP): train on each GenImage subset, test on all eight.

§4.4: 1,600 real + 1,600 generated training images per subset; §4.2: lr 5e-7 for BigGAN
(BIGGAN_LR), 5e-6 for the others (on the stand-in every subset takes the offline lr). Prints the train × test
accuracy matrix and logs it as a heat-map figure on the sweep's parent run.
"""
import os

import numpy as np

from aigid.data.layouts import SUBSET_IDS
from aigid.methods import LOL
from aigid.methods.lol.config import BIGGAN_LR, OFFLINE_OVERRIDES
from aigid.metrics import subset_key
from aigid.figures import SYNTHETIC, heatmap, save
from aigid.report import render
from aigid.trials import finished, test_sets, where
from trainables.launcher import main
from trainables.sweep import Grid, Offline, Sweep


def accuracy_matrix(trials, metric="acc"):
    """Rows: train subset; columns: test subsets; mean `metric` of the last epochs (NaN if it failed)."""
    tests = test_sets(trials)
    rows = [s for s in SUBSET_IDS if where(trials, train_subset=s)]
    matrix = np.full((len(rows), len(tests)), np.nan)
    for i, train in enumerate(rows):
        for j, test in enumerate(tests):
            values = [v for t in finished(where(trials, train_subset=train)) for v in t.last_epochs(subset_key(test, metric))]
            if values:
                matrix[i, j] = np.mean(values)
    return rows, tests, matrix


def table(trials):
    rows, tests, matrix = accuracy_matrix(trials)
    body = [[train] + [("—" if np.isnan(v) else f"{100 * v:.1f}") for v in line] + [f"{100 * np.nanmean(line):.1f}"]
            for train, line in zip(rows, matrix)]
    return render([["train \\ test"] + tests + ["avg"]] + body,
                  title="LoL Fig. 4 — ACC (%) of a model trained on each subset (rows) on every test subset, "
                        "mean of the last epochs (avg: the score the best trial is picked by)")


def matrix_figures(trials, out_dir, synthetic):
    """Fig. 4 (ACC) and Fig. 5 (AP): train subset × test subset."""
    for figure_number, metric in ((4, "acc"), (5, "ap")):
        rows, tests, matrix = accuracy_matrix(trials, metric)
        if not rows or np.isnan(matrix).all():
            continue
        title = (f"{SYNTHETIC if synthetic else ''}LoL Fig. {figure_number}: {metric.upper()} (%) of a model trained "
                 "on each subset (rows), on each test subset")
        figure = heatmap(matrix, rows, tests, title=title, row_name="train subset", col_name="test subset",
                         score_label=f"{metric.upper()} (%), mean of the last epochs", chance=0.5)
        save(figure, os.path.join(out_dir, f"fig{figure_number}_{metric}_matrix.png"))


PLAN = (Grid({"train_subset": [s for s in SUBSET_IDS if s != "biggan"]}),
        Grid({"train_subset": ["biggan"]}, fixed={"lr": Offline(BIGGAN_LR, OFFLINE_OVERRIDES["lr"])}))
SWEEP = Sweep(name="lol_cross_generator", method=LOL, plan=PLAN, table=table, figures=matrix_figures, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
