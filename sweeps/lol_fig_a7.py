"""LoL, Fig. A7 (Appendix A.3, "real-world scenarios"): the four perturbations in sequence on train and test.

Noise, blurring, JPEG compression and random cropping "sequentially applied ... on both the training and
test sets" (aigid.data.perturb LOL_TABLE_A4["combined"]), CLIP-RN50 (§4.2) trained on 3,200 images ("only
1 %") of each GenImage subset and tested on all eight: Fig. A7's ACC and AP heat-maps, read and drawn as
Figs. 4-5 are (sweeps/lol_cross_generator.py: the final checkpoint, seeds pooled; BigGAN at lr 5e-7).
"""
from aigid.data.perturb import LOL_TABLE_A4
from aigid.methods import LOL
from trainables.launcher import main
from trainables.sweep import Grid, Offline, Sweep
from sweeps.lol_cross_generator import PLAN, matrix_figures, matrix_table

COMBINED = LOL_TABLE_A4["combined"].spec()
# Offline, two training cases (SD v1.4 and BigGAN, whose own lr the plan keeps) instead of eight.
OTHERS, BIGGAN = PLAN
CUT = (Grid({"train_subset": Offline(OTHERS.axes["train_subset"], ["sdv14"])}), BIGGAN)


def table(trials):
    return [matrix_table(trials, "acc", "A7 (ACC)"), matrix_table(trials, "ap", "A7 (AP)")]


def figures(trials, out_dir, synthetic):
    matrix_figures(trials, out_dir, synthetic, {"acc": "A7", "ap": "A7"})


SWEEP = Sweep(
    name="lol_fig_a7",
    method=LOL,
    plan=CUT,
    fixed={"train_perturb": COMBINED, "test_perturb": COMBINED, "train_volume": Offline(3200, 48),  # A.3: 1 %
           "backbone": Offline("RN50", "aigid-tiny-rn")},
    table=table,
    figures=figures,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
