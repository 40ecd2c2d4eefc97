"""Layout detection and indexing on small image trees written to disk."""
import pickle
from pathlib import Path

import pytest
from PIL import Image

from aigid.data.layouts import LAYOUTS, SUBSET_IDS, DataError, DatasetIndex, Sample, genimage_subset_id, scan


def _image(path: Path) -> Path:
    """A real 8x8 image file; the format follows the (any-case) extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(path.suffix.lower())
    Image.new("RGB", (8, 8), (200, 30, 90)).save(path, format=fmt or path.suffix[1:].upper())
    return path


def _images(folder: Path, n: int, ext=".png") -> list[Path]:
    return [_image(folder / f"img_{i}{ext}") for i in range(n)]


def _stray(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not an image")


@pytest.fixture
def genimage_tree(tmp_path):
    """GenImage as downloaded: subsets nested under generator parents, mixed-case extensions."""
    root = tmp_path / "GenImage"
    for parent, folder in [("stable_diffusion_v_1_4", "imagenet_ai_0419_sdv4"), ("ADM", "imagenet_ai_0508_adm"),
                           ("", "imagenet_glide")]:
        subset = root / parent / folder
        _images(subset / "train" / "ai", 3, ".PNG")
        _images(subset / "train" / "nature", 2, ".JPEG")
        _images(subset / "val" / "ai", 1, ".png")
        _images(subset / "val" / "nature", 1, ".jpeg")
        _stray(subset / "train" / "ai" / ".DS_Store")
        _stray(subset / "val" / "nature" / "README.txt")
    _stray(root / "README.txt")
    return root


def test_genimage_nested_and_messy(genimage_tree):
    index = scan(genimage_tree)
    assert (index.layout, index.train_split, index.test_split, index.synthetic) == ("genimage", "train", "val", False)
    assert index.subsets("train") == index.subsets("val") == ["adm", "glide", "sdv14"]
    counts = index.counts()
    assert counts[("sdv14", "train", 1)] == 3 and counts[("sdv14", "train", 0)] == 2
    assert counts[("adm", "val", 1)] == counts[("adm", "val", 0)] == 1
    fakes = index.select("train", ["sdv14"], labels=[1])
    assert [Path(s.path).parent.name for s in fakes] == ["ai"] * 3
    assert all(Path(s.path).is_absolute() and s.group == "" for s in index.samples)
    # each kind of stray file is reported once, with its count
    assert len(index.problems) == 2
    assert "3 non-image file(s) of kind '.DS_Store'" in index.problems[0]
    assert "3 non-image file(s) of kind '.txt'" in index.problems[1]


def test_genimage_root_can_be_one_subset(genimage_tree):
    index = scan(genimage_tree / "ADM" / "imagenet_ai_0508_adm")
    assert index.layout == "genimage" and index.subsets("train") == ["adm"]


def test_genimage_unknown_subset_name_is_kept_and_reported(tmp_path):
    _images(tmp_path / "mystery" / "train" / "ai", 1)
    _images(tmp_path / "mystery" / "train" / "nature", 1)
    index = scan(tmp_path)
    assert index.subsets("train") == ["mystery"]
    assert any("could not tell which GenImage generator" in p and "sdv14" in p for p in index.problems)


@pytest.mark.parametrize(
    "name, expected",
    [("imagenet_ai_0419_sdv4", "sdv14"), ("imagenet_ai_0424_sdv5", "sdv15"), ("imagenet_ai_0508_adm", "adm"),
     ("imagenet_ai_0419_biggan", "biggan"), ("imagenet_glide", "glide"), ("imagenet_midjourney", "midjourney"),
     ("imagenet_ai_0419_vqdm", "vqdm"), ("imagenet_ai_0424_wukong", "wukong"), ("stable_diffusion_v_1_4", "sdv14"),
     ("Stable-Diffusion-V1.5", "sdv15"), ("SDv1.4", "sdv14"), ("BigGAN", "biggan"), ("Midjourney", "midjourney"),
     ("VQDM", "vqdm"), ("imagenet", None), ("adm_and_glide", None)],
)
def test_genimage_subset_names(name, expected):
    assert genimage_subset_id(name) == expected
    assert expected is None or expected in SUBSET_IDS


@pytest.fixture
def ufd_tree(tmp_path):
    root = tmp_path / "ufd"
    for split in ("train", "val"):
        for cls in ("car", "horse"):
            _images(root / split / cls / "0_real", 2)
            _images(root / split / cls / "1_fake", 2)
    for cls in ("car", "cat"):
        _images(root / "test" / "progan" / cls / "0_real", 1)
        _images(root / "test" / "progan" / cls / "1_fake", 1)
    _images(root / "test" / "StyleGAN" / "0_real", 2, ".jpg")
    _images(root / "test" / "StyleGAN" / "1_fake", 2, ".jpg")
    diffusion = root / "test" / "diffusion_datasets"
    _images(diffusion / "imagenet" / "0_real", 3)
    _images(diffusion / "laion" / "0_real", 4)
    for generator in ("guided", "ldm_200", "glide_100_27"):
        _images(diffusion / generator / "1_fake", 2)
    return root


def test_ufd_layout(ufd_tree):
    index = scan(ufd_tree)
    assert (index.layout, index.train_split, index.test_split) == ("ufd", "train", "test")
    assert index.subsets("train") == index.subsets("val") == ["progan"]
    assert {s.group for s in index.select("train")} == {"car", "horse"}
    assert index.subsets("test") == ["glide_100_27", "guided", "ldm_200", "progan", "stylegan"]
    assert {s.group for s in index.select("test", ["progan"])} == {"car", "cat"}
    assert {s.group for s in index.select("test", ["stylegan"])} == {""}
    guided_reals = index.select("test", ["guided"], labels=[0])
    ldm_reals = index.select("test", ["ldm_200"], labels=[0])
    assert len(guided_reals) == 3 and all("/imagenet/0_real/" in s.path for s in guided_reals)
    assert len(ldm_reals) == 4 and all("/laion/0_real/" in s.path for s in ldm_reals)
    assert {s.path for s in ldm_reals} == {s.path for s in index.select("test", ["glide_100_27"], labels=[0])}
    assert index.problems == []


def test_ufd_diffusion_generator_without_reals_is_reported(tmp_path):
    diffusion = tmp_path / "test" / "diffusion_datasets"
    _images(diffusion / "imagenet" / "0_real", 1)
    _images(diffusion / "guided" / "1_fake", 1)
    _images(diffusion / "ldm_200" / "1_fake", 1)  # pairs with laion/, which is missing
    index = scan(tmp_path)
    assert index.counts() == {("guided", "test", 0): 1, ("guided", "test", 1): 1, ("ldm_200", "test", 1): 1}
    assert any("no real images for" in p and "laion" in p for p in index.problems)


@pytest.mark.parametrize("wrapper", ["", "images"])
def test_diffusionforensics_layout(tmp_path, wrapper):
    root = tmp_path / "DiffusionForensics"
    base = root / wrapper
    _images(base / "train" / "lsun_bedroom" / "real", 2)
    _images(base / "train" / "lsun_bedroom" / "adm", 2)
    _images(base / "test" / "lsun_bedroom" / "real", 3)
    for generator in ("adm", "VQDiffusion"):
        _images(base / "test" / "lsun_bedroom" / generator, 1)
    _images(base / "test" / "imagenet" / "real", 2)
    _images(base / "test" / "imagenet" / "sdv1", 2)
    if wrapper:
        _images(root / "recons" / "test" / "imagenet" / "real", 1)  # the release's other folders are ignored
    index = scan(root)
    assert (index.layout, index.test_split) == ("diffusionforensics", "test")
    assert index.subsets("test") == ["adm", "sdv1", "vqdm"]
    reals = index.select("test", ["vqdm"], labels=[0])
    assert len(reals) == 3 and {s.group for s in reals} == {"lsun_bedroom"}
    # a scene's reals belong to every generator subset of that scene
    assert {s.path for s in reals} == {s.path for s in index.select("test", ["adm"], labels=[0])}
    assert index.counts()[("sdv1", "test", 0)] == 2
    assert index.select("train", groups=["lsun_bedroom"]) == index.select("train")


@pytest.mark.parametrize("real, fake", [("real", "fake"), ("0_real", "1_fake"), ("Real", "Fake")])
def test_folder_layout(tmp_path, real, fake):
    _images(tmp_path / real, 2)
    _images(tmp_path / fake / "nested", 3, ".webp")
    index = scan(tmp_path)
    assert (index.layout, index.train_split, index.test_split) == ("folder", "test", "test")
    assert index.counts() == {("folder", "test", 0): 2, ("folder", "test", 1): 3}


def test_layout_override_beats_detection(tmp_path):
    _images(tmp_path / "train" / "car" / "0_real", 1)
    _images(tmp_path / "train" / "car" / "1_fake", 1)
    _images(tmp_path / "real", 2)
    _images(tmp_path / "fake", 2)
    assert scan(tmp_path).layout == "ufd"
    forced = scan(tmp_path, layout="folder")
    assert forced.layout == "folder" and len(forced.samples) == 4


def test_override_that_does_not_fit_says_what_it_expects(genimage_tree):
    with pytest.raises(DataError, match=r"no ufd structure .*0_real"):
        scan(genimage_tree, layout="ufd")
    with pytest.raises(DataError, match="unknown layout 'imagenet'") as err:
        scan(genimage_tree, layout="imagenet")
    assert all(name in str(err.value) for name in LAYOUTS)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path / "nope")
    _stray(tmp_path / "file.txt")
    with pytest.raises(DataError, match="not a folder"):
        scan(tmp_path / "file.txt")


def test_no_layout_lists_the_known_ones(tmp_path):
    _images(tmp_path / "photos" / "holiday", 2)
    with pytest.raises(DataError) as err:
        scan(tmp_path)
    message = str(err.value)
    assert "no known dataset layout" in message and "photos" in message
    for name, hint in zip(LAYOUTS, ("imagenet_ai_0419_sdv4", "1_fake", "<scene>", "{real,fake}")):
        assert f"{name}:" in message and hint in message


def test_structure_without_images(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    _stray(tmp_path / "fake" / "notes.txt")
    with pytest.raises(DataError, match="no image files"):
        scan(tmp_path)


def test_select_and_counts(genimage_tree):
    index = scan(genimage_tree)
    chosen = index.select("val", ["adm", "glide"], labels=[0])
    assert [s.path for s in chosen] == sorted(s.path for s in chosen)
    assert {(s.subset, s.label, s.split) for s in chosen} == {("adm", 0, "val"), ("glide", 0, "val")}
    assert sum(index.counts().values()) == len(index.samples) == 3 * 7
    with pytest.raises(DataError, match=r"split 'test' not found.*\['train', 'val'\]"):
        index.select("test")
    with pytest.raises(DataError, match=r"subset\(s\) \['wukong'\].*available"):
        index.select("val", ["wukong"])
    with pytest.raises(DataError, match="labels must be"):
        index.select("val", labels=[2])


def test_index_pickles(genimage_tree):
    index = scan(genimage_tree)
    again = pickle.loads(pickle.dumps(index))  # indexes travel to Ray trials
    assert isinstance(again, DatasetIndex) and again == index
    assert isinstance(again.samples[0], Sample)
