"""GenDet: adversarial teacher-student discrepancy on frozen CLIP features (Zhu et al., 2023;
../shared/papers/gendet.txt). config: hyper-parameters and the stage schedule (§4.1);
model: the four networks and eq. 1-5; trainer: the stages on cached features, and the
view set a grid needs."""
from aigid.methods.gendet.config import (
    OFFLINE_OVERRIDES, READINGS, SMOKE_OVERRIDES, VARIANTS, GenDetConfig,
)
from aigid.methods.gendet.model import GenDet, margin_loss, squared_discrepancy
from aigid.methods.gendet.trainer import GenDetTrainer, check_data, feature_requests

__all__ = ["OFFLINE_OVERRIDES", "READINGS", "SMOKE_OVERRIDES", "VARIANTS", "GenDet",
           "GenDetConfig", "GenDetTrainer", "check_data", "feature_requests", "margin_loss", "squared_discrepancy"]
