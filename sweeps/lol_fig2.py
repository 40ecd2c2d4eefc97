"""LoL, Fig. 2: Avg. ACC over the GenImage test sets against training steps, trained on ADM.

§3.2.1: a standard ResNet-50, a pre-trained CLIP-RN50, and CLIP-RN50 with LoL's masks, evaluated
on the eight test sets "in every 400 training steps". The "standard ResNet50" we take as
torchvision's ImageNet ResNet-50 (IMAGENET1K_V1) fine-tuned like CLIP-RN50, without masks. The
paper states neither volume nor length for Fig. 2: the §4.2/§4.4 recipe is kept (3,200 images,
20 epochs, lr 5e-6, batch 4). Offline: the stand-ins (a random-init torchvision ResNet-18 and
the tiny CLIP-shaped ResNet) for 2 epochs of 6 steps, evaluated every 3 steps.
"""
import os

from aigid.backbones import TORCHVISION_BACKBONES
from aigid.figures import step_curves
from aigid.methods import LOL
from aigid.methods.lol import LoLConfig
from aigid.report import averaged_note, render
from aigid.trials import finished
from trainables.launcher import main
from trainables.sweep import Grid, Offline, Sweep

NO_MASK = (0.0, 0.0)
CLIP_RN50 = {"backbone": Offline("RN50", "aigid-tiny-rn"), "pretrained": Offline("openai", None)}
SETTINGS = {  # Fig. 2's three curves
    "standard ResNet-50": {"backbone": Offline("tv-resnet50", "tv-resnet18"),
                           "pretrained": Offline("IMAGENET1K_V1", None), "mask_ratio": NO_MASK},
    "CLIP-RN50": {**CLIP_RN50, "mask_ratio": NO_MASK},
    "CLIP-RN50 + LoL": {**CLIP_RN50, "mask_ratio": LoLConfig.mask_ratio},
}
KEY = "test/mean/acc"


def setting(trial) -> str:
    """The Fig. 2 curve a trial draws."""
    if trial.config["backbone"] in TORCHVISION_BACKBONES:
        return "standard ResNet-50"
    return "CLIP-RN50" if tuple(trial.config["mask_ratio"]) == NO_MASK else "CLIP-RN50 + LoL"


def table(trials):
    rows = []
    for trial in finished(trials):
        evaluations = [row for row in trial.history if KEY in row]
        best = max(evaluations, key=lambda row: row[KEY])
        rows.append([setting(trial), trial.config["backbone"], len(evaluations), f"{100 * trial.last(KEY):.1f}",
                     f"{100 * best[KEY]:.1f} (step {best['step']})"])
    return render([["setting", "backbone", "evaluations", "final Avg. ACC", "best Avg. ACC"]] + rows,
                  title="LoL Fig. 2 — Avg. ACC (%), trained on ADM: after the last step, and the best evaluation; "
                        f"Avg.: {averaged_note(trials, LOL.test_sets)}")


def fig2(trials, out_dir, synthetic):
    step_curves(trials, KEY, setting, synthetic=synthetic, path=os.path.join(out_dir, "fig2_steps.png"),
                title="LoL Fig. 2: Avg. ACC across GenImage test sets for models trained on ADM",
                score_label="Avg. ACC (%)")


SWEEP = Sweep(
    name="lol_fig2",
    method=LOL,
    plan=tuple(Grid({}, fixed=fixed) for fixed in SETTINGS.values()),
    fixed={"train_subset": "adm", "eval_every_steps": Offline(400, 3), "epochs": Offline(20, 2)},  # §3.2.1
    table=table,
    figures=fig2,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
