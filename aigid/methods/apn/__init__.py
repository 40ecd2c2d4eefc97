"""APN, the Artifact Purification Network (../shared/papers/apn.txt): explicit purification in
frequency (band proposals) and space (orthogonal decomposition), implicit purification (CLUB).
config: hyper-parameters; model, frequency, spatial, club, backbones: the network; samples: which
images a run reads, and the data checks; trainer: the training loop; evaluation: testing, shared by
the trainer and `aigid eval`; spec: what a sweep or `aigid train apn` needs."""
from aigid.methods.apn.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, APNConfig
from aigid.methods.apn.model import ABLATIONS, APN
from aigid.methods.apn.samples import check_data, open_test_index
from aigid.methods.apn.trainer import APNTrainer

__all__ = ["ABLATIONS", "APN", "APNConfig", "APNTrainer", "OFFLINE_OVERRIDES", "SMOKE_OVERRIDES", "check_data",
           "open_test_index"]
