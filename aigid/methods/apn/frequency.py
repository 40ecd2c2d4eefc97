"""APN's explicit purification in frequency (§3.2.1): half spectra, band proposals, cross masks.

Shapes: images (B, 3, N, M) with N rows (v axis) and M columns (u axis). The real FFT keeps
the Hermitian half along u, U = ⌊M/2⌋ + 1 columns, exactly the paper's 0 <= u <= ⌊M/2⌋,
0 <= v <= N - 1; its inverse (torch.fft.irfft2 with the original size) is real by
construction, which is why the paper works on the half spectrum.

Two places where the printed paper cannot be taken literally:
- Eq. 4 writes A·sin P + j·A·cos P. That is j·conj(F), not F: an all-ones mask would not give
  the input back. We reassemble with F = A·cos P + j·A·sin P (torch.polar), so it does.
- Eq. 2-3 are hard 0/1 masks, whose derivative with respect to the predicted band edges is
  zero almost everywhere: the proposal heads would never learn. `cross_masks` computes the
  hard mask in the forward pass (so training and inference see exactly eq. 2-3) and takes
  its gradient from a sigmoid relaxation with temperature τ (a straight-through estimator);
  the relaxed mask tends to the hard one as τ -> 0 (tests/test_apn_frequency.py).
"""
from __future__ import annotations

import torch
from torch import nn


def half_spectrum(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Amplitude and phase (B, 3, N, ⌊M/2⌋+1) of each channel's real FFT (at least float32, even under autocast)."""
    spectrum = torch.fft.rfft2(images.to(torch.promote_types(images.dtype, torch.float32)))
    return spectrum.abs(), spectrum.angle()


def reassemble(amplitude: torch.Tensor, phase: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Eq. 4 with the sin/cos order fixed: iDFT(A·cos P + j·A·sin P), a real image of `size` (N, M)."""
    return torch.fft.irfft2(torch.polar(amplitude, phase), s=size)


def split_images(images: torch.Tensor, amp_mask: torch.Tensor, phase_mask: torch.Tensor):
    """Eq. 1 + 4 for K proposals at once: (related, irrelevant) images, each (B, K, 3, N, M).

    `amp_mask` / `phase_mask` are (B, 3, K, N, U) masks for the amplitude / phase.
    """
    size = images.shape[-2:]
    amplitude, phase = (t.unsqueeze(2) for t in half_spectrum(images))  # (B, 3, 1, N, U)
    related = reassemble(amp_mask * amplitude, phase_mask * phase, size)
    irrelevant = reassemble((1 - amp_mask) * amplitude, (1 - phase_mask) * phase, size)
    return related.transpose(1, 2), irrelevant.transpose(1, 2)


def _band(positions: torch.Tensor, start: torch.Tensor, end: torch.Tensor, temperature: float):
    """Hard indicator start <= x <= end and its sigmoid relaxation, broadcast over positions."""
    start, end = start.unsqueeze(-1), end.unsqueeze(-1)
    hard = ((positions >= start) & (positions <= end)).to(start.dtype)
    soft = torch.sigmoid((positions - start) / temperature) * torch.sigmoid((end - positions) / temperature)
    return hard, soft


def cross_masks(u_band: torch.Tensor, v_band: torch.Tensor, size: tuple[int, int], temperature: float,
                *, hard: bool = True) -> torch.Tensor:
    """Eq. 2-3: the cross-shaped masks (..., N, U) of proposals given as (..., 2) normalised (start, end).

    A frequency is inside when u/⌊M/2⌋ lies in the u band or v/(N-1) lies in the v band.
    `hard=True`: forward value exactly eq. 2-3, gradient of the relaxation (straight-through);
    `hard=False`: the relaxation itself, 1 - (1 - m_u)(1 - m_v) (a soft OR).
    """
    rows, cols = size[0], size[1] // 2 + 1
    device = u_band.device
    u = torch.arange(cols, device=device, dtype=u_band.dtype) / max(size[1] // 2, 1)
    v = torch.arange(rows, device=device, dtype=v_band.dtype) / max(rows - 1, 1)
    hard_u, soft_u = _band(u, u_band[..., 0], u_band[..., 1], temperature)
    hard_v, soft_v = _band(v, v_band[..., 0], v_band[..., 1], temperature)
    soft = 1 - (1 - soft_u.unsqueeze(-2)) * (1 - soft_v.unsqueeze(-1))
    if not hard:
        return soft
    exact = torch.maximum(hard_u.unsqueeze(-2), hard_v.unsqueeze(-1))
    return exact + (soft - soft.detach())


def band_loss(bands: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Eq. 10, corrected: Σ max(start - end + ε, 0), summed over everything but the batch, batch-averaged.

    As printed, max(-PPS² - PPS¹ - ε, 0) is zero for any proposal in [0, 1] (both points come
    out of a sigmoid), so it constrains nothing; the loss the text describes ("ensure the
    validity of the frequency band intervals") penalises a start later than end - ε.
    `bands`: (B, ..., 2) with (start, end) in the last dimension.
    """
    violation = torch.relu(bands[..., 0] - bands[..., 1] + epsilon)
    return violation.reshape(bands.shape[0], -1).sum(1).mean()


def proposal_anchors(k: int, eps: float = 1e-2) -> torch.Tensor:
    """(K, 2) logits of the prior bands [i/K, (i+1)/K]: proposal i starts at the i-th equal-division point."""
    points = torch.arange(k + 1, dtype=torch.float32) / k
    bands = torch.stack([points[:-1], points[1:]], dim=1).clamp(eps, 1 - eps)
    return torch.logit(bands)


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return torch.relu(x + self.body(x))


class ProposalHead(nn.Module):
    """One (spectrum, axis) proposal predictor: BN + residual convs, One-sided Feature Pooling, FC, sigmoid.

    OFP is a convolution spanning the whole other axis (kernel N × 3 for the u axis, 3 × U for
    v, padding 1 along the proposal axis), so each output keeps one position along the axis
    it proposes on. The FC is zero-initialised, so training starts from the anchors: the K
    proposals tile [0, 1]. Each RGB channel is one sample of a shared head (the paper does
    not say whether weights are per channel).
    """

    def __init__(self, axis: str, size: tuple[int, int], k: int, channels: int, blocks: int, ofp_channels: int):
        super().__init__()
        rows, cols = size[0], size[1] // 2 + 1
        kernel, padding, length = ((rows, 3), (0, 1), cols) if axis == "u" else ((3, cols), (1, 0), rows)
        self.features = nn.Sequential(
            nn.BatchNorm2d(1), nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True), *[_Residual(channels) for _ in range(blocks)],
        )
        self.ofp = nn.Conv2d(channels, ofp_channels, kernel, padding=padding)
        self.fc = nn.Linear(ofp_channels * length, 2 * k)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.register_buffer("anchors", proposal_anchors(k), persistent=False)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        """(B, 3, N, U) -> (B, 3, K, 2) normalised (start, end) per channel and proposal."""
        b, c = spectrum.shape[:2]
        x = self.ofp(self.features(spectrum.reshape(b * c, 1, *spectrum.shape[2:])))
        logits = self.fc(torch.relu(x).flatten(1)).view(b, c, -1, 2)
        return torch.sigmoid(logits + self.anchors)
