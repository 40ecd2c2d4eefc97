"""Tiling small images, crop pipelines, and their picklability."""
import importlib
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from aigid.data import transforms as tf  # not importing test_transform by name: pytest would collect it
from aigid.data.datasets import load_rgb
from aigid.data.transforms import CLIP_MEAN, CLIP_STD, RandomRot90, tile_to_size, train_transform

from aigid.methods.rine.augment import CNNDetectionAugment
from aigid.methods.rine.config import SMALL_IMAGES as RINE_SMALL

PIXELS = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)


def test_tile_repeats_content():
    out = np.asarray(tile_to_size(Image.fromarray(PIXELS), 224))
    assert out.shape == (224, 224, 3)
    assert np.array_equal(out[:128, :128], PIXELS)
    assert np.array_equal(out[128:, :128], PIXELS[:96])
    assert np.array_equal(out[:128, 128:], PIXELS[:, :96])
    assert np.array_equal(out[128:, 128:], PIXELS[:96, :96])


def test_tile_grows_only_the_short_side():
    wide = Image.fromarray(np.tile(PIXELS, (1, 3, 1)))  # 384 wide, 128 high
    out = tile_to_size(wide, 224)
    assert out.size == (384, 224)
    big = Image.fromarray(np.tile(PIXELS, (2, 2, 1)))
    assert tile_to_size(big, 224) is big


@pytest.mark.parametrize("small", ["tile", "pad"])
@pytest.mark.parametrize("make", [train_transform, tf.test_transform])
def test_small_image_gives_full_crop(make, small):
    x = make(224, small=small)(Image.fromarray(PIXELS))
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32


def test_normalisation_uses_clip_statistics():
    mean_colour = tuple(round(m * 255) for m in CLIP_MEAN)
    x = tf.test_transform(32, small="tile")(Image.new("RGB", (40, 40), mean_colour))
    assert x.abs().max() < 0.01
    x = tf.test_transform(32, small="tile")(Image.new("RGB", (40, 40), (255, 255, 255)))
    assert torch.allclose(x[:, 0, 0], (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD))


def test_test_transform_is_the_centre_crop():
    x = tf.test_transform(64, small="tile", mean=(0, 0, 0), std=(1, 1, 1))(Image.fromarray(PIXELS))
    assert torch.equal((x * 255).round().byte().permute(1, 2, 0), torch.from_numpy(PIXELS[32:96, 32:96]))


def test_train_transform_without_flip_or_rotation_only_crops():
    torch.manual_seed(0)
    x = train_transform(128, small="tile", flip=False, rotate=False, mean=(0, 0, 0), std=(1, 1, 1))(Image.fromarray(PIXELS))
    assert torch.equal((x * 255).round().byte().permute(1, 2, 0), torch.from_numpy(PIXELS))


def test_rotation_is_a_lossless_right_angle():
    torch.manual_seed(0)
    img = Image.fromarray(PIXELS[:, :64])  # not square, so turns show in the size
    seen = {np.asarray(RandomRot90()(img)).tobytes() for _ in range(40)}
    expected = {np.ascontiguousarray(np.rot90(PIXELS[:, :64], k)).tobytes() for k in range(4)}
    assert seen == expected


def test_transforms_pickle_and_replay():
    transform = train_transform(96, small="tile")
    clone = pickle.loads(pickle.dumps(transform))
    img = Image.fromarray(PIXELS)
    torch.manual_seed(3)
    a = transform(img)
    torch.manual_seed(3)
    assert torch.equal(a, clone(img))
    pickle.dumps(tf.test_transform(96, small="pad"))


def test_bad_crop_size():
    with pytest.raises(ValueError, match="crop size"):
        train_transform(0, small="tile")


def test_an_unknown_small_image_rule_is_refused():
    with pytest.raises(ValueError, match="small-image rule must be one of"):
        tf.test_transform(224, small="stretch")


@pytest.mark.parametrize("method,rule", [("lol", "tile"), ("rine", "pad"), ("univfd", "pad"), ("apn", "pad"),
                                         ("gendet", "pad")])
def test_each_method_grows_a_small_image_file_by_its_own_rule(tmp_path, method, rule):
    """A 128 px PNG through each method's test view: LoL tiles it (§4.2); RINE and UnivFD zero-pad it as
    their authors' CenterCrop does; APN and GenDet are silent and pad (their config modules say why)."""
    small = importlib.import_module(f"aigid.methods.{method}.config").SMALL_IMAGES
    assert small == rule
    Image.fromarray(PIXELS).save(tmp_path / "small.png")
    view = tf.test_transform(224, small=small, mean=(0, 0, 0), std=(1, 1, 1))(load_rgb(str(tmp_path / "small.png")))
    pixels = (view * 255).round().byte().permute(1, 2, 0).numpy()
    if rule == "tile":
        assert np.array_equal(pixels[:128, :128], PIXELS) and np.array_equal(pixels[128:, 128:], PIXELS[:96, :96])
    else:  # centred on zeros: 48 px of black on each side
        assert np.array_equal(pixels[48:176, 48:176], PIXELS)
        assert not pixels[:48].any() and not pixels[176:].any() and not pixels[:, :48].any()


def test_rines_training_view_pads_a_small_image_file(tmp_path):
    Image.fromarray(PIXELS).save(tmp_path / "small.png")
    augment = CNNDetectionAugment(224, small=RINE_SMALL, blur_prob=0, jpeg_prob=0, flip_prob=0, mean=(0, 0, 0),
                                  std=(1, 1, 1))
    view = augment(load_rgb(str(tmp_path / "small.png")), np.random.default_rng(0))
    pixels = (view * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(pixels[48:176, 48:176], PIXELS) and not pixels[:48].any()
    assert "small='pad'" in repr(augment)  # in the feature cache's key
