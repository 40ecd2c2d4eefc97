"""UnivFD (Ojha et al., CVPR 2023): the linear probe on frozen CLIP ViT-L/14 embeddings, the
baseline RINE's Tables 2-3 and Table 7 ("UFD 4-class") and GenDet's tables compare against.

Training classes × learning rate: ProGAN's 1, 2 and 4 classes (RINE's settings) and all 20
(the authors' training set), each at the authors' lr 1e-4 and a decade either side (offline:
around the stand-in preset's 3e-2). The frozen CLIP pass runs once for the grid. A cell is
Avg. ACC / mAP (%) over the test sets after the last epoch (mean ± std over seeds with --seeds).
"""
from aigid.methods import UNIVFD
from aigid.methods.univfd.config import CLASS_CHOICES
from aigid.report import averaged_note, final, grid_table
from trainables.launcher import main
from trainables.sweep import Offline, Sweep, grid

CLASSES = list(CLASS_CHOICES)  # 1, 2, 4 (RINE §4.1, Table 7) and 20 (UnivFD's ProGAN training set)
LRS = [1e-5, 1e-4, 1e-3]  # the authors' 1e-4 (train_options.py) and a decade either side


def table(trials):
    return grid_table(trials, "classes", "lr",
                      lambda cell: f"{final(cell, 'test/mean/acc')} / {final(cell, 'test/mean/ap')}",
                      rows=CLASSES,
                      title="UnivFD — Avg. ACC / mAP (%) after the last epoch; "
                            f"{averaged_note(trials, UNIVFD.test_sets)}")


SWEEP = Sweep(name="univfd_baseline", method=UNIVFD,
              plan=grid(classes=CLASSES, lr=Offline(LRS, [3e-3, 3e-2, 3e-1])), table=table, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
