"""APN's explicit purification in space (§3.2.2, eq. 5 and 11): an orthogonal feature decomposition."""
from __future__ import annotations

import torch
from torch import nn


class OrthogonalDecomposition(nn.Module):
    """f -> (f^r, f^ir): projections of f on two sets of C/2 basis vectors (the rows of Ω^r, Ω^ir).

    Eq. 5: f^r = Σ_j (ω_j^r)ᵀ f · ω_j^r = Ω^rᵀ Ω^r f. §4.2.2 initialises Ω^r = [I, Z] and
    Ω^ir = [Z, I], so at initialisation the decomposition is the split of f along its
    channels into halves (zero-padded back to C). `learnable=False` keeps it that way:
    Table 4(a) line 6 ("replaced with splitting along the channel dimension"), with the
    halves kept in C dimensions so they still align with the frequency branch's features.
    """

    def __init__(self, dim: int, learnable: bool = True):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"feature_dim must be an even number >= 2 (C = m_r + m_ir, m_r = m_ir), got {dim}")
        half = dim // 2
        eye, zero = torch.eye(half), torch.zeros(half, half)
        related, irrelevant = torch.cat([eye, zero], 1), torch.cat([zero, eye], 1)
        if learnable:
            self.related, self.irrelevant = nn.Parameter(related), nn.Parameter(irrelevant)
        else:
            self.register_buffer("related", related)
            self.register_buffer("irrelevant", irrelevant)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        def project(bases):
            return (features @ bases.t()) @ bases

        return project(self.related), project(self.irrelevant)

    def basis_loss(self) -> torch.Tensor:
        """Eq. 11: mean |(ω_i^r)ᵀ ω_j^ir| over all pairs; zero at the [I, Z] / [Z, I] initialisation."""
        return (self.related @ self.irrelevant.t()).abs().mean()
