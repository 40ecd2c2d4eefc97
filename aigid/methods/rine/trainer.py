"""Training RINE's head on cached backbone features.

The frozen CLIP encoder never runs inside a trial: `views.feature_requests` lists the view sets
every config of a grid reads (one augmented training view per epoch and seed, the val and test
views), `aigid.features.extract` computes them once, and `RINETrainer` indexes into them. A
1-epoch trial thus trains on one augmented view per image, as the paper's 1-epoch training does.
"""
from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch

from aigid.backbones import require_vit
from aigid.data.index import DataError, DatasetIndex
from aigid.features import LabelledRows
from aigid.methods.rine.config import CLASS_SETTINGS, RINEConfig
from aigid.methods.rine.model import rine_loss
from aigid.methods.rine.scoring import HeldOut, build_head, head_input
from aigid.methods.rine.views import (VAL_SPLIT, select_test_samples, select_training_samples,
                                      select_validation_samples, scored_index, train_view_name)
from aigid.methods.spec import OneModelCheckpoints
from aigid.resident import resident_rows


class RINETrainer(OneModelCheckpoints):
    """One RINE run on cached features: yields per-epoch metrics; `state_dict()` is a complete checkpoint.

    The data path is built for a device that does nothing else: the training rows of each epoch's
    view and the val + test rows are held on the device (`aigid.resident`, kept across the trials of
    a worker process), a batch is an index gather there, the loss is read back once per epoch, and
    the val and test rows are scored in large batches by `HeldOut`, as `evaluate` scores them.
    """

    def __init__(self, config: RINEConfig, index: DatasetIndex, shared: Mapping, *, device="cpu",
                 num_workers: int = 0):
        features = shared["features"]
        self.config = config
        self.device = torch.device(device)
        self.views = [features[train_view_name(config, v)] for v in range(config.epochs)]
        self.train = LabelledRows(self.views[0], select_training_samples(index, config))
        self.train_labels = self.train.labels.to(self.device)
        self.held_out = HeldOut(config, index, features, self.device, with_val=True)
        torch.manual_seed(config.seed)
        self.model = build_head(config, *self.views[0].features[config.output].shape[1:]).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.xi = 0.0 if config.without == "contrastive" else config.xi
        self.epoch = self.step = 0

    def train_epoch(self) -> float:
        """One pass over this epoch's cached augmented view; the mean batch loss (eq. 5)."""
        config = self.config
        tokens = resident_rows(self.views[self.epoch], config.output, self.train.rows, self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr_at(self.epoch)
        torch.manual_seed(config.seed * 100_003 + self.epoch)  # dropout RNG, reproducible on resume
        self.model.train()
        losses = []
        order = torch.randperm(len(self.train.rows), generator=self.generator).to(self.device)
        for batch in order.split(config.batch_size):
            logits, z = self.model(head_input(config, tokens[batch]))
            loss = rine_loss(logits, z, self.train_labels[batch], self.xi, config.temperature)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            losses.append(loss.detach())
        return float(np.mean(torch.stack(losses).cpu().numpy().astype(np.float64)))  # the one sync of the epoch

    def evaluate(self) -> dict:
        """ACC/AP on every test set (`test/<subset>/...`; `test/mean/...` over the paper's) and on val."""
        return self.held_out.metrics(self.model)

    def report(self, loss: float, lr: float, evaluation: dict) -> dict:
        """The result of the epoch just trained: its mean loss, its lr and `evaluation` (`evaluate()`'s)."""
        skipped = self.train.skipped + sum(p.skipped for p in self.held_out.tests.values())
        return {"epoch": self.epoch, "step": self.step, "epoch_end": True, "train/loss": loss, "lr": lr,
                "data/skipped_files": skipped, **evaluation}

    def run(self) -> Iterator[dict]:
        while self.epoch < self.config.epochs:
            lr = self.config.lr_at(self.epoch)
            loss = self.train_epoch()
            self.epoch += 1
            yield self.report(loss, lr, self.evaluate())


def check_data(config: RINEConfig, index: DatasetIndex) -> None:
    """Fail before any feature pass: a ResNet backbone, missing class folders, no val split to select on."""
    require_vit(config.backbone, "RINE reads per-block CLS tokens")
    found = {s.group for s in index.select(index.train_split)}
    missing = sorted(set(config.class_names) - found)
    if missing:
        fitting = [k for k, names in CLASS_SETTINGS.items() if set(names) <= found]
        raise DataError(
            f"class setting classes={config.classes} trains on {index.train_split}/{{{','.join(config.class_names)}}}"
            f"/{{0_real,1_fake}} but {index.root} lacks {missing} (its {index.train_split}/ has: "
            f"{', '.join(sorted(found)) or 'nothing'}); "
            + (f"use classes={' or '.join(map(str, fitting))}" if fitting else "no class setting of the paper fits")
        )
    if config.select_on == "val" and not select_validation_samples(index, config):
        raise DataError(f"select_on='val' needs {VAL_SPLIT}/<class>/ images of {list(config.class_names)} under "
                        f"{index.root}; add them or drop --set select_on=val (the paper selects on the test sets)")
    select_training_samples(index, config)
    select_test_samples(scored_index(config, index))
