"""Which images RINE reads and through which view: the samples of each role, the view sets a grid
needs (`feature_requests`) and their names, shared by the trainer and by `evaluate`.

View sets: one augmented training view per epoch and seed; the clean centre crop of the val
images (shared by every perturbation); the test images as scored, per (test root, perturbation,
perturbation seed, crop), so a perturbed or ten-crop test is its own cache entry and a clean
one the same entry for the trainer and for `evaluate`.
"""
from __future__ import annotations

from collections import defaultdict

import torch
import torchvision.transforms as T
from torchvision.transforms import functional as F

from aigid.data.index import DatasetIndex
from aigid.data.subsets import nested_subsample
from aigid.data.test_root import open_test_root
from aigid.data.transforms import CLIP_MEAN, CLIP_STD, grow_to, test_transform
from aigid.features import FeatureRequest, FixedView
from aigid.methods.rine.augment import CNNDetectionAugment
from aigid.methods.rine.config import SMALL_IMAGES, RINEConfig

VAL_SPLIT = "val"


class TenCropPart:
    """Crop `k` of torchvision's TenCrop: the four corners, the centre, then the same of the mirrored image."""

    def __init__(self, crop: int, k: int):
        self.crop, self.k = crop, k

    def __call__(self, img):
        return F.ten_crop(img, self.crop)[self.k]

    def __repr__(self) -> str:
        return f"TenCropPart(crop={self.crop}, k={self.k})"


def scored_view(config: RINEConfig, k: int):
    """Test crop `k`: the centre crop (§4.2) when one crop is scored, else TenCrop's k-th (§5.8)."""
    if config.test_crops == 1:
        return test_transform(config.crop, small=SMALL_IMAGES)
    return T.Compose([grow_to(SMALL_IMAGES, config.crop), TenCropPart(config.crop, k), T.PILToTensor(),
                      T.ConvertImageDtype(torch.float32), T.Normalize(CLIP_MEAN, CLIP_STD)])


def train_view_name(config: RINEConfig, view: int) -> tuple:
    return ("train", config.backbone, config.pretrained, config.crop, config.blur_prob, config.jpeg_prob,
            config.seed, view)


def val_view_name(config: RINEConfig) -> tuple:
    return ("val", config.backbone, config.pretrained, config.crop)


def scored_view_names(config: RINEConfig) -> list[tuple]:
    """One per crop scored."""
    return [("test", config.backbone, config.pretrained, config.crop, config.test_root, config.test_crops,
             *config.test_perturbation, k) for k in range(config.test_crops)]


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


def scored_index(config: RINEConfig, index: DatasetIndex) -> DatasetIndex:
    """The dataset scored: `index`, or the one at `test_root` ("synthetic": a stand-in written beside a
    synthetic `index`, another seed of the UFD stand-in, as APN's cross-scene test does)."""
    return open_test_root(config.test_root, index, stand_in="synthetic-rine-test", layout="ufd",
                          what="your test dataset root", seed=1, n_train=1) or index


def select_test_samples(index: DatasetIndex) -> dict:
    """Every test set found: the paper's 20 make the mean (TEST_SETS), any other is an extra column."""
    return {subset: index.select(index.test_split, subsets=[subset]) for subset in index.subsets(index.test_split)}


def scored_requests(config: RINEConfig, index: DatasetIndex, outputs) -> dict[tuple, FeatureRequest]:
    """The view sets of the test images as `config` scores them, perturbed per image before the crop."""
    tested = scored_index(config, index)
    paths = tuple(s.path for samples in select_test_samples(tested).values() for s in samples)
    return {name: FeatureRequest(config.backbone, config.pretrained, tuple(outputs), paths,
                                 FixedView(scored_view(config, k)), perturb=config.test_perturb,
                                 perturb_seed=config.test_perturb_seed, root=str(tested.root),
                                 label=f"{config.backbone} test crop {k + 1}/{config.test_crops} ({config.test_perturb})")
            for k, name in enumerate(scored_view_names(config))}


def feature_requests(configs, index: DatasetIndex) -> dict[tuple, FeatureRequest]:
    """The view sets a grid reads, each once: per backbone, the union of the images and outputs
    its configs need; training views 0..epochs-1 per seed; one clean val view; the test views."""
    groups = defaultdict(list)
    for config in configs:
        groups[(config.backbone, config.pretrained, config.crop, config.blur_prob, config.jpeg_prob)].append(config)
    requests = {}
    for (backbone, pretrained, crop, blur_prob, jpeg_prob), group in groups.items():
        outputs = tuple({c.output for c in group})
        classes = sorted({name for c in group for name in c.class_names})
        train = [s.path for s in index.select(index.train_split, groups=classes)]
        augment = CNNDetectionAugment(crop, small=SMALL_IMAGES, blur_prob=blur_prob, jpeg_prob=jpeg_prob)
        for seed, view in sorted({(c.seed, v) for c in group for v in range(c.epochs)}):
            requests[("train", backbone, pretrained, crop, blur_prob, jpeg_prob, seed, view)] = FeatureRequest(
                backbone, pretrained, outputs, tuple(train), augment, view, seed,
                label=f"{backbone} train view {view} seed {seed}", root=str(index.root))  # = train_view_name
        val = [s.path for c in group for s in select_validation_samples(index, c)]
        if val:
            requests[val_view_name(group[0])] = FeatureRequest(
                backbone, pretrained, outputs, tuple(val), FixedView(test_transform(crop, small=SMALL_IMAGES)),
                label=f"{backbone} val centre crop")
        for config in group:
            requests.update(scored_requests(config, index, outputs))
    return requests
