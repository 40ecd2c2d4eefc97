"""Training UnivFD's linear probe on cached CLIP embeddings, and which features a grid needs.

The frozen encoder never runs inside a trial: `feature_requests` lists, per (backbone, weights,
crop), one view set of the training and validation images the grid's configs read and one of
every test image per test perturbation (`test_perturb`, `perturb_seed`), each the centre crop
with the pooled image embedding (what the authors' CLIPModel feeds its fc layer:
`encode_image`, not L2-normalised). `aigid.features` computes them once per sweep and
`UnivFDTrainer` fits a single nn.Linear(embed_dim, 1) on the stored rows with
BCEWithLogitsLoss, as networks/trainer.py does with the backbone fixed. `evaluate` scores a
saved probe on the test view set alone, with the trainer's own scoring code (`probe_metrics`).
"""
from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from aigid.data.index import FAKE, REAL, DataError, DatasetIndex
from aigid.data.subsets import test_subsets
from aigid.data.transforms import test_transform
from aigid.features import FeatureRequest, FeatureTable, FixedView, LabelledRows, SharedFeatures, tensor_view
from aigid.methods.released import load_whole
from aigid.methods.rine.config import CLASS_SETTINGS
from aigid.methods.univfd.config import ALL_CLASSES, OUTPUT, SMALL_IMAGES, TEST_SETS, UnivFDConfig
from aigid.methods.spec import OneModelCheckpoints, PrepareContext
from aigid.metrics import binary_metrics, held_out_summary

VAL_SPLIT = "val"
EVAL_BATCH = 8192
INIT_STD = 0.02  # authors' networks/trainer.py: fc.weight ~ N(0, init_gain = 0.02); the bias keeps torch's init
# Embeddings up to this size move to the trial's GPU once (UFD's 720K ProGAN images at 768 float16
# numbers are 1.1 GB), so batches are gathered there; a larger table stays in host memory.
DEVICE_FEATURES_BYTES = 2 << 30


def view_name(config: UnivFDConfig) -> tuple:
    """The training and validation images' view set."""
    return ("univfd", config.backbone, config.pretrained, config.crop)


def view_name_for_tests(config: UnivFDConfig) -> tuple:
    """The test images' view set: one per perturbation and its seed (a clean one, "none", too)."""
    return (*view_name(config), "test", *config.test_perturbation)


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


def centre_crop_request(config: UnivFDConfig, index: DatasetIndex, paths, label: str, **perturb) -> FeatureRequest:
    return FeatureRequest(config.backbone, config.pretrained, (OUTPUT,), tuple(paths),
                          FixedView(test_transform(config.crop, small=SMALL_IMAGES)), label=label,
                          root=str(index.root), **perturb)


def request_for_tests(config: UnivFDConfig, index: DatasetIndex) -> FeatureRequest:
    """Every test image, perturbed by the config's `test_perturb` before the centre crop."""
    paths = {s.path for samples in select_test_samples(index).values() for s in samples}
    return centre_crop_request(config, index, paths, f"{config.backbone} centre crop, test ({config.test_perturb})",
                               perturb=config.test_perturb, perturb_seed=config.test_perturb_seed)


def feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """Per (backbone, weights, crop): one view set of the union of the training and validation images
    of the configs' class settings, and one test view set per perturbation; output "embedding"."""
    groups: dict[tuple, list] = {}
    for config in configs:
        groups.setdefault(view_name(config), []).append(config)
    requests = {}
    for name, group in groups.items():
        paths = set()
        for config in {c.classes: c for c in group}.values():  # the images depend on the class setting only
            paths |= {s.path for s in select_training_samples(index, config)}
            paths |= {s.path for s in select_validation_samples(index, config)}
        requests[name] = centre_crop_request(group[0], index, paths, f"{group[0].backbone} centre crop, train + val")
        requests.update({view_name_for_tests(c): request_for_tests(c, index) for c in group})
    return requests


def on_device(table: FeatureTable, device: torch.device) -> torch.Tensor:
    """A table's embeddings as a tensor; up to DEVICE_FEATURES_BYTES it moves to the GPU once, so batches
    are gathered there."""
    features = tensor_view(table, OUTPUT)  # (N, embed_dim) float16
    if device.type == "cuda" and features.nbytes <= DEVICE_FEATURES_BYTES:
        features = features.to(device)
    return features


def parts_for_tests(table: FeatureTable, index: DatasetIndex) -> dict[str, LabelledRows]:
    return {subset: LabelledRows(table, samples) for subset, samples in select_test_samples(index).items()}


@torch.no_grad()
def probe_metrics(model: nn.Module, features: torch.Tensor, part: LabelledRows, device: torch.device) -> dict:
    """ACC/AP/loss of the probe on one part's rows of `features`, P(fake) being the sigmoid of the logit
    (validate.py): the one scoring code of the trainer's reports and of `evaluate`, so both agree."""
    model.eval()
    rows = torch.from_numpy(part.rows)
    scores = torch.cat([torch.sigmoid(model(features[chunk.to(features.device)].to(device).float())).squeeze(1).cpu()
                        for chunk in rows.split(EVAL_BATCH)]).numpy()
    return binary_metrics(scores, part.labels.numpy())


def report_on(model: nn.Module, device, index: DatasetIndex, tests: dict, test_features: torch.Tensor,
              val: LabelledRows | None = None, val_features: torch.Tensor | None = None) -> dict:
    """`test/<subset>/...` and `test/mean/...` (the mean over the paper's test sets), and `val/...` with `val`."""
    def metrics(part: LabelledRows) -> dict:
        return probe_metrics(model, val_features if part is val else test_features, part, device)

    return held_out_summary(metrics, tests, val, TEST_SETS.averaged(index.layout, tests))


class UnivFDTrainer(OneModelCheckpoints):
    """One UnivFD run on cached embeddings: metrics after every epoch; `state_dict()` is a complete checkpoint."""

    def __init__(self, config: UnivFDConfig, index: DatasetIndex, shared: Mapping, *, device="cpu",
                 num_workers: int = 0):
        config.require_resolved()
        self.config = config
        self.device = torch.device(device)
        self.index = index
        table: FeatureTable = shared["features"][view_name(config)]
        tests: FeatureTable = shared["features"][view_name_for_tests(config)]
        self.features, self.test_features = on_device(table, self.device), on_device(tests, self.device)
        self.train = LabelledRows(table, select_training_samples(index, config))
        validation = select_validation_samples(index, config)
        self.val = LabelledRows(table, validation) if validation else None
        self.tests = parts_for_tests(tests, index)
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

    def evaluate(self) -> dict:
        """ACC@0.5 / AP per test set (`test/<subset>/...`, `test/mean/...`), and on val where present."""
        return report_on(self.model, self.device, self.index, self.tests, self.test_features, self.val, self.features)

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


def evaluate(config: UnivFDConfig, state: Mapping, index: DatasetIndex, context: PrepareContext) -> dict:
    """A saved probe (`state["model"]`: weight [1, embed_dim], bias [1]) on the test view set alone,
    loaded strictly: a missing or misshapen key is a ConfigError naming it and the shape expected."""
    table = SharedFeatures(lambda configs, index: {"tests": request_for_tests(configs[0], index)})(
        index, [config], context)["features"]["tests"]
    device = torch.device(context.device)
    features = on_device(table, device)
    width = features.shape[1]
    model = nn.Linear(width, 1)
    weights = state.get("model", {})
    load_whole(model, weights, "the checkpoint", f"a UnivFD probe on the {width}-d embedding of {config.backbone}")
    return report_on(model.to(device), device, index, parts_for_tests(table, index), features)
