"""UnivFD as aigid runs it: a linear probe trained on the embeddings of one frozen-CLIP pass per sweep."""
from aigid.features import SharedFeatures
from aigid.methods.spec import MethodSpec
from aigid.methods.univfd.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, UnivFDConfig, CHOICES, TEST_SETS
from aigid.methods.univfd.released import released
from aigid.methods.univfd.trainer import UnivFDTrainer, check_data, evaluate, feature_requests

UNIVFD = MethodSpec(
    name="univfd",
    summary="UnivFD: a linear probe on frozen CLIP embeddings, on cached features",
    config_cls=UnivFDConfig,
    trainer_cls=UnivFDTrainer,
    test_sets=TEST_SETS,
    choices=CHOICES,
    layout="ufd",  # the authors train on ForenSynths' ProGAN images and test on the UFD collection
    check_data=check_data,
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=SharedFeatures(feature_requests),
    evaluate=evaluate,
    released=released,
)
