"""UnivFD's hyper-parameters with the authors' defaults.

Ojha, Li & Lee, "Towards Universal Fake Image Detectors that Generalize Across Generative
Models", CVPR 2023 (arXiv 2302.10174): real-vs-fake classification in the feature space of a
frozen CLIP:ViT-L/14, by nearest neighbour or (the variant here) a linear probe. The paper
gives the method; the training numbers below are those of the authors' code,
github.com/WisconsinAIVision/UniversalFakeDetect (options/base_options.py,
options/train_options.py, networks/trainer.py, train.py, validate.py), cited per field.

Two documented departures, both forced by training on cached features (one frozen-backbone
pass per sweep, `aigid.features`):
- one view per image, the centre crop the authors test on (validate.py: CenterCrop(224), no
  resize). Their training view (data/datasets.py: resize to 256, then blur with p 0.5 and
  σ ~ U[0, 3], JPEG with p 0.5 at quality 30-100, random crop 224, horizontal flip) is not
  applied: one cached view serves every epoch (RINE instead caches an augmented view per
  epoch, at the cost of a backbone pass per epoch).
- a fixed number of epochs. The authors train up to 100 epochs (--niter) with early stopping
  on validation accuracy (patience 5, --earlystop_epoch; lr ÷ 10 at each stop until below
  1e-6). Here every epoch reports val/acc and val/ap, so the best epoch can be read afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

from aigid.errors import ConfigError
from aigid.data.layouts import UFD_TEST_SETS
from aigid.methods.config import FlatConfig
from aigid.metrics import PaperTestSets
from aigid.methods.rine.config import CLASS_SETTINGS

# UnivFD's tables (Ojha et al., CVPR 2023) average 19 of UFD's folders: no stylegan2, no whichfaceisreal.
TEST_SETS = PaperTestSets({"ufd": ("progan", "cyclegan", "biggan", "stylegan", "gaugan", "stargan", "deepfake",
                                   "seeingdark", "san", "crn", "imle", "guided", "ldm_200", "ldm_200_cfg", "ldm_100",
                                   "glide_100_27", "glide_50_27", "glide_100_10", "dalle")},
                          source="UnivFD Tables 1-2: 19 test sets")
assert set(TEST_SETS.by_layout["ufd"]) <= set(UFD_TEST_SETS)
CHOICES = {"ACC threshold": "P(fake) >= 0.5, UnivFD's reported accuracy (its oracle-threshold accuracy is not used)"}
ALL_CLASSES = 20  # `classes` value meaning every ProGAN class found (ForenSynths has 20)
CLASS_CHOICES = (*sorted(CLASS_SETTINGS), ALL_CLASSES)
OUTPUT = "embedding"  # aigid.features.OUTPUTS: the pooled, projected image embedding (768-d for ViT-L/14)


@dataclass
class UnivFDConfig(FlatConfig):
    """UnivFD linear-probe hyper-parameters; defaults are the authors'. A Ray trial config is a flat dict
    of overrides."""

    backbone: str = "ViT-L-14"  # paper (abstract) and README: CLIP:ViT-L/14, frozen (--fix_backbone); open_clip names
    pretrained: str | None = "openai"  # authors' code: OpenAI's CLIP weights (models/clip_models.py, clip.load)
    classes: int = ALL_CLASSES  # README: ProGAN's 20 classes; 20 = every class found, 1/2/4 = RINE's CLASS_SETTINGS
    lr: float = 1e-4  # authors' code: --lr 0.0001, Adam(W) with betas (0.9, 0.999) (--beta1 0.9)
    batch_size: int = 256  # authors' code: --batch_size 256
    epochs: int = 10  # ours, fixed (authors: up to 100 with early stopping on val acc); ~28K steps on 720K images
    weight_decay: float = 0.0  # authors' code: --weight_decay 0.0 (AdamW's decoupled decay, as networks/trainer.py)
    crop: int = 224  # authors' validate.py: CenterCrop(224), no resize; one cached view, no blur/JPEG augmentation
    seed: int = 0  # ours: probe initialisation and batch order

    def __post_init__(self):
        if self.classes not in CLASS_CHOICES:
            raise ConfigError(f"classes must be one of {list(CLASS_CHOICES)} ({ALL_CLASSES} = every ProGAN class "
                              f"found, the authors' training set; 1, 2, 4 = RINE's settings), got {self.classes!r}")
        for name in ("batch_size", "epochs", "crop"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0 (the authors use 1e-4), got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0 (the authors use 0), got {self.weight_decay!r}")
        if self.pretrained in ("", "none", "None"):
            self.pretrained = None

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The ProGAN classes trained on, or None for every class found (`classes` = 20)."""
        return None if self.classes == ALL_CLASSES else CLASS_SETTINGS[self.classes]


# An image smaller than the crop is zero-padded: the authors' validate.py CenterCrop(224) pads.
SMALL_IMAGES = "pad"

# The synthetic stand-in is 4 classes x 24 real + 24 fake training images and a tiny random-init
# ViT (32-d embedding): at batch 256 one epoch would be one step and lr 1e-4 would barely move the
# probe, so the demo uses small batches, a larger rate and a few epochs (96 steps in all). On it the
# probe reaches 0.96 ProGAN-test and 0.97-0.98 val ACC (seeds 0-2, the patch-16 stand-in of eb7074c);
# the other stand-in generators stay near chance.
OFFLINE_OVERRIDES = {"backbone": "aigid-tiny-vit", "pretrained": None, "batch_size": 16, "epochs": 8, "lr": 3e-2}
SMOKE_OVERRIDES = {"epochs": 1}
