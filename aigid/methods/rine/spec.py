"""RINE as aigid runs it: heads trained on the features of one frozen-CLIP pass per sweep."""
from aigid.features import SharedFeatures
from aigid.methods.rine.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, RINEConfig
from aigid.methods.rine.trainer import RINETrainer, check_data, feature_requests
from aigid.methods.spec import MethodSpec

RINE = MethodSpec(
    name="rine",
    summary="RINE: intermediate CLIP blocks, on cached features",
    config_cls=RINEConfig,
    trainer_cls=RINETrainer,
    layout="ufd",  # §4.1: trained on ProGAN (ForenSynths), tested on the UFD collection
    check_data=check_data,
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=SharedFeatures(feature_requests),
)
