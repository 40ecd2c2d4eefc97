"""RINE, §5.4 (Fig. 5: training duration) and §5.5 (Fig. 6: training-set size).

§5.4: the three best 1-epoch configurations per class setting (`paper_config` 1-3) trained
for 15 epochs with lr ÷ 10 at epochs 6 and 11, evaluated after epochs 1, 3, 5, 10 and 15.
One 15-epoch trial per configuration serves all five points: RINE's schedule is a function
of the absolute epoch (`RINEConfig.lr_at`), its dropout and batch order are seeded per epoch
and epoch k reads cached view k, so the first k epochs of a 15-epoch run are a k-epoch run
of the same seed (tests/test_rine.py checks this). §5.5: the best configuration (Table 1)
trained for one epoch on 20/50/80 % of the training images; the 100 % column is epoch 1 of
the §5.4 trial. 18 trials in all. Note the cost on real data: 15 cached training views per image.
"""
import os

import numpy as np

from aigid.figures import SYNTHETIC, pyplot
from aigid.methods import RINE
from aigid.metrics import subset_key
from aigid.report import averaged_note, paper_columns, render
from aigid.trials import finished, where
from trainables.launcher import main
from trainables.sweep import Grid, Sweep

SETTINGS = [1, 2, 4]  # class settings (§4.1)
PAPER_CONFIGS = [1, 2, 3]  # §5.4: the three best 1-epoch configurations (1 = Table 1, used alone in §5.5)
FRACTIONS = [0.2, 0.5, 0.8, 1.0]  # §5.5
EPOCHS = [1, 3, 5, 10, 15]  # §5.4 evaluation points


def pct(values):
    values = [v for v in values if not np.isnan(v)]
    return f"{100 * np.mean(values):.1f} (max {100 * np.max(values):.1f})" if values else "—"


def cell(values) -> str:
    """The mean of `values` (%), '—' when none was reached."""
    values = [v for v in values if not np.isnan(v)]
    return f"{100 * np.mean(values):.1f}" if values else "—"


def table(trials):
    done = finished(trials)
    duration = [["# cl. \\ epoch", *map(str, EPOCHS)]]
    size = [["# cl. \\ fraction", *[f"{int(100 * f)} %" for f in FRACTIONS]]]
    for classes in SETTINGS:
        full = where(done, classes=classes, train_fraction=1.0)
        duration.append([f"{classes}-class", *[f"{pct([t.at_epoch(e, 'test/mean/acc') for t in full])} / "
                                                f"{pct([t.at_epoch(e, 'test/mean/ap') for t in full])}" for e in EPOCHS]])
        best = where(done, classes=classes, paper_config=1)
        row = []
        for fraction in FRACTIONS:
            here = where(best, train_fraction=fraction)
            row.append(f"{pct([t.at_epoch(1, 'test/mean/acc') for t in here])} / "
                       f"{pct([t.at_epoch(1, 'test/mean/ap') for t in here])}")
        size.append([f"{classes}-class", *row])
    note = averaged_note(trials, RINE.test_sets)
    return [render(duration, title=f"RINE Fig. 5 — ACC / AP (%) after each epoch, mean (max) over the 3 best configs; {note}"),
            render(size, title=f"RINE Fig. 6 — ACC / AP (%) after 1 epoch on a fraction of the training set; {note}"),
            per_test_set(trials)]


def fraction_rows(trials):
    """Fig. 6's points: {(classes, fraction): the 1-epoch trials of the best config on that fraction}."""
    done = finished(trials)
    return {(c, f): here for c in SETTINGS for f in FRACTIONS
            if (here := where(where(done, classes=c, paper_config=1), train_fraction=f))}


def per_test_set(trials):
    """Fig. 6 per test set: ACC after one epoch of each class setting and training fraction."""
    tests = paper_columns(trials, RINE.test_sets)
    rows = [["# cl.", "fraction", *tests]]
    for (classes, fraction), here in fraction_rows(trials).items():
        rows.append([f"{classes}-class", f"{int(100 * fraction)} %",
                     *[cell([t.at_epoch(1, subset_key(s, "acc")) for t in here]) for s in tests]])
    return render(rows, title="RINE Fig. 6 per test set — ACC (%) after 1 epoch on a fraction of the training set") \
        if len(rows) > 1 else None


def curves(trials, out_dir, synthetic):
    """Fig. 5 (ACC after each epoch, mean over the 3 best configs) and Fig. 6 (ACC after one epoch
    against the fraction of the training set), one line per class setting."""
    plt = pyplot()

    done = finished(trials)
    if not done:
        return
    fig, (by_epoch, by_fraction) = plt.subplots(1, 2, figsize=(10, 4))
    for classes in SETTINGS:
        full = where(done, classes=classes, train_fraction=1.0)
        points = [(e, np.nanmean(acc)) for e in EPOCHS
                  if (acc := [t.at_epoch(e, "test/mean/acc") for t in full]) and not np.all(np.isnan(acc))]
        if points:
            by_epoch.plot(*zip(*points), marker="o", label=f"{classes}-class (n={len(full)})")
        best = where(done, classes=classes, paper_config=1)
        points = [(100 * f, np.nanmean(acc)) for f in FRACTIONS
                  if (acc := [t.at_epoch(1, "test/mean/acc") for t in where(best, train_fraction=f)])
                  and not np.all(np.isnan(acc))]
        if points:
            by_fraction.plot(*zip(*points), marker="o", label=f"{classes}-class")
    for ax, title, xlabel in ((by_epoch, "Fig. 5: ACC after each epoch", "epoch"),
                              (by_fraction, "Fig. 6: ACC after 1 epoch", "training set used (%)")):
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8, label="chance")
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
        ax.set(title=title, xlabel=xlabel, ylabel="test ACC (%), mean over test sets")
        ax.legend(fontsize=8)
    fig.suptitle(f"{SYNTHETIC if synthetic else ''}RINE §5.4-5.5: training duration and data size", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig5_fig6_training.png"), dpi=110)
    plt.close(fig)
    points = fraction_rows(trials)
    tests = paper_columns(trials, RINE.test_sets)
    settings = sorted({c for c, _ in points})
    if not points or not tests:
        return
    fig, axes = plt.subplots(len(settings), 1, figsize=(2 + 0.55 * len(tests), 2.6 * len(settings) + 0.6),
                             squeeze=False)
    width = 0.8 / len(FRACTIONS)
    for ax, classes in zip(axes[:, 0], settings):
        for k, fraction in enumerate(FRACTIONS):
            here = points.get((classes, fraction), [])
            acc = [np.nanmean([t.at_epoch(1, subset_key(s, "acc")) for t in here]) if here else np.nan for s in tests]
            ax.bar(np.arange(len(tests)) + (k - 1.5) * width, acc, width, label=f"{int(100 * fraction)} %")
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
        ax.set_xticks(np.arange(len(tests)), tests, rotation=45, ha="right", fontsize=8)
        ax.set(ylabel="ACC (%)", title=f"{classes}-class")
        ax.legend(fontsize=7, title="training set", title_fontsize=7, ncol=len(FRACTIONS))
    fig.suptitle(f"{SYNTHETIC if synthetic else ''}RINE Fig. 6 per test set: ACC after 1 epoch by training-set "
                 "fraction (dashed: chance)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig6_per_test_set.png"), dpi=110)
    plt.close(fig)


SWEEP = Sweep(
    name="rine_training",
    method=RINE,
    plan=(Grid({"classes": SETTINGS, "paper_config": PAPER_CONFIGS}, fixed={"train_fraction": 1.0, "epochs": 15}),
          Grid({"classes": SETTINGS, "train_fraction": FRACTIONS[:-1]}, fixed={"paper_config": 1, "epochs": 1})),
    table=table,
    figures=curves,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
