"""RINE's trainable part (§3.2) and its loss (§3.3), on top of cached per-block CLS tokens."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def projection(d_in: int, d_out: int, q: int, dropout: float) -> nn.Sequential:
    """Eq. 3 as the authors build it: dropout, then q × [Linear, ReLU, dropout]."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for i in range(q):
        layers += [nn.Linear(d_in if i == 0 else d_out, d_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class RINEHead(nn.Module):
    """Q1 per block -> TIE (eq. 4) -> Q2 -> head [Linear ReLU dropout] × 2 + Linear(d', 1).

    tie=False averages the projected blocks instead (Table 4 "w/o TIE"). The TIE matrix is
    initialised from a standard normal, as in the authors' code.
    """

    def __init__(self, n_blocks: int, width: int, q: int, proj_dim: int, *, tie: bool = True, dropout: float = 0.5):
        super().__init__()
        self.q1 = projection(width, proj_dim, q, dropout)
        self.alpha = nn.Parameter(torch.randn(n_blocks, proj_dim)) if tie else None
        self.q2 = projection(proj_dim, proj_dim, q, dropout)
        self.head = nn.Sequential(
            nn.Linear(proj_dim, proj_dim), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(proj_dim, proj_dim), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(proj_dim, 1),
        )

    def importance(self) -> torch.Tensor | None:
        """(n_blocks, d'): softmax over blocks for each feature dimension; each column sums to 1."""
        return None if self.alpha is None else torch.softmax(self.alpha, dim=0)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, n_blocks, width) -> (logits (B,), z (B, d')) with z the vector SupCon sees."""
        g = self.q1(tokens)
        weights = self.importance()
        z = g.mean(dim=1) if weights is None else (weights * g).sum(dim=1)
        z = self.q2(z)
        return self.head(z).squeeze(1), z


def trainable_parameters(n_blocks: int, width: int, q: int, proj_dim: int, *, tie: bool = True) -> int:
    """The architecture's count: Q1 + TIE + Q2 + head (Table 1: 10.52M, 0.28M, 6.32M for ViT-L/14)."""
    d = proj_dim
    q1 = width * d + d + (q - 1) * (d * d + d)
    q2 = q * (d * d + d)
    head = 2 * (d * d + d) + d + 1
    return q1 + (n_blocks * d if tie else 0) + q2 + head


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al.) with one view per image, as the authors call it.

    z: (B, d) L2-normalised; for each anchor i, -mean over positives p of
    log(exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ)), averaged over anchors; an anchor without
    positives contributes 0 (the authors' SupConLoss, base_temperature = temperature).
    """
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = z @ z.T / temperature
    log_prob = logits - torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    positives = (labels.view(-1, 1) == labels.view(1, -1)) & ~self_mask
    mean_log_prob_pos = (log_prob * positives).sum(1) / positives.sum(1).clamp(min=1)
    return -mean_log_prob_pos.mean()


def rine_loss(logits, z, labels, xi, temperature) -> torch.Tensor:
    """Eq. 5: BCE summed over the batch (the authors' reduction) + xi · SupCon on normalised z.

    xi and temperature are floats (xi = 0 skips SupCon's cost) or, for `HeadStack`'s vmap over
    members, tensors (xi = 0 then adds 0 · SupCon: the same loss and gradients)."""
    loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
    if isinstance(xi, torch.Tensor) or xi > 0:
        loss = loss + xi * supcon_loss(F.normalize(z, dim=1), labels, temperature)
    return loss
