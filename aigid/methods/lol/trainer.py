"""LoL's training loop: masked fine-tuning (eq. 8) and per-epoch evaluation on every test subset (§4.2-4.3)."""
from __future__ import annotations

import math
from typing import Iterator, Mapping

import torch
from torch import nn

from aigid.data.datasets import make_loader
from aigid.data.layouts import DatasetIndex
from aigid.data.subsets import fitting_volumes, training_subset
from aigid.data.transforms import train_transform
from aigid.errors import UserError
from aigid.methods.device import Throughput, autocast, place
from aigid.methods.lol.config import SMALL_IMAGES, LoLConfig
from aigid.methods.lol.evaluation import TestImages, entry_key, score, select_test_samples
from aigid.methods.lol.model import LoLDetector, random_masks
from aigid.metrics import mean_std


class LoLTrainer:
    """One LoL training run: masked fine-tuning, per-epoch evaluation on every test subset.

    `run()` yields a flat metrics dict after each evaluation; `state_dict()` between two
    yields is a complete checkpoint (model, optimiser, RNG, history), so a run restored
    from it continues exactly where it stopped.
    """

    def __init__(self, config: LoLConfig, index: DatasetIndex, shared: Mapping | None = None, *, device="cpu",
                 num_workers: int = 0):
        test_images = (shared or {}).get("test_images", {}).get(entry_key(config))  # decoded once for the sweep
        self.config = config
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.model, self.memory_format = place(LoLDetector(config.backbone, config.pretrained), self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.mask_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        mean, std = self.model.info.mean, self.model.info.std
        self.train_samples = select_training_samples(index, config)
        self.train_loader = make_loader(  # Table A4: the same perturbed image every epoch, drawn per path
            self.train_samples, train_transform(config.crop, small=SMALL_IMAGES, flip=config.flip, rotate=config.rotate, mean=mean, std=std),
            config.batch_size, shuffle=True, num_workers=num_workers, seed=config.seed, drop_last=False,
            perturb=config.train_perturb, perturb_seed=config.perturb_seed, root=str(index.root),
        )
        self.tests = TestImages(config, index, test_images, self.model, device=self.device, num_workers=num_workers)
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
        with autocast(self.device):
            logits = self.model((images * masks).to(memory_format=self.memory_format))
        loss = self.loss_fn(logits.float(), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"LoL training loss is {loss.item()} at epoch {self.epoch + 1}, step "
                                     f"{self.step + 1}: lower lr (now {self.config.lr}) or check the input images")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return loss.item()

    def evaluate(self) -> dict[str, float]:
        """Unmasked centre-crop predictions on every test subset -> `test/<subset>/<metric>` + means."""
        metrics, skipped = score(self.model, self.tests)
        self.skipped_files += skipped
        return metrics

    def run(self) -> Iterator[dict]:
        """Train from the current epoch to `config.epochs`, yielding metrics after each evaluation."""
        config = self.config
        while self.epoch < config.epochs:
            torch.manual_seed(config.seed * 100_003 + self.epoch)  # augmentation RNG, reproducible on resume
            self.train_loader.generator.manual_seed(config.seed * 100_003 + self.epoch)
            losses, throughput = [], Throughput()
            last_batch = len(self.train_loader) - 1
            for batch, (images, labels, n_skipped) in enumerate(self.train_loader):
                self.skipped_files += n_skipped
                if len(labels) == 0:
                    continue
                losses.append(self.train_step(images, labels))
                throughput.add(len(labels))
                # Fig. 2: every `eval_every_steps` steps; on an epoch's last step the epoch end evaluates
                if config.eval_every_steps and self.step % config.eval_every_steps == 0 and batch < last_batch:
                    with throughput.paused():
                        yield self._record(self.evaluate(), losses, epoch_end=False)
            self.epoch += 1
            rate = throughput.report()  # before the evaluation, which it leaves out
            yield {**self._record(self.evaluate(), losses, epoch_end=True), **rate}

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
        self.config.check_checkpoint(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.mask_generator.set_state(state["mask_generator"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.skipped_files, self.history = state["skipped_files"], state["history"]


def select_training_samples(index: DatasetIndex, config: LoLConfig):
    """The training subset's images, subsampled (balanced, nested, seeded) to `train_volume`."""
    return training_subset(index, config.train_subset, config.train_volume, config.seed)


def keep_fitting_volumes(points, index):
    """A sweep's `prune` (Table 2, Table A4): drop the points whose volume is larger than the training subset
    (all of it is what the largest uses)."""
    config = LoLConfig.from_flat({**points[0], "train_volume": None})
    volumes = sorted({p["train_volume"] for p in points})
    kept, dropped = fitting_volumes(volumes, select_training_samples(index, config))
    if not kept:
        raise UserError(f"no volume of {volumes} fits the training subset '{config.train_subset}'")
    note = f"dropped volumes {dropped}: the training subset is smaller" if dropped else ""
    return [p for p in points if p["train_volume"] in kept], note


def check_data(config: LoLConfig, index: DatasetIndex) -> None:
    """Fail before any training when the training subset, its volume or a test subset is missing."""
    select_training_samples(index, config)
    select_test_samples(index, config)
