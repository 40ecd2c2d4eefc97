"""LoL, Fig. 4 (ACC) and Fig. 5 (AP), Table 1 and Fig. 6: train on each GenImage subset, test on all eight.

§4.4: 1,600 real + 1,600 generated training images per subset; §4.2: lr 5e-7 for BigGAN
(BIGGAN_LR), 5e-6 for the others (on the stand-in every subset takes the offline lr).
A matrix cell is the final checkpoint's ACC (AP) on one test subset, seeds pooled: the paper's
Fig. 4 and Table 1 (92.7 % average) come from one checkpoint. Table 1 is the matrix's column
means, a test set's accuracy averaged over the eight training cases. Fig. 6 is the stability
view: per training case, Avg. ACC / AP over the test sets, mean ± std over the final five epochs
("fluctuating around 90 %", §4.5). Tables print as text; figures are logged on the parent run.

--fig-a7: Fig. A7 (Appendix A.3, "real-world scenarios"), the same matrices with noise, blurring, JPEG
compression and random cropping "sequentially applied ... on both the training and test sets"
(aigid.data.perturb LOL_TABLE_A4["combined"]) and 3,200 training images ("only 1 %"); offline, two
training cases (SD v1.4 and BigGAN at its own lr) instead of eight. lol.txt gives Fig. A7's values
only as a picture, so its tables print ours alone.
"""
import os

import numpy as np

from aigid.data.layouts import SUBSET_IDS
from aigid.data.perturb import LOL_TABLE_A4
from aigid.figures import SYNTHETIC, heatmap, pyplot, save
from aigid.methods import LOL
from aigid.methods.lol.config import BIGGAN_LR, OFFLINE_OVERRIDES
from aigid.metrics import subset_key
from aigid.report import averaged_note, paper_columns, pooled, pct, render
from aigid.trials import finished, layout_of, where
from trainables.launcher import main
from trainables.sweep import Grid, Offline, Sweep, Variant

FINAL = "the final checkpoint"


def matrix(trials, metric="acc"):
    """Rows: train subset; columns: test subsets; `metric` after the last epoch, mean over seeds (NaN
    where a trial failed)."""
    tests = paper_columns(trials, LOL.test_sets)
    rows = [s for s in SUBSET_IDS if where(trials, train_subset=s)]
    values = np.full((len(rows), len(tests)), np.nan)
    for i, train in enumerate(rows):
        for j, test in enumerate(tests):
            last = [t.last(subset_key(test, metric)) for t in finished(where(trials, train_subset=train))]
            if last:
                values[i, j] = np.mean(last)
    return rows, tests, values


def _cell(v) -> str:
    return "—" if np.isnan(v) else f"{100 * v:.1f}"


def matrix_table(trials, metric: str, figure):
    rows, tests, values = matrix(trials, metric)
    body = [[train, *map(_cell, line), f"{100 * np.nanmean(line):.1f}"] for train, line in zip(rows, values)]
    return render([["train \\ test", *tests, "Avg."]] + body,
                  title=f"LoL Fig. {figure} — {metric.upper()} (%) of {FINAL} trained on each subset (rows) on every "
                        f"test subset; Avg.: {averaged_note(trials, LOL.test_sets)}")


def table1(trials):
    """Table 1: per test set, ACC averaged over the training cases (the matrix's column means)."""
    rows, tests, values = matrix(trials)
    if not rows:
        return None
    means = [np.nanmean(column) if not np.isnan(column).all() else np.nan for column in values.T]
    averaged = LOL.test_sets.averaged(layout_of(trials), tests)
    overall = np.nanmean([m for t, m in zip(tests, means) if t in averaged])
    return render([["method", *tests, "Avg. ACC"], ["LoL (ours, " + FINAL + ")", *map(_cell, means), _cell(overall)]],
                  title=f"LoL Table 1 — ACC (%) per test set, averaged over the {len(rows)} training cases; "
                        f"Avg. ACC: {averaged_note(trials, LOL.test_sets)}")


def fig6_table(trials):
    """Fig. 6: per training case, Avg. ACC / AP over the test sets, mean (± std) over the final five epochs."""
    rows = [[s, pct(pooled(here, "test/mean/acc")), pct(pooled(here, "test/mean/ap"))]
            for s in SUBSET_IDS if (here := finished(where(trials, train_subset=s)))]
    return render([["train subset", "Avg. ACC (%)", "Avg. AP (%)"], *rows],
                  title="LoL Fig. 6 — stability: Avg. ACC / AP over the test sets, mean (± std) over the final "
                        "five epochs") if rows else None


def matrix_figures(trials, out_dir, synthetic, numbers: dict):
    """The train × test matrix of each {metric: the paper's figure number} as a heat-map PNG."""
    prefix = SYNTHETIC if synthetic else ""
    for metric, number in numbers.items():
        rows, tests, values = matrix(trials, metric)
        if not rows or np.isnan(values).all():
            continue
        title = f"{prefix}LoL Fig. {number}: {metric.upper()} (%) of {FINAL}, trained on each subset (rows)"
        figure = heatmap(values, rows, tests, title=title, row_name="train subset", col_name="test subset",
                         score_label=f"{metric.upper()} (%), {FINAL}", chance=0.5)
        save(figure, os.path.join(out_dir, f"fig{number}_{metric}_matrix.png"))


def table(trials):
    return [matrix_table(trials, "acc", 4), table1(trials), matrix_table(trials, "ap", 5), fig6_table(trials)]


def figures(trials, out_dir, synthetic):
    """Fig. 4 (ACC) and Fig. 5 (AP) matrices of the final checkpoint; Fig. 6, the final five epochs' bars."""
    matrix_figures(trials, out_dir, synthetic, {"acc": 4, "ap": 5})
    prefix = SYNTHETIC if synthetic else ""
    cases = [(s, here) for s in SUBSET_IDS if (here := finished(where(trials, train_subset=s)))]
    if not cases:
        return
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(cases), 4))
    x = np.arange(len(cases))
    for offset, metric in ((-0.2, "acc"), (0.2, "ap")):
        stats = [pooled(here, f"test/mean/{metric}") for _, here in cases]
        ax.bar(x + offset, [100 * m for m, _ in stats], 0.4, yerr=[100 * s for _, s in stats], capsize=3,
               label=f"Avg. {metric.upper()}")
    ax.axhline(50, color="grey", linestyle="--", linewidth=0.8, label="chance")
    ax.set_xticks(x, [name for name, _ in cases])
    ax.set(xlabel="training subset", ylabel="% over the test sets (bars: ± std)")
    ax.set_title(f"{prefix}LoL Fig. 6: Avg. ACC / AP over the final five epochs (mean ± std)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, os.path.join(out_dir, "fig6_stability.png"))


OTHERS = [s for s in SUBSET_IDS if s != "biggan"]
BIGGAN = Grid({"train_subset": ["biggan"]}, fixed={"lr": Offline(BIGGAN_LR, OFFLINE_OVERRIDES["lr"])})
COMBINED = LOL_TABLE_A4["combined"].spec()


def fig_a7_table(trials):
    return [matrix_table(trials, "acc", "A7 (ACC)"), matrix_table(trials, "ap", "A7 (AP)")]


def fig_a7_figures(trials, out_dir, synthetic):
    matrix_figures(trials, out_dir, synthetic, {"acc": "A7", "ap": "A7"})


FIG_A7 = Sweep(name="lol_fig_a7", method=LOL, plan=(Grid({"train_subset": Offline(OTHERS, ["sdv14"])}), BIGGAN),
               fixed={"train_perturb": COMBINED, "test_perturb": COMBINED, "train_volume": Offline(3200, 48),  # A.3: 1 %
                      "backbone": Offline("RN50", "aigid-tiny-rn")},  # Fig. A7: CLIP-RN50
               table=fig_a7_table, figures=fig_a7_figures, doc=__doc__)
SWEEP = Sweep(name="lol_cross_generator", method=LOL, plan=(Grid({"train_subset": OTHERS}), BIGGAN), table=table,
              figures=figures, doc=__doc__,
              variants=(Variant("--fig-a7", "Fig. A7: all four perturbations in sequence on train and test, "
                                            "3,200 training images", FIG_A7),))

if __name__ == "__main__":
    main(SWEEP)
