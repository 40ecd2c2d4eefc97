"""JPEGs decoded by torchvision on the pass's device (CPU here: the code nvjpeg runs on CUDA) give the
features PIL gives, file for file, unreadable ones skipped alike; a real tiny open_clip ViT, real files."""
import dataclasses

import numpy as np
import pytest
from PIL import Image

from aigid.data.transforms import test_transform as centre_crop
from aigid.data.transforms import train_transform
from aigid.features import FeatureRequest, FixedView, SharedFeatures, decodes_on_device, extract
from aigid.methods.spec import PrepareContext


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """JPEGs larger and smaller than the crop (grown), grey and CMYK ones, a PNG, a cut JPEG, a non-image."""
    folder, rng = tmp_path_factory.mktemp("mixed"), np.random.default_rng(0)

    def pixels(h, w, channels=3):
        return (rng.random((h, w, channels)) * 255).astype(np.uint8)

    made = {"large.jpg": (Image.fromarray(pixels(300, 260)), {"quality": 90}),
            "small.jpg": (Image.fromarray(pixels(100, 150)), {"quality": 75, "subsampling": 2}),
            "grey.jpg": (Image.fromarray(pixels(240, 240, 1)[:, :, 0]), {}),
            "cmyk.jpg": (Image.fromarray(pixels(230, 230, 4), mode="CMYK"), {}),
            "lossless.png": (Image.fromarray(pixels(200, 250)), {})}
    for name, (image, options) in made.items():
        image.save(folder / name, **options)
    whole = (folder / "large.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(whole[:len(whole) // 3])
    (folder / "notes.jpg").write_text("not an image")
    return tuple(str(p) for p in sorted(folder.iterdir()))


def request(paths, small="pad", **changes):
    return FeatureRequest(backbone="aigid-tiny-vit", pretrained=None, outputs=("block_cls_ln2", "embedding"),
                          paths=paths, transform=FixedView(centre_crop(224, small=small)), **changes)


@pytest.mark.parametrize("small, workers", [("pad", 0), ("tile", 1)])
@pytest.mark.filterwarnings("ignore::UserWarning")  # the unreadable files, warned as every pass warns them
def test_decoding_on_the_device_gives_pils_features_and_skips_the_same_files(images, small, workers):
    on_device = request(images, small, decode_device="cpu")
    (pil, decoded), _ = extract([request(images, small), on_device], None, batch_size=3, num_workers=workers,
                                log=None)
    assert pil.ok.tolist() == decoded.ok.tolist() == [not p.endswith(("cut.jpg", "notes.jpg")) for p in images]
    for output, rows in pil.features.items():
        assert np.array_equal(decoded.features[output], rows), output  # bit for bit


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_only_unperturbed_fixed_views_decode_on_the_device_and_they_are_stored_apart(images):
    assert decodes_on_device(request(images))
    assert not decodes_on_device(request(images, perturb="jpeg=75"))  # a PIL operation, drawn per path
    random_crops = dataclasses.replace(request(images), transform=train_transform(224, small="pad"))
    assert not decodes_on_device(random_crops)
    with pytest.raises(ValueError, match="cannot decode on cpu: only an unperturbed FixedView"):
        request(images, perturb="jpeg=75", decode_device="cpu")  # it would drop the perturbation of its JPEGs
    assert request(images).key() != request(images, decode_device="cuda").key()  # nvjpeg's pixels differ
    with pytest.raises(ValueError, match="decodes on cuda, the pass runs on cpu"):
        extract([request(images, decode_device="cuda")], None, log=None)
    shared = SharedFeatures(lambda configs, index: {"test": request(images)})
    context = PrepareContext(cache_dir=None, log=lambda line: None)  # a CPU pass keeps PIL (CUDA too unless
    # AIGID_DEVICE_DECODE=1: nvjpeg's chroma differs, aigid.data.device_decode)
    assert shared(None, [], context)["features"]["test"].ok.sum() == 5
