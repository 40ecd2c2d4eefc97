"""APN learns the synthetic stand-in in-domain: eq. 9 with L_mi on, tiny backbones, a few epochs.

Guards the failure where q_θ was fitted on eval-mode features while L_mi scored train-mode
ones: the APN step then drove L_mi far below zero and every prediction became constant.
"""
import pytest
import torch

from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.methods.apn import OFFLINE_OVERRIDES, APNConfig, APNTrainer


@pytest.fixture(scope="module")
def genimage(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("apn-learning") / "genimage", n_train=24, n_test=12)


def test_full_apn_beats_chance_in_domain(genimage):
    torch.set_num_threads(1)
    config = APNConfig.from_flat({**OFFLINE_OVERRIDES, "num_proposals": 5, "epochs": 4,
                                  "test_subsets": ("sdv14",)})
    index = scan(genimage)
    trainer = APNTrainer(config.for_layout(index.layout), index)
    reports = list(trainer.run())
    last = reports[-1]
    assert trainer.club is not None and all("train/mi" in r for r in reports)  # the full eq. 9
    assert last["test/sdv14/acc"] >= 0.8 and last["test/sdv14/ap"] >= 0.85
    assert min(r["train/mi"] for r in reports) > -2.0  # q_θ keeps L_mi an upper bound, no runaway
