"""LoL, Table 3: masked-ratio range × aspect-ratio range.

Trains on GenImage SD v1.4 (§4.5) and tests on all eight GenImage subsets; each cell is the
average accuracy over the test subsets, mean ± std over the final five epochs (§4.3).
"""
from aigid.methods import LOL
from aigid.report import averaged_note, grid_table, pct, pooled
from trainables.launcher import main
from trainables.sweep import Sweep, grid

MASK_RATIOS = [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0)]  # Table 3 rows
ASPECT_RATIOS = [(1.0, 1.0), (0.5, 2.0), (0.33, 3.0)]  # Table 3 columns


def table(trials):
    return grid_table(trials, "mask_ratio", "aspect_ratio", lambda cell: pct(pooled(cell, "test/mean/acc")),
                      rows=MASK_RATIOS, cols=ASPECT_RATIOS,
                      title="LoL Table 3 — Avg. ACC (%), mean (±std) over the final five epochs; "
                            f"Avg.: {averaged_note(trials, LOL.test_sets)}")


SWEEP = Sweep(name="lol_mask_grid", method=LOL, plan=grid(mask_ratio=MASK_RATIOS, aspect_ratio=ASPECT_RATIOS),
              table=table, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
