"""How RINE is scored, written once for the trainer's per-epoch report and for `evaluate`
(`aigid eval`): the same head, the same rows, the same arithmetic, hence the same numbers.

`HeldOut` holds the test rows (and, for the trainer, the val rows) on the device; P(fake) of an
image is the sigmoid of the head's logit, averaged over its test crops (one centre crop, or ten
as §5.8); ACC at 0.5 and AP per test set, their mean over the paper's 20 (`TEST_SETS`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from aigid.data.index import DatasetIndex
from aigid.features import LabelledRows, SharedFeatures
from aigid.methods.released import load_whole
from aigid.methods.rine.config import TEST_SETS, RINEConfig
from aigid.methods.rine.model import RINEHead
from aigid.methods.rine.views import (select_test_samples, select_validation_samples, scored_index, scored_requests,
                                      scored_view_names, val_view_name)
from aigid.metrics import binary_metrics, held_out_summary
from aigid.resident import resident_rows

EVAL_BATCH = 4096  # rows per scoring batch: at d' 1024 and 24 blocks, a 0.4 GB float32 activation


def build_head(config: RINEConfig, n_blocks: int, width: int) -> RINEHead:
    """The head `config` describes on a backbone of `n_blocks` x `width` tokens (Table 4's ablations included)."""
    last_only = config.without == "intermediate"
    return RINEHead(1 if last_only else n_blocks, width, config.q, config.proj_dim,
                    tie=config.without not in ("tie", "intermediate"), dropout=config.dropout)


def head_input(config: RINEConfig, tokens: torch.Tensor) -> torch.Tensor:
    """Stored (float16) rows -> the head's float32 input; the last block only for "w/o intermediate"."""
    return (tokens[:, -1:] if config.without == "intermediate" else tokens).float()


def logits_of(model: RINEHead):
    """`HeldOut.scores`'s view of one head, in eval mode: tokens -> logits (1, batch)."""
    model.eval()
    return lambda tokens: model(tokens)[0][None]


class HeldOut:
    """The test sets of `config` (and the val images, `with_val`) as rows on `device`, scored as RINE scores."""

    def __init__(self, config: RINEConfig, index: DatasetIndex, features: Mapping, device, *, with_val: bool):
        self.config = config
        tested = scored_index(config, index)
        views = [features[name] for name in scored_view_names(config)]
        self.tests = {subset: LabelledRows(views[0], samples) for subset, samples in select_test_samples(tested).items()}
        self.averaged = TEST_SETS.averaged(tested.layout, self.tests)
        rows = np.concatenate([part.rows for part in self.tests.values()])
        self.test_tokens = [resident_rows(view, config.output, rows, device) for view in views]  # per crop
        validation = select_validation_samples(index, config) if with_val else []
        self.val = LabelledRows(features[val_view_name(config)], validation) if validation else None
        self.val_tokens = [resident_rows(self.val.table, config.output, self.val.rows, device)] if self.val else []

    @property
    def shape(self) -> tuple[int, int]:
        """(blocks, width) of the stored tokens."""
        return tuple(self.test_tokens[0].shape[1:])

    @torch.no_grad()
    def scores(self, logits_of, crops: list[torch.Tensor]) -> np.ndarray:
        """P(fake) per row, (heads, rows): `logits_of(tokens)` gives the logits (heads, batch) of one head or of
        a `HeadStack`'s; the mean over `crops` (each the same rows in another crop), EVAL_BATCH rows at a time."""
        per_crop = [torch.cat([torch.sigmoid(logits_of(head_input(self.config, chunk)))
                               for chunk in tokens.split(EVAL_BATCH)], dim=-1) for tokens in crops]
        return torch.stack(per_crop).mean(dim=0).cpu().numpy()

    def metrics(self, model: RINEHead) -> dict:
        """ACC/AP per test set (`test/<subset>/...`, `test/mean/...` over the paper's) and, with val, `val/...`."""
        return self.summaries(logits_of(model))[0]

    def summaries(self, logits_of) -> list[dict]:
        """`metrics` of each head that `logits_of` scores (see `scores`), one pass over the rows for all."""
        ends = np.cumsum([len(part.rows) for part in self.tests.values()])[:-1]
        tests = self.scores(logits_of, self.test_tokens)
        vals = self.scores(logits_of, self.val_tokens) if self.val is not None else [None] * len(tests)
        reports = []
        for test, val in zip(tests, vals):
            scores = dict(zip(map(id, self.tests.values()), np.split(test, ends)))
            if val is not None:
                scores[id(self.val)] = val
            reports.append(held_out_summary(lambda part: binary_metrics(scores[id(part)], part.labels.numpy()),
                                            self.tests, self.val, self.averaged))
        return reports


def _scored_requests(configs, index: DatasetIndex) -> dict:
    return {name: request for c in configs for name, request in scored_requests(c, index, (c.output,)).items()}


def evaluate(config: RINEConfig, state: Mapping, index: DatasetIndex, context) -> dict:
    """MethodSpec.evaluate: the head of `state` (a trainer's, or `released`'s) loaded whole and scored on
    the test view sets alone (read from the feature store, or computed once into it); no training or
    val image is read. The `test/...` metrics the trainer reports for the same config and data."""
    features = SharedFeatures(_scored_requests)(index, [config], context)["features"]
    held_out = HeldOut(config, index, features, context.device, with_val=False)
    model = build_head(config, *held_out.shape).to(context.device)
    load_whole(model, state["model"], "the checkpoint", "this RINE head")
    return held_out.metrics(model)
