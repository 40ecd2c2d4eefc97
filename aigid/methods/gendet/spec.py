"""GenDet as aigid runs it: its four networks trained on the features of one frozen-CLIP pass per
sweep (§3.3 stores the extractor's features before training)."""
from aigid.features import SharedFeatures
from aigid.methods.gendet.evaluate import evaluate
from aigid.methods.gendet.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, GenDetConfig, CHOICES, TEST_SETS
from aigid.methods.gendet.trainer import GenDetTrainer, check_data, feature_requests
from aigid.methods.spec import MethodSpec

GENDET = MethodSpec(
    name="gendet",
    summary="GenDet: teacher-student discrepancy, on cached CLIP features",
    config_cls=GenDetConfig,
    trainer_cls=GenDetTrainer,
    test_sets=TEST_SETS,
    choices=CHOICES,
    layout="ufd",  # Tables 1, 2 and 5 are on UniversalFakeDetect
    check_data=check_data,
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=SharedFeatures(feature_requests),
    early_stopping=False,  # test/... is the teacher's until N_c trains, last
    evaluate=evaluate,
)
