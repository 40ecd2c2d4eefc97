"""Training RINE's head on cached backbone features, and which features a grid needs.

The frozen CLIP encoder never runs inside a trial: `feature_requests` lists the view sets
every config of a grid reads (one augmented training view per epoch and seed, one centre
crop of the validation and test images), `aigid.features.extract` computes them once, and
`RINETrainer` indexes into them. A 1-epoch trial thus trains on one augmented view per
image, as the paper's 1-epoch training does.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Mapping

import numpy as np
import torch

from aigid.backbones import require_vit
from aigid.data.index import DataError, DatasetIndex
from aigid.data.subsets import nested_subsample
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FixedView, LabelledRows
from aigid.methods.rine.augment import CNNDetectionAugment
from aigid.methods.rine.config import CLASS_SETTINGS, SMALL_IMAGES, TEST_SETS, RINEConfig
from aigid.methods.rine.model import RINEHead, rine_loss
from aigid.methods.spec import OneModelCheckpoints
from aigid.metrics import binary_metrics, held_out_summary
from aigid.resident import resident_rows

VAL_SPLIT = "val"
EVAL_BATCH = 4096  # rows per scoring batch: at d' 1024 and 24 blocks, a 0.4 GB float32 activation


def train_view_name(config: RINEConfig, view: int) -> tuple:
    return ("train", config.backbone, config.pretrained, config.crop, config.blur_prob, config.jpeg_prob,
            config.seed, view)


def eval_view_name(config: RINEConfig) -> tuple:
    return ("eval", config.backbone, config.pretrained, config.crop)


def select_training_samples(index: DatasetIndex, config: RINEConfig):
    """ProGAN training images of the config's classes, subsampled (balanced, nested) to train_fraction."""
    samples = index.select(index.train_split, groups=config.class_names)
    if config.train_fraction >= 1:
        return samples
    return nested_subsample(samples, max(2, round(config.train_fraction * len(samples))), seed=config.seed)


def select_validation_samples(index: DatasetIndex, config: RINEConfig):
    """The held-out val/<class> images of the training classes (UFD ships them), or [] if there are none."""
    if VAL_SPLIT not in index.splits():
        return []
    return index.select(VAL_SPLIT, groups=config.class_names)


def select_test_samples(index: DatasetIndex) -> dict:
    """Every test set found: the paper's 20 make the mean (TEST_SETS), any other is an extra column."""
    return {subset: index.select(index.test_split, subsets=[subset]) for subset in index.subsets(index.test_split)}


def feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """The view sets a grid reads, each once: per backbone, the union of the images and outputs
    its configs need; training views 0..epochs-1 per seed; one shared evaluation view."""
    groups = defaultdict(list)
    for config in configs:
        groups[(config.backbone, config.pretrained, config.crop, config.blur_prob, config.jpeg_prob)].append(config)
    tests = [s.path for samples in select_test_samples(index).values() for s in samples]
    requests = {}
    for (backbone, pretrained, crop, blur_prob, jpeg_prob), group in groups.items():
        outputs = tuple({c.output for c in group})
        classes = sorted({name for c in group for name in c.class_names})
        train = [s.path for s in index.select(index.train_split, groups=classes)]
        val = [s.path for c in group for s in select_validation_samples(index, c)]
        augment = CNNDetectionAugment(crop, small=SMALL_IMAGES, blur_prob=blur_prob, jpeg_prob=jpeg_prob)
        for seed, view in sorted({(c.seed, v) for c in group for v in range(c.epochs)}):
            name = ("train", backbone, pretrained, crop, blur_prob, jpeg_prob, seed, view)  # = train_view_name
            requests[name] = FeatureRequest(backbone, pretrained, outputs, tuple(train), augment, view, seed,
                                            label=f"{backbone} train view {view} seed {seed}", root=str(index.root))
        requests[eval_view_name(group[0])] = FeatureRequest(
            backbone, pretrained, outputs, tuple(val + tests), FixedView(test_transform(crop, small=SMALL_IMAGES)),
            label=f"{backbone} val+test centre crop")
    return requests


class RINETrainer(OneModelCheckpoints):
    """One RINE run on cached features: yields per-epoch metrics; `state_dict()` is a complete checkpoint.

    The data path is built for a device that does nothing else: the training rows of each epoch's
    view and the val + test rows are held on the device (`aigid.resident`, kept across the trials of
    a worker process), a batch is an index gather there, the loss is read back once per epoch, and
    every val and test row is scored in one stream of large batches.
    """

    def __init__(self, config: RINEConfig, index: DatasetIndex, shared: Mapping, *, device="cpu",
                 num_workers: int = 0):
        features = shared["features"]
        self.config = config
        self.device = torch.device(device)
        self.views = [features[train_view_name(config, v)] for v in range(config.epochs)]
        evaluation = features[eval_view_name(config)]
        self.train = LabelledRows(self.views[0], select_training_samples(index, config))
        self.train_labels = self.train.labels.to(self.device)
        validation = select_validation_samples(index, config)
        self.val = LabelledRows(evaluation, validation) if validation else None
        self.tests = {subset: LabelledRows(evaluation, samples) for subset, samples in select_test_samples(index).items()}
        self.averaged = TEST_SETS.averaged(index.layout, self.tests)
        self.held_out = [*self.tests.values(), *([self.val] if self.val is not None else [])]
        self.held_out_tokens = resident_rows(evaluation, config.output, np.concatenate(
            [part.rows for part in self.held_out]), self.device)
        n_blocks, width = self.views[0].features[config.output].shape[1:]
        last_only = config.without == "intermediate"
        torch.manual_seed(config.seed)
        self.model = RINEHead(1 if last_only else n_blocks, width, config.q, config.proj_dim,
                              tie=config.without not in ("tie", "intermediate"), dropout=config.dropout).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.xi = 0.0 if config.without == "contrastive" else config.xi
        self.epoch = self.step = 0

    def _input(self, tokens: torch.Tensor) -> torch.Tensor:
        """Stored (float16) rows -> the head's float32 input; the last block only for "w/o intermediate"."""
        return (tokens[:, -1:] if self.config.without == "intermediate" else tokens).float()

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
            logits, z = self.model(self._input(tokens[batch]))
            loss = rine_loss(logits, z, self.train_labels[batch], self.xi, config.temperature)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            losses.append(loss.detach())
        return float(np.mean(torch.stack(losses).cpu().numpy().astype(np.float64)))  # the one sync of the epoch

    @torch.no_grad()
    def held_out_scores(self) -> np.ndarray:
        """P(fake) of every test and val row, in the order of `held_out`, scored EVAL_BATCH rows at a time."""
        self.model.eval()
        return torch.cat([torch.sigmoid(self.model(self._input(chunk))[0])
                          for chunk in self.held_out_tokens.split(EVAL_BATCH)]).cpu().numpy()

    def evaluate(self) -> dict:
        """Centre-crop ACC/AP on every test set (`test/<subset>/...`; `test/mean/...` over the paper's) and on val."""
        ends = np.cumsum([len(part.rows) for part in self.held_out])
        scores = dict(zip(map(id, self.held_out), np.split(self.held_out_scores(), ends[:-1])))
        return held_out_summary(lambda part: binary_metrics(scores[id(part)], part.labels.numpy()),
                                self.tests, self.val, self.averaged)

    def run(self) -> Iterator[dict]:
        while self.epoch < self.config.epochs:
            lr = self.config.lr_at(self.epoch)
            loss = self.train_epoch()
            self.epoch += 1
            skipped = self.train.skipped + sum(p.skipped for p in self.tests.values())
            yield {"epoch": self.epoch, "step": self.step, "epoch_end": True, "train/loss": loss, "lr": lr,
                   "data/skipped_files": skipped, **self.evaluate()}



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
    select_test_samples(index)
