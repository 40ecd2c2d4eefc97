"""GenDet as a Ray Tune method: its four networks trained on the features of the sweep's one
frozen-backbone pass (§3.3 stores the extractor's features before training)."""
from aigid.methods.gendet import (
    OFFLINE_OVERRIDES, SMOKE_OVERRIDES, GenDetConfig, GenDetTrainer, check_data, feature_requests,
)
from trainables.feature_pass import feature_cache_method

GENDET = feature_cache_method(name="gendet", config_cls=GenDetConfig, trainer_cls=GenDetTrainer,
                              check_data=check_data, feature_requests=feature_requests,
                              layout="ufd",  # Tables 1, 2 and 5 are on UniversalFakeDetect
                              offline=OFFLINE_OVERRIDES, smoke=SMOKE_OVERRIDES,
                              early_stopping=False)  # test/... is the teacher's until N_c trains, last
