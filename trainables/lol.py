"""LoL as a Ray Tune function trainable, and its presets for offline and smoke runs."""
from __future__ import annotations

from aigid.data.layouts import DatasetIndex
from aigid.methods.lol import LoLConfig, LoLTrainer, select_test_samples, select_training_samples
from trainables.common import drive, prepare_trial, trial_resources
from trainables.method import Method


def train_lol(config: dict, index: DatasetIndex) -> None:
    """One LoL trial: `config` is a flat dict of LoLConfig overrides; `index` comes from the object store."""
    device, loader_workers = prepare_trial(*trial_resources())
    drive(LoLTrainer(LoLConfig.from_flat(config), index, device=device, num_workers=loader_workers))


def check_lol_data(config: LoLConfig, index: DatasetIndex) -> None:
    """Fail before launch when the training subset, its volume or a test subset is not in the data."""
    select_training_samples(index, config)
    select_test_samples(index, config)


LOL = Method(
    name="lol",
    config_cls=LoLConfig,
    trainable=train_lol,
    check_data=check_lol_data,
    layout="genimage",
    # The synthetic stand-in is a few hundred images and a tiny random-init CLIP-shaped
    # ResNet: the paper's lr 5e-6 and batch 4 would barely move it in a few epochs.
    offline={"backbone": "aigid-tiny-rn", "pretrained": None, "train_volume": None,
             "epochs": 5, "lr": 1e-3, "batch_size": 8},
    smoke={"epochs": 2},
)
