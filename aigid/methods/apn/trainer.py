"""APN's configuration, training loop (eq. 9 with the CLUB alternation of §4.2.2) and data checks.

Paper: ../shared/papers/apn.txt. Per-dataset defaults (§4.1.3, §4.2): GenImage trains on
SD v1.4 with K = 15 for 10 epochs; DiffusionForensics (DF) trains on ADM with K = 5 for
40 epochs and is evaluated on its LSUN-Bedroom scene. Fields left None take them from the
layout of the dataset the trainer is given.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from aigid.data.datasets import make_loader
from aigid.data.layouts import DatasetIndex, DataError, scan
from aigid.data.subsets import test_subsets, training_subset
from aigid.data.synthetic import ensure_synthetic
from aigid.data.transforms import test_transform, train_transform
from aigid.methods.apn.backbones import BUILDERS
from aigid.methods.apn.club import CLUB
from aigid.methods.apn.model import ABLATIONS, APN
from aigid.methods.config import FlatConfig
from aigid.metrics import binary_metrics, per_subset_summary

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's backbones
DATASET_DEFAULTS = {
    "genimage": {"train_subset": "sdv14", "num_proposals": 15, "epochs": 10},  # §4.1.3, §4.2.1-2
    "diffusionforensics": {"train_subset": "adm", "num_proposals": 5, "epochs": 40, "test_scene": "lsun_bedroom"},
}
SYNTHETIC_TEST_ROOT = "synthetic"  # test_root value: the synthetic DF stand-in beside a synthetic training set
# GenImage generator -> its folder names in DF (§4.1.3 / Table 3: SD v1, ADM, Midjourney); DF's
# release calls its SD v1 folder sdv1_new in some versions.
DF_NAMES = {"sdv14": ("sdv1", "sdv1_new"), "sdv15": ("sdv1", "sdv1_new"), "adm": ("adm",),
            "midjourney": ("midjourney",), "vqdm": ("vqdm",)}


@dataclass
class APNConfig(FlatConfig):
    """APN hyper-parameters; defaults are the paper's. A Ray trial config is a flat dict of overrides."""

    num_proposals: int | None = None  # §4.2.1: K = 15 (GenImage), 5 (DF); None = by dataset
    feature_dim: int = 256  # §4.2.1: C; m_r = m_ir = C / 2 = 128 basis vectors
    attention_heads: int = 8  # §4.2.1
    freq_backbone: str = "resnet18"  # §4.2.1: ResNet-18 for related and for irrelevant images
    freq_weights: str | None = None  # a local torchvision checkpoint for both; None = random init
    spatial_backbone: str = "swin_t"  # §4.2.1: Swin-T
    spatial_weights: str | None = None
    spectrum_backbone: str = "resnet50"  # §4.6, Table 4(a) line 5 only: ResNet-50 on the spectra
    spectrum_weights: str | None = None
    extractor_channels: int = 16  # paper silent: width of the proposal heads' residual convolutions
    extractor_blocks: int = 2  # paper silent: "several residual convolutions"
    ofp_channels: int = 8  # paper silent: output channels of One-sided Feature Pooling
    mask_temperature: float = 0.01  # ours: sigmoid edge width of the mask relaxation (~1 bin at 224)
    band_epsilon: float = 0.01  # §4.2.2: ε of eq. 10
    ablation: str = "full"  # Table 4(a): one of ABLATIONS
    lr: float = 1e-4  # §4.2.2: Adam
    basis_lr: float = 1e-7  # §4.2.2: Ω^r and Ω^ir
    lr_step: int = 20_000  # §4.2.2: ×0.1 every 20,000 iterations
    q_lr: float = 1e-4  # §4.2.2: q_θ's Adam
    q_lr_step: int = 60_000  # §4.2.2: ×0.1 every 60,000 iterations
    lr_gamma: float = 0.1  # §4.2.2
    q_steps: int = 3  # §4.2.2: q_θ is trained three times per APN step
    q_hidden: int = 256  # paper silent: hidden width of q_θ's two FC networks
    q_updates_bn: bool = True  # paper silent: q_θ's forward passes (train mode) also update APN's BN running stats
    batch_size: int = 32  # §4.2.2
    q_batch_size: int = 32  # §4.2.2: 32 other images per q_θ batch
    epochs: int | None = None  # §4.2.2: 10 (GenImage), 40 (DF); None = by dataset
    crop: int = 224  # §4.2.2: random crop in training, centre crop in testing, no other augmentation
    train_subset: str | None = None  # §4.1.3: sdv14 (GenImage), adm (DF); None = by dataset
    train_volume: int | None = None  # None = the whole training subset (the paper's)
    test_subsets: tuple[str, ...] | None = None  # None = every subset of the test split (of test_scene on DF)
    test_scene: str | None = None  # DF scene to test on; None = lsun_bedroom on DF (§4.1.1)
    test_limit: int | None = None  # per test subset, for quick looks; None = all
    test_in_domain_only: bool = False  # Table 3: test the training dataset on the training subset only
    test_root: str | None = None  # Table 3: a DF root also tested, on train_subset's generator; "synthetic" = stand-in
    proposal_chunk: int = 0  # proposals per backbone pass: 0 = all K folded into the batch, 1 = a loop
    seed: int = 0

    def __post_init__(self):
        if self.num_proposals is not None and self.num_proposals < 1:
            raise ValueError(f"num_proposals (K) must be >= 1, got {self.num_proposals!r}")
        if self.feature_dim < 4 or self.feature_dim % 2:
            raise ValueError(f"feature_dim (C) must be an even number >= 4 (m_r = m_ir = C/2), got {self.feature_dim!r}")
        if self.attention_heads < 1 or self.feature_dim % self.attention_heads:
            raise ValueError(f"attention_heads must be >= 1 and divide feature_dim={self.feature_dim}, "
                             f"got {self.attention_heads!r}")
        if self.ablation not in ABLATIONS:
            raise ValueError(f"ablation must be one of {list(ABLATIONS)}, got {self.ablation!r}")
        for name in ("freq_backbone", "spatial_backbone", "spectrum_backbone"):
            if getattr(self, name) not in BUILDERS:
                raise ValueError(f"{name} must be one of {list(BUILDERS)}, got {getattr(self, name)!r}")
        for name in ("freq_weights", "spatial_weights", "spectrum_weights"):
            value = getattr(self, name)
            if value in ("", "none", "None"):
                setattr(self, name, None)
            elif value is not None and not Path(value).expanduser().is_file():
                raise ValueError(f"{name}={value!r} is not a file; pass a local torchvision checkpoint or none")
        for name in ("extractor_channels", "ofp_channels", "q_hidden", "lr", "basis_lr", "q_lr", "lr_step",
                     "q_lr_step", "q_steps", "batch_size", "q_batch_size", "mask_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.crop < 16:
            raise ValueError(f"crop must be >= 16 pixels, got {self.crop!r}")
        if not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr_gamma must be in (0, 1], got {self.lr_gamma!r}")
        for name in ("extractor_blocks", "proposal_chunk", "band_epsilon"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("epochs", "train_volume", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value!r}")
        for name in ("q_updates_bn", "test_in_domain_only"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.test_subsets is not None:
            self.test_subsets = tuple(self.test_subsets)

    def for_layout(self, layout: str) -> "APNConfig":
        """This config with the fields left None filled with the dataset's paper defaults."""
        defaults = DATASET_DEFAULTS.get(layout, DATASET_DEFAULTS["genimage"])
        return dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})


# The synthetic stand-in is a few hundred images: tiny torchvision-family backbones at a 64 px
# crop, and a learning rate that moves random-init weights within a few epochs (48 training
# images, 6 steps an epoch: 3 epochs left the classifier and the BN running stats unsettled).
OFFLINE_OVERRIDES = {"freq_backbone": "tiny-resnet", "spatial_backbone": "tiny-swin", "spectrum_backbone": "tiny-resnet",
                     "crop": 64, "feature_dim": 64, "q_hidden": 64, "batch_size": 8, "q_batch_size": 8,
                     "epochs": 5, "lr": 1e-3, "basis_lr": 1e-5, "q_lr": 1e-3}
SMOKE_OVERRIDES = {"epochs": 1}


class APNTrainer:
    """One APN run: per step, q_steps q_θ updates (APN frozen) then one APN update (q_θ frozen).

    `run()` yields a flat metrics dict after each epoch; `state_dict()` between two yields is
    a complete checkpoint. `test_index` is the DF index of `config.test_root` when the caller
    scanned it already (a sweep does, once on the driver).
    """

    def __init__(self, config: APNConfig, index: DatasetIndex, *, test_index: DatasetIndex | None = None,
                 device="cpu", num_workers: int = 0):
        self.config = config
        self.setup = setup = config.for_layout(index.layout)
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        self.parts = ABLATIONS[setup.ablation]
        self.model = APN(setup, self.parts).to(self.device)
        bases = self.model.basis_parameters()
        others = [p for p in self.model.parameters() if all(p is not b for b in bases)]
        groups = [{"params": others, "lr": setup.lr}] + ([{"params": bases, "lr": setup.basis_lr}] if bases else [])
        self.optimizer = torch.optim.Adam(groups)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, setup.lr_step, setup.lr_gamma)
        self.club = CLUB(setup.feature_dim, setup.q_hidden).to(self.device) if self.parts.mutual_information else None
        if self.club is not None:
            self.q_optimizer = torch.optim.Adam(self.club.parameters(), lr=setup.q_lr)
            self.q_scheduler = torch.optim.lr_scheduler.StepLR(self.q_optimizer, setup.q_lr_step, setup.lr_gamma)
        self.loss_fn = nn.BCEWithLogitsLoss()
        train = select_training_samples(index, setup)
        augment = train_transform(setup.crop, flip=False, rotate=False, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.train_loader = make_loader(train, augment, setup.batch_size, shuffle=True,
                                        num_workers=num_workers, seed=setup.seed)
        self.q_loader = make_loader(train, augment, setup.q_batch_size, shuffle=True,
                                    num_workers=num_workers, seed=setup.seed + 1)
        centre = test_transform(setup.crop, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.test_loaders = {
            (prefix, subset): make_loader(samples, centre, max(setup.batch_size, 32), shuffle=False,
                                          num_workers=num_workers)
            for prefix, per_subset in select_all_tests(index, setup, test_index).items()
            for subset, samples in per_subset.items()
        }
        self.epoch = self.step = self.q_step = self.skipped_files = 0

    def _autocast(self):
        """bf16 mixed precision on CUDA; full precision on CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _q_batches(self) -> Iterator[torch.Tensor]:
        """q_θ's own endless stream of training images, reshuffled each pass, seeded by epoch."""
        passes = 0
        while True:
            self.q_loader.generator.manual_seed(self.setup.seed * 1_000_003 + self.epoch * 1_009 + passes)
            for images, labels, n_skipped in self.q_loader:
                self.skipped_files += n_skipped
                if len(labels):
                    yield images
            passes += 1

    @contextlib.contextmanager
    def _buffers_kept(self):
        """Restore the APN's buffers (BatchNorm running statistics) on exit, unless `q_updates_bn`."""
        saved = None if self.setup.q_updates_bn else [buffer.clone() for buffer in self.model.buffers()]
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
        with torch.no_grad(), self._autocast(), self._buffers_kept():
            out = self.model(images.to(self.device, non_blocking=True))
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
            terms["q_loss"] = sum(self.q_step_once(next(q_batches)) for _ in range(self.setup.q_steps)) / self.setup.q_steps
        self.model.train()
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        with self._autocast():
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

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Centre-crop predictions on every test subset -> `<prefix>/<subset>/<metric>` + means per prefix."""
        self.model.eval()
        per_prefix: dict[str, dict] = {}
        for (prefix, subset), loader in self.test_loaders.items():
            scores, labels = [], []
            for images, batch_labels, n_skipped in loader:
                self.skipped_files += n_skipped
                if len(batch_labels):
                    with self._autocast():
                        logits = self.model(images.to(self.device)).logits
                    scores.append(torch.sigmoid(logits.float()).cpu())
                    labels.append(batch_labels)
            if labels:
                per_prefix.setdefault(prefix, {})[subset] = binary_metrics(torch.cat(scores).numpy(),
                                                                           torch.cat(labels).numpy())
        return {k: v for prefix, subsets in per_prefix.items() for k, v in per_subset_summary(subsets, prefix).items()}

    def run(self) -> Iterator[dict]:
        """Train from the current epoch to the configured number, yielding metrics after each epoch."""
        while self.epoch < self.setup.epochs:
            torch.manual_seed(self.setup.seed * 100_003 + self.epoch)  # crop RNG, reproducible on resume
            self.train_loader.generator.manual_seed(self.setup.seed * 100_003 + self.epoch)
            q_batches = self._q_batches()
            sums, count = {}, 0
            for images, labels, n_skipped in self.train_loader:
                self.skipped_files += n_skipped
                if len(labels) == 0:
                    continue
                for key, value in self.train_step(images, labels, q_batches).items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
            self.epoch += 1
            yield {"epoch": self.epoch, "step": self.step, "epoch_end": True,
                   **{f"train/{k}": v / max(count, 1) for k, v in sums.items()},
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
        if state["config"] != self.config.to_flat():
            raise ValueError("checkpoint was written by a run with a different APN config; refusing to mix them")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.club is not None:
            self.club.load_state_dict(state["club"])
            self.q_optimizer.load_state_dict(state["q_optimizer"])
            self.q_scheduler.load_state_dict(state["q_scheduler"])
        self.epoch, self.step, self.q_step = state["epoch"], state["step"], state["q_step"]
        self.skipped_files = state["skipped_files"]


def select_training_samples(index: DatasetIndex, setup: APNConfig):
    """The training subset's images (a balanced nested subsample when `train_volume` is set)."""
    return training_subset(index, setup.train_subset, setup.train_volume, setup.seed)


def _scene(index: DatasetIndex, setup: APNConfig) -> str | None:
    if index.layout != "diffusionforensics":
        return None
    return setup.test_scene or DATASET_DEFAULTS["diffusionforensics"]["test_scene"]


def select_test_samples(index: DatasetIndex, setup: APNConfig, wanted=None) -> dict[str, list]:
    """Test images per subset (of one DF scene on DF): `wanted`, else `test_subsets`, else all."""
    return test_subsets(index, wanted or setup.test_subsets, setup.test_limit, _scene(index, setup))


def cross_scene_generator(test_index: DatasetIndex, setup: APNConfig) -> str:
    """The DF generator folder that matches the GenImage training subset (Table 3), or a DataError."""
    scene = _scene(test_index, setup)
    available = set(test_index.subsets(test_index.test_split)) & {
        s.subset for s in test_index.select(test_index.test_split, groups=[scene])}
    names = DF_NAMES.get(setup.train_subset, (setup.train_subset,))
    for name in names:
        if name in available:
            return name
    raise DataError(f"{test_index.root} has no {' / '.join(names)} generator in scene '{scene}' to test a model "
                    f"trained on '{setup.train_subset}' (it has: {', '.join(sorted(available)) or 'nothing'})")


def open_test_index(config: APNConfig, index: DatasetIndex) -> DatasetIndex | None:
    """The DF dataset of `test_root`, scanned; "synthetic" writes/reuses the stand-in beside a synthetic `index`."""
    if config.test_root is None:
        return None
    root = config.test_root
    if root == SYNTHETIC_TEST_ROOT:
        if not index.synthetic:
            raise DataError("test_root='synthetic' pairs only with the synthetic training stand-in; "
                            "pass test_root=<your DiffusionForensics root>")
        root = ensure_synthetic(Path(index.root).parent / "synthetic-diffusionforensics", layout="diffusionforensics")
    return scan(root, "diffusionforensics")


def select_all_tests(index: DatasetIndex, setup: APNConfig, test_index: DatasetIndex | None) -> dict[str, dict]:
    """{"test": per-subset samples of `index`, "test_<scene>": DF's matching generator} (the latter with test_root)."""
    wanted = [setup.train_subset] if setup.test_in_domain_only else None
    tests = {"test": select_test_samples(index, setup, wanted)}
    if setup.test_root is not None:
        test_index = test_index or open_test_index(setup, index)
        tests[f"test_{_scene(test_index, setup)}"] = select_test_samples(
            test_index, setup, [cross_scene_generator(test_index, setup)])
    return tests


def check_data(config: APNConfig, index: DatasetIndex, test_index: DatasetIndex | None = None) -> None:
    """Fail before any training when a training or test subset (or the cross-scene generator) is missing."""
    setup = config.for_layout(index.layout)
    select_training_samples(index, setup)
    select_all_tests(index, setup, test_index)
