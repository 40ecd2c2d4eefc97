"""RINE, §5.4 (Fig. 5: training duration) and §5.5 (Fig. 6: training-set size).

§5.4: the three best 1-epoch configurations per class setting (`paper_config` 1-3)
trained for 15 epochs with lr ÷ 10 at epochs 6 and 11, evaluated after epochs 1, 3, 5,
10 and 15 — read from one 15-epoch trial, whose first k epochs are exactly a k-epoch run
(same seed, same cached views, same schedule). §5.5: the best configuration (Table 1)
trained for one epoch on 20/50/80/100 % of the training images — epoch 1 of the same
trials. Note the cost on real data: 15 cached training views per image.
"""
import numpy as np

from aigid.report import render
from trainables.launcher import Sweep, main
from trainables.rine import RINE

SETTINGS = [1, 2, 4]
PAPER_CONFIGS = [1, 2, 3]  # §5.4: the three best 1-epoch configurations (1 = Table 1, used alone in §5.5)
FRACTIONS = [0.2, 0.5, 0.8, 1.0]  # §5.5
EPOCHS = [1, 3, 5, 10, 15]  # §5.4 evaluation points


def at_epoch(trial, epoch, key):
    values = [e[key] for e in trial["epochs"] if e.get("epoch") == epoch and key in e]
    return values[0] if values else float("nan")


def pct(values):
    values = [v for v in values if not np.isnan(v)]
    return f"{100 * np.mean(values):.1f} (max {100 * np.max(values):.1f})" if values else "—"


def table(trials):
    done = [t for t in trials if t["status"] == "TERMINATED" and t["epochs"]]
    duration = [["# cl. \\ epoch", *map(str, EPOCHS)]]
    size = [["# cl. \\ fraction", *[f"{int(100 * f)} %" for f in FRACTIONS]]]
    for classes in SETTINGS:
        full = [t for t in done if t["config"]["classes"] == classes and t["config"].get("train_fraction", 1.0) == 1.0]
        duration.append([f"{classes}-class", *[f"{pct([at_epoch(t, e, 'test/mean/acc') for t in full])} / "
                                                f"{pct([at_epoch(t, e, 'test/mean/ap') for t in full])}" for e in EPOCHS]])
        best = [t for t in done if t["config"]["classes"] == classes and t["config"].get("paper_config") == 1]
        row = []
        for fraction in FRACTIONS:
            here = [t for t in best if t["config"].get("train_fraction") == fraction]
            row.append(f"{pct([at_epoch(t, 1, 'test/mean/acc') for t in here])} / "
                       f"{pct([at_epoch(t, 1, 'test/mean/ap') for t in here])}")
        size.append([f"{classes}-class", *row])
    return (render(duration, title="RINE Fig. 5 — ACC / AP (%) after each epoch, mean (max) over the 3 best configs")
            + "\n\n" + render(size, title="RINE Fig. 6 — ACC / AP (%) after 1 epoch on a fraction of the training set"))


SWEEP = Sweep(
    name="rine_training",
    method=RINE,
    grid={"classes": SETTINGS, "paper_config": PAPER_CONFIGS, "train_fraction": FRACTIONS},
    paper={"epochs": 15},
    offline={"epochs": 15},
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
