"""GenDet as a Ray Tune function trainable on features the sweep's one frozen-backbone pass
(trainables.feature_pass) computed before any trial."""
from __future__ import annotations

from aigid.data.layouts import DatasetIndex
from aigid.methods.gendet import (
    OFFLINE_OVERRIDES, SMOKE_OVERRIDES, GenDetConfig, GenDetTrainer, check_data, feature_requests,
)
from trainables.common import drive, prepare_trial, trial_resources
from trainables.feature_pass import prepare_features
from trainables.method import Method


def train_gendet(config: dict, index: DatasetIndex, features: dict) -> None:
    """One GenDet trial: `config` is a flat dict of GenDetConfig overrides; `features` come from the object store."""
    device, _ = prepare_trial(*trial_resources())
    drive(GenDetTrainer(GenDetConfig.from_flat(config), index, features, device=device))


GENDET = Method(
    name="gendet",
    config_cls=GenDetConfig,
    trainable=train_gendet,
    check_data=check_data,
    layout="ufd",  # Tables 1, 2 and 5 are on UniversalFakeDetect
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=prepare_features(feature_requests),
)
