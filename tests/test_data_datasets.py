"""Decoding odd image files, skipping broken ones, and the DataLoader built on top."""
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from aigid.data.datasets import (
    ImageDataset,
    UnreadableImage,
    UnreadableImageWarning,
    collate_skip_bad,
    load_rgb,
    make_loader,
)
from aigid.data.layouts import DataError, Sample

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)


def _save(img: Image.Image, path, **kwargs):
    img.save(path, **kwargs)
    return path


def _truncated(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("mode, name", [("L", "g.png"), ("1", "b.png"), ("LA", "la.png"), ("P", "p.png"),
                                        ("CMYK", "c.jpg"), ("YCbCr", "y.jpg"), ("RGB", "x.bmp"), ("RGB", "x.webp")])
def test_modes_become_rgb(tmp_path, mode, name):
    path = _save(Image.fromarray(RGB).convert(mode), tmp_path / name)
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (10, 12)


def test_rgba_drops_alpha_keeping_colours(tmp_path):
    rgba = np.dstack([RGB, np.zeros((12, 10), np.uint8)])  # fully transparent
    img = load_rgb(_save(Image.fromarray(rgba), tmp_path / "a.png"))
    assert np.array_equal(np.asarray(img), RGB)


def test_palette_with_transparency(tmp_path):
    pal = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    path = _save(pal, tmp_path / "t.png", transparency=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL warns when such a palette is converted straight to RGB
        img = load_rgb(path)
    assert np.array_equal(np.asarray(img), np.asarray(pal.convert("RGBA").convert("RGB")))


def test_16_bit_is_scaled_not_saturated(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    path = _save(Image.fromarray(ramp), tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    out = np.asarray(load_rgb(path))[:, :, 0].astype(int)
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_allclose(out, np.round(ramp / 257), atol=1)  # PIL's own convert clips to 255 from 256 up
    assert np.array_equal(out, np.asarray(load_rgb(path))[:, :, 2])


@pytest.mark.parametrize("values, expected", [(np.array([[0, 255]]), [0, 255]), (np.array([[0, 65535]]), [0, 255]),
                                              (np.array([[0, 32896]]), [0, 128])])
def test_32_bit_grey_uses_the_depth_that_holds_it(tmp_path, values, expected):
    path = _save(Image.fromarray(values.astype(np.int32)), tmp_path / "i.tif")
    assert Image.open(path).mode == "I"
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == expected


def test_float_image(tmp_path):
    path = _save(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)), tmp_path / "f.tif")
    assert np.asarray(load_rgb(path))[0, :, 1].tolist() == [0, 128, 255]


@pytest.mark.parametrize("name, fmt", [("t.png", "PNG"), ("t.jpg", "JPEG")])
def test_truncated_file_is_unreadable(tmp_path, name, fmt):
    path = _truncated(_save(Image.fromarray(np.tile(RGB, (8, 8, 1))), tmp_path / name, format=fmt))
    with pytest.raises(UnreadableImage, match=name) as err:
        load_rgb(path)
    assert err.value.path == str(path)


def test_garbage_file_is_unreadable(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(RNG.integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(UnreadableImage, match="garbage.png: UnidentifiedImageError"):
        load_rgb(path)


def test_unreadable_pickles_from_workers(tmp_path):
    err = pickle.loads(pickle.dumps(UnreadableImage(tmp_path / "x.png", "broken")))
    assert isinstance(err, DataError) and str(err) == f"cannot read image {tmp_path / 'x.png'}: broken"


@pytest.fixture
def mixed_samples(tmp_path):
    """Six images of distinct solid colours (value 10*i) and two broken files, interleaved."""
    samples = []
    for i in range(6):
        path = _save(Image.new("RGB", (16, 16), (10 * i,) * 3), tmp_path / f"ok_{i}.png")
        samples.append(Sample(str(path), i % 2, "s", "test"))
    bad = _truncated(_save(Image.fromarray(np.tile(RGB, (8, 8, 1))), tmp_path / "cut.png"))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg at all")
    samples.insert(2, Sample(str(bad), 1, "s", "test"))
    samples.insert(5, Sample(str(garbage), 0, "s", "test"))
    return samples


def test_dataset_skips_and_warns_once_per_file(mixed_samples):
    dataset = ImageDataset(mixed_samples, T.ToTensor())
    with pytest.warns(UnreadableImageWarning, match="cut.png") as caught:
        assert dataset[2] is None
        assert dataset[2] is None
    assert len(caught) == 1
    image, label = dataset[0]
    assert image.shape == (3, 16, 16) and label == 0


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_counts_skipped_files(mixed_samples, num_workers):
    loader = make_loader(mixed_samples, T.ToTensor(), batch_size=3, shuffle=True, num_workers=num_workers)
    assert loader.persistent_workers == (num_workers > 0) and loader.pin_memory == torch.cuda.is_available()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreadableImageWarning)
        batches = list(loader)
    assert sum(n for _, _, n in batches) == 2
    images = torch.cat([x for x, _, _ in batches])
    labels = torch.cat([y for _, y, _ in batches])
    assert images.shape == (6, 3, 16, 16) and labels.dtype == torch.float32
    assert sorted(round(v) for v in (images[:, 0, 0, 0] * 255).tolist()) == [0, 10, 20, 30, 40, 50]
    assert labels.sum().item() == 3


def test_loader_order_is_seeded(mixed_samples):
    def order(seed):
        loader = make_loader(mixed_samples[:2] + mixed_samples[3:5] + mixed_samples[6:], T.ToTensor(),
                             batch_size=6, shuffle=True, seed=seed)
        return (next(iter(loader))[0][:, 0, 0, 0] * 255).round().tolist()

    assert order(1) == order(1)
    assert sorted(order(1)) == [0, 10, 20, 30, 40, 50]
    assert len({tuple(order(seed)) for seed in range(5)}) > 1


def test_all_bad_batch():
    images, labels, skipped = collate_skip_bad([None, None, None])
    assert images.numel() == 0 and labels.numel() == 0 and labels.dtype == torch.float32 and skipped == 3


def test_empty_selection_is_an_error():
    with pytest.raises(DataError, match="no samples to load"):
        make_loader([], T.ToTensor(), batch_size=4, shuffle=False)
