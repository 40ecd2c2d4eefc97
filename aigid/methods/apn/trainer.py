"""APN's training loop (eq. 9 with the CLUB alternation of §4.2.2, ../shared/papers/apn.txt)."""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

import torch
from torch import nn

from aigid.data.datasets import make_loader
from aigid.data.layouts import DatasetIndex
from aigid.data.transforms import train_transform
from aigid.methods.apn.club import CLUB
from aigid.methods.apn.config import IMAGENET_MEAN, IMAGENET_STD, SMALL_IMAGES, APNConfig
from aigid.methods.apn.evaluation import TestImages, score
from aigid.methods.apn.model import ABLATIONS, APN
from aigid.methods.apn.samples import select_training_samples
from aigid.methods.device import Throughput, autocast, place


class APNTrainer:
    """One APN run: per step, q_steps q_θ updates (APN frozen) then one APN update (q_θ frozen).

    `run()` yields a flat metrics dict after each epoch; `state_dict()` between two yields is
    a complete checkpoint. `shared["test_index"]` is the DF index of `config.test_root` when the
    caller scanned it already (a sweep does, once before its trials).
    """

    def __init__(self, config: APNConfig, index: DatasetIndex, shared: Mapping | None = None, *,
                 device="cpu", num_workers: int = 0):
        config.require_resolved()
        self.config = config
        test_index = (shared or {}).get("test_index")
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.parts = ABLATIONS[config.ablation]
        self.model, self.memory_format = place(APN(config, self.parts), self.device)
        bases = self.model.basis_parameters()
        others = [p for p in self.model.parameters() if all(p is not b for b in bases)]
        groups = [{"params": others, "lr": config.lr}] + ([{"params": bases, "lr": config.basis_lr}] if bases else [])
        self.optimizer = torch.optim.Adam(groups)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.lr_step, config.lr_gamma)
        self.club = CLUB(config.feature_dim, config.q_hidden).to(self.device) if self.parts.mutual_information else None
        if self.club is not None:
            self.q_optimizer = torch.optim.Adam(self.club.parameters(), lr=config.q_lr)
            self.q_scheduler = torch.optim.lr_scheduler.StepLR(self.q_optimizer, config.q_lr_step, config.lr_gamma)
        self.loss_fn = nn.BCEWithLogitsLoss()
        train = select_training_samples(index, config)
        augment = train_transform(config.crop, small=SMALL_IMAGES, flip=False, rotate=False, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.train_loader = make_loader(train, augment, config.batch_size, shuffle=True,
                                        num_workers=num_workers, seed=config.seed)
        self.q_loader = make_loader(train, augment, config.q_batch_size, shuffle=True,
                                    num_workers=num_workers, seed=config.seed + 1)
        self.tests = TestImages(config, index, test_index, num_workers=num_workers)
        self.epoch = self.step = self.q_step = self.skipped_files = 0

    def _q_batches(self) -> Iterator[torch.Tensor]:
        """q_θ's own endless stream of training images, reshuffled each pass, seeded by epoch."""
        passes = 0
        while True:
            self.q_loader.generator.manual_seed(self.config.seed * 1_000_003 + self.epoch * 1_009 + passes)
            for images, labels, n_skipped in self.q_loader:
                self.skipped_files += n_skipped
                if len(labels):
                    yield images
            passes += 1

    @contextlib.contextmanager
    def _buffers_kept(self):
        """Restore the APN's buffers (BatchNorm running statistics) on exit, unless `q_updates_bn`."""
        saved = None if self.config.q_updates_bn else [buffer.clone() for buffer in self.model.buffers()]
        try:
            yield
        finally:
            if saved is not None:
                with torch.no_grad():
                    for buffer, value in zip(self.model.buffers(), saved):
                        buffer.copy_(value)

    def q_step_once(self, images: torch.Tensor) -> float:
        """One eq. 8 update of q_θ on features of the frozen APN (no gradient reaches it, §4.2.2).

        The features come from train mode (BatchNorm on batch statistics), the mode in which
        eq. 9's L_mi then scores them: q_θ must fit the distribution it is scored on, else
        L_mi is no upper bound and the APN step drives it far below zero. (Eval-mode features,
        on running statistics that lag behind early in training, made exactly that happen.)
        Whether these passes also update the running statistics, as any train-mode pass does,
        the paper does not say: `q_updates_bn` (True: they do; False: they are restored).
        """
        self.model.train()
        with torch.no_grad(), autocast(self.device), self._buffers_kept():
            out = self.model(images.to(self.device, non_blocking=True, memory_format=self.memory_format))
        loss = self.club.learning_loss(out.related.float(), out.irrelevant.float())
        self.q_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.q_optimizer.step()
        self.q_scheduler.step()
        self.q_step += 1
        return loss.item()

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, q_batches: Iterator[torch.Tensor]) -> dict:
        """q_steps q_θ updates, then one APN update on eq. 9 with q_θ frozen; the loss terms."""
        terms = {}
        if self.club is not None:
            terms["q_loss"] = sum(self.q_step_once(next(q_batches)) for _ in range(self.config.q_steps)) / self.config.q_steps
        self.model.train()
        images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        labels = labels.to(self.device, non_blocking=True)
        with autocast(self.device):
            out = self.model(images)
        terms.update(ce=self.loss_fn(out.logits.float(), labels), band=out.band, basis=out.basis, align=out.align)
        if self.club is not None:
            self.club.requires_grad_(False)
            terms["mi"] = self.club.upper_bound(out.related, out.irrelevant)
        loss = sum(v for k, v in terms.items() if k != "q_loss")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        if self.club is not None:
            self.club.requires_grad_(True)
        self.step += 1
        return {"loss": loss.item(), **{k: v.item() if torch.is_tensor(v) else v for k, v in terms.items()}}

    def evaluate(self) -> dict[str, float]:
        """Centre-crop predictions on every test subset -> `<prefix>/<subset>/<metric>` + the paper's mean per prefix."""
        metrics, skipped = score(self.model, self.tests, self.device)
        self.skipped_files += skipped
        return metrics

    def run(self) -> Iterator[dict]:
        """Train from the current epoch to the configured number, yielding metrics after each epoch."""
        while self.epoch < self.config.epochs:
            torch.manual_seed(self.config.seed * 100_003 + self.epoch)  # crop RNG, reproducible on resume
            self.train_loader.generator.manual_seed(self.config.seed * 100_003 + self.epoch)
            q_batches = self._q_batches()
            sums, count, throughput = {}, 0, Throughput()
            for images, labels, n_skipped in self.train_loader:
                self.skipped_files += n_skipped
                if len(labels) == 0:
                    continue
                for key, value in self.train_step(images, labels, q_batches).items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
                throughput.add(len(labels))
            self.epoch += 1
            yield {"epoch": self.epoch, "step": self.step, "epoch_end": True,
                   **{f"train/{k}": v / max(count, 1) for k, v in sums.items()}, **throughput.report(),
                   "data/skipped_files": self.skipped_files, **self.evaluate()}

    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "step": self.step,
                 "q_step": self.q_step, "skipped_files": self.skipped_files, "config": self.config.to_flat()}
        if self.club is not None:
            state.update(club=self.club.state_dict(), q_optimizer=self.q_optimizer.state_dict(),
                         q_scheduler=self.q_scheduler.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        self.config.check_checkpoint(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.club is not None:
            self.club.load_state_dict(state["club"])
            self.q_optimizer.load_state_dict(state["q_optimizer"])
            self.q_scheduler.load_state_dict(state["q_scheduler"])
        self.epoch, self.step, self.q_step = state["epoch"], state["step"], state["q_step"]
        self.skipped_files = state["skipped_files"]
