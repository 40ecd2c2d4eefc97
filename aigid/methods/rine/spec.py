"""RINE as aigid runs it: heads trained on the features of one frozen-CLIP pass per sweep."""
from aigid.methods.rine.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, RINEConfig, CHOICES, TEST_SETS
from aigid.methods.rine.members import FeaturesAndStacks, stack_member
from aigid.methods.rine.released import released
from aigid.methods.rine.scoring import evaluate
from aigid.methods.rine.stack import leaders_first
from aigid.methods.rine.trainer import RINETrainer, check_data
from aigid.methods.rine.views import feature_requests
from aigid.methods.spec import MethodSpec
from aigid.selection import Selection


class RINESelection(Selection):
    """§4.4: the best config has the highest ACC + AP, on the split its config selects on
    (`select_on`: the test sets by default, as the paper and the authors' code do; "val": held out)."""

    def keys_for(self, config: dict) -> tuple[str, ...]:
        split = "val" if config.get("select_on", "test") == "val" else "test/mean"
        return (f"{split}/acc", f"{split}/ap")


RINE = MethodSpec(
    name="rine",
    summary="RINE: intermediate CLIP blocks, on cached features",
    config_cls=RINEConfig,
    trainer_cls=RINETrainer,
    stacked=stack_member,
    test_sets=TEST_SETS,
    choices=CHOICES,
    layout="ufd",  # §4.1: trained on ProGAN (ForenSynths), tested on the UFD collection
    check_data=check_data,
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=FeaturesAndStacks(feature_requests),
    start_order=leaders_first,
    selection=RINESelection(source="RINE §4.4: ACC + AP"),
    evaluate=evaluate,
    released=released,
)
