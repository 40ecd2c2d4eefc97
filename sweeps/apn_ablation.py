"""APN, Table 4(a): module ablations on GenImage (train SD v1.4, test all eight subsets).

Lines 1-7: without implicit purification (L_mi); implicit purification only (Swin-T
features split in halves); frequency branch only; spatial branch only; without proposals
(a ResNet-50 on the spectra); without decomposition (a fixed channel split); full APN.
A cell is the Avg. ACC after the last epoch.
"""
from aigid.methods import APN
from aigid.methods.apn import ABLATIONS
from aigid.report import averaged_note, final, rows_table
from trainables.launcher import main
from trainables.sweep import Sweep, grid

LINES = list(ABLATIONS)  # Table 4(a) lines 1-7, in order


# Table 4(a): the line's check marks and the paper's Avg. ACC
PAPER = {"no_implicit": ("EP-F PPS EP-S D", 75.3), "implicit_only": ("IP", 71.0), "no_spatial": ("EP-F PPS IP", 79.1),
         "no_frequency": ("EP-S D IP", 77.1), "no_proposals": ("EP-F EP-S D IP", 74.8),
         "no_decomposition": ("EP-F PPS EP-S IP", 77.8), "full": ("EP-F PPS EP-S D IP", 80.4)}


def table(trials):
    return rows_table(trials, "ablation", LINES,
                      {"modules": lambda line, _: PAPER[line][0], "Avg. ACC (%)": lambda line, here: final(here, "test/mean/acc"),
                       "paper": lambda line, _: str(PAPER[line][1])},
                      title=f"APN Table 4(a) — Avg. ACC (%) per module ablation; {averaged_note(trials, APN.test_sets)}")


SWEEP = Sweep(name="apn_ablation", method=APN, plan=grid(ablation=LINES), table=table, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
