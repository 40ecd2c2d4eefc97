"""RINE: Representations from Intermediate Encoder-blocks of a frozen CLIP ViT (Koutlis &
Papadopoulos, ECCV 2024; ../shared/papers/rine.txt). config: hyper-parameters (§4.2);
model: Q1, TIE, Q2, head and the loss (§3.2-3.3); augment: the training view (§4.2);
views: the images and view sets a grid reads; scoring: the test metrics the trainer reports and
`evaluate` (aigid eval) reproduces; trainer: the head trained on cached features; released: the
authors' files."""
from aigid.methods.rine.config import (
    ABLATIONS, CLASS_SETTINGS, OFFLINE_OVERRIDES, PAPER_CONFIGS, SMOKE_OVERRIDES, RINEConfig,
)
from aigid.methods.rine.model import RINEHead, rine_loss, supcon_loss, trainable_parameters
from aigid.methods.rine.trainer import RINETrainer, check_data
from aigid.methods.rine.views import feature_requests

__all__ = ["ABLATIONS", "CLASS_SETTINGS", "OFFLINE_OVERRIDES", "PAPER_CONFIGS", "SMOKE_OVERRIDES", "RINEConfig",
           "RINEHead", "RINETrainer", "check_data", "feature_requests", "rine_loss", "supcon_loss",
           "trainable_parameters"]
