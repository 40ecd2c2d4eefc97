"""RINE evaluation: perturbed and ten-crop test views, `evaluate` reproducing the trainer's test
metrics exactly, and the authors' released file format scored through `released` + `evaluate`."""
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as F

from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.errors import ConfigError
from aigid.features import extract
from aigid.methods import RINE
from aigid.methods.rine import OFFLINE_OVERRIDES, RINETrainer, feature_requests
from aigid.methods.rine.scoring import logits_of
from aigid.methods.rine.views import TenCropPart, scored_view_names, val_view_name
from aigid.methods.spec import PrepareContext
from test_released import authors_rine_state

TINY = {**OFFLINE_OVERRIDES, "epochs": 2, "proj_dim": 8, "batch_size": 8, "classes": 1}


@pytest.fixture(scope="module")
def ufd(tmp_path_factory):
    return scan(make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=6, n_test=3))


def config(ufd, **extra):
    return RINE.resolve({**TINY, **extra}, ufd)


def test_each_perturbation_is_its_own_test_view_and_val_stays_clean(ufd):
    clean, blur, blur_again, other_seed = (config(ufd, **extra) for extra in (
        {}, {"test_perturb": "blur=3"}, {"test_perturb": "blur=3"}, {"test_perturb": "blur=3", "perturb_seed": 1}))
    requests = feature_requests([clean, blur, other_seed], ufd)
    keys = {name: request.key() for name, request in requests.items()}
    (clean_test,), (blur_test,), (seed_test,) = map(scored_view_names, (clean, blur, other_seed))
    assert len({keys[clean_test], keys[blur_test], keys[seed_test]}) == 3
    assert scored_view_names(blur_again) == [blur_test]  # the same perturbation reads the same entry
    assert val_view_name(clean) == val_view_name(blur) and requests[val_view_name(clean)].perturb == "none"
    assert requests[blur_test].perturb == "blur=3" and requests[blur_test].root == ufd.root
    assert scored_view_names(config(ufd, perturb_seed=5)) == [clean_test]  # no perturbation: the seed is moot


def test_ten_crop_is_torchvisions_ten_crop_one_view_set_each(ufd):
    image = Image.fromarray(torch.randint(0, 255, (240, 260, 3), dtype=torch.uint8).numpy())
    crops = F.ten_crop(image, 224)
    assert [TenCropPart(224, k)(image).tobytes() for k in range(10)] == [c.tobytes() for c in crops]
    names = scored_view_names(config(ufd, test_crops=10))
    requests = feature_requests([config(ufd, test_crops=10)], ufd)
    assert len({requests[name].key() for name in names}) == 10
    with pytest.raises(ConfigError, match="test_crops must be one of"):
        config(ufd, test_crops=5)


@pytest.fixture(scope="module")
def trained(ufd, tmp_path_factory):
    """{(test_perturb, test_crops): (config, trained trainer, its last report)}: clean, jpeg=5 and ten-crop
    tests of the same training (same seed, same training views), and the store they were cached in."""
    store = tmp_path_factory.mktemp("store")
    configs = [config(ufd, test_perturb=p) for p in ("none", "jpeg=5")] + [config(ufd, test_crops=10)]
    requests = feature_requests(configs, ufd)
    features = dict(zip(requests, extract(list(requests.values()), store, log=None)[0]))
    runs = {}
    for c in configs:
        trainer = RINETrainer(c, ufd, {"features": features})
        *_, last = trainer.run()
        runs[(c.test_perturb, c.test_crops)] = (c, trainer, last)
    return store, runs


@pytest.mark.parametrize("run", [("none", 1), ("jpeg=5", 1), ("none", 10)])
def test_evaluate_reproduces_the_trainers_test_metrics_exactly(ufd, trained, run, from_file):
    store, runs = trained
    config, trainer, report = runs[run]
    logged = []
    metrics = RINE.evaluate(config, from_file(trainer.state_dict()), ufd, PrepareContext(str(store), log=logged.append))
    expected = {k: v for k, v in report.items() if k.startswith("test/")}
    assert set(metrics) == set(expected) and "test/mean/acc" in metrics and "test/progan/loss" in metrics
    for key, value in expected.items():
        assert metrics[key] == (value if key.endswith(("/acc", "/n", "_acc")) else pytest.approx(value, abs=1e-9)), key
    assert any("feature store hit" in line for line in logged)  # the trainer's test views, no new backbone pass


def test_jpeg_5_moves_the_trained_heads_scores_measurably(trained):
    """The same weights scored on clean and on JPEG q5 test images: the backbone's tokens move (17 % of
    their magnitude on the stand-in), and with them the scores (by ~16 % of their spread across images:
    2 epochs on 12 images leave the tiny head nearly constant) and the AP."""
    _, runs = trained
    (_, clean, clean_report), (_, jpeg, jpeg_report) = runs[("none", 1)], runs[("jpeg=5", 1)]
    assert all(torch.equal(v, jpeg.model.state_dict()[k]) for k, v in clean.model.state_dict().items())
    tokens, jpeg_tokens = clean.held_out.test_tokens[0].float(), jpeg.held_out.test_tokens[0].float()
    assert (jpeg_tokens - tokens).abs().mean() > 0.05 * tokens.abs().mean()
    scores = clean.held_out.scores(logits_of(clean.model), clean.held_out.test_tokens)[0]
    moved = jpeg.held_out.scores(logits_of(jpeg.model), jpeg.held_out.test_tokens)[0] - scores
    assert abs(moved).mean() > 0.05 * scores.std()
    assert jpeg_report["test/mean/ap"] != clean_report["test/mean/ap"]


def test_a_released_file_is_scored_with_the_authors_architecture(ufd, trained, tmp_path):
    store, runs = trained
    trained_head = runs[("none", 1)][1].model.state_dict()  # aigid-tiny-vit's blocks and width
    blocks, width = trained_head["alpha"].shape[0], trained_head["q1.1.weight"].shape[1]
    path = tmp_path / "model_1class_trainable.pth"
    torch.save(authors_rine_state(blocks, width, 2, 8), path)
    overrides, state = RINE.released(path)
    assert overrides == {"backbone": "ViT-L-14", "pretrained": "openai", "tap": "ln_2", "q": 2, "proj_dim": 8}
    config = RINE.resolve({**overrides, "backbone": "aigid-tiny-vit", "pretrained": None}, ufd)
    metrics = RINE.evaluate(config, state, ufd, PrepareContext(str(store), log=lambda line: None))
    assert 0 <= metrics["test/mean/acc"] <= 1 and metrics["test/progan/n"] == 6

    torch.save(authors_rine_state(blocks + 1, width, 2, 8), path)
    with pytest.raises(ConfigError, match=rf"^the checkpoint: 'alpha' has shape \[{blocks + 1}, 8\], this RINE head "
                                          rf"expects \[{blocks}, 8\]"):
        RINE.evaluate(config, RINE.released(path)[1], ufd, PrepareContext(str(store), log=lambda line: None))
