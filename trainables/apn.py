"""APN as a Ray Tune function trainable."""
from __future__ import annotations

from aigid.data.layouts import DatasetIndex
from aigid.methods.apn import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, APNConfig, APNTrainer, check_data, open_test_index
from trainables.common import drive, prepare_trial, trial_resources
from trainables.method import Method


def prepare_apn(index: DatasetIndex, configs: list[APNConfig], *, cache_dir: str, gpus: float) -> dict:
    """Scan the cross-scene test dataset (`test_root`) once on the driver; every trial gets the index."""
    roots = {c.test_root for c in configs}
    if len(roots) > 1:
        raise ValueError(f"one sweep tests on one extra dataset; got test_root values {sorted(map(str, roots))}")
    return {"test_index": open_test_index(configs[0], index)} if configs and roots != {None} else {}


def train_apn(config: dict, index: DatasetIndex, test_index: DatasetIndex | None = None) -> None:
    """One APN trial: `config` is a flat dict of APNConfig overrides; the indexes come from the object store."""
    device, loader_workers = prepare_trial(*trial_resources())
    drive(APNTrainer(APNConfig.from_flat(config), index, test_index=test_index, device=device,
                     num_workers=loader_workers))


APN = Method(
    name="apn",
    config_cls=APNConfig,
    trainable=train_apn,
    check_data=check_data,
    layout="genimage",
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=prepare_apn,
)
