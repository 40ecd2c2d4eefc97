"""LoL as a Ray Tune function trainable."""
from __future__ import annotations

from aigid.data.layouts import DatasetIndex
from aigid.methods.lol import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, LoLConfig, LoLTrainer, check_data
from trainables.common import drive, prepare_trial, trial_resources
from trainables.method import Method


def train_lol(config: dict, index: DatasetIndex) -> None:
    """One LoL trial: `config` is a flat dict of LoLConfig overrides; `index` comes from the object store."""
    device, loader_workers = prepare_trial(*trial_resources())
    drive(LoLTrainer(LoLConfig.from_flat(config), index, device=device, num_workers=loader_workers))


LOL = Method(
    name="lol",
    config_cls=LoLConfig,
    trainable=train_lol,
    check_data=check_data,
    layout="genimage",
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
)
