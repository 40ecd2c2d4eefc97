"""CLUB (Cheng et al., 2020): a variational upper bound of I(f^r; f^ir), APN's implicit purification (§3.3)."""
from __future__ import annotations

import math

import torch
from torch import nn


class CLUB(nn.Module):
    """q_θ(f^r | f^ir) = N(μ(f^ir), diag σ²(f^ir)), two small FC networks (§4.2.1).

    As in the CLUB reference code, the log-variance network ends in tanh so the variance stays
    in [e^-1, e]; the hidden width is not given in the paper (a config field).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.mean = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.log_var = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.Tanh())

    def _gaussian(self, irrelevant: torch.Tensor):
        return self.mean(irrelevant), self.log_var(irrelevant)

    def log_likelihood(self, related: torch.Tensor, irrelevant: torch.Tensor) -> torch.Tensor:
        """log q_θ(f^r_i | f^ir_i) per sample, (B,)."""
        mu, log_var = self._gaussian(irrelevant)
        return (-0.5 * ((related - mu) ** 2 / log_var.exp() + log_var + math.log(2 * math.pi))).sum(1)

    def learning_loss(self, related: torch.Tensor, irrelevant: torch.Tensor) -> torch.Tensor:
        """Eq. 8: L_q = -mean log q_θ(f^r | f^ir), q_θ's own training loss."""
        return -self.log_likelihood(related, irrelevant).mean()

    def upper_bound(self, related: torch.Tensor, irrelevant: torch.Tensor) -> torch.Tensor:
        """Eq. 7: mean_i [log q(f^r_i | f^ir_i) - mean_j log q(f^r_j | f^ir_i)], all B² pairs at once."""
        mu, log_var = self._gaussian(irrelevant)  # (B, C), conditioned on f^ir_i
        var = log_var.exp().unsqueeze(1)
        positive = -0.5 * ((related - mu) ** 2 / var.squeeze(1)).sum(1)
        pairs = -0.5 * ((related.unsqueeze(0) - mu.unsqueeze(1)) ** 2 / var).sum(2)  # [i, j]: f^r_j | f^ir_i
        return (positive - pairs.mean(1)).mean()
