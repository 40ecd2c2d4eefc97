"""APN, the Artifact Purification Network (../shared/papers/apn.txt): explicit purification in
frequency (band proposals) and space (orthogonal decomposition), implicit purification (CLUB).
config: hyper-parameters; model, frequency, spatial, club, backbones: the network; trainer:
the training loop and data checks; spec: what a sweep or `aigid train apn` needs."""
from aigid.methods.apn.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, APNConfig
from aigid.methods.apn.model import ABLATIONS, APN
from aigid.methods.apn.trainer import APNTrainer, check_data, open_test_index

__all__ = ["ABLATIONS", "APN", "APNConfig", "APNTrainer", "OFFLINE_OVERRIDES", "SMOKE_OVERRIDES", "check_data",
           "open_test_index"]
