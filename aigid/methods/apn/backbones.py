"""APN's backbones (§4.2.1): torchvision ResNet-18 / ResNet-50 / Swin-T, random init or a local checkpoint.

Nothing is downloaded: `weights=None` builds the architecture, and a local state dict (the
torchvision checkpoint file, or any with the same keys) is loaded on top, minus its
classifier. The `tiny-*` stand-ins are the same torchvision families shrunk for CPU tests
and the offline demo: a ResNet with one BasicBlock per stage at 1/4 width, and a Swin with
one block per stage, 16 channels and one head.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet50, swin_t
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.models.swin_transformer import SwinTransformer


class _NarrowResNet(ResNet):
    """torchvision's ResNet with every stage `width`/64 as wide (torchvision fixes 64-512 channels)."""

    def __init__(self, layers: list[int], width: int, num_classes: int):
        self._width = width
        super().__init__(BasicBlock, layers, num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # the first stage: its input is the narrowed stem
            self.inplanes = self._width
        return super()._make_layer(block, planes * self._width // 64, blocks, stride, dilate)


def _tiny_swin(num_classes: int) -> SwinTransformer:
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                           window_size=[7, 7], num_classes=num_classes)


BUILDERS = {
    "resnet18": lambda dim: resnet18(weights=None, num_classes=dim),
    "resnet50": lambda dim: resnet50(weights=None, num_classes=dim),
    "swin_t": lambda dim: swin_t(weights=None, num_classes=dim),
    "tiny-resnet": lambda dim: _NarrowResNet([1, 1, 1, 1], 16, dim),
    "tiny-swin": _tiny_swin,
}


def _load_weights(model: nn.Module, path: str) -> None:
    """A local checkpoint into `model`, skipping tensors whose shapes differ (the classifier, a wider stem)."""
    state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable and not k.startswith(("fc.", "head.", "conv1."))]
    if missing:
        raise ValueError(f"checkpoint {path} does not fit this backbone: {len(missing)} tensors missing "
                         f"or of another shape (e.g. {missing[:3]}); pass the matching torchvision checkpoint")
    model.load_state_dict(usable, strict=False)


def build_backbone(name: str, out_dim: int, weights: str | None = None, in_channels: int = 3) -> nn.Module:
    """`name` with its classifier replaced by a linear map to `out_dim` features (APN's C)."""
    model = BUILDERS[name](out_dim)
    if in_channels != 3:  # the spectrum backbone of Table 4(a) line 5 reads amplitude and phase
        if isinstance(model, SwinTransformer):
            raise ValueError(f"{name} cannot read {in_channels}-channel spectra; use a ResNet")
        old = model.conv1
        model.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    if weights is not None:
        _load_weights(model, weights)
    return model
