"""LoL, Table 2: training-data volume × CLIP backbone.

Trains on GenImage SD v1.4 subsets of growing size (balanced real/fake, each inside the
next) with CLIP-RN50, RN101 and ViT-L/14; cells are Avg. ACC / Avg. AP over all test
subsets, mean ± std over the final five epochs. Volumes that the training data cannot
hold are dropped, and the run says which.
"""
from aigid.data.subsets import fitting_volumes
from aigid.methods.lol import LoLConfig, select_training_samples
from aigid.report import grid_table, pct, pooled
from trainables.launcher import Sweep, main
from trainables.lol import LOL

VOLUMES = [400, 800, 1600, 3200, 6400, 12800, 25600, 64000, 160000, 323994]  # Table 2 rows
BACKBONES = ["RN50", "RN101", "ViT-L-14"]  # Table 2 columns


def keep_fitting_volumes(grid, index, base):
    """Drop the volumes larger than the training subset (all of it is what the largest uses)."""
    config = LoLConfig.from_flat({**base, "train_volume": None})
    kept, dropped = fitting_volumes(grid["train_volume"], select_training_samples(index, config))
    if not kept:
        raise ValueError(f"no volume of {grid['train_volume']} fits the training subset '{config.train_subset}'")
    note = f"dropped volumes {dropped}: the training subset is smaller" if dropped else ""
    return {**grid, "train_volume": kept}, note


def table(trials):
    def cell(here):
        return f"{pct(pooled(here, 'test/mean/acc'))} / {pct(pooled(here, 'test/mean/ap'))}"

    return grid_table(trials, "train_volume", "backbone", cell,
                      title="LoL Table 2 — Avg. ACC / Avg. AP (%) over all test subsets, mean (±std) of the last epochs")


SWEEP = Sweep(
    name="lol_data_volume",
    method=LOL,
    grid={"train_volume": VOLUMES, "backbone": BACKBONES},
    offline_grid={"train_volume": [12, 24, 48], "backbone": ["aigid-tiny-rn", "aigid-tiny-vit"]},
    prune=keep_fitting_volumes,
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
