"""GenDet, Table 5: margin M × weight α of eq. 2 (the full 3 × 3; the paper reports five cells).

UniversalFakeDetect (train ProGAN, test all) by default, or GenImage (train SD v1.4, test all
eight) with --data on it: the dataset's layout picks the paper's training subset and learning
rates (§4.1). The frozen CLIP pass runs once for the grid. A cell is Avg. ACC / mAP (%) over
the test subsets after the classifier's last epoch (mean ± std over seeds with --seeds). ACC is at threshold 0.5 on both datasets.
"""
from aigid.methods import GENDET
from aigid.report import averaged_note, final, grid_table, label, render
from aigid.trials import finished
from trainables.launcher import main
from trainables.sweep import Sweep, grid

MARGINS = [1.0, 2.0, 4.0]  # Table 5 (M)
ALPHAS = [0.01, 0.1, 1.0]  # Table 5 (α)
PAPER = {(2.0, 0.01): (94.14, 95.23), (2.0, 0.1): (94.42, 95.64), (2.0, 1.0): (93.31, 94.71),
         (1.0, 0.1): (93.78, 95.07), (4.0, 0.1): (93.72, 94.96)}  # Table 5: (Avg. Acc, mAP) on UFD


def cell(trials):
    return f"{final(trials, 'test/mean/acc')} / {final(trials, 'test/mean/ap')}"


def table(trials):
    ours = grid_table(trials, "margin", "alpha", cell, rows=MARGINS, cols=ALPHAS,
                      title="GenDet Table 5 — The impact of hyperparameters M and α: Avg. Acc (%) / mAP (%) after "
                            f"the classifier; {averaged_note(trials, GENDET.test_sets)}")
    paper = render([["margin \\ alpha", *map(label, ALPHAS)]]
                   + [[label(m)] + [" / ".join(map(str, PAPER[(m, a)])) if (m, a) in PAPER else "—" for a in ALPHAS]
                      for m in MARGINS], title="the paper's Table 5 (UniversalFakeDetect, CLIP:ViT)")
    return [ours, off_grid(trials), paper]


def off_grid(trials):
    """Trials whose (M, α) is not a cell of the grid (--search optuna samples the ranges), best first."""
    done = [t for t in finished(trials) if t.config["margin"] not in MARGINS or t.config["alpha"] not in ALPHAS]
    done.sort(key=lambda t: -t.score)
    rows = [[f"{t.config['margin']:.3g}", f"{t.config['alpha']:.3g}", cell([t])] for t in done]
    return render([["margin", "alpha", "Avg. ACC / mAP (%)"], *rows], title="trials off the grid") if rows else None


SWEEP = Sweep(name="gendet_margin_alpha", method=GENDET, plan=grid(margin=MARGINS, alpha=ALPHAS), table=table,
              doc=__doc__)

if __name__ == "__main__":
    main(SWEEP)
