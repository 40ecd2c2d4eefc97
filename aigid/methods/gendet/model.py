"""GenDet's networks and losses (§3.2-3.3, eq. 1-5), on cached CLIP features.

Teacher N_t, student N_s and augmenter G are one transformer block each (width 196, 4 heads,
feed-forward ×4, §4.1); the classifier N_c is a block and a fully-connected layer. Readings
of what the paper leaves open, each stated where it is implemented:

- Input tokens (`Tokens`): the paper never says how a CLIP feature becomes a block's tokens.
  "embedding" (default) projects the pooled image embedding (768-d for ViT-L/14) to a short
  sequence of width-196 tokens; "patch" projects each last-block patch token to width 196.
  The embedding is the default because §3.3 stores every training feature before training,
  which for patch tokens would be 256 × 1024 numbers per image.
- Outputs: z = N(x) is the block's output tokens (B, L, 196). The teacher is trained as a
  binary classifier through a linear head on its mean token (`teacher_head`), used only by
  the teacher's own training and by the "teacher alone" detector of Tables 1-2.
- ‖·‖ of eq. 2 is over the whole flattened z of one sample (so the gap lies in [0, 4]).
  Eq. 1 and 3 square a vector: read, as the issue states it, as the mean of (z_t − z_s)² over
  the batch and z's elements, so their scale, and with it α's weight against eq. 1 in the
  student's shared optimizer, does not depend on the reading's token count or the width.
  Eq. 4's square is elementwise, so N_c reads (B, L, 196) tokens.
- G returns features in the extractor's space (N_t and N_s read them like x): a residual
  x + Δ(x) whose output layer starts at zero, so the first stage (b) sees the fake features
  themselves rather than a random map of them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aigid.methods.gendet.config import GenDetConfig


def transformer_block(config: GenDetConfig) -> nn.Module:
    """`layers` pre-norm transformer blocks of width `width`, `heads` heads, feed-forward × `ff_expansion`."""
    layer = nn.TransformerEncoderLayer(config.width, config.heads, config.ff_expansion * config.width,
                                       dropout=config.dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)


class Tokens(nn.Module):
    """A cached feature ((D,) embedding or (P, W) patch tokens) as (L, width) tokens."""

    def __init__(self, feature_shape: tuple[int, ...], config: GenDetConfig):
        super().__init__()
        self.reading, self.width = config.tokens, config.width
        expected = 1 if config.tokens == "embedding" else 2
        if len(feature_shape) != expected:
            raise ValueError(f"tokens={config.tokens!r} reads {'(D,) embeddings' if expected == 1 else '(P, W) patch tokens'}"
                             f", got cached features of shape {tuple(feature_shape)}")
        self.n_tokens = config.embedding_tokens if config.tokens == "embedding" else feature_shape[0]
        into = config.embedding_tokens * config.width if config.tokens == "embedding" else config.width
        self.proj = nn.Linear(feature_shape[-1], into)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(x)
        return tokens.unflatten(-1, (self.n_tokens, self.width)) if self.reading == "embedding" else tokens


class DiscrepancyNet(nn.Module):
    """N_t or N_s: tokens -> one transformer block -> z, (B, L, width)."""

    def __init__(self, feature_shape, config: GenDetConfig):
        super().__init__()
        self.tokens = Tokens(feature_shape, config)
        self.block = transformer_block(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.tokens(x))


class Augmenter(nn.Module):
    """G (§3.3): a transformer block mapping a feature to an augmented feature of the same shape."""

    def __init__(self, feature_shape, config: GenDetConfig):
        super().__init__()
        self.tokens = Tokens(feature_shape, config)
        self.block = transformer_block(config)
        self.back = nn.Linear(self.tokens.proj.out_features, feature_shape[-1])
        nn.init.zeros_(self.back.weight)
        nn.init.zeros_(self.back.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.block(self.tokens(x))
        delta = self.back(tokens.flatten(1)) if self.tokens.reading == "embedding" else self.back(tokens)
        return x + delta


class DiscrepancyClassifier(nn.Module):
    """N_c (eq. 5): a transformer block on the discrepancy tokens, then a fully-connected layer."""

    def __init__(self, config: GenDetConfig):
        super().__init__()
        self.block = transformer_block(config)
        self.fc = nn.Linear(config.width, 1)

    def forward(self, discrepancy: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(discrepancy).mean(1)).squeeze(-1)


class GenDet(nn.Module):
    """The four networks; `forward` is inference (eq. 5), which never calls the augmenter."""

    def __init__(self, feature_shape: tuple[int, ...], config: GenDetConfig):
        super().__init__()
        self.teacher = DiscrepancyNet(feature_shape, config)
        self.teacher_head = nn.Linear(config.width, 1)
        self.student = DiscrepancyNet(feature_shape, config)
        self.augmenter = Augmenter(feature_shape, config)
        self.classifier = DiscrepancyClassifier(config)

    def teacher_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher as the binary classifier it is first trained to be (§3.2)."""
        return self.teacher_head(self.teacher(x).mean(1)).squeeze(-1)

    def discrepancy(self, x: torch.Tensor) -> torch.Tensor:
        """D = (N_t(x) − N_s(x))², elementwise (eq. 4)."""
        return (self.teacher(x) - self.student(x)).pow(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fake logit Y_p = N_c((N_t(x) − N_s(x))²) (eq. 5)."""
        return self.classifier(self.discrepancy(x))


def squared_discrepancy(z_t: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
    """Eq. 1 (real features) and eq. 3 (augmented fake features): mean (z_t − z_s)² over batch and elements."""
    return (z_t - z_s).pow(2).mean()


def margin_loss(z_t: torch.Tensor, z_s: torch.Tensor, margin: float, alpha: float) -> torch.Tensor:
    """α · eq. 2, averaged over the batch: α · [M − ‖z_t/‖z_t‖ − z_s/‖z_s‖‖²]_+."""
    gap = (F.normalize(z_t.flatten(1), dim=1) - F.normalize(z_s.flatten(1), dim=1)).pow(2).sum(1)
    return alpha * F.relu(margin - gap).mean()
