"""The APN network (§3, Fig. 2): frequency branch, spatial branch, classifier, and Table 4(a)'s ablations."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from aigid.methods.apn.backbones import build_backbone
from aigid.methods.apn.frequency import ProposalHead, band_loss, cross_masks, half_spectrum, split_images
from aigid.methods.apn.spatial import OrthogonalDecomposition


@dataclass(frozen=True)
class Modules:
    """Which parts of APN a model has (Table 4(a): EP-F, PPS, EP-S, D, IP)."""

    frequency: bool  # EP-F: the frequency branch
    proposals: bool  # PPS: band proposals (else a spectrum backbone, line 5)
    spatial: bool  # EP-S: the spatial branch
    decomposition: bool  # D: learnable bases (else a fixed channel split)
    mutual_information: bool  # IP's L_mi (L_align is kept whenever both branches exist)


# Table 4(a), in the paper's line order (§4.6 describes each line).
ABLATIONS = {
    "no_implicit": Modules(True, True, True, True, False),  # line 1: L_mi removed from eq. 9
    "implicit_only": Modules(False, False, True, False, True),  # line 2: Swin features split in halves + IP
    "no_spatial": Modules(True, True, False, False, True),  # line 3: frequency branch only
    "no_frequency": Modules(False, False, True, True, True),  # line 4: spatial branch only
    "no_proposals": Modules(True, False, True, True, True),  # line 5: a ResNet-50 on the spectra
    "no_decomposition": Modules(True, True, True, False, True),  # line 6: channel split instead of bases
    "full": Modules(True, True, True, True, True),  # line 7
}


@dataclass
class APNOutput:
    logits: torch.Tensor  # (B,) that the image is fake
    related: torch.Tensor  # f^r (B, C): the mean of the branches' artefact-related features
    irrelevant: torch.Tensor  # f^ir (B, C)
    band: torch.Tensor  # L_band (eq. 10, corrected), 0 without proposals
    basis: torch.Tensor  # L_basis (eq. 11), 0 without learnable bases
    align: torch.Tensor  # L_align (eq. 6), 0 with one branch


class ProposalFrequencyBranch(nn.Module):
    """§3.2.1: K proposals per (channel, amplitude/phase, axis) -> 2K reassembled images -> f_f^r, f_f^ir.

    The K related (irrelevant) images of a batch go through their backbone as one batch of
    B·K images; `chunk` > 0 caps the proposals per pass (GPU memory), 1 is a per-proposal loop.
    """

    def __init__(self, *, size, k, dim, heads, backbone, related_weights, irrelevant_weights,
                 channels, blocks, ofp_channels, temperature, chunk):
        super().__init__()
        self.size, self.temperature, self.chunk = tuple(size), temperature, chunk
        self.heads = nn.ModuleDict({f"{s}_{a}": ProposalHead(a, self.size, k, channels, blocks, ofp_channels)
                                    for s in ("amp", "phase") for a in ("u", "v")})
        self.related_backbone = build_backbone(backbone, dim, related_weights)
        self.irrelevant_backbone = build_backbone(backbone, dim, irrelevant_weights)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.score = nn.Sequential(nn.Linear(dim, dim // 2), nn.ReLU(), nn.Linear(dim // 2, dim // 4), nn.ReLU(),
                                   nn.Linear(dim // 4, 1), nn.Sigmoid())

    def _encode(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """(B, K, 3, N, M) -> (B, K, C), K folded into the batch (in chunks of `chunk` proposals)."""
        b, k = images.shape[:2]
        step = self.chunk or k
        parts = [backbone(part.reshape(-1, *images.shape[2:])) for part in images.split(step, dim=1)]
        return torch.cat([part.view(b, -1, part.shape[-1]) for part in parts], 1)

    def forward(self, images: torch.Tensor):
        amplitude, phase = half_spectrum(images)
        spectra = {"amp": torch.log1p(amplitude), "phase": phase}  # log: the amplitude spans decades
        bands = {name: head(spectra[name.split("_")[0]]) for name, head in self.heads.items()}  # (B, 3, K, 2)
        amp_mask = cross_masks(bands["amp_u"], bands["amp_v"], self.size, self.temperature)
        phase_mask = cross_masks(bands["phase_u"], bands["phase_v"], self.size, self.temperature)
        related_images, irrelevant_images = split_images(images, amp_mask, phase_mask)
        related = self._encode(self.related_backbone, related_images)
        irrelevant = self._encode(self.irrelevant_backbone, irrelevant_images)
        attended, _ = self.attention(related, related, related, need_weights=False)
        scores = self.score(attended)  # (B, K, 1) confidence per proposal
        f_related = (scores * related).sum(1) / scores.sum(1).clamp_min(1e-6)
        return f_related, irrelevant.mean(1), torch.stack(list(bands.values()), 1)


class SpectrumFrequencyBranch(nn.Module):
    """Table 4(a) line 5: no proposals; one backbone reads the log-amplitude and phase spectra (6 channels)."""

    def __init__(self, *, dim, backbone, weights):
        super().__init__()
        self.backbone = build_backbone(backbone, dim, weights, in_channels=6)

    def forward(self, images: torch.Tensor):
        amplitude, phase = half_spectrum(images)
        return self.backbone(torch.cat([torch.log1p(amplitude), phase], 1)), None, None


class APN(nn.Module):
    """Both explicit purification branches, their averaged features and a linear classifier on f^r (§3.1)."""

    def __init__(self, config, modules: Modules):
        super().__init__()
        self.parts = modules
        dim = config.feature_dim
        self.frequency = None
        if modules.frequency and modules.proposals:
            self.frequency = ProposalFrequencyBranch(
                size=(config.crop, config.crop), k=config.num_proposals, dim=dim, heads=config.attention_heads,
                backbone=config.freq_backbone, related_weights=config.freq_weights,
                irrelevant_weights=config.freq_weights, channels=config.extractor_channels,
                blocks=config.extractor_blocks, ofp_channels=config.ofp_channels,
                temperature=config.mask_temperature, chunk=config.proposal_chunk)
        elif modules.frequency:
            self.frequency = SpectrumFrequencyBranch(dim=dim, backbone=config.spectrum_backbone,
                                                     weights=config.spectrum_weights)
        self.spatial = build_backbone(config.spatial_backbone, dim, config.spatial_weights) if modules.spatial else None
        self.decomposition = (OrthogonalDecomposition(dim, learnable=modules.decomposition)
                              if modules.spatial else None)
        self.classifier = nn.Linear(dim, 1)
        self.band_epsilon = config.band_epsilon

    def basis_parameters(self) -> list[nn.Parameter]:
        """Ω^r and Ω^ir: §4.2.2 trains them at their own learning rate."""
        return list(self.decomposition.parameters()) if self.decomposition is not None else []

    def forward(self, images: torch.Tensor) -> APNOutput:
        zero = images.new_zeros(())
        related, irrelevant, band, basis, align = [], [], zero, zero, zero
        if self.frequency is not None:
            f_r, f_ir, bands = self.frequency(images)
            related.append(f_r)
            irrelevant += [f_ir] if f_ir is not None else []
            if bands is not None:
                band = band_loss(bands, self.band_epsilon)
        if self.spatial is not None:
            s_r, s_ir = self.decomposition(self.spatial(images))
            if self.frequency is not None:  # eq. 6, on the pairs both branches have
                align = sum(F.mse_loss(f.float(), s.float()) for f, s in zip((related[0], *irrelevant), (s_r, s_ir)))
            related.append(s_r)
            irrelevant.append(s_ir)
            if self.parts.decomposition:
                basis = self.decomposition.basis_loss()
        f_related = torch.stack(related).float().mean(0)
        f_irrelevant = torch.stack(irrelevant).float().mean(0)
        return APNOutput(self.classifier(f_related).squeeze(1), f_related, f_irrelevant, band, basis, align)
