"""LoL's testing, one code for the trainer's evaluations and for `aigid eval` (LOL.evaluate), so both report
the same numbers by construction: unmasked centre crops (§4.2) of every test subset, each image first
perturbed by `test_perturb` (Table A4), scored by P(fake)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator

import numpy as np
import torch

from aigid.data.datasets import make_loader
from aigid.data.decoded import DecodedImages, decode_once
from aigid.data.layouts import DatasetIndex
from aigid.data.subsets import test_subsets
from aigid.data.transforms import test_transform
from aigid.methods.device import autocast, memory_format, place
from aigid.methods.lol.config import SMALL_IMAGES, TEST_SETS, LoLConfig
from aigid.methods.lol.model import LoLDetector
from aigid.methods.released import load_whole
from aigid.metrics import binary_metrics, per_subset_summary


def select_test_samples(index: DatasetIndex, config: LoLConfig) -> dict:
    """Test images per subset: every subset of the test split unless `test_subsets` names some."""
    return test_subsets(index, config.test_subsets, config.test_limit)


def entry_key(config: LoLConfig) -> tuple:
    """What tells one decoded entry from another: the crop and the perturbation drawn."""
    return config.crop, *config.test_perturbation


def decode_test_images(index: DatasetIndex, configs, context) -> dict:
    """{"test_images": {entry_key: DecodedImages}}: the union of the configs' test images, decoded once
    per crop size and perturbation (a robustness grid's trials share one entry per perturbation)."""
    paths = defaultdict(set)
    for config in configs:
        paths[entry_key(config)] |= {s.path for samples in select_test_samples(index, config).values() for s in samples}
    return {"test_images": {
        (crop, perturb, seed): decode_once(sorted(p), crop, context.cache_dir, small=SMALL_IMAGES, perturb=perturb,
                                           perturb_seed=seed, root=str(index.root), num_workers=context.num_workers,
                                           log=context.log)
        for (crop, perturb, seed), p in paths.items()}}


class TestImages:
    """One config's test images per subset, normalised for `model`: rows of the sweep's decoded entry when
    this node sees it, else read and perturbed by a loader at each pass (as the entry was made)."""

    def __init__(self, config: LoLConfig, index: DatasetIndex, entry: DecodedImages | None, model: LoLDetector, *,
                 device, num_workers: int = 0):
        tests = select_test_samples(index, config)
        mean, std = model.info.mean, model.info.std
        self.averaged = TEST_SETS.averaged(index.layout, tests)
        self.batch_size, self.device = max(config.batch_size, 32), torch.device(device)
        self.decoded, self.loaders = {}, {}
        if entry is not None and entry.available():
            self.pixels, ok, row_of = entry.open()
            for subset, samples in tests.items():
                rows = np.fromiter((row_of[s.path] for s in samples), dtype=np.int64, count=len(samples))
                keep = ok[rows]
                labels = torch.tensor([s.label for s in samples], dtype=torch.float32)[torch.from_numpy(keep)]
                self.decoded[subset] = (rows[keep], labels, int((~keep).sum()))
            self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
            self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        else:
            view = test_transform(config.crop, small=SMALL_IMAGES, mean=mean, std=std)
            self.loaders = {subset: make_loader(samples, view, self.batch_size, shuffle=False, num_workers=num_workers,
                                                perturb=config.test_perturb, perturb_seed=config.perturb_seed,
                                                root=str(index.root))
                            for subset, samples in tests.items()}

    def batches(self) -> Iterator[tuple[str, torch.Tensor, torch.Tensor, int]]:
        """(subset, images on the device, labels, unreadable files skipped) for every batch of every subset."""
        for subset, (rows, labels, skipped) in self.decoded.items():
            yield subset, torch.empty(0), labels[:0], skipped
            for i in range(0, len(rows), self.batch_size):  # normalised on the device as test_transform would
                pixels = torch.from_numpy(self.pixels[rows[i:i + self.batch_size]]).to(self.device, non_blocking=True)
                yield subset, (pixels.float() / 255 - self.mean) / self.std, labels[i:i + self.batch_size], 0
        for subset, loader in self.loaders.items():
            for images, labels, skipped in loader:
                yield subset, images.to(self.device), labels, skipped


@torch.no_grad()
def score(model: LoLDetector, tests: TestImages) -> tuple[dict[str, float], int]:
    """(`test/<subset>/<metric>` + `test/mean/*` of `model` on `tests`, unreadable files skipped)."""
    model.eval()
    layout = memory_format(model, tests.device)
    scores, labels, skipped = defaultdict(list), defaultdict(list), 0
    for subset, images, batch_labels, n_skipped in tests.batches():
        skipped += n_skipped
        if len(batch_labels):
            with autocast(tests.device):
                logits = model(images.to(memory_format=layout))
            scores[subset].append(torch.sigmoid(logits.float()).cpu())
            labels[subset].append(batch_labels)
    per_subset = {subset: binary_metrics(torch.cat(scores[subset]).numpy(), torch.cat(labels[subset]).numpy())
                  for subset in scores}
    return per_subset_summary(per_subset, averaged=tests.averaged), skipped


def load_detector(config: LoLConfig, state: dict, device) -> LoLDetector:
    """The detector of a trainer's `state`, loaded whole: a ConfigError names the first key missing or misshapen."""
    model = LoLDetector(config.backbone, None)  # architecture only: every weight comes from `state`
    weights = state.get("model", {})
    load_whole(model, weights, "the checkpoint", f"LoL's {config.backbone} detector")
    return place(model, torch.device(device))[0]


def evaluate(config: LoLConfig, state: dict, index: DatasetIndex, context) -> dict[str, float]:
    """MethodSpec.evaluate: a trained LoL detector on `config`'s test images (decoded once into the cache)."""
    model = load_detector(config, state, context.device)
    entry = decode_test_images(index, [config], context)["test_images"][entry_key(config)]
    return score(model, TestImages(config, index, entry, model, device=context.device,
                                   num_workers=context.num_workers))[0]
