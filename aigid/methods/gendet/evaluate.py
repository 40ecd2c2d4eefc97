"""GenDet evaluation only (`MethodSpec.evaluate`, `aigid eval`): a trained state scored on the test images.

The frozen extractor runs on the test view set alone (no training image is read); the networks
are rebuilt from the config, loaded whole, and scored by `EvalFeatures.metrics`, the code the
trainer's reports use, with the detector the trainer's last report used.
"""
from __future__ import annotations

import torch

from aigid.data.index import DatasetIndex
from aigid.errors import ConfigError
from aigid.features import SharedFeatures
from aigid.methods.gendet.config import GenDetConfig
from aigid.methods.gendet.model import GenDet
from aigid.methods.gendet.trainer import EvalFeatures, detector_after, eval_feature_requests
from aigid.methods.released import load_whole
from aigid.methods.spec import PrepareContext

eval_features = SharedFeatures(eval_feature_requests)


def detector_of(config: GenDetConfig, state: dict) -> str:
    """The detector of the state's last report: the classifier once its epochs have run, else the teacher's head."""
    epoch = state.get("epoch", 0)
    if not 1 <= epoch <= len(config.schedule):
        raise ConfigError(f"this GenDet state has run {epoch} of its config's {len(config.schedule)} stages: "
                          "evaluate a checkpoint of a trial that has finished at least one stage")
    return detector_after(config.schedule[epoch - 1])


def evaluate(config: GenDetConfig, state: dict, index: DatasetIndex, context: PrepareContext) -> dict:
    """`test/<subset>/...` and `test/mean/...` of `state`'s networks on `config`'s test images (perturbed by
    `config.test_perturb`), equal to the trainer's report on the same config and data."""
    config.require_resolved()
    detector = detector_of(config, state)
    features = eval_features(index, [config], context)["features"]
    device = torch.device(context.device)
    tests = EvalFeatures(config, index, features, device)
    model = GenDet(tests.features.shape[1:], config)
    load_whole(model, state["model"], "the checkpoint", f"GenDet ({config.tokens} reading, width {config.width})")
    return tests.metrics(model.to(device), detector)
