"""Perturbations as data (aigid.data.perturb) on real rendered images: seeded per image, each
degradation as strong as asked, specs that round-trip, one-line errors for bad ones."""
import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aigid.data.artefacts import natural_image, to_uint8
from aigid.data.perturb import (
    GENDET_TABLE4, LOL_TABLE_A4, NAMES, RINE_TABLE5, RINE_TABLE5_AS_RUN, Param, apply, jpeg_bytes, parse,
)
from aigid.errors import ConfigError

KEYS = [f"test/progan/1_fake/fake_{i:04d}.png" for i in range(40)]


def image(seed=0, w=256, h=256) -> Image.Image:
    """A rendered natural-looking image (the synthetic benchmark's real class)."""
    return Image.fromarray(to_uint8(natural_image(np.random.default_rng(seed), h, w)))


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def digest(img: Image.Image) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()


SPEC = "noise=5:20+crop=0.05:0.2+jpeg=10:75@0.5"


def test_same_seed_same_bytes_in_any_order_and_in_another_process():
    perturb, src = parse(SPEC), image()
    forward = {key: digest(perturb(src, seed=3, key=key)) for key in KEYS}
    backward = {key: digest(perturb(src, seed=3, key=key)) for key in reversed(KEYS)}
    assert forward == backward
    code = ("import hashlib, numpy as np; from PIL import Image; from aigid.data.artefacts import natural_image, to_uint8;"
            "from aigid.data.perturb import parse;"
            "img = Image.fromarray(to_uint8(natural_image(np.random.default_rng(0), 256, 256)));"
            f"print(hashlib.sha256(parse({SPEC!r})(img, seed=3, key={KEYS[7]!r}).tobytes()).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == forward[KEYS[7]]


def test_different_seeds_draw_differently():
    perturb, src = parse("noise=5:20"), image()
    residual_std = lambda seed, key: np.std(np.asarray(perturb(src, seed=seed, key=key), float) - np.asarray(src, float))
    assert digest(perturb(src, seed=0, key=KEYS[0])) != digest(perturb(src, seed=1, key=KEYS[0]))
    stds = {seed: [round(residual_std(seed, key), 1) for key in KEYS[:8]] for seed in (0, 1)}
    assert stds[0] != stds[1] and all(4 < s < 21 for s in stds[0] + stds[1])  # sigma drawn from U[5, 20]


def test_p_zero_leaves_the_image_untouched_and_p_half_perturbs_the_same_images_for_any_spec():
    src = image()
    assert all(parse("jpeg=10@0")(src, seed=0, key=key) is src for key in KEYS)
    assert parse("none")(src, seed=0, key=KEYS[0]) is src
    touched = {spec: {key for key in KEYS if parse(spec)(src, seed=5, key=key) is not src}
               for spec in ("blur=2@0.5", "jpeg=30@0.5")}
    assert touched["blur=2@0.5"] == touched["jpeg=30@0.5"] and 8 < len(touched["jpeg=30@0.5"]) < 32


def test_jpeg_really_reencodes_at_the_asked_quality():
    src, qualities = image(), (95, 75, 50, 30, 10)
    sizes = [len(jpeg_bytes(src, q)) for q in qualities]
    outputs = [parse(f"jpeg={q}")(src, seed=0, key=KEYS[0]) for q in qualities]
    scores = [psnr(src, out) for out in outputs]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 5
    assert scores == sorted(scores, reverse=True) and scores[0] > 32 and scores[-1] < 26
    assert outputs[3].tobytes() == Image.open(io.BytesIO(jpeg_bytes(src, 30))).convert("RGB").tobytes()


@pytest.mark.parametrize("specs", [
    ("blur=0.5", "blur=1", "blur=2", "blur=4"),
    ("blurk=3", "blurk=5", "blurk=9", "blurk=15"),  # sigma by OpenCV's rule grows with the kernel
    ("blurk=3;sigma=4", "blurk=5;sigma=4", "blurk=9;sigma=4"),  # RINE's sigma 4, cut to the kernel
    ("noise=2", "noise=5", "noise=10", "noise=20"),
    ("crop=0.02", "crop=0.1", "crop=0.3"),
])
def test_psnr_falls_as_the_strength_grows(specs):
    src = image()
    scores = [psnr(src, parse(spec)(src, seed=0, key=KEYS[0])) for spec in specs]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_noise_has_the_asked_std_on_0_255_values():
    src = image()
    out = parse("noise=10")(src, seed=0, key=KEYS[0])
    assert np.std(np.asarray(out, float) - np.asarray(src, float)) == pytest.approx(10, rel=0.05)


def test_crop_cuts_the_fraction_and_resizes_back_bicubic():
    src = image(w=320, h=256)
    out = parse("crop=0.1")(src, seed=0, key=KEYS[0])
    expected = src.crop((16, 12, 304, 244)).resize((320, 256), Image.Resampling.BICUBIC)
    assert out.size == (320, 256) and out.tobytes() == expected.tobytes()


def test_downscale_sets_the_shorter_side_and_keeps_small_images():
    assert parse("downscale=64")(image(w=320, h=256), seed=0, key=KEYS[0]).size == (80, 64)
    assert parse("downscale=112")(image(), seed=0, key=KEYS[0]).size == (112, 112)
    small = image(w=100, h=64)
    assert parse("downscale=64")(small, seed=0, key=KEYS[0]) is small


def test_ranges_and_choices_draw_within_bounds_with_integer_ends_included():
    rng = np.random.default_rng(0)
    assert {Param((10, 12), uniform=True).draw(rng, True) for _ in range(200)} == {10, 11, 12}
    assert {Param((3, 5, 7, 9)).draw(rng, True) for _ in range(200)} == {3, 5, 7, 9}
    floats = [Param((0.05, 0.2), uniform=True).draw(rng, False) for _ in range(200)]
    assert 0.05 <= min(floats) and max(floats) <= 0.2 and len(set(floats)) == 200


def test_specs_round_trip_to_one_cache_key_per_perturbation():
    assert parse("blur=3.0").cache_key() == parse("blur=3").cache_key() == "perturb-v1:blur=3"
    assert parse("blurk=5;sigma=0").spec() == "blurk=5"
    spec = "noise=5:20+blurk=3,5,7,9;sigma=4+jpeg=10:75+crop=0.05:0.2@0.5"
    assert parse(spec).spec() == spec and parse(parse(spec).spec()) == parse(spec)
    assert len({parse(s).cache_key() for s in ("jpeg=30", "jpeg=30@0.5", "jpeg=31", "blur=30", "none")}) == 5


@pytest.mark.parametrize("spec, says", [
    ("jpg=30", "unknown step 'jpg=30'"), ("jpeg=0", "quality=0 is out of range: quality, integer in [1, 100]"),
    ("jpeg=30.5", "integer in [1, 100]"), ("blurk=4", "odd integer in [3, 99]"), ("noise=20:5", "sigma=20:5"),
    ("crop=a", "fraction=a"), ("blur=3@1.5", "not a probability"), ("jpeg=30;sigma=2", "jpeg takes the option (none)"),
    ("", "empty"), ("blur=nan", "sigma=nan"),
])
def test_bad_specs_raise_one_line_config_errors(spec, says):
    with pytest.raises(ConfigError) as error:
        parse(spec)
    message = str(error.value)
    assert says in message and "\n" not in message
    if "unknown" in says:
        assert all(f"{name}=<" in message for name in NAMES) and "[1, 100]" in message


def test_presets_hold_the_published_strengths():
    assert set(RINE_TABLE5) == {"blur", "crop", "compress", "noise", "combined"}
    assert RINE_TABLE5["combined"].spec() == "blurk=3,5,7,9;sigma=4+crop=0.05:0.2+jpeg=10:74+noise=5:20@0.5"
    assert RINE_TABLE5_AS_RUN["compress"].spec() == "jpeg=95@0.5"
    assert {k: v.spec() for k, v in GENDET_TABLE4.items()} == {
        "lr112": "downscale=112", "lr64": "downscale=64", "jpeg65": "jpeg=65", "jpeg30": "jpeg=30",
        "blur3": "blur=3", "blur5": "blur=5"}
    assert LOL_TABLE_A4["combined"].spec() == "noise=5:20+blurk=3,5,7,9;sigma=4+jpeg=10:75+crop=0.05:0.2@0.5"


def _images(root, n=6):
    paths = []
    for i in range(n):
        path = root / "sub" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(natural_image(np.random.default_rng(i), 48, 48))).save(path)
        paths.append(str(path))
    return paths


def test_perturbed_view_sets_are_cached_apart_and_drawn_per_path_below_the_root(tmp_path):
    """A perturbed view set is its own cache entry (one backbone pass per perturbation), the clean key is
    unchanged, and moving the dataset keeps the draws (they are per path relative to the root)."""
    from aigid.data.transforms import test_transform
    from aigid.features import FeatureRequest, FixedView, extract

    def request(root, perturb="none", seed=0):
        paths = [str(p) for p in sorted((root / "sub").glob("*.png"))]
        return FeatureRequest("aigid-tiny-vit", None, ("embedding",), tuple(paths),
                              FixedView(test_transform(224, small="pad")), root=str(root), perturb=perturb,
                              perturb_seed=seed)

    _images(tmp_path / "a")
    clean, blurred = request(tmp_path / "a"), request(tmp_path / "a", "blur=4")
    assert "perturb" not in clean.describe() and clean.key() != blurred.key()
    assert blurred.key() != request(tmp_path / "a", "blur=4", seed=1).key()
    (clean_table, blurred_table), stats = extract([clean, blurred], tmp_path / "store", log=None)
    assert stats == {"computed": 2, "cached": 0}
    assert not np.allclose(clean_table.features["embedding"], blurred_table.features["embedding"])
    _, stats = extract([blurred], tmp_path / "store", log=None)
    assert stats == {"computed": 0, "cached": 1}
    (tmp_path / "a").rename(tmp_path / "b")
    moved, _ = extract([request(tmp_path / "b", "noise=20")], None, log=None)
    (tmp_path / "b").rename(tmp_path / "a")
    here, _ = extract([request(tmp_path / "a", "noise=20")], None, log=None)
    np.testing.assert_array_equal(moved[0].features["embedding"], here[0].features["embedding"])


def test_decoded_test_images_apply_the_perturbation_before_the_crop(tmp_path):
    from aigid.data.decoded import decode_once

    paths = _images(tmp_path / "data", n=4)
    clean = decode_once(paths, 32, tmp_path / "cache", small="pad", log=None)
    jpeg = decode_once(paths, 32, tmp_path / "cache", small="pad", log=None, perturb="jpeg=5",
                       root=str(tmp_path / "data"))
    assert clean.root != jpeg.root
    clean_pixels, jpeg_pixels = clean.open()[0], jpeg.open()[0]
    expected = apply("jpeg=5", Image.open(paths[0]).convert("RGB"), seed=0, path=paths[0], root=str(tmp_path / "data"))
    np.testing.assert_array_equal(jpeg_pixels[0], np.asarray(expected.crop((8, 8, 40, 40))).transpose(2, 0, 1))
    assert not np.array_equal(clean_pixels, jpeg_pixels)
