"""GenDet, Tables 1-2 (lower rows): what each part adds.

teacher: the teacher alone, a binary classifier on CLIP features; ts_real: teacher-student
anomaly detection with a student trained on real images only (eq. 1); ts_fake: with fake
images too (eq. 1 + 2), no augmenter; full: GenDet (with the adversarial feature augmenter).
UniversalFakeDetect (train ProGAN, test all) by default, GenImage (train SD v1.4) with --data
on it. A row is Avg. ACC (at 0.5) and mAP (%) over the test subsets after the last epoch.
"""
from aigid.methods import GENDET
from aigid.methods.gendet import VARIANTS
from aigid.report import averaged_note, final, rows_table
from trainables.launcher import main
from trainables.sweep import Sweep, grid

# Tables 2 and 1, "Total" column: the paper's Avg. ACC and mAP on UniversalFakeDetect
PAPER = {"teacher": (87.95, 93.40), "ts_real": (92.41, 93.76), "ts_fake": (93.15, 94.27), "full": (94.42, 95.64)}
NAMES = {"teacher": "Teacher", "ts_real": "Teacher-Student AD", "ts_fake": "Teacher-Student AD w/fake",
         "full": "GenDet"}


def table(trials):
    return rows_table(trials, "variant", list(VARIANTS), {
        "row of Tables 1-2": lambda v, _: NAMES[v],
        "Avg. ACC (%)": lambda v, here: final(here, "test/mean/acc"),
        "mAP (%)": lambda v, here: final(here, "test/mean/ap"),
        "paper ACC / mAP (UFD)": lambda v, _: " / ".join(map(str, PAPER[v]))},
        title="GenDet Tables 1-2 (Results on UniversalFakeDetect dataset, CLIP:ViT) — average accuracy (%) and mAP (%) "
              f"per variant, column Total: {averaged_note(trials, GENDET.test_sets)}")


SWEEP = Sweep(name="gendet_ablation", method=GENDET, plan=grid(variant=list(VARIANTS)), table=table, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
