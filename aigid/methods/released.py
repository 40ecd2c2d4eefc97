"""Reading the authors' released checkpoint files, safely and all-or-nothing.

Each method's `released.py` maps one published file format onto its aigid model; this module
holds what they share: a tensor-only `torch.load` onto the CPU (the files were saved on GPUs),
one-line ConfigErrors naming the first missing, unexpected or misshapen key, and FORMATS, the
signature of each released format, so a file given to the wrong loader says whose it looks like.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from aigid.errors import ConfigError



@dataclass(frozen=True)
class Format:
    """One released file format: what it is, which module loads it, and how its keys give it away."""

    what: str
    loader: str
    match: Callable[[set], bool]


FORMATS = {
    "rine": Format("a RINE head (mever-team/rine ckpt/model_*_trainable.pth)", "aigid.methods.rine.released",
                   lambda keys: {"alpha", "proj1.1.weight"} <= keys),
    "univfd": Format("a UnivFD probe (WisconsinAIVision/UniversalFakeDetect pretrained_weights/fc_weights.pth)",
                     "aigid.methods.univfd.released", lambda keys: keys == {"weight", "bias"}),
}


def read_state(path) -> dict[str, torch.Tensor]:
    """The file's tensors by name, on the CPU; only tensors and plain containers are unpickled."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint file; pass the path of the authors' released file")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{path} is not a checkpoint torch.load can read as tensors only: {first}") from None
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} holds {type(state).__name__}, not a state dict of named tensors")
    return dict(state)


def require_format(state: Mapping, method: str, path) -> None:
    """ConfigError unless `state` has `method`'s released signature, naming the format it has instead."""
    keys = set(state)
    if FORMATS[method].match(keys):
        return
    other = [f for name, f in FORMATS.items() if name != method and f.match(keys)]
    found = (f"it looks like {other[0].what}; load it with {other[0].loader}" if other
             else f"its keys are {', '.join(sorted(keys)[:6])}{', ...' if len(keys) > 6 else ''}")
    raise ConfigError(f"{path} is not {FORMATS[method].what}: {found}")


def load_whole(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], path, what: str) -> None:
    """`weights` into `model` strictly, after `check_shapes` against the model's own: a half-loaded model is
    never scored (aigid eval), a file of another architecture is one line naming the first odd key."""
    check_shapes(weights, {key: value.shape for key, value in model.state_dict().items()}, path, what)
    model.load_state_dict(weights, strict=True)


def check_shapes(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size], path, what: str) -> None:
    """ConfigError at the first key missing from `state`, not expected, or of another shape."""
    for key, shape in expected.items():
        if key not in state:
            raise ConfigError(f"{path} lacks {key!r}: {what} expects it with shape {list(shape)}")
        if state[key].shape != shape:
            raise ConfigError(f"{path}: {key!r} has shape {list(state[key].shape)}, {what} expects {list(shape)}")
    for key in state:
        if key not in expected:
            raise ConfigError(f"{path} has {key!r} with shape {list(state[key].shape)}, which {what} does not have")
