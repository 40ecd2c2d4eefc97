"""LoL as aigid runs it: its test images are decoded once per sweep and shared by every trial
(LoL fine-tunes its backbone, so nothing else can be shared; aigid.data.decoded)."""
from __future__ import annotations

from aigid.methods.lol.config import CHOICES, OFFLINE_OVERRIDES, SMOKE_OVERRIDES, TEST_SETS, LoLConfig
from aigid.methods.lol.evaluation import decode_test_images, evaluate
from aigid.methods.lol.trainer import LoLTrainer, check_data
from aigid.methods.spec import MethodSpec
from aigid.selection import Selection


LOL = MethodSpec(
    name="lol",
    summary="Learning on Less: masked fine-tuning of a CLIP image encoder",
    config_cls=LoLConfig,
    trainer_cls=LoLTrainer,
    test_sets=TEST_SETS,
    choices=CHOICES,
    layout="genimage",  # §4.1: GenImage
    check_data=check_data,
    offline=OFFLINE_OVERRIDES,
    smoke=SMOKE_OVERRIDES,
    prepare=decode_test_images,
    evaluate=evaluate,
    selection=Selection(over_last_epochs=True, source="LoL §4.3: mean ACC of the final five epochs"),
)
