"""Learning on Less (LoL): fine-tune a pretrained CLIP image encoder on randomly masked inputs.

Paper: ../shared/papers/lol.txt. §3.3.1 (Algorithm 1) draws a rectangle per image and zeroes
it; §3.3.2 (eq. 8) applies the mask to the normalised tensor on all three channels, in
training only; §4.2 gives the recipe (CLIP-RN50, Adam (0.9, 0.999), lr 5e-6, batch 4,
20 epochs, random crop 224 with tiling of small images, flip and rotation; centre crop at
test time).

config: hyper-parameters; model: the masks and the network; trainer: the training loop;
evaluation: testing, shared by the trainer and `aigid eval`;
spec: what a sweep or `aigid train lol` needs to run it.
"""
from aigid.methods.lol.config import OFFLINE_OVERRIDES, SMOKE_OVERRIDES, LoLConfig
from aigid.methods.lol.evaluation import select_test_samples
from aigid.methods.lol.model import LoLDetector, random_masks
from aigid.methods.lol.trainer import LoLTrainer, check_data, keep_fitting_volumes, select_training_samples

__all__ = ["OFFLINE_OVERRIDES", "SMOKE_OVERRIDES", "LoLConfig", "LoLDetector", "LoLTrainer", "check_data",
           "keep_fitting_volumes", "random_masks", "select_test_samples", "select_training_samples"]
