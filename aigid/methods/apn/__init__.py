"""APN, the Artifact Purification Network (../shared/papers/apn.txt): explicit purification in
frequency (band proposals) and space (orthogonal decomposition), implicit purification (CLUB)."""
from aigid.methods.apn.model import ABLATIONS, APN
from aigid.methods.apn.trainer import (OFFLINE_OVERRIDES, SMOKE_OVERRIDES, APNConfig, APNTrainer, check_data,
                                       open_test_index)

__all__ = ["ABLATIONS", "APN", "APNConfig", "APNTrainer", "OFFLINE_OVERRIDES", "SMOKE_OVERRIDES", "check_data",
           "open_test_index"]
