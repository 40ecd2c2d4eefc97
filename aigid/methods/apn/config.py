"""APN's hyper-parameters with the paper's defaults (../shared/papers/apn.txt).

Per-dataset defaults (§4.1.3, §4.2): GenImage trains on SD v1.4 with K = 15 for 10 epochs;
DiffusionForensics (DF) trains on ADM of its LSUN-Bedroom scene (§4.1.1) with K = 5 for 40
epochs and is evaluated on that scene. Fields left None take them from the dataset's layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from aigid.backbones import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (torchvision's backbones; APN's trainer reads them here)
from aigid.methods.apn.backbones import BUILDERS
from aigid.methods.apn.model import ABLATIONS
from aigid.data.layouts import SUBSET_IDS
from aigid.data.subsets import REAL_SET
from aigid.methods.config import FlatConfig
from aigid.metrics import PaperTestSets

# Table 1 averages GenImage's eight subsets; Table 2 (DF, LSUN-Bedroom) the nine columns Real (the
# scene's real test images, once) and each generator's fake images alone.
TEST_SETS = PaperTestSets({"genimage": SUBSET_IDS,
                           "diffusionforensics": (REAL_SET, "adm", "dalle2", "diff-projectedgan", "iddpm", "if",
                                                  "midjourney", "projectedgan", "sdv1")},
                          source="APN Table 1: GenImage's 8 subsets; Table 2: DF's Real + 8 generators")
CHOICES = {  # where the paper is silent (aigid.methods.spec.MethodSpec.choices)
    "ACC threshold": "P(fake) >= 0.5",
    "Table 3 LSUN column": "(ACC on the scene's reals + ACC on the generator's fakes) / 2 ('the average detection "
                           "accuracy for real images and corresponding generator-generated images', §4.3)",
}
# GenImage generator -> its folder names in DF (§4.1.3 / Table 3: SD v1, ADM, Midjourney).
DF_NAMES = {"sdv14": ("sdv1",), "sdv15": ("sdv1",), "adm": ("adm",),
            "midjourney": ("midjourney",), "vqdm": ("vqdm",)}


@dataclass
class APNConfig(FlatConfig):
    """APN hyper-parameters; defaults are the paper's. A Ray trial config is a flat dict of overrides."""

    DATASET_DEFAULTS: ClassVar[dict[str, dict]] = {
        "genimage": {"train_subset": "sdv14", "num_proposals": 15, "epochs": 10},  # §4.1.3, §4.2.1-2
        "diffusionforensics": {"train_subset": "adm", "num_proposals": 5, "epochs": 40, "train_scene": "lsun_bedroom",
                               "test_scene": "lsun_bedroom"},
    }
    BY_DATASET: ClassVar[tuple[str, ...]] = ("train_subset", "num_proposals", "epochs")

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
    # §4.1.1: DF's training set is 40,000 LSUN-Bedroom real + 40,000 ADM images: its other scenes stay out.
    train_scene: str | None = None  # DF scene to train on; None = lsun_bedroom on DF; unused elsewhere
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


# The paper is silent on images smaller than the crop (§4.2.2: random crop 224 in training, centre
# crop 224 in testing; no code released). We zero-pad, as a torchvision CenterCrop does, in training
# and testing alike: padding adds no content, where tiling would stitch copies of the image.
SMALL_IMAGES = "pad"

# The synthetic stand-in is a few hundred images: tiny torchvision-family backbones at a 64 px
# crop, and a learning rate that moves random-init weights within a few epochs (48 training
# images, 6 steps an epoch: 3 epochs left the classifier and the BN running stats unsettled).
OFFLINE_OVERRIDES = {"freq_backbone": "tiny-resnet", "spatial_backbone": "tiny-swin", "spectrum_backbone": "tiny-resnet",
                     "crop": 64, "feature_dim": 64, "q_hidden": 64, "batch_size": 8, "q_batch_size": 8,
                     "epochs": 5, "lr": 1e-3, "basis_lr": 1e-5, "q_lr": 1e-3}
SMOKE_OVERRIDES = {"epochs": 1}


