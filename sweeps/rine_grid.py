"""RINE, §4.2 grid → Tables 2 and 3 (per-test-set ACC / AP of the best model), Figs. 3 and 4.

q × d' × ξ (48 trials) for one backbone (--backbone ViT-L-14 | ViT-B-32) and class setting
(--set classes=1|2|4); `--all-settings` runs the paper's 2 backbones × 3 settings × 48.
The frozen CLIP pass runs once for the whole grid (features cached on disk). The best
config per setting is max ACC + AP (§4.4) on the held-out val split by default, or on
the test sets as the paper does with --set select_on=test; the table says which.
"""
import os

from aigid.figures import SYNTHETIC
from aigid.methods import RINE
from aigid.methods.rine import CLASS_SETTINGS
from aigid.metrics import subset_key
from aigid.report import render
from aigid.trials import finished, test_sets
from trainables.launcher import main
from trainables.sweep import Offline, Sweep, Variant, grid

QS = [1, 2, 4]  # §4.2
PROJ_DIMS = [128, 256, 512, 1024]  # §4.2 (d')
XIS = [0.1, 0.2, 0.4, 0.8]  # §4.2 (ξ)
BACKBONES = ["ViT-L-14", "ViT-B-32"]  # §4.2, Fig. 3
# Column order of Tables 2-3; test sets not named here follow, sorted.
PAPER_TESTS = ["progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan", "deepfake",
               "seeingdark", "san", "crn", "imle", "guided", "ldm_200", "ldm_200_cfg", "ldm_100",
               "glide_100_27", "glide_50_27", "glide_100_10", "dalle"]


def best_per_setting(trials):
    """{(backbone, classes): the finished trial with the highest score, ACC + AP (§4.4, RINESelection)}."""
    best = {}
    for trial in finished(trials):
        setting = (trial.config["backbone"], trial.config.get("classes", 4))
        if setting not in best or trial.score > best[setting].score:
            best[setting] = trial
    return dict(sorted(best.items(), key=lambda item: (item[0][0], item[0][1])))


def table(trials):
    best = best_per_setting(trials)
    if not best:
        return render([], title="RINE grid: no trial finished")
    where = {t.config.get("select_on", "val") for t in best.values()}
    how = ("the held-out val split (val/acc + val/ap)" if where == {"val"}
           else "the test sets (test/mean/acc + ap), the paper's way (§4.4)")
    tests = test_sets(trials, PAPER_TESTS)
    rows = [["backbone", "# cl.", "q", "d'", "ξ", "metric"] + tests + ["AVG"]]
    for (backbone, classes), trial in best.items():
        config, final = trial.config, trial.final
        for metric in ("acc", "ap"):
            cells = [f"{100 * final[subset_key(s, metric)]:.1f}" if subset_key(s, metric) in final else "—" for s in tests]
            rows.append([backbone, str(classes), str(config["q"]), str(config["proj_dim"]), f"{config['xi']:g}",
                         metric.upper()] + cells + [f"{100 * final.get(subset_key('mean', metric), float('nan')):.1f}"])
    return render(rows, title=f"RINE Tables 2-3: best config per setting by ACC + AP, selected on {how}; "
                              f"per-test-set ACC / AP (%)")


def box_plots(trials, out_dir, synthetic):
    """Fig. 3 (ACC and AP over the grid, per backbone and class setting) and Fig. 4 (ACC per (q, d'))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = finished(trials)
    if not done:
        return
    prefix = SYNTHETIC if synthetic else ""
    settings = sorted({t.config.get("classes", 4) for t in done})
    backbones = sorted({t.config["backbone"] for t in done})
    fig, axes = plt.subplots(2, len(settings), figsize=(4 * len(settings) + 1, 6.5), squeeze=False)
    for row, metric in enumerate(("acc", "ap")):
        for col, classes in enumerate(settings):
            data = [[100 * t.final[subset_key("mean", metric)] for t in done
                     if t.config["backbone"] == b and t.config.get("classes", 4) == classes] for b in backbones]
            axes[row, col].boxplot(data, tick_labels=[f"{b}\nn={len(d)}" for b, d in zip(backbones, data)])
            axes[row, col].axhline(50, color="grey", linestyle="--", linewidth=0.8)
            axes[row, col].set_title(f"{classes}-class", fontsize=9)
            axes[row, col].set_ylabel(f"test {metric.upper()} (%), mean over test sets")
    fig.suptitle(f"{prefix}RINE Fig. 3: every grid config's ACC / AP per backbone (dashed: chance)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig3_backbones.png"), dpi=110)
    pairs = sorted({(t.config["q"], t.config["proj_dim"]) for t in done})
    fig, axes = plt.subplots(len(settings), 1, figsize=(1.5 + 0.8 * len(pairs), 3.2 * len(settings) + 0.6),
                             squeeze=False)
    for row, classes in enumerate(settings):
        data = [[100 * t.final["test/mean/acc"] for t in done if (t.config["q"], t.config["proj_dim"]) == p
                 and t.config.get("classes", 4) == classes] for p in pairs]
        axes[row, 0].boxplot(data, tick_labels=[f"q={q}\nd'={d}\nn={len(x)}" for (q, d), x in zip(pairs, data)])
        axes[row, 0].axhline(50, color="grey", linestyle="--", linewidth=0.8)
        axes[row, 0].set_title(f"{classes}-class", fontsize=9)
        axes[row, 0].set_ylabel("test ACC (%)")
        axes[row, 0].set_xlabel("(q, d'): each box over ξ")
    fig.suptitle(f"{prefix}RINE Fig. 4: ACC per (q, d') (dashed: chance)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "fig4_q_dprime.png"), dpi=110)
    plt.close("all")


AXES = dict(q=QS, proj_dim=PROJ_DIMS, xi=XIS)  # the paper's d' on the stand-in too (why: aigid/methods/rine/config.py)
ALL_SETTINGS = Sweep(
    name="rine_grid_all",
    method=RINE,
    plan=grid(backbone=Offline(BACKBONES, ["aigid-tiny-vit"]), classes=sorted(CLASS_SETTINGS), **AXES),
    table=table,
    figures=box_plots,
    doc=__doc__,
)
SWEEP = Sweep(
    name="rine_grid",
    method=RINE,
    plan=grid(**AXES),
    table=table,
    figures=box_plots,
    doc=__doc__,
    variants=(Variant("--all-settings", "the paper's 2 backbones × 3 class settings × 48 (288 trials)", ALL_SETTINGS),),
)

if __name__ == "__main__":
    main(SWEEP)
