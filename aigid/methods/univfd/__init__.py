"""UnivFD: real-vs-fake classification by a linear probe in the feature space of a frozen CLIP
ViT-L/14 (Ojha, Li & Lee, "Towards Universal Fake Image Detectors that Generalize Across
Generative Models", CVPR 2023; arXiv 2302.10174; code: github.com/WisconsinAIVision/UniversalFakeDetect).
config: hyper-parameters (the authors' training options) and the class settings; trainer: the
probe trained on cached embeddings, and the view set a grid needs; spec: its MethodSpec."""
from aigid.methods.univfd.config import (
    ALL_CLASSES, CLASS_CHOICES, OFFLINE_OVERRIDES, SMOKE_OVERRIDES, UnivFDConfig,
)
from aigid.methods.univfd.trainer import UnivFDTrainer, check_data, feature_requests

__all__ = ["ALL_CLASSES", "CLASS_CHOICES", "OFFLINE_OVERRIDES", "SMOKE_OVERRIDES", "UnivFDConfig", "UnivFDTrainer",
           "check_data", "feature_requests"]
