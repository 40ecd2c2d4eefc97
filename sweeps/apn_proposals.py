"""APN, Table 4(b): the number of frequency-band proposals K.

GenImage (train SD v1.4, Avg. over the eight subsets) or, with --data on DiffusionForensics,
DF (train ADM; Avg. over Table 2's nine columns: the LSUN-Bedroom reals once and each
generator's fakes alone): the dataset's layout picks the paper's training subset and epochs
(§4.1.3, §4.2). A cell is that Avg. ACC after the last epoch (mean ± std over seeds with --seeds).
"""
from aigid.methods import APN
from aigid.report import averaged_note, final, rows_table
from trainables.launcher import main
from trainables.sweep import Sweep, grid

PROPOSALS = [1, 5, 10, 15, 20, 25]  # Table 4(b) rows
PAPER = {1: (72.9, 89.0), 5: (72.6, 98.7), 10: (75.2, 98.7), 15: (80.4, 98.2), 20: (77.3, 98.6), 25: (76.5, 98.6)}


def table(trials):
    return rows_table(trials, "num_proposals", PROPOSALS, {
        "Avg. ACC (%)": lambda k, here: final(here, "test/mean/acc"),
        "paper GenImage": lambda k, _: str(PAPER[k][0]), "paper DF": lambda k, _: str(PAPER[k][1])},
        title=f"APN Table 4(b) — Avg. ACC (%) by number of proposals K; {averaged_note(trials, APN.test_sets)}")


SWEEP = Sweep(name="apn_proposals", method=APN, plan=grid(num_proposals=PROPOSALS), table=table, doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
