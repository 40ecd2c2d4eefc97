"""Learning on Less (LoL): fine-tune a pretrained CLIP image encoder on randomly masked inputs.

Paper: ../shared/papers/lol.txt. §3.3.1 (Algorithm 1) draws a rectangle per image and zeroes
it; §3.3.2 (eq. 8) applies the mask to the normalised tensor on all three channels, in
training only; §4.2 gives the recipe (CLIP-RN50, Adam (0.9, 0.999), lr 5e-6, batch 4,
20 epochs, random crop 224 with tiling of small images, flip and rotation; centre crop at
test time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from aigid.backbones import create_image_encoder
from aigid.data.datasets import make_loader
from aigid.data.decoded import DecodedImages
from aigid.data.layouts import DatasetIndex
from aigid.data.subsets import test_subsets, training_subset
from aigid.data.transforms import test_transform, train_transform
from aigid.methods.config import FlatConfig
from aigid.metrics import binary_metrics, mean_std, per_subset_summary


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
    lr: float = 5e-6  # §4.2 (5e-7 for BigGAN training)
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
    eval_every_steps: int = 0  # Fig. 2 evaluates every 400 steps; 0 = once per epoch only
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


# The synthetic stand-in is a few hundred images and a tiny random-init CLIP-shaped ResNet:
# the paper's lr 5e-6 and batch 4 would barely move it in a few epochs.
OFFLINE_OVERRIDES = {"backbone": "aigid-tiny-rn", "pretrained": None, "train_volume": None,
                     "epochs": 10, "lr": 3e-4, "batch_size": 8}
SMOKE_OVERRIDES = {"epochs": 2, "test_limit": 8}


def random_masks(
    batch: int,
    height: int,
    width: int,
    mask_ratio: tuple[float, float],
    aspect_ratio: tuple[float, float],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Algorithm 1 for a whole batch at once: a (B, 1, H, W) mask of ones with one zero rectangle each.

    Per image: r_mask ~ U(mask_ratio), r_aspect ~ U(aspect_ratio), S = H·W·r_mask,
    H_sel = round(min(H, sqrt(S·r_aspect))), W_sel = round(min(W, S / H_sel)), and the
    upper-left corner uniform over the positions where the rectangle fits (randint is
    inclusive, as in the algorithm). Line 13 of the printed algorithm reads sqrt(S / H_sel),
    which is not a length and would cover far less than r_mask of the image, contradicting
    §3.3.1 ("a specified proportion S_select = H × W × r_mask"); we use S / H_sel so the
    rectangle covers r_mask of the image with aspect H_sel / W_sel = r_aspect.
    """
    def uniform(bounds):
        low, high = bounds
        return low + (high - low) * torch.rand(batch, generator=generator, device=device)

    area = height * width * uniform(mask_ratio)
    rect_h = torch.sqrt(area * uniform(aspect_ratio)).clamp(max=height).round()
    rect_w = torch.where(rect_h > 0, area / rect_h.clamp(min=1), torch.zeros_like(area)).clamp(max=width).round()
    top = (torch.rand(batch, generator=generator, device=device) * (height - rect_h + 1)).floor()
    left = (torch.rand(batch, generator=generator, device=device) * (width - rect_w + 1)).floor()
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = (
        (rows >= top.view(-1, 1, 1)) & (rows < (top + rect_h).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1)) & (cols < (left + rect_w).view(-1, 1, 1))
    )
    return (~inside).unsqueeze(1).float()


class LoLDetector(nn.Module):
    """CLIP image encoder + a linear binary head; the whole network is fine-tuned (§3.2)."""

    def __init__(self, backbone: str, pretrained: str | None):
        super().__init__()
        self.encoder, self.info = create_image_encoder(backbone, pretrained)
        self.head = nn.Linear(self.info.embed_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B,) that the image is fake."""
        return self.head(self.encoder(images)).squeeze(1)


class LoLTrainer:
    """One LoL training run: masked fine-tuning, per-epoch evaluation on every test subset.

    `run()` yields a flat metrics dict after each evaluation; `state_dict()` between two
    yields is a complete checkpoint (model, optimiser, RNG, history), so a run restored
    from it continues exactly where it stopped.
    """

    def __init__(self, config: LoLConfig, index: DatasetIndex, *, device="cpu", num_workers: int = 0,
                 test_images: DecodedImages | None = None):
        self.config = config
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.model = LoLDetector(config.backbone, config.pretrained).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.mask_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        mean, std = self.model.info.mean, self.model.info.std
        self.train_samples = select_training_samples(index, config)
        self.train_loader = make_loader(
            self.train_samples, train_transform(config.crop, flip=config.flip, rotate=config.rotate, mean=mean, std=std),
            config.batch_size, shuffle=True, num_workers=num_workers, seed=config.seed, drop_last=False,
        )
        tests = select_test_samples(index, config)
        self.eval_batch = max(config.batch_size, 32)
        self.test_loaders, self.decoded_tests = {}, {}
        if test_images is not None and test_images.crop == config.crop and test_images.available():
            self.test_images, ok, row_of = test_images.open()  # decoded once for the sweep
            for subset, samples in tests.items():
                rows = np.fromiter((row_of[s.path] for s in samples), dtype=np.int64, count=len(samples))
                keep = ok[rows]
                labels = np.array([s.label for s in samples], dtype=np.float32)[keep]
                self.decoded_tests[subset] = (rows[keep], labels, int((~keep).sum()))
            self.pixel_mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
            self.pixel_std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        else:
            self.test_loaders = {
                subset: make_loader(samples, test_transform(config.crop, mean=mean, std=std), self.eval_batch,
                                    shuffle=False, num_workers=num_workers)
                for subset, samples in tests.items()
            }
        self.epoch = 0
        self.step = 0
        self.skipped_files = 0
        self.history: list[dict] = []

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One masked optimisation step (eq. 8): X_input = M ∘ X_tensor, BCE on the logit."""
        self.model.train()
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        masks = random_masks(images.shape[0], images.shape[2], images.shape[3], self.config.mask_ratio,
                             self.config.aspect_ratio, generator=self.mask_generator, device=self.device)
        loss = self.loss_fn(self.model(images * masks), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"LoL training loss is {loss.item()} at epoch {self.epoch + 1}, step "
                                     f"{self.step + 1}: lower lr (now {self.config.lr}) or check the input images")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item()

    def _decoded_scores(self, rows: np.ndarray) -> torch.Tensor:
        """Scores of pre-decoded uint8 crops, normalised on the device as test_transform would."""
        scores = []
        for i in range(0, len(rows), self.eval_batch):
            pixels = torch.from_numpy(self.test_images[rows[i:i + self.eval_batch]]).to(self.device, non_blocking=True)
            images = (pixels.float() / 255 - self.pixel_mean) / self.pixel_std
            scores.append(torch.sigmoid(self.model(images)).float().cpu())
        return torch.cat(scores) if scores else torch.empty(0)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Unmasked centre-crop predictions on every test subset -> `test/<subset>/<metric>` + means."""
        self.model.eval()
        per_subset = {}
        for subset, (rows, labels, skipped) in self.decoded_tests.items():
            self.skipped_files += skipped
            if len(rows):
                per_subset[subset] = binary_metrics(self._decoded_scores(rows).numpy(), labels)
        for subset, loader in self.test_loaders.items():
            scores, labels = [], []
            for images, batch_labels, n_skipped in loader:
                self.skipped_files += n_skipped
                if len(batch_labels):
                    scores.append(torch.sigmoid(self.model(images.to(self.device))).float().cpu())
                    labels.append(batch_labels)
            if labels:
                per_subset[subset] = binary_metrics(torch.cat(scores).numpy(), torch.cat(labels).numpy())
        return per_subset_summary(per_subset)

    def run(self) -> Iterator[dict]:
        """Train from the current epoch to `config.epochs`, yielding metrics after each evaluation."""
        config = self.config
        while self.epoch < config.epochs:
            torch.manual_seed(config.seed * 100_003 + self.epoch)  # augmentation RNG, reproducible on resume
            self.train_loader.generator.manual_seed(config.seed * 100_003 + self.epoch)
            losses = []
            for images, labels, n_skipped in self.train_loader:
                self.skipped_files += n_skipped
                if len(labels) == 0:
                    continue
                losses.append(self.train_step(images, labels))
                if config.eval_every_steps and self.step % config.eval_every_steps == 0:
                    yield self._record(self.evaluate(), losses, epoch_end=False)
            self.epoch += 1
            yield self._record(self.evaluate(), losses, epoch_end=True)

    def _record(self, metrics: dict, losses: list[float], *, epoch_end: bool) -> dict:
        report = {"epoch": self.epoch, "step": self.step, "epoch_end": epoch_end,
                  "train/loss": float(sum(losses) / len(losses)) if losses else float("nan"),
                  "data/skipped_files": self.skipped_files, **metrics}
        if epoch_end:
            self.history.append({"epoch": self.epoch, "acc": metrics.get("test/mean/acc", math.nan),
                                 "ap": metrics.get("test/mean/ap", math.nan)})
            last = self.history[-self.config.stability_epochs:]
            for key in ("acc", "ap"):
                mean, std = mean_std([h[key] for h in last])
                report[f"stability/{key}_mean"], report[f"stability/{key}_std"] = mean, std
        return report

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "mask_generator": self.mask_generator.get_state(), "epoch": self.epoch, "step": self.step,
            "skipped_files": self.skipped_files, "history": self.history, "config": self.config.to_flat(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["config"] != self.config.to_flat():
            raise ValueError("checkpoint was written by a run with a different LoL config; refusing to mix them")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.mask_generator.set_state(state["mask_generator"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.skipped_files, self.history = state["skipped_files"], state["history"]


def select_training_samples(index: DatasetIndex, config: LoLConfig):
    """The training subset's images, subsampled (balanced, nested, seeded) to `train_volume`."""
    return training_subset(index, config.train_subset, config.train_volume, config.seed)


def select_test_samples(index: DatasetIndex, config: LoLConfig) -> dict:
    """Test images per subset: every subset of the test split unless `test_subsets` names some."""
    return test_subsets(index, config.test_subsets, config.test_limit)


def check_data(config: LoLConfig, index: DatasetIndex) -> None:
    """Fail before any training when the training subset, its volume or a test subset is missing."""
    select_training_samples(index, config)
    select_test_samples(index, config)
