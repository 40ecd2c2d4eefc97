"""LoL, Table 2: training-data volume × CLIP backbone.

Trains on GenImage SD v1.4 subsets of growing size (balanced real/fake, each inside the
next) with CLIP-RN50, RN101 and ViT-L/14; cells are Avg. ACC / Avg. AP over all test
subsets, mean ± std over the final five epochs. Volumes that the training data cannot
hold are dropped, and the run says which.
"""
import os

from aigid.figures import curve
from aigid.methods import LOL
from aigid.methods.lol import keep_fitting_volumes
from aigid.report import averaged_note, grid_table, pct, pooled
from trainables.launcher import main
from trainables.sweep import Offline, Sweep, grid

VOLUMES = [400, 800, 1600, 3200, 6400, 12800, 25600, 64000, 160000, 323994]  # Table 2 rows
BACKBONES = ["RN50", "RN101", "ViT-L-14"]  # Table 2 columns


def table(trials):
    def cell(here):
        return f"{pct(pooled(here, 'test/mean/acc'))} / {pct(pooled(here, 'test/mean/ap'))}"

    return grid_table(trials, "train_volume", "backbone", cell,
                      title="LoL Table 2 — Avg. ACC / Avg. AP (%), mean (±std) over the final five epochs; "
                            f"Avg.: {averaged_note(trials, LOL.test_sets)}")


def volume_curves(trials, out_dir, synthetic):
    """Table 2 read as curves: the sweep's score (Avg. ACC over the final epochs, §4.3) against the training
    volume, one line per backbone, each point the mean ± std over seeds."""
    curve(trials, "train_volume", lambda t: t.score, by="backbone", synthetic=synthetic,
          title="LoL Table 2: Avg. ACC against training volume, per backbone",
          path=os.path.join(out_dir, "table2_volume_curves.png"), score_label=LOL.selection.label())


SWEEP = Sweep(
    name="lol_data_volume",
    method=LOL,
    plan=grid(train_volume=Offline(VOLUMES, [12, 24, 48]),
              backbone=Offline(BACKBONES, ["aigid-tiny-rn", "aigid-tiny-vit"])),
    prune=keep_fitting_volumes,
    table=table,
    figures=volume_curves,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
