"""GenDet's hyper-parameters with the paper's defaults (../shared/papers/gendet.txt, §4.1-4.2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from aigid.errors import ConfigError
from aigid.data.layouts import SUBSET_IDS
from aigid.methods.config import FlatConfig
from aigid.methods.univfd.config import TEST_SETS as UNIVFD_TEST_SETS
from aigid.metrics import PaperTestSets

# Tables 1-2 (and 5) average UFD's 19 sets as UnivFD's tables do (no stylegan2, no whichfaceisreal);
# Table 3 averages GenImage's eight subsets.
TEST_SETS = PaperTestSets({"ufd": UNIVFD_TEST_SETS.by_layout["ufd"], "genimage": SUBSET_IDS},
                          source="GenDet Tables 1-2, 5: UFD's 19 test sets; Table 3: GenImage's 8")
CHOICES = {  # where the paper is silent (aigid.methods.spec.MethodSpec.choices)
    "ACC threshold on UFD": "P(fake) >= 0.5 (§4.1 'follows UniversalFakeDetect to compute the threshold': UFD's "
                            "reported accuracy is at 0.5; GenImage's is 0.5 as stated)",
    "CLIP feature read as tokens": "see `reading` in `aigid config gendet` (the paper names no token layout)",
}
# Tables 1-2's lower rows, top to bottom: the teacher alone; teacher-student anomaly detection
# trained on real images only (eq. 1); with fake images too (eq. 1 + 2, no augmenter); GenDet.
VARIANTS = ("teacher", "ts_real", "ts_fake", "full")
# How a cached CLIP feature becomes the width-196 tokens of a block (the paper does not say):
# "embedding" projects the pooled image embedding to `embedding_tokens` tokens; "patch" projects
# each of the last block's patch tokens (see aigid.methods.gendet.model.Tokens).
READINGS = ("embedding", "patch")
OUTPUT_OF_READING = {"embedding": "embedding", "patch": "patch_tokens"}  # aigid.features.OUTPUTS
MAX_MARGIN = 4.0  # ‖a − b‖² of unit vectors is at most 4: a larger M could never be met


@dataclass
class GenDetConfig(FlatConfig):
    """GenDet hyper-parameters; defaults are the paper's (UFD's lrs on UFD, GenImage's on GenImage).

    A Ray trial config is a flat dict of overrides. Fields the paper leaves open are marked
    "paper silent" with the choice made here.
    """

    # §4.1: the training subset and the student and classifier learning rates differ per dataset.
    DATASET_DEFAULTS: ClassVar[dict[str, dict]] = {
        "genimage": {"train_subset": "sdv14", "student_lr": 1e-5, "classifier_lr": 1e-3},
        "ufd": {"train_subset": "progan", "student_lr": 1e-4, "classifier_lr": 1e-5},
    }
    BY_DATASET: ClassVar[tuple[str, ...]] = ("train_subset", "student_lr", "classifier_lr")

    backbone: str = "ViT-L-14"  # §4.1 "CLIP:ViT"; ViT-L/14 as in Ojha et al. [30], the CLIP baseline it extends
    pretrained: str | None = "openai"
    tokens: str = "embedding"  # paper silent: READINGS; "embedding" stores 768 numbers per image, "patch" 256 × 1024
    embedding_tokens: int = 4  # paper silent: length of the token sequence the pooled embedding is projected to
    width: int = 196  # §4.1: transformer dimension
    heads: int = 4  # §4.1
    layers: int = 1  # §4.1: one layer per network
    ff_expansion: int = 4  # §4.1: feed-forward expansion rate
    dropout: float = 0.0  # paper silent; 0 keeps the teacher-student discrepancy free of dropout noise
    margin: float = 2.0  # §4.2 / Table 5: M of eq. 2
    alpha: float = 0.1  # §4.2 / Table 5: weight of eq. 2
    rotations: int = 10  # §4.1: rotations of the three one-epoch stages
    variant: str = "full"  # VARIANTS (Tables 1-2)
    # Eq. 4's D^f: raw fake features, as N_c sees them at inference (default), or, reading eq. 4's z^f as
    # eq. 2's N(G(x^f)), through G. G is trained last in each rotation to make fakes look real to the
    # teacher-student pair, and N_c fitted on its output scored 23-63 % ACC on test features a raw-fed
    # N_c separates at 98-100 % (tests/test_gendet.py's separable data, seeds 0-2); hence raw by default.
    classifier_on_augmented: bool = False
    teacher_lr: float = 1e-5  # §4.1, both datasets
    student_lr: float | None = None  # §4.1: 1e-4 (UFD), 1e-5 (GenImage); None = by dataset
    augmenter_lr: float = 1e-4  # paper silent: the student's UFD rate, on both datasets (10× the student's on GenImage)
    classifier_lr: float | None = None  # §4.1: 1e-5 (UFD), 1e-3 (GenImage); None = by dataset
    weight_decay: float = 0.01  # §4.1 AdamW; paper silent on decay: torch's default
    teacher_epochs: int = 5  # paper silent: a linear-probe-sized budget (720K UFD features × 5 at batch 256 ≈ 14K steps)
    classifier_epochs: int = 5  # paper silent: as the teacher's; N_c is the same size as N_t plus its FC
    batch_size: int = 256  # paper silent: features are small, so a large batch; the stand-in uses 16
    crop: int = 224  # paper silent: one centre crop per image, stored before training (§3.3)
    train_subset: str | None = None  # §4.1: sdv14 (GenImage), progan (UFD); None = by dataset
    test_subsets: tuple[str, ...] | None = None  # None = every test subset (§4.1: all)
    # Tables 6-7: a dataset tested instead of the training root's test sets (CogView2, StyleGAN, IF, 1000 real +
    # 1000 fake each), every set averaged; "synthetic" = a generated stand-in beside the synthetic training data.
    test_root: str | None = None
    seed: int = 0  # initialisation and batch order

    @classmethod
    def from_flat(cls, flat: dict) -> "GenDetConfig":
        if "epochs" in flat:  # --epochs, as the other methods take it
            raise ConfigError("GenDet has no single epoch count: set teacher_epochs, rotations (of three one-epoch "
                             "stages, §4.1: 10) and classifier_epochs, e.g. --set rotations=5")
        return super().from_flat(flat)

    def __post_init__(self):
        for name in ("embedding_tokens", "width", "heads", "layers", "ff_expansion", "rotations", "teacher_epochs",
                     "classifier_epochs", "batch_size", "crop"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                hint = " (§4.1 trains 10 rotations)" if name == "rotations" else ""
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}{hint}")
        if self.width % self.heads:
            divisors = [h for h in range(1, self.width + 1) if self.width % h == 0]
            raise ConfigError(f"width {self.width} is not divisible by heads {self.heads}: each attention head gets "
                             f"width / heads channels; heads that divide {self.width}: {divisors}")
        if not 0 < self.margin <= MAX_MARGIN:
            raise ConfigError(f"margin must be in (0, {MAX_MARGIN:g}] (eq. 2 compares squared distances of unit "
                             f"vectors, which lie in [0, 4]; Table 5 uses 1, 2, 4), got {self.margin!r}")
        if not self.alpha >= 0:
            raise ConfigError(f"alpha must be >= 0 (the weight of eq. 2; Table 5 uses 0.01, 0.1, 1), got {self.alpha!r}")
        for name in ("teacher_lr", "student_lr", "augmenter_lr", "classifier_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for name, allowed in (("variant", VARIANTS), ("tokens", READINGS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.test_subsets is not None:
            self.test_subsets = tuple(self.test_subsets)
        if self.pretrained in ("", "none", "None"):
            self.pretrained = None

    @property
    def output(self) -> str:
        """The backbone output (aigid.features.OUTPUTS) this config reads."""
        return OUTPUT_OF_READING[self.tokens]

    @property
    def schedule(self) -> tuple[str, ...]:
        """The one-epoch stages in order (§3, §4.1): the teacher's epochs, the rotations of
        (a) student on real, (b) student on (augmented) fake, (c) augmenter, then the classifier's."""
        rotation = {"teacher": (), "ts_real": ("student_real",), "ts_fake": ("student_real", "student_fake"),
                    "full": ("student_real", "student_fake", "augmenter")}[self.variant]
        classifier = ("classifier",) * self.classifier_epochs if self.variant != "teacher" else ()
        return ("teacher",) * self.teacher_epochs + rotation * self.rotations + classifier

    @property
    def epochs(self) -> int:
        """Reported epochs of a trial: one per stage of the schedule."""
        return len(self.schedule)



# The paper is silent on preprocessing beyond the frozen CLIP:ViT extractor (§4.1). We zero-pad an
# image smaller than the crop, as the CLIP-feature baseline it builds on (Ojha et al., UnivFD:
# validate.py's CenterCrop) does.
SMALL_IMAGES = "pad"

# The synthetic stand-in is 96 + 96 training images and a tiny random-init ViT (embedding width 32):
# the paper's 1e-5 rates and batch 256 would take a handful of steps in all, so the demo uses
# larger rates, small batches and more classifier epochs (N_c reads raw, unnormalised
# discrepancies and needs more steps than 192 images give in 5 epochs). The 10 rotations are kept.
OFFLINE_OVERRIDES = {"backbone": "aigid-tiny-vit", "pretrained": None, "batch_size": 16, "teacher_lr": 1e-3,
                     "student_lr": 1e-3, "augmenter_lr": 1e-3, "classifier_lr": 1e-3, "classifier_epochs": 10}
SMOKE_OVERRIDES = {"rotations": 1, "teacher_epochs": 1, "classifier_epochs": 1}
