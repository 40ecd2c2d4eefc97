"""How the fine-tuned methods (LoL, APN) run on their device: the speed choices, each decided once here.

On CUDA: bf16 autocast, and channels_last for convolutional networks (cuDNN's fast layout for
convolutions under bf16). On CPU nothing changes, so CPU results stay bit-identical to float32
contiguous runs. Neither paper states its numeric precision (LoL §4.2, APN §4.2 give none): these
are speed choices, not the papers'. `Throughput` measures what they buy, per trial.
"""
from __future__ import annotations

import contextlib
import os
import time

import torch
from torch import nn

THROUGHPUT_KEY = "perf/images_per_s"  # in every epoch-end report; MLflow logs it, no table shows it
# AIGID_PLAIN_CUDA=1: float32 and the tensors' own layout on CUDA too, as on CPU (a numeric doubt about bf16;
# benchmarks/finetune_step.py's baseline). Read at each call, in the process that trains (a Ray worker on a cluster).
PLAIN_ENV = "AIGID_PLAIN_CUDA"


def fast(device: torch.device) -> bool:
    """Whether the speed choices apply: on CUDA, unless PLAIN_ENV is 1."""
    return device.type == "cuda" and os.environ.get(PLAIN_ENV) != "1"


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA; None (full precision) on CPU, whose bf16 kernels are slower than float32."""
    return torch.bfloat16 if fast(device) else None


def autocast(device: torch.device):
    """Mixed precision at `autocast_dtype(device)`; nothing at all where that is None."""
    dtype = autocast_dtype(device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def convolutional(model: nn.Module) -> bool:
    """Whether `model` slides a convolution (a ResNet's 3x3 or 7x7). A ViT's or Swin's only convolution is its
    patch embedding, which cuts non-overlapping patches (kernel = stride) and gains nothing from channels_last."""
    return any(isinstance(m, nn.Conv2d) and m.kernel_size != m.stride for m in model.modules())


def memory_format(model: nn.Module, device: torch.device) -> torch.memory_format:
    """channels_last for a convolutional `model` on CUDA, for its weights and its input batches alike;
    else the tensors' own layout (`preserve_format`: `.to` leaves them untouched)."""
    return torch.channels_last if fast(device) and convolutional(model) else torch.preserve_format


def place(model: nn.Module, device: torch.device) -> tuple[nn.Module, torch.memory_format]:
    """`model` on `device` in its memory format, and that format for the batches fed to it."""
    layout = memory_format(model, device)
    return model.to(device, memory_format=layout), layout


class Throughput:
    """Training images per wall second of one epoch (`THROUGHPUT_KEY`): loading, steps and waits included,
    the time spent in `paused()` (mid-epoch evaluations, reports to the caller) left out. Every trainer step
    ends in `loss.item()`, which waits for the device, so wall time is the device's time too."""

    def __init__(self):
        self.images, self.seconds, self.since = 0, 0.0, time.perf_counter()

    def add(self, images: int) -> None:
        self.images += images

    @contextlib.contextmanager
    def paused(self):
        self.seconds += time.perf_counter() - self.since
        try:
            yield
        finally:
            self.since = time.perf_counter()

    def report(self) -> dict[str, float]:
        """{THROUGHPUT_KEY: images/s} so far."""
        return {THROUGHPUT_KEY: self.images / (self.seconds + time.perf_counter() - self.since)}
