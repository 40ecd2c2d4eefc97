"""LoL, Table A4 (Appendix A): training volume × perturbation, on training and test images alike.

Appendix A.2: noise, blurring, JPEG compression and random cropping "applied ... independently on
the training and test sets" (train_perturb = test_perturb = one spec of aigid.data.perturb's
LOL_TABLE_A4, each image drawn per path from perturb_seed, the same in every epoch); CLIP-RN50 (§4.2)
trained on SD v1.4 (Appendix A), Avg. ACC / Avg. AP over GenImage's test sets, mean ± std over the
final five epochs as in Table 2. Volumes are balanced nested subsets, as in sweeps/lol_data_volume.py.
"""
from aigid.data.perturb import LOL_TABLE_A4
from aigid.methods import LOL
from aigid.methods.lol import keep_fitting_volumes
from aigid.report import averaged_note, grid_table, pct, pooled, render
from trainables.launcher import main
from trainables.sweep import Grid, Offline, Sweep

VOLUMES = [1600, 3200, 6400, 12800, 25600]  # Table A4 rows
PERTURBATIONS = {name: LOL_TABLE_A4[name].spec() for name in ("noise", "blur", "compress", "crop")}  # its columns
PAPER = {  # Table A4: (Avg. ACC, Avg. AP) in % per volume, in the order of PERTURBATIONS
    1600: ((82.4, 91.5), (76.4, 86.8), (87.6, 95.2), (94.7, 98.9)),
    3200: ((84.7, 94.0), (76.9, 88.4), (88.9, 96.1), (95.1, 99.3)),
    6400: ((84.1, 93.1), (77.8, 89.3), (88.8, 96.5), (95.4, 99.4)),
    12800: ((85.4, 95.0), (79.7, 89.4), (90.1, 97.0), (94.2, 99.2)),
    25600: ((84.3, 93.6), (79.2, 91.4), (89.6, 96.9), (93.7, 99.1)),
}


def cell(trials):
    return f"{pct(pooled(trials, 'test/mean/acc'))} / {pct(pooled(trials, 'test/mean/ap'))}"


def table(trials):
    ours = grid_table(trials, "train_volume", "test_perturb", cell, cols=list(PERTURBATIONS.values()),
                      title="LoL Table A4 — Avg. ACC / Avg. AP (%) under each perturbation (train and test), mean (±std) "
                            f"over the final five epochs; Avg.: {averaged_note(trials, LOL.test_sets)}")
    paper = render([["train_volume", *(f"{name} ({spec})" for name, spec in PERTURBATIONS.items())]]
                   + [[str(v), *(f"{acc} / {ap}" for acc, ap in PAPER[v])] for v in VOLUMES],
                   title="the paper's Table A4 (CLIP-RN50 trained on SD v1.4): Avg. ACC / Avg. AP (%)")
    return [ours, paper]


SWEEP = Sweep(
    name="lol_robustness",
    method=LOL,
    plan=tuple(Grid({"train_volume": Offline(VOLUMES, [16, 48])}, fixed={"train_perturb": spec, "test_perturb": spec})
               for spec in PERTURBATIONS.values()),
    fixed={"backbone": Offline("RN50", "aigid-tiny-rn"), "train_subset": "sdv14"},  # Appendix A, §4.2
    prune=keep_fitting_volumes,
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
