"""APN as aigid runs it: trained end to end per trial; a sweep scans its cross-scene test dataset once."""
from __future__ import annotations

from aigid.errors import ConfigError
from aigid.methods.apn.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, APNConfig, CHOICES, TEST_SETS
from aigid.methods.apn.evaluation import evaluate
from aigid.methods.apn.samples import check_data, open_test_index
from aigid.methods.apn.trainer import APNTrainer
from aigid.methods.spec import MethodSpec


def scan_test_dataset(index, configs, context) -> dict:
    """{"test_index": the DF index of `test_root`} when the configs test across scenes (Table 3), else {}."""
    roots = {c.test_root for c in configs}
    if len(roots) > 1:
        raise ConfigError(f"one sweep tests on one extra dataset; got test_root values {sorted(map(str, roots))}")
    return {"test_index": open_test_index(configs[0], index)} if configs and roots != {None} else {}


APN = MethodSpec(
    name="apn",
    summary="APN: frequency-band proposals, orthogonal decomposition and CLUB, trained end to end",
    config_cls=APNConfig,
    trainer_cls=APNTrainer,
    test_sets=TEST_SETS,
    choices=CHOICES,
    layout="genimage",  # §4.1.1: GenImage (DiffusionForensics with --data)
    check_data=check_data,
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=scan_test_dataset,
    evaluate=evaluate,
)
