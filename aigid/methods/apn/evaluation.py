"""APN's testing, one code for the trainer's evaluations and for `aigid eval` (the spec's evaluate), so both
report the same numbers by construction: centre crops (§4.2.2) of every test subset, each image first
perturbed by `test_perturb`, scored by P(fake)."""
from __future__ import annotations

import dataclasses

import torch

from aigid.data.datasets import make_loader
from aigid.data.layouts import DatasetIndex
from aigid.data.transforms import test_transform
from aigid.methods.apn.config import IMAGENET_MEAN, IMAGENET_STD, SMALL_IMAGES, TEST_SETS, APNConfig
from aigid.methods.apn.model import ABLATIONS, APN
from aigid.methods.apn.samples import select_all_tests
from aigid.methods.device import autocast, memory_format, place
from aigid.methods.released import load_whole
from aigid.metrics import binary_metrics, per_subset_summary


class TestImages:
    """One config's test loaders per (metric prefix, subset), each image perturbed as drawn for its path
    relative to its own dataset's root, and the subsets each prefix's mean covers."""

    def __init__(self, config: APNConfig, index: DatasetIndex, test_index: DatasetIndex | None, *, num_workers: int = 0):
        centre = test_transform(config.crop, small=SMALL_IMAGES, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        tests = select_all_tests(index, config, test_index)
        self.loaders = {
            (prefix, subset): make_loader(samples, centre, max(config.batch_size, 32), shuffle=False, num_workers=num_workers,
                                          perturb=config.test_perturb, perturb_seed=config.perturb_seed, root=str(data.root))
            for prefix, (data, per_subset) in tests.items()
            for subset, samples in per_subset.items()
        }
        self.averaged = {prefix: TEST_SETS.averaged(data.layout, per_subset) for prefix, (data, per_subset) in tests.items()}


@torch.no_grad()
def score(model: APN, tests: TestImages, device: torch.device) -> tuple[dict[str, float], int]:
    """(`<prefix>/<subset>/<metric>` + the paper's mean per prefix, unreadable files skipped)."""
    model.eval()
    layout = memory_format(model, device)
    per_prefix: dict[str, dict] = {}
    skipped = 0
    for (prefix, subset), loader in tests.loaders.items():
        scores, labels = [], []
        for images, batch_labels, n_skipped in loader:
            skipped += n_skipped
            if len(batch_labels):
                with autocast(device):
                    logits = model(images.to(device, memory_format=layout)).logits
                scores.append(torch.sigmoid(logits.float()).cpu())
                labels.append(batch_labels)
        if labels:
            per_prefix.setdefault(prefix, {})[subset] = binary_metrics(torch.cat(scores).numpy(), torch.cat(labels).numpy())
    metrics = {k: v for prefix, subsets in per_prefix.items()
               for k, v in per_subset_summary(subsets, prefix, tests.averaged[prefix]).items()}
    return metrics, skipped


def load_model(config: APNConfig, state: dict, device: torch.device) -> APN:
    """The APN of a trainer's `state`, loaded whole: a ConfigError names the first key missing or misshapen."""
    bare = dataclasses.replace(config, freq_weights=None, spatial_weights=None, spectrum_weights=None)
    model = APN(bare, ABLATIONS[config.ablation])  # architecture only: every weight comes from `state`
    weights = state.get("model", {})
    load_whole(model, weights, "the checkpoint", f"APN ({config.ablation})")
    return place(model, device)[0]


def evaluate(config: APNConfig, state: dict, index: DatasetIndex, context) -> dict[str, float]:
    """MethodSpec.evaluate: a trained APN on `config`'s test images (and `test_root`'s, when set)."""
    device = torch.device(context.device)
    config.require_resolved()
    model = load_model(config, state, device)
    return score(model, TestImages(config, index, None, num_workers=context.num_workers), device)[0]
