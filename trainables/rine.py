"""RINE as a Ray Tune function trainable on features the sweep's one frozen-backbone pass
(trainables.feature_pass) computed before any trial."""
from __future__ import annotations

from aigid.data.layouts import DatasetIndex
from aigid.methods.rine import (
    OFFLINE_OVERRIDES, SMOKE_OVERRIDES, RINEConfig, RINETrainer, check_data, feature_requests,
)
from trainables.common import drive, prepare_trial, trial_resources
from trainables.feature_pass import prepare_features
from trainables.method import Method


def train_rine(config: dict, index: DatasetIndex, features: dict) -> None:
    """One RINE trial: `config` is a flat dict of RINEConfig overrides; `features` come from the object store."""
    device, _ = prepare_trial(*trial_resources())
    drive(RINETrainer(RINEConfig.from_flat(config), index, features, device=device))


RINE = Method(
    name="rine",
    config_cls=RINEConfig,
    trainable=train_rine,
    check_data=check_data,
    layout="ufd",
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=prepare_features(feature_requests),
)
