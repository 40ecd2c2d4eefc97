"""The authors' released UnivFD probe as aigid's.

WisconsinAIVision/UniversalFakeDetect pretrained_weights/fc_weights.pth is the state dict of
their fc layer, {'weight': [1, 768], 'bias': [1]}, saved from cuda:0: a linear probe on CLIP
ViT-L/14's image embedding (encode_image, not normalised), the same nn.Linear(embed_dim, 1) and
the same features ("embedding") as UnivFDTrainer's probe, so the keys carry over as they are.
"""
from __future__ import annotations

import torch
from torch import nn

from aigid.methods.released import check_shapes, read_state, require_format
from aigid.methods.univfd.config import UnivFDConfig

EMBED_DIM = 768  # CLIP ViT-L/14's image embedding, what the released probe reads


def load(path, embed_dim: int = EMBED_DIM) -> nn.Linear:
    """The released probe at `path`, fully loaded, in eval mode."""
    state = read_state(path)
    require_format(state, "univfd", path)
    probe = nn.Linear(embed_dim, 1)
    check_shapes(state, {"weight": torch.Size((1, embed_dim)), "bias": torch.Size((1,))}, path,
                 f"a UnivFD probe on a {embed_dim}-d embedding")
    probe.load_state_dict(state, strict=True)
    return probe.eval()


# The released probe reads CLIP ViT-L/14 with OpenAI's weights: UnivFDConfig's defaults (the authors').
AUTHORS_BACKBONE = {"backbone": UnivFDConfig.backbone, "pretrained": UnivFDConfig.pretrained}


def released(path) -> tuple[dict, dict]:
    """MethodSpec.released: the backbone the file was trained on, and its probe as a trainer state's "model".
    Its width is checked against the backbone's embedding by `evaluate`, which loads it strictly."""
    state = read_state(path)
    require_format(state, "univfd", path)
    return dict(AUTHORS_BACKBONE), {"model": state}
