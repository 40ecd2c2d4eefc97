"""GenDet, Tables 6-7: cross-dataset evaluation (gendet.txt §4, "Cross-Dataset Evaluation").

GenDet is trained on GenImage's SD v1.4 (--data: a GenImage root) and scored on another dataset
(--test-data) instead of GenImage's test sets: the paper's holds IF, CogView2 (ImageNet-class
prompts, as GenImage) and StyleGAN, 1000 real and 1000 fake images per generator. Lay it out as
UFD's test folders, `test/{cogview2,stylegan,if}/{0_real,1_fake}/` (any layout `aigid data scan`
reads works; each test set found is a column, named by its folder). Table 6 is ACC at threshold
0.5, Table 7 AP; both average every set of the tested dataset. Offline the tested dataset is a
synthetic UFD-layout stand-in (its progan, stylegan, crn and deepfake sets) beside the synthetic
GenImage one.
"""
from dataclasses import replace

from aigid.methods import GENDET
from aigid.methods.apn.config import SYNTHETIC_TEST_ROOT
from aigid.report import final, render
from aigid.trials import test_sets
from trainables.launcher import main
from trainables.sweep import Offline, Option, Sweep, grid

SETS = ("cogview2", "stylegan", "if")  # Tables 6-7's columns, in their order
PAPER = {  # (CogView2, StyleGAN, IF, average) in %; * = the authors' runs of the official code
    "acc": {"ResNet50": (74.9, 69.6, 67.6, 70.7), "Ojha et al.*": (75.1, 44.0, 80.2, 66.4),
            "GenDet": (85.8, 81.8, 87.9, 85.2)},  # Table 6
    "ap": {"ResNet50": (95.9, 90.0, 95.3, 93.7), "Ojha et al.*": (93.6, 43.8, 95.4, 77.6),
           "GenDet": (95.1, 92.3, 98.3, 95.2)},  # Table 7
}
TITLES = {"acc": "GenDet Table 6 — cross-dataset ACC (%) at 0.5", "ap": "GenDet Table 7 — cross-dataset mAP (%)"}


def table(trials):
    found = test_sets(trials)
    columns = [*SETS, *(s for s in found if s not in SETS)]  # the paper's sets, then any other the data holds
    tables = []
    for metric, paper in PAPER.items():
        ours = ["GenDet (ours)", *(final(trials, f"test/{s}/{metric}") for s in columns),
                final(trials, f"test/mean/{metric}")]
        rows = [[name, *(str(values[SETS.index(s)]) if s in SETS else "—" for s in columns), str(values[-1])]
                for name, values in paper.items()]
        tables.append(render([["Method", *columns, "Avg (%)"], ours, *rows],
                             title=f"{TITLES[metric]}, trained on GenImage SD v1.4; Avg over all {len(found)} "
                                   "test sets of the tested dataset (ours) / the paper's three; our row first"))
    return tables


SWEEP = Sweep(
    name="gendet_cross_dataset",
    method=replace(GENDET, layout="genimage"),  # the stand-in is GenImage: Tables 6-7 train on SD v1.4
    plan=grid(),
    fixed={"train_subset": "sdv14", "test_root": Offline(None, SYNTHETIC_TEST_ROOT)},
    options=(Option("--test-data", "test_root", "the dataset tested instead of GenImage's test sets (CogView2, "
                    "StyleGAN, IF: test/<generator>/{0_real,1_fake}/)", path=True, required_with_data=True),),
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
