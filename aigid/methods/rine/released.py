"""The authors' released RINE heads as aigid RINEHeads.

mever-team/rine ckpt/model_{1,2,4}class_trainable.pth and model_ldm_trainable.pth hold the
trainable part of the authors' Model (src/models.py), every key but `clip.*`: alpha
[1, blocks, d'], proj1.* (Q1), proj2.* (Q2) and head.*. The architecture is not stored, so q and d'
come from the shapes; the released ones are q/d' = 4/1024 (1-class), 4/128 (2-class), 2/1024
(4-class) and 4/1024 (LDM), as the authors' get_our_trained_model builds them (src/utils.py).
They read the CLS token after each ViT-L/14 block's ln_2 (the authors' hooks), i.e. RINEConfig's
backbone "ViT-L-14", pretrained "openai", tap "ln_2".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from aigid.errors import ConfigError
from aigid.methods.released import check_shapes, read_state, require_format
from aigid.methods.rine.config import RINEConfig
from aigid.methods.rine.model import RINEHead

# aigid's key prefix -> the authors'. The Sequentials are built alike (dropout first, then q x
# [Linear, ReLU, Dropout]), so indices carry over; the authors' alpha has a leading 1 (their softmax
# runs over dim 1 = blocks, aigid's over dim 0).
AUTHORS_PREFIX = {"q1.": "proj1.", "q2.": "proj2.", "head.": "head.", "alpha": "alpha"}
_PROJ1_WEIGHT = re.compile(r"proj1\.\d+\.weight")


@dataclass(frozen=True)
class Architecture:
    """What a released file's shapes say about its head."""

    n_blocks: int
    width: int
    q: int
    proj_dim: int


def authors_key(key: str) -> str:
    """aigid RINEHead state-dict key -> the authors' name for it."""
    prefix = next(p for p in AUTHORS_PREFIX if key.startswith(p))
    return AUTHORS_PREFIX[prefix] + key[len(prefix):]


def architecture(state: dict, path) -> Architecture:
    """n_blocks and d' from alpha [1, blocks, d'], the width from Q1's first Linear, q from its Linear count."""
    alpha, first = state["alpha"], state["proj1.1.weight"]  # both present: require_format checked
    if alpha.dim() != 3 or alpha.shape[0] != 1 or first.dim() != 2:
        raise ConfigError(f"{path}: 'alpha' has shape {list(alpha.shape)} and 'proj1.1.weight' {list(first.shape)}; "
                          "a RINE head has alpha [1, blocks, d'] and proj1.1.weight [d', width]")
    q = sum(bool(_PROJ1_WEIGHT.fullmatch(key)) for key in state)
    return Architecture(n_blocks=alpha.shape[1], width=first.shape[1], q=q, proj_dim=alpha.shape[2])


def load(path) -> tuple[RINEHead, Architecture]:
    """The released head at `path`, fully loaded and in eval mode, with the architecture read off it."""
    state = read_state(path)
    require_format(state, "rine", path)
    arch = architecture(state, path)
    head = RINEHead(arch.n_blocks, arch.width, arch.q, arch.proj_dim)
    expected = {authors_key(k): v.shape for k, v in head.state_dict().items()}
    expected["alpha"] = torch.Size((1, *expected["alpha"]))
    check_shapes(state, expected, path, f"a RINE head with q={arch.q}, d'={arch.proj_dim}")
    mapped = {k: state[authors_key(k)] for k in head.state_dict()}
    mapped["alpha"] = mapped["alpha"][0]
    head.load_state_dict(mapped, strict=True)
    return head.eval(), arch


def released(path) -> tuple[dict, dict]:
    """MethodSpec.released: the file at `path` -> (flat overrides: the authors' backbone and tap with q and d'
    read off it; {"model": its head in aigid's key names, "config": those overrides as a flat RINEConfig}).
    A --backbone/--pretrained given on top must have the file's blocks and width (`evaluate` checks)."""
    head, arch = load(path)
    overrides = {"backbone": "ViT-L-14", "pretrained": "openai", "tap": "ln_2", "q": arch.q, "proj_dim": arch.proj_dim}
    return overrides, {"model": head.state_dict(), "config": RINEConfig.from_flat(overrides).to_flat()}
