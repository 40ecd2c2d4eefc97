"""Backbones: real open_clip models in tiny configs, real checkpoint files, no network."""
import time

import huggingface_hub
import open_clip
import pytest
import safetensors.torch
import torch

import aigid.backbones as backbones
from aigid.backbones import (
    CONFIG_DIR, PAPER_BACKBONES, TINY_BACKBONES, BackboneError, block_cls_tokens, check_backbone,
    create_image_encoder, resolve_model_name,
)


def images(batch=2, seed=0):
    return torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def tiny_vit():
    torch.manual_seed(0)
    return create_image_encoder("aigid-tiny-vit", None)[0]


def test_tiny_configs_ship_as_package_data_and_are_registered():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.json")) == sorted(TINY_BACKBONES)
    assert set(TINY_BACKBONES) <= set(open_clip.list_models())


@pytest.mark.parametrize("name, num_blocks", [("aigid-tiny-rn", None), ("aigid-tiny-vit", 4)])
def test_tiny_encoder_builds_offline_with_random_weights(name, num_blocks):
    visual, info = create_image_encoder(name, "none")
    assert visual.training and all(p.dtype == torch.float32 for p in visual.parameters())
    assert visual(images()).shape == (2, 32)
    assert info == backbones.EncoderInfo(
        name=name, pretrained=None, embed_dim=32, image_size=224,
        mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD, num_blocks=num_blocks,
    )


def test_the_random_init_stand_in_vit_has_image_driven_cls_tokens():
    """Zero class and positional embeddings (backbones._image_driven_cls): the CLS token of a random-init
    tiny ViT follows the image instead of its random embeddings (what RINE's head needs offline)."""
    visual, _ = create_image_encoder("aigid-tiny-vit", None)
    assert not visual.class_embedding.any() and not visual.positional_embedding.any()
    cls = backbones.block_cls_tokens(visual.eval(), images(4))
    assert (cls.std(0) / cls.mean(0).abs()).median() > 1  # images differ by more than what they share


def test_random_init_id_follows_the_architecture(monkeypatch):
    """A feature cache entry of a random-init tower is keyed by its architecture, so editing a stand-in's
    config recomputes its features (and leaves pretrained entries alone)."""
    before = backbones.random_init_id("aigid-tiny-vit")
    config = open_clip.get_model_config("aigid-tiny-vit")
    config["vision_cfg"]["patch_size"] = 32
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "aigid-tiny-vit", config)
    assert backbones.random_init_id("aigid-tiny-vit") != before


def test_rn50_builds_offline_with_random_weights():
    visual, info = create_image_encoder("RN50", None)
    assert 38e6 < sum(p.numel() for p in visual.parameters()) < 39e6
    assert (info.name, info.embed_dim, info.image_size, info.num_blocks) == ("RN50", 1024, 224, None)


@pytest.mark.parametrize("name, pretrained, expected", [
    ("ViT-L-14", "openai", "ViT-L-14-quickgelu"),
    ("RN50", "openai", "RN50-quickgelu"),  # its text tower uses QuickGELU; open_clip warns on a mismatch
    ("ViT-B-32", "metaclip_400m", "ViT-B-32-quickgelu"),
    ("ViT-B-16", "laion2b_s34b_b88k", "ViT-B-16"),
    ("ViT-L-14", None, "ViT-L-14"),
    ("ViT-L-14-quickgelu", "openai", "ViT-L-14-quickgelu"),
    ("aigid-tiny-vit", None, "aigid-tiny-vit"),
    ("aigid-tiny-rn", "none", "aigid-tiny-rn"),
])
def test_resolve_model_name_matches_the_activation_the_weights_were_trained_with(name, pretrained, expected):
    assert resolve_model_name(name, pretrained) == expected


def test_resolve_model_name_treats_openai_named_files_as_quickgelu(tmp_path):
    (tmp_path / "ViT-B-32-openai.pt").write_bytes(b"")
    (tmp_path / "finetuned.pt").write_bytes(b"")
    assert resolve_model_name("ViT-B-32", str(tmp_path / "ViT-B-32-openai.pt")) == "ViT-B-32-quickgelu"
    assert resolve_model_name("ViT-B-32", str(tmp_path / "finetuned.pt")) == "ViT-B-32"


@pytest.mark.parametrize("pretrained", [None, "none", "", "openai", "laion2b_s32b_b82k"])
def test_check_backbone_accepts_tags_and_random_init(pretrained):
    check_backbone("ViT-L-14", pretrained)


@pytest.mark.parametrize("name, pretrained, fix", [
    ("ViT-Q-99", None, "open_clip.list_models()"),
    ("ViT-Q-99", None, "RN50, RN101, ViT-L-14, ViT-B-32, ViT-B-16"),
    ("RN50", "/no/such/RN50.pt", "--pretrained none"),
    ("RN50", "weights.safetensors", "is not an existing file"),
    ("RN50", "laion9000", "openai, yfcc15m, cc12m"),
    ("aigid-tiny-rn", "openai", "no published weights"),
])
def test_check_backbone_errors_name_the_fix(name, pretrained, fix):
    with pytest.raises(BackboneError) as error:
        check_backbone(name, pretrained)
    assert fix in str(error.value)


def test_paper_backbones_are_open_clip_architectures_with_openai_weights():
    for name in PAPER_BACKBONES:
        check_backbone(name, "openai")


def full_state_dict_pt(model, path):
    torch.save(model.state_dict(), path)


def full_safetensors(model, path):
    safetensors.torch.save_file(model.state_dict(), str(path))


def visual_only_state_dict(model, path):
    torch.save(model.visual.state_dict(), path)


def openai_torchscript(model, path):
    torch.jit.save(torch.jit.script(model), str(path))


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("save, filename", [
    (full_state_dict_pt, "full.pt"),
    (full_safetensors, "full.safetensors"),
    (visual_only_state_dict, "visual.pth"),
    (openai_torchscript, "jit.pt"),
])
def test_checkpoint_round_trip(tmp_path, save, filename):
    torch.manual_seed(1)
    source = open_clip.create_model("aigid-tiny-vit")
    path = tmp_path / filename
    save(source, path)
    visual, info = create_image_encoder("aigid-tiny-vit", str(path))
    assert same_weights(visual, source.visual)
    assert info.pretrained == str(path.resolve())
    assert visual.training


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_checkpoints_are_openai_so_resolve_to_quickgelu(tmp_path):
    path = tmp_path / "weights.pt"
    openai_torchscript(open_clip.create_model("aigid-tiny-rn"), path)
    assert resolve_model_name("ViT-B-32", str(path)) == "ViT-B-32-quickgelu"


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "rn.pt"
    torch.save(create_image_encoder("aigid-tiny-rn", None)[0].state_dict(), path)
    with pytest.raises(BackboneError, match="does not fit the aigid-tiny-vit image encoder"):
        create_image_encoder("aigid-tiny-vit", str(path))


def test_unreachable_pretrained_tag_fails_fast_with_the_fix(tmp_path, monkeypatch):
    # The network edge: the hub is unreachable and the cache is empty, on any machine.
    monkeypatch.setattr(backbones, "_hub_reachable", lambda endpoint: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(BackboneError) as error:
        create_image_encoder("RN50", "openai")
    assert time.monotonic() - start < 10  # huggingface_hub alone retries for ~45 s
    message = str(error.value)
    assert "could not load pretrained weights 'openai' for RN50" in message
    assert "--pretrained /path/to/RN50-openai.pt" in message and "--pretrained none" in message
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # offline mode was only borrowed


def test_tiny_backbones_have_no_tags():
    with pytest.raises(BackboneError, match="no published weights"):
        create_image_encoder("aigid-tiny-rn")


def cls_after_each_block(visual, x):
    out = visual.forward_intermediates(x, intermediates_only=True, output_extra_tokens=True)
    return torch.cat(out["image_intermediates_prefix"], dim=1)  # (B, n_blocks, width)


def test_block_cls_tokens_tap_block_matches_open_clip_intermediates(tiny_vit):
    x = images()
    with torch.no_grad():
        tokens = block_cls_tokens(tiny_vit, x, tap="block")
        assert tokens.shape == (2, 4, 64)
        torch.testing.assert_close(tokens, cls_after_each_block(tiny_vit, x))


def test_block_cls_tokens_tap_ln_2_is_the_normed_residual_before_the_mlp(tiny_vit):
    x = images()
    block = tiny_vit.transformer.resblocks[0]
    with torch.no_grad():
        tokens = block_cls_tokens(tiny_vit, x)  # tap="ln_2" is the default: RINE's
        h = tiny_vit._embeds(x)
        a = block.ln_1(h)
        expected = block.ln_2(h + block.attn(a, a, a, need_weights=False)[0])[:, 0]
        assert tokens.shape == (2, 4, 64)
        torch.testing.assert_close(tokens[:, 0], expected)
        assert not torch.allclose(tokens, block_cls_tokens(tiny_vit, x, tap="block"))


def test_block_cls_tokens_leaves_the_model_as_it_was(tiny_vit):
    x = images()
    with torch.no_grad():
        before = tiny_vit(x)
        block_cls_tokens(tiny_vit, x, tap="ln_2")
        block_cls_tokens(tiny_vit, x, tap="block")
        torch.testing.assert_close(tiny_vit(x), before)
    for block in tiny_vit.transformer.resblocks:
        assert not block._forward_hooks and not block.ln_2._forward_hooks


def test_block_cls_tokens_handles_sequence_first_transformers():
    torch.manual_seed(0)
    visual = create_image_encoder("aigid-tiny-vit", None)[0].eval()
    x = images()
    with torch.no_grad():
        batch_first = block_cls_tokens(visual, x), block_cls_tokens(visual, x, tap="block")
        visual.transformer.batch_first = False  # the (tokens, batch, width) layout of older open_clip
        for block in visual.transformer.resblocks:
            block.attn.batch_first = False
        seq_first = block_cls_tokens(visual, x), block_cls_tokens(visual, x, tap="block")
    for a, b in zip(batch_first, seq_first):
        torch.testing.assert_close(a, b)


def test_block_cls_tokens_needs_a_vit():
    visual = create_image_encoder("aigid-tiny-rn", None)[0]
    with pytest.raises(BackboneError, match="need a ViT"):
        block_cls_tokens(visual, images())


def test_torchvision_resnet50_random_init_local_checkpoint_and_bad_tag(tmp_path):
    """LoL Fig. 2's standard ResNet-50: torchvision's architecture without its classifier, ImageNet
    preprocessing; weights from a tag, a local state dict, or none."""
    from aigid.backbones import IMAGENET_MEAN

    encoder, info = create_image_encoder("tv-resnet50", None)
    assert (info.embed_dim, info.mean, info.pretrained) == (2048, IMAGENET_MEAN, None)
    assert encoder(torch.zeros(2, 3, 64, 64)).shape == (2, 2048)
    from torchvision.models import resnet50

    saved = resnet50(weights=None)
    torch.save(saved.state_dict(), tmp_path / "resnet50-local.pth")
    loaded, info = create_image_encoder("tv-resnet50", str(tmp_path / "resnet50-local.pth"))
    assert torch.equal(loaded.conv1.weight, saved.conv1.weight) and info.pretrained.endswith("resnet50-local.pth")
    with pytest.raises(BackboneError, match="no torchvision weights 'openai'.*IMAGENET1K_V1"):
        check_backbone("tv-resnet50", "openai")
    check_backbone("tv-resnet50", "IMAGENET1K_V1")  # a tag torchvision knows: loading it may need the network
