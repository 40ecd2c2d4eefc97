"""The synthetic stand-in benchmark: layout, determinism, safety, and that it is learnable in
a way that varies across generators (what a cross-generator table needs)."""
import hashlib
import json

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T

from aigid.data.datasets import load_rgb
from aigid.data.layouts import SUBSET_IDS, SYNTHETIC_MARKER, DataError, scan
from aigid.data.synthetic import GENIMAGE, ensure_synthetic, make_synthetic
from aigid.data.transforms import CLIP_MEAN, CLIP_STD, train_transform


@pytest.fixture(scope="module")
def genimage(tmp_path_factory):
    """The default-sized GenImage-layout set, written once for this module."""
    return make_synthetic(tmp_path_factory.mktemp("synthetic") / "genimage", seed=0)


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_genimage_layout_and_marker(genimage):
    index = scan(genimage)
    assert (index.layout, index.synthetic, index.problems) == ("genimage", True, [])
    assert index.subsets("train") == index.subsets("val") == list(SUBSET_IDS)
    for subset in SUBSET_IDS:
        assert (genimage / GENIMAGE[subset][0] / "val" / "nature").is_dir()
        for split, n in (("train", 24), ("val", 12)):
            assert [len(index.select(split, [subset], labels=[label])) for label in (0, 1)] == [n, n]
    marker = json.loads((genimage / SYNTHETIC_MARKER).read_text())
    assert marker["synthetic"] is True and marker["params"]["seed"] == 0 and marker["images"] == 576


def test_sizes_and_formats_are_mixed_for_both_labels(genimage):
    index = scan(genimage)
    for label in (0, 1):
        samples = [s for s in index.samples if s.label == label and s.subset != "biggan"]
        sizes = {Image.open(s.path).size for s in samples}
        assert {(128, 128), (320, 320)} <= sizes  # some below a 224 crop
        assert {s.path.rsplit(".", 1)[1] for s in samples} == {"png", "JPEG"}
    assert {Image.open(s.path).size for s in index.select("val", ["biggan"], labels=[1])} == {(128, 128)}


def test_same_seed_same_bytes(tmp_path):
    a = make_synthetic(tmp_path / "a", seed=7, n_train=2, n_test=1)
    b = make_synthetic(tmp_path / "b", seed=7, n_train=2, n_test=1)
    c = make_synthetic(tmp_path / "c", seed=8, n_train=2, n_test=1)
    assert _digest(a) == _digest(b)
    assert len(_digest(c)) == len(_digest(a)) and _digest(a) != _digest(c)
    # an image depends on the seed and its path, not on how many images were asked for
    d = make_synthetic(tmp_path / "d", seed=7, n_train=3, n_test=1)
    assert {k: v for k, v in _digest(d).items() if k in _digest(a) and k != SYNTHETIC_MARKER} == {
        k: v for k, v in _digest(a).items() if k != SYNTHETIC_MARKER
    }


def test_ensure_reuses_or_regenerates(tmp_path):
    out = ensure_synthetic(tmp_path / "set", n_train=1, n_test=1)
    stamp = (out / SYNTHETIC_MARKER).stat().st_mtime_ns
    assert ensure_synthetic(out, n_train=1, n_test=1) == out
    assert (out / SYNTHETIC_MARKER).stat().st_mtime_ns == stamp
    ensure_synthetic(out, seed=1, n_train=1, n_test=1)
    assert json.loads((out / SYNTHETIC_MARKER).read_text())["params"]["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no partial folders left behind


def test_never_replaces_what_it_did_not_write(tmp_path):
    (tmp_path / "real_data").mkdir()
    (tmp_path / "real_data" / "photo.jpg").write_bytes(b"precious")
    for call in (lambda: ensure_synthetic(tmp_path / "real_data"),
                 lambda: make_synthetic(tmp_path / "real_data", force=True)):
        with pytest.raises(DataError, match="may hold real data"):
            call()
    assert (tmp_path / "real_data" / "photo.jpg").read_bytes() == b"precious"
    out = make_synthetic(tmp_path / "set", n_train=1, n_test=1)
    with pytest.raises(DataError, match="--force"):
        make_synthetic(out, n_train=1, n_test=1)
    make_synthetic(out, n_train=1, n_test=2, force=True)
    assert len(scan(out).samples) == 8 * 6


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="genimage, ufd, diffusionforensics"):
        make_synthetic(tmp_path / "x", layout="folder")
    with pytest.raises(DataError, match=">= 1"):
        make_synthetic(tmp_path / "x", n_train=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="is a file"):
        make_synthetic(tmp_path / "file")


@pytest.mark.parametrize("layout, splits, test_subsets", [
    ("ufd", ["test", "train", "val"], ["crn", "deepfake", "progan", "stylegan"]),
    ("diffusionforensics", ["test", "train"], ["adm", "iddpm", "midjourney", "sdv1", "vqdm"]),
])
def test_other_layouts(tmp_path, layout, splits, test_subsets):
    index = scan(make_synthetic(tmp_path / layout, layout=layout, n_train=2, n_test=2))
    assert (index.layout, index.synthetic, index.problems) == (layout, True, [])
    assert index.splits() == splits and index.subsets("test") == test_subsets
    assert {s.group for s in index.select("train")} == (
        {"car", "cat", "chair", "horse"} if layout == "ufd" else {"lsun_bedroom"})


# ---------------------------------------------------------------- learnability
CROP = 48


class _HighPass(nn.Module):
    """Image minus its 3x3 local mean: the residual where generator traces live."""

    def forward(self, x):
        return 10 * (x - nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False))


def _small_cnn() -> nn.Module:
    return nn.Sequential(
        _HighPass(),
        nn.Conv2d(3, 16, 3), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 1),
    )


def _five_views(img) -> torch.Tensor:
    normalise = T.Normalize(CLIP_MEAN, CLIP_STD)
    return torch.stack([normalise(T.functional.to_tensor(crop)) for crop in T.FiveCrop(CROP)(img)])


def _accuracy(model, samples) -> float:
    """Mean logit over five crops per image, thresholded at 0."""
    with torch.no_grad():
        logits = torch.stack([model(_five_views(load_rgb(s.path))).mean() for s in samples])
    labels = torch.tensor([s.label for s in samples])
    return ((logits > 0).long() == labels).float().mean().item()


def test_a_small_cnn_learns_one_generator_and_transfers_unevenly(genimage):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        index = scan(genimage)
        train = [(load_rgb(s.path), s.label) for s in index.select("train", ["sdv14"])]
        augment = train_transform(CROP, small="tile")
        model = _small_cnn()
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(100):
            views = [(augment(img), label) for img, label in train for _ in range(2)]
            x = torch.stack([v for v, _ in views])
            y = torch.tensor([label for _, label in views], dtype=torch.float32)
            loss = nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        accuracy = {subset: _accuracy(model, index.select("val", [subset])) for subset in SUBSET_IDS}
    finally:
        torch.set_num_threads(threads)
    assert accuracy["sdv14"] >= 0.75, accuracy
    assert max(accuracy.values()) - min(accuracy.values()) >= 0.15, accuracy
