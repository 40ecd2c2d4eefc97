"""LoL's hyper-parameters with the paper's defaults (../shared/papers/lol.txt, §4.2-4.5)."""
from __future__ import annotations

from dataclasses import dataclass

from aigid.data.layouts import SUBSET_IDS
from aigid.methods.config import FlatConfig
from aigid.metrics import PaperTestSets

# Table 1 and Figs. 4-5: every model is tested on GenImage's eight subsets.
TEST_SETS = PaperTestSets({"genimage": SUBSET_IDS}, source="LoL Table 1, Figs. 4-5: GenImage's 8 subsets")
CHOICES = {  # where the paper is silent (aigid.methods.spec.MethodSpec.choices)
    "ACC threshold": "P(fake) >= 0.5 (§4.3 follows DIRE and LaRE², whose ACC is at 0.5)",
    "AP positive class": "the generated images (label 1), ranked by P(fake), as DIRE's average_precision_score",
    "aspect-ratio draw": "r_aspect ~ U(low, high) on a linear scale, like r_mask (§4.5.3: 'randomly selected "
                         "within a specified range')",
}


def _check_range(name: str, value, low: float, high: float | None) -> tuple[float, float]:
    """A (low, high) pair inside [low, high] with low <= high, else a ValueError naming the field."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    upper = "inf" if high is None else high
    if a > b or a < low or (high is not None and b > high):
        raise ValueError(f"{name}={value!r} is not a range within [{low}, {upper}] with low <= high")
    return a, b


@dataclass
class LoLConfig(FlatConfig):
    """LoL hyper-parameters; defaults are the paper's. A Ray trial config is a flat dict of overrides."""

    backbone: str = "RN50"  # §4.2: CLIP-RN50 (RN101, ViT-L-14 in Table 2)
    pretrained: str | None = "openai"  # §4.2: pretrained CLIP weights
    # Table 3: the best cell is mask (0.6, 0.8) x aspect (0.33, 3.0); §4.5.3 draws both uniformly
    mask_ratio: tuple[float, float] = (0.6, 0.8)
    aspect_ratio: tuple[float, float] = (0.33, 3.0)
    lr: float = 5e-6  # §4.2 (BIGGAN_LR when training on BigGAN)
    beta1: float = 0.9  # §4.2: Adam betas (0.9, 0.999)
    beta2: float = 0.999
    batch_size: int = 4  # §4.2
    epochs: int = 20  # §4.2
    crop: int = 224  # §4.2: random crop 224 in training, centre crop at test time
    flip: bool = True  # §4.2: horizontal flipping
    rotate: bool = True  # §4.2: "rotation" (angle unstated; we rotate by multiples of 90°, lossless)
    train_subset: str = "sdv14"  # §4.5: ablations train on SD v1.4
    train_volume: int | None = 3200  # §4.4: 1,600 real + 1,600 generated images; None = all
    test_subsets: tuple[str, ...] | None = None  # None = every subset of the test split
    test_limit: int | None = None  # per test subset, for quick looks; None = all (the paper's)
    # Each training image is perturbed as drawn for (perturb_seed, its path), the same in every epoch.
    train_perturb: str = "none"  # Table A4 (App. A.2): applied "independently on the training and test sets"
    eval_every_steps: int = 0  # §3.2.1/Fig. 2: every 400 training steps (sweeps/lol_fig2.py); 0 = at epoch ends only
    stability_epochs: int = 5  # §4.3/Table 2: mean ± std over the final five epochs
    seed: int = 0

    def __post_init__(self):
        self.mask_ratio = _check_range("mask_ratio", self.mask_ratio, 0.0, 1.0)
        self.aspect_ratio = _check_range("aspect_ratio", self.aspect_ratio, 0.0, None)
        if self.aspect_ratio[0] <= 0:
            raise ValueError(f"aspect_ratio={self.aspect_ratio!r} must be > 0 (height / width of the mask)")
        for name in ("lr", "batch_size", "epochs", "crop", "stability_epochs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("train_volume", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None (all images), got {value!r}")
        if self.eval_every_steps < 0:
            raise ValueError(f"eval_every_steps must be >= 0, got {self.eval_every_steps!r}")
        if self.pretrained in ("", "none", "None"):
            self.pretrained = None
        if self.test_subsets is not None:
            self.test_subsets = tuple(self.test_subsets)


# §4.2: "Images that did not meet the minimum crop requirements were expanded by stitching repeated
# content": an image smaller than the crop is tiled (aigid.data.transforms), in training and testing.
SMALL_IMAGES = "tile"

# §4.2: "For the BigGAN training process, a lower learning rate of 5e-7 was used to ensure stability"
# (Fig. 4-5 train on each subset: sweeps/lol_cross_generator.py).
BIGGAN_LR = 5e-7

# The synthetic stand-in is a few hundred images and a tiny random-init CLIP-shaped ResNet:
# the paper's lr 5e-6 and batch 4 would barely move it in a few epochs.
OFFLINE_OVERRIDES = {"backbone": "aigid-tiny-rn", "pretrained": None, "train_volume": None,
                     "epochs": 10, "lr": 3e-4, "batch_size": 8}
SMOKE_OVERRIDES = {"epochs": 2, "test_limit": 8}
