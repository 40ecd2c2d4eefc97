"""open_clip image encoders: names, weights (open_clip tag | local checkpoint | none), block tokens;
and torchvision's ImageNet ResNets (LoL Fig. 2's "standard ResNet50") under the same conventions.

Every method builds its backbone here, so the rules that silently ruin results live in one
place: OpenAI weights get their QuickGELU architecture, a weights source that cannot be
loaded is an error that says what to pass instead (never a random-init fallback), and
RINE's per-block CLS tokens are tapped where its authors tap them.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from huggingface_hub import constants as hf_hub_constants, get_session
from open_clip.factory import load_state_dict
from open_clip.model import _build_vision_tower  # private, stable since open_clip 2.0: the image tower alone
from open_clip.transformer import VisionTransformer
from torchvision import models as tv_models

from aigid.checkpoints import refusal
from aigid.errors import UserError, one_line

PAPER_BACKBONES = ("RN50", "RN101", "ViT-L-14", "ViT-B-32", "ViT-B-16")
TINY_BACKBONES = ("aigid-tiny-rn", "aigid-tiny-vit")
CONFIG_DIR = Path(__file__).parent / "configs"

if not set(TINY_BACKBONES) <= set(open_clip.list_models()):
    open_clip.add_model_config(CONFIG_DIR)

# torchvision ImageNet classifiers as image encoders: name -> (builder, weights enum). Tags are the
# enum's members (IMAGENET1K_V1: torchvision's original ResNet-50 weights); the classifier is dropped.
TORCHVISION_BACKBONES = {"tv-resnet50": (tv_models.resnet50, tv_models.ResNet50_Weights),
                         "tv-resnet18": (tv_models.resnet18, tv_models.ResNet18_Weights)}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
_LIST_MODELS = '`python -c "import open_clip; print(open_clip.list_models())"`'


class BackboneError(UserError):
    """A backbone name or weights source that cannot be used; the message says what to pass instead."""


@dataclass(frozen=True)
class EncoderInfo:
    """What callers need to feed and size a visual tower: its output width and preprocessing."""
    name: str  # the open_clip architecture built, after resolve_model_name
    pretrained: str | None  # tag, absolute checkpoint path, or None for random init
    embed_dim: int
    image_size: int
    mean: tuple
    std: tuple
    num_blocks: int | None  # transformer blocks of a ViT; None for ResNets


def _is_random_init(pretrained: str | None) -> bool:
    return pretrained is None or pretrained.strip().lower() in ("", "none")


def _local_file(name: str, pretrained: str) -> Path | None:
    """`pretrained` as an existing checkpoint file; an open_clip tag of `name` wins, as in open_clip."""
    path = Path(pretrained).expanduser()
    if open_clip.is_pretrained_cfg(name, pretrained) or not path.is_file():
        return None
    return path.resolve()


def _is_torchscript(path: Path) -> bool:
    """OpenAI's own downloads (RN50.pt, ViT-L-14.pt) are TorchScript archives: zips with constants.pkl."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def resolve_model_name(name: str, pretrained: str | None) -> str:
    """The open_clip architecture to build: `<name>-quickgelu` where the weights were trained with QuickGELU.

    The activation leaves no trace in a state dict, so GELU weights load fine into a
    QuickGELU model and vice versa, and features are silently wrong. Tags say which they
    are; a local file counts as OpenAI's (QuickGELU) when it is a TorchScript archive or
    its path contains "openai" — otherwise pass the '-quickgelu' name explicitly.
    """
    quick = f"{name}-quickgelu"
    if _is_random_init(pretrained) or quick not in open_clip.list_models():
        return name
    path = _local_file(name, pretrained)
    if path is not None:
        uses_quick_gelu = _is_torchscript(path) or "openai" in str(path).lower()
    else:
        uses_quick_gelu = open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False)
    return quick if uses_quick_gelu else name


def _check_torchvision(name: str, pretrained: str | None) -> None:
    if _is_random_init(pretrained) or Path(pretrained).expanduser().is_file():
        return
    tags = [w.name for w in TORCHVISION_BACKBONES[name][1]]
    if pretrained not in tags:
        raise BackboneError(f"{name} has no torchvision weights {pretrained!r} (its tags: {', '.join(tags)}): pass one "
                            f"of those, a local checkpoint file, or --pretrained none for random init")


def check_backbone(name: str, pretrained: str | None) -> None:
    """Cheap pre-flight before launching trials: builds nothing, touches no network."""
    if name in TORCHVISION_BACKBONES:
        return _check_torchvision(name, pretrained)
    if name not in open_clip.list_models():
        raise BackboneError(
            f"unknown backbone {name!r}: the papers use {', '.join(PAPER_BACKBONES)}; tests and smoke runs use "
            f"{', '.join(TINY_BACKBONES)}; torchvision's ImageNet {', '.join(TORCHVISION_BACKBONES)}; any open_clip "
            f"architecture also works, list them with {_LIST_MODELS}"
        )
    if _is_random_init(pretrained) or _local_file(name, pretrained) is not None:
        return
    if "/" in pretrained or pretrained.lower().endswith(_CHECKPOINT_SUFFIXES):
        raise BackboneError(
            f"checkpoint {pretrained!r} is not an existing file: pass one (on every node that runs trials), "
            f"an open_clip tag such as 'openai', or --pretrained none for random init"
        )
    if not open_clip.is_pretrained_cfg(name, pretrained):
        tags = open_clip.list_pretrained_tags_by_model(name)
        known = f"its tags: {', '.join(tags)}" if tags else "open_clip has no published weights for it"
        raise BackboneError(
            f"{name} has no pretrained tag {pretrained!r} ({known}): pass "
            f"{'one of those, ' if tags else ''}a local checkpoint file, or --pretrained none for random init"
        )


def _hub_reachable(endpoint: str) -> bool:
    try:
        get_session().head(endpoint, timeout=3)
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _offline_unless_hub_reachable():
    """huggingface_hub retries an unreachable hub with backoff (~45 s for one tag) before failing: when
    it cannot be reached, switch it (process-wide, while fetching) to offline mode, where cached files
    still load and a missing one fails at once."""
    offline = hf_hub_constants.HF_HUB_OFFLINE
    hf_hub_constants.HF_HUB_OFFLINE = offline or not _hub_reachable(hf_hub_constants.ENDPOINT)
    try:
        yield
    finally:
        hf_hub_constants.HF_HUB_OFFLINE = offline


def _fetch_tag(name: str, tag: str) -> Path:
    """The local file of an open_clip tag's weights, from the cache or the network."""
    try:
        with _offline_unless_hub_reachable():
            return Path(open_clip.download_pretrained(open_clip.get_pretrained_cfg(name, tag)))
    except Exception as error:
        reason = str(error).rstrip(".")
        raise BackboneError(
            f"could not load pretrained weights {tag!r} for {name}: {reason}. Without network access pass a "
            f"local checkpoint (--pretrained /path/to/{name}-{tag}.pt; download it once on a machine with internet "
            f"with `python -c \"import open_clip; open_clip.create_model('{name}', pretrained='{tag}')\"` and copy "
            f"~/.cache/huggingface) or --pretrained none for random init."
        ) from error


def _load_visual_weights(visual: torch.nn.Module, path: Path, name: str) -> None:
    """Loads a full CLIP checkpoint (open_clip or OpenAI, incl. TorchScript) or a visual-only state dict."""
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():  # torch deprecates TorchScript; OpenAI's files still are
                warnings.simplefilter("ignore", FutureWarning)
                state = torch.jit.load(path, map_location="cpu").state_dict()
        else:
            state = load_state_dict(str(path))  # .safetensors, {"state_dict": ...}, "module." prefixes
    except pickle.UnpicklingError as error:  # torch's weights-only refusal: the file would run code
        raise BackboneError(f"{refusal(path, error)}; pass a plain state dict of tensors (or .safetensors) "
                            "saved from a copy you trust, an open_clip tag, or --pretrained none") from None
    except Exception as error:
        raise BackboneError(f"could not read checkpoint {path}: {one_line(error)}") from error
    if any(key.startswith("visual.") for key in state):
        state = {key[len("visual."):]: value for key, value in state.items() if key.startswith("visual.")}
    try:
        visual.load_state_dict(state)
    except RuntimeError as error:
        raise BackboneError(
            f"checkpoint {path} does not fit the {name} image encoder; pass the backbone it was trained "
            f"with (e.g. RN50 vs ViT-L-14, or '-quickgelu' variants). {one_line(error)[:400]}"
        ) from error


def require_vit(name: str, why: str) -> None:
    """Pre-flight for methods that read ViT tokens: a ResNet backbone is a BackboneError naming ViTs to use."""
    config = open_clip.get_model_config(name)
    if config is not None and not isinstance(config["vision_cfg"].get("layers"), int):
        raise BackboneError(f"{why} of a ViT; {name} is a ResNet: use ViT-L-14 or ViT-B-32 (aigid-tiny-vit offline)")


def random_init_id(name: str) -> str:
    """What decides a random-init tower besides the torch seed: its architecture (an edited config is
    another model) and, for the stand-ins, the zeroed embeddings (`_image_driven_cls`)."""
    vision = json.dumps(open_clip.get_model_config(name)["vision_cfg"], sort_keys=True)
    return f"random init of {name} {vision}" + (", image-driven CLS" if name in TINY_BACKBONES else "")


def _image_driven_cls(visual: torch.nn.Module) -> None:
    """Zero a random-init stand-in ViT's class and positional embeddings. Random ones (std width^-0.5)
    are most of each 64-wide CLS token, which then barely depends on the image, and RINE's head cannot
    learn from tokens alike for every image; zeroed, the first block's CLS is a mean over the patches
    (measured in aigid/methods/rine/config.py). The frozen stand-in is then blind to where a patch
    lies, which its artefacts (spread over the whole image) do not need; LoL fine-tunes the
    embeddings from zero. Pretrained CLIP tokens need no such help."""
    if isinstance(visual, VisionTransformer):
        with torch.no_grad():
            visual.class_embedding.zero_()
            visual.positional_embedding.zero_()


def _torchvision_encoder(name: str, pretrained: str | None) -> tuple[torch.nn.Module, EncoderInfo]:
    """A torchvision ImageNet ResNet without its classifier (2048-wide features for ResNet-50)."""
    build, weights_enum = TORCHVISION_BACKBONES[name]
    model = build(weights=None)
    if _is_random_init(pretrained):
        pretrained = None
    elif Path(pretrained).expanduser().is_file():
        pretrained = str(Path(pretrained).expanduser().resolve())
        try:
            model.load_state_dict(torch.load(pretrained, map_location="cpu", weights_only=True))
        except Exception as error:
            raise BackboneError(f"checkpoint {pretrained} is not a {name} state dict (torchvision's own file, "
                                f"e.g. resnet50-0676ba61.pth): {' '.join(str(error).split())[:300]}") from error
    else:
        try:
            model.load_state_dict(weights_enum[pretrained].get_state_dict(progress=False))
        except Exception as error:
            reason = str(error).rstrip(".")
            raise BackboneError(
                f"could not load torchvision weights {pretrained!r} for {name}: {reason}. Without network access pass "
                f"a local checkpoint (--pretrained /path/to/{weights_enum[pretrained].url.rsplit('/', 1)[-1]}, "
                f"downloaded once from {weights_enum[pretrained].url}) or --pretrained none for random init."
            ) from error
    width = model.fc.in_features
    model.fc = torch.nn.Identity()
    return model, EncoderInfo(name=name, pretrained=pretrained, embed_dim=width, image_size=224, mean=IMAGENET_MEAN,
                              std=IMAGENET_STD, num_blocks=None)


def create_image_encoder(
    name: str, pretrained: str | None = "openai", *, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, EncoderInfo]:
    """The CLIP visual tower of `name` (float32, train mode, on `device`) and how to feed it.

    pretrained: an open_clip tag (may need the network), a local checkpoint file, or
    None/'none' for random init (the tiny stand-in ViT then with `_image_driven_cls`). Only the
    image tower is built: the methods never use the text tower, which for ViT-L-14 would be
    123M parameters of waste.
    """
    check_backbone(name, pretrained)
    if name in TORCHVISION_BACKBONES:
        model, info = _torchvision_encoder(name, pretrained)
        return model.to(device=device, dtype=torch.float32).train(), info
    model_name = resolve_model_name(name, pretrained)
    cfg = open_clip.get_model_config(model_name)
    visual = _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=cfg.get("quick_gelu", False))
    preprocess = {}
    if _is_random_init(pretrained):
        pretrained = None
        if model_name in TINY_BACKBONES:
            _image_driven_cls(visual)
    elif (path := _local_file(name, pretrained)) is not None:
        pretrained = str(path)
        _load_visual_weights(visual, path, model_name)
    else:
        preprocess = open_clip.get_pretrained_cfg(model_name, pretrained)
        _load_visual_weights(visual, _fetch_tag(name, pretrained), model_name)
    size = cfg["vision_cfg"].get("image_size", 224)
    info = EncoderInfo(
        name=model_name,
        pretrained=pretrained,
        embed_dim=cfg["embed_dim"],
        image_size=size if isinstance(size, int) else size[0],
        mean=tuple(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(preprocess.get("std", open_clip.OPENAI_DATASET_STD)),
        num_blocks=len(visual.transformer.resblocks) if isinstance(visual, VisionTransformer) else None,
    )
    return visual.to(device=device, dtype=torch.float32).train(), info


def block_cls_tokens(visual: torch.nn.Module, images: torch.Tensor, *, tap: str = "ln_2") -> torch.Tensor:
    """The CLS token after every transformer block of a ViT visual tower, (B, n_blocks, width).

    tap="ln_2": each block's second LayerNorm output, ln_2(x + attn(ln_1(x))) before the
    MLP — where the RINE authors hook (mever-team/rine, src/models.py). tap="block": the
    block output, as open_clip's forward_intermediates returns it.
    """
    if not isinstance(visual, VisionTransformer):
        raise BackboneError(
            f"per-block CLS tokens need a ViT image encoder, got {type(visual).__name__}: "
            f"use a ViT backbone such as ViT-L-14, ViT-B-32 or aigid-tiny-vit"
        )
    if tap not in ("ln_2", "block"):
        raise ValueError(f"tap must be 'ln_2' or 'block', got {tap!r}")
    batch_first = visual.transformer.batch_first  # else blocks see (tokens, batch, width)
    tokens = []

    def keep_cls(_module, _inputs, output):
        tokens.append(output[:, 0] if batch_first else output[0])

    blocks = visual.transformer.resblocks
    hooks = [(block.ln_2 if tap == "ln_2" else block).register_forward_hook(keep_cls) for block in blocks]
    try:
        visual(images)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(tokens, dim=1)


def patch_tokens(visual: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The last block's patch tokens after the final LayerNorm (ln_post), (B, n_patches, width):
    the spatial tokens CLIP pools its embedding from (ViT-L/14 at 224: 256 × 1024)."""
    if not isinstance(visual, VisionTransformer):
        raise BackboneError(
            f"patch tokens need a ViT image encoder, got {type(visual).__name__}: "
            f"use a ViT backbone such as ViT-L-14, ViT-B-32 or aigid-tiny-vit, or the pooled embedding"
        )
    out = visual.forward_intermediates(images, indices=1, normalize_intermediates=True,
                                       intermediates_only=True, output_fmt="NLC")
    return out["image_intermediates"][-1]
