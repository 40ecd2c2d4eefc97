"""RINE as a Ray Tune method: heads trained on the features of the sweep's one frozen-backbone pass."""
from aigid.methods.rine import (
    OFFLINE_OVERRIDES, SMOKE_OVERRIDES, RINEConfig, RINETrainer, check_data, feature_requests,
)
from trainables.feature_pass import feature_cache_method

RINE = feature_cache_method(name="rine", config_cls=RINEConfig, trainer_cls=RINETrainer, check_data=check_data,
                            feature_requests=feature_requests, layout="ufd", offline=OFFLINE_OVERRIDES,
                            smoke=SMOKE_OVERRIDES)
