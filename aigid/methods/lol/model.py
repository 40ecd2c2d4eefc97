"""LoL's model: Algorithm 1's random rectangular masks (§3.3.1) and the CLIP encoder with a binary head (§3.2)."""
from __future__ import annotations

import torch
from torch import nn

from aigid.backbones import create_image_encoder


def random_masks(
    batch: int,
    height: int,
    width: int,
    mask_ratio: tuple[float, float],
    aspect_ratio: tuple[float, float],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Algorithm 1 for a whole batch at once: a (B, 1, H, W) mask of ones with one zero rectangle each.

    Per image: r_mask ~ U(mask_ratio), r_aspect ~ U(aspect_ratio), S = H·W·r_mask,
    H_sel = round(min(H, sqrt(S·r_aspect))), W_sel = round(min(W, S / H_sel)), and the
    upper-left corner uniform over the positions where the rectangle fits (randint is
    inclusive, as in the algorithm). Line 13 of the printed algorithm reads sqrt(S / H_sel),
    which is not a length and would cover far less than r_mask of the image, contradicting
    §3.3.1 ("a specified proportion S_select = H × W × r_mask"); we use S / H_sel so the
    rectangle covers r_mask of the image with aspect H_sel / W_sel = r_aspect.
    """
    def uniform(bounds):
        low, high = bounds
        return low + (high - low) * torch.rand(batch, generator=generator, device=device)

    area = height * width * uniform(mask_ratio)
    rect_h = torch.sqrt(area * uniform(aspect_ratio)).clamp(max=height).round()
    rect_w = torch.where(rect_h > 0, area / rect_h.clamp(min=1), torch.zeros_like(area)).clamp(max=width).round()
    top = (torch.rand(batch, generator=generator, device=device) * (height - rect_h + 1)).floor()
    left = (torch.rand(batch, generator=generator, device=device) * (width - rect_w + 1)).floor()
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = (
        (rows >= top.view(-1, 1, 1)) & (rows < (top + rect_h).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1)) & (cols < (left + rect_w).view(-1, 1, 1))
    )
    return (~inside).unsqueeze(1).float()


class LoLDetector(nn.Module):
    """CLIP image encoder + a linear binary head; the whole network is fine-tuned (§3.2)."""

    def __init__(self, backbone: str, pretrained: str | None):
        super().__init__()
        self.encoder, self.info = create_image_encoder(backbone, pretrained)
        self.head = nn.Linear(self.info.embed_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B,) that the image is fake."""
        return self.head(self.encoder(images)).squeeze(1)
