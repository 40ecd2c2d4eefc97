"""Training UnivFD's linear probe on cached CLIP embeddings, and which features a grid needs.

The frozen encoder never runs inside a trial: `feature_requests` lists one view set per
(backbone, weights, crop), the centre crop of every training, validation and test image the
grid's configs read, with the pooled image embedding (what the authors' CLIPModel feeds its
fc layer: `encode_image`, not L2-normalised). `aigid.features` computes it once per sweep and
`UnivFDTrainer` fits a single nn.Linear(embed_dim, 1) on the stored rows with
BCEWithLogitsLoss, as networks/trainer.py does with the backbone fixed.
"""
from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from aigid.data.index import FAKE, REAL, DataError, DatasetIndex
from aigid.data.subsets import test_subsets
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FeatureTable, FixedView, LabelledRows, tensor_view
from aigid.methods.rine.config import CLASS_SETTINGS
from aigid.methods.univfd.config import ALL_CLASSES, OUTPUT, SMALL_IMAGES, TEST_SETS, UnivFDConfig
from aigid.methods.spec import OneModelCheckpoints
from aigid.metrics import binary_metrics, held_out_summary

VAL_SPLIT = "val"
EVAL_BATCH = 8192
INIT_STD = 0.02  # authors' networks/trainer.py: fc.weight ~ N(0, init_gain = 0.02); the bias keeps torch's init
# Embeddings up to this size move to the trial's GPU once (UFD's 720K ProGAN images at 768 float16
# numbers are 1.1 GB), so batches are gathered there; a larger table stays in host memory.
DEVICE_FEATURES_BYTES = 2 << 30


def view_name(config: UnivFDConfig) -> tuple:
    return ("univfd", config.backbone, config.pretrained, config.crop)


def training_classes(index: DatasetIndex, config: UnivFDConfig) -> tuple[str, ...]:
    """The class folders trained on: the config's setting, or every class under the training split."""
    if config.class_names is not None:
        return config.class_names
    return tuple(sorted({s.group for s in index.select(index.train_split)}))


def select_training_samples(index: DatasetIndex, config: UnivFDConfig):
    """ProGAN training images (real and fake) of the config's classes."""
    return index.select(index.train_split, groups=training_classes(index, config))


def select_validation_samples(index: DatasetIndex, config: UnivFDConfig):
    """The held-out val/<class> images of the training classes, or [] where the dataset has none.

    The authors' wang2020 data mode validates on test/progan; ForenSynths ships a val split of
    the training classes, which keeps the test sets unseen by any choice made on validation."""
    if VAL_SPLIT not in index.splits() or VAL_SPLIT == index.test_split:
        return []
    return index.select(VAL_SPLIT, groups=training_classes(index, config))


def select_test_samples(index: DatasetIndex) -> dict:
    """Every test set found, per generator (the paper evaluates on all of them)."""
    return test_subsets(index)


def feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """One centre-crop view set per (backbone, weights, crop): the union of the training and
    validation images of the configs' class settings, plus every test image; output "embedding"."""
    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(view_name(config), []).append(config)
    tests = {s.path for samples in select_test_samples(index).values() for s in samples}
    requests = {}
    for name, group in groups.items():
        _, backbone, pretrained, crop = name
        paths = set(tests)
        for config in {c.classes: c for c in group}.values():  # the images depend on the class setting only
            paths |= {s.path for s in select_training_samples(index, config)}
            paths |= {s.path for s in select_validation_samples(index, config)}
        requests[name] = FeatureRequest(backbone, pretrained, (OUTPUT,), tuple(paths), FixedView(test_transform(crop, small=SMALL_IMAGES)),
                                        label=f"{backbone} centre crop, train + val + test")
    return requests


class UnivFDTrainer(OneModelCheckpoints):
    """One UnivFD run on cached embeddings: metrics after every epoch; `state_dict()` is a complete checkpoint."""

    def __init__(self, config: UnivFDConfig, index: DatasetIndex, shared: Mapping, *, device="cpu",
                 num_workers: int = 0):
        config.require_resolved()
        self.config = config
        self.device = torch.device(device)
        table: FeatureTable = shared["features"][view_name(config)]
        self.features = tensor_view(table, OUTPUT)  # (N, embed_dim) float16
        if self.device.type == "cuda" and self.features.nbytes <= DEVICE_FEATURES_BYTES:
            self.features = self.features.to(self.device)
        self.train = LabelledRows(table, select_training_samples(index, config))
        validation = select_validation_samples(index, config)
        self.val = LabelledRows(table, validation) if validation else None
        self.tests = {subset: LabelledRows(table, samples) for subset, samples in select_test_samples(index).items()}
        self.averaged = TEST_SETS.averaged(index.layout, self.tests)
        # the training rows and labels as tensors, so a batch is two gathers (no per-sample Python)
        self.train_rows = torch.from_numpy(self.train.rows).to(self.features.device)
        self.train_labels = self.train.labels.to(self.features.device)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation that leaves the global RNG alone
            torch.manual_seed(self.config.seed)
            self.model = nn.Linear(self.features.shape[1], 1)
            nn.init.normal_(self.model.weight, 0.0, INIT_STD)
        self.model.to(self.device)
        self.loss_fn = nn.BCEWithLogitsLoss()
        # torch AdamW: the authors' --optim adam builds it; at weight_decay 0 (theirs) it is Adam
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, betas=(0.9, 0.999),
                                           weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = self.step = 0

    def _x(self, rows: torch.Tensor) -> torch.Tensor:
        return self.features[rows.to(self.features.device)].to(self.device, non_blocking=True).float()

    def train_epoch(self) -> float:
        """One shuffled pass over the training embeddings; the mean batch loss, read once per epoch."""
        self.model.train()
        order = torch.randperm(len(self.train_rows), generator=self.generator).to(self.train_rows.device)
        losses = []
        for batch in order.split(self.config.batch_size):
            logits = self.model(self._x(self.train_rows[batch])).squeeze(1)
            loss = self.loss_fn(logits, self.train_labels[batch].to(self.device, non_blocking=True))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            losses.append(loss.detach())
        mean = torch.stack(losses).mean().item()
        if not np.isfinite(mean):
            raise FloatingPointError(f"UnivFD loss is {mean} at epoch {self.epoch + 1}: lower lr "
                                     f"(now {self.config.lr}) or check the cached features")
        return mean

    @torch.no_grad()
    def scores(self, part: LabelledRows) -> np.ndarray:
        """P(fake) of the probe for the rows of one part (sigmoid of the logit, as validate.py)."""
        self.model.eval()
        rows = torch.from_numpy(part.rows)
        return torch.cat([torch.sigmoid(self.model(self._x(chunk))).squeeze(1).cpu()
                          for chunk in rows.split(EVAL_BATCH)]).numpy()

    def metrics(self, part: LabelledRows) -> dict:
        return binary_metrics(self.scores(part), part.labels.numpy())

    def evaluate(self) -> dict:
        """ACC@0.5 / AP per test set (`test/<subset>/...`, `test/mean/...`), and on val where present."""
        return held_out_summary(self.metrics, self.tests, self.val, self.averaged)

    def run(self) -> Iterator[dict]:
        parts = [self.train, *self.tests.values(), *([self.val] if self.val is not None else [])]
        while self.epoch < self.config.epochs:
            loss = self.train_epoch()
            self.epoch += 1
            yield {"epoch": self.epoch, "step": self.step, "epoch_end": True, "train/loss": loss,
                   "data/skipped_files": sum(p.skipped for p in parts), **self.evaluate()}



def check_data(config: UnivFDConfig, index: DatasetIndex) -> None:
    """Fail before the feature pass: missing class folders, a class-less training split, one
    label missing from training, or no test split."""
    found = {s.group for s in index.select(index.train_split)}
    if config.class_names is not None:
        missing = sorted(set(config.class_names) - found)
        if missing:
            fitting = [k for k, names in sorted(CLASS_SETTINGS.items()) if set(names) <= found]
            raise DataError(
                f"classes={config.classes} trains on {index.train_split}/{{{','.join(config.class_names)}}}"
                f"/{{0_real,1_fake}} but {index.root} lacks {missing} (its {index.train_split}/ has: "
                f"{', '.join(sorted(g for g in found if g)) or 'nothing'}); "
                f"use classes={ALL_CLASSES} (every class found)"
                + (f" or classes={' or '.join(map(str, fitting))}" if fitting else "")
            )
    labels = {s.label for s in select_training_samples(index, config)}
    if labels != {REAL, FAKE}:
        missing_label = "0_real" if REAL not in labels else "1_fake"
        raise DataError(f"UnivFD's probe learns real against fake, but the training images of classes="
                        f"{config.classes} under {index.root}/{index.train_split} have no {missing_label}/ images; "
                        f"add them or choose classes whose folders hold both")
    select_test_samples(index)
