"""Checkpoint files are read as weights only: tensors and plain containers, never pickled code.

A trial's checkpoint lives in --storage and a --pretrained file may come from anywhere; a plain
`torch.load` of either runs whatever callable the file names. Trainers' `state_dict()` holds
tensors, dicts, lists, tuples, numbers and strings only (RNG states as tensors), so torch's
weights-only unpickler reads every checkpoint aigid writes and refuses anything else.
"""
from __future__ import annotations

import pickle
import re

import torch

from aigid.errors import UserError


class UnsafeCheckpoint(UserError):
    """A checkpoint that asks to run code (or build arbitrary objects) when loaded; refused unread."""


def refusal(path, error: pickle.UnpicklingError) -> str:
    """torch's page-long weights-only refusal as one line: the file and the callable it asks for."""
    found = re.search(r"GLOBAL (\S+)", str(error))
    what = f"asks to run {found.group(1)}" if found else "holds Python objects other than tensors"
    return f"{path} is not a weights-only checkpoint: it {what} when loaded, so it was refused unread"


def save(state: dict, path) -> None:
    """A trainer's `state_dict()`, in the form `load` reads back."""
    torch.save(state, path)


def load(path, fix: str) -> dict:
    """A checkpoint's state, on the CPU (trainers move it to their device); `fix` ends the error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpoint(f"{refusal(path, error)}; {fix}") from None
