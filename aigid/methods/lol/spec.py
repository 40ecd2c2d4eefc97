"""LoL as aigid runs it: its test images are decoded once per sweep and shared by every trial
(LoL fine-tunes its backbone, so nothing else can be shared; aigid.data.decoded)."""
from __future__ import annotations

from collections import defaultdict

from aigid.data.decoded import decode_once
from aigid.methods.lol.config import CHOICES, OFFLINE_OVERRIDES, SMALL_IMAGES, SMOKE_OVERRIDES, TEST_SETS, LoLConfig
from aigid.methods.lol.trainer import LoLTrainer, check_data, select_test_samples
from aigid.methods.spec import MethodSpec
from aigid.selection import Selection


def decode_test_images(index, configs, context) -> dict:
    """{"test_images": {crop: DecodedImages}}: the union of the configs' test images, decoded once per crop size."""
    paths = defaultdict(set)
    for config in configs:
        paths[config.crop] |= {s.path for samples in select_test_samples(index, config).values() for s in samples}
    return {"test_images": {crop: decode_once(sorted(p), crop, context.cache_dir, small=SMALL_IMAGES, num_workers=context.num_workers,
                                              log=context.log)
                            for crop, p in paths.items()}}


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
    selection=Selection(over_last_epochs=True, source="LoL §4.3: mean ACC of the final five epochs"),
)
