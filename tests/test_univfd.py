"""UnivFD's config, view set, data checks and linear-probe trainer: on embeddings of a real tiny
open_clip ViT over a synthetic UFD tree, and on hand-made feature tables."""
import numpy as np
import pytest
import torch

from aigid.data.index import FAKE, REAL, DataError, DatasetIndex, Sample
from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.features import FeatureTable, FixedView, extract
from aigid.methods.rine.config import CLASS_SETTINGS
from aigid.methods.spec import PrepareContext
from aigid.methods.univfd import (
    OFFLINE_OVERRIDES, SMOKE_OVERRIDES, UnivFDConfig, UnivFDTrainer, check_data, feature_requests,
)
from aigid.methods.univfd.spec import UNIVFD
from aigid.methods.univfd.trainer import view_name_for_tests, view_name

TINY = {"backbone": "aigid-tiny-vit", "pretrained": None}


# ------------------------------------------------------------------ configuration
def test_defaults_are_the_authors_and_the_class_settings_are_rines():
    config = UnivFDConfig()
    assert (config.backbone, config.pretrained, config.lr, config.batch_size, config.weight_decay, config.crop) == (
        "ViT-L-14", "openai", 1e-4, 256, 0.0, 224)
    assert config.classes == 20 and config.class_names is None  # every ProGAN class found
    assert {k: UnivFDConfig(classes=k).class_names for k in (1, 2, 4)} == CLASS_SETTINGS
    assert UnivFDConfig.from_flat({**OFFLINE_OVERRIDES, **SMOKE_OVERRIDES}).epochs == 1


@pytest.mark.parametrize("flat, message", [
    ({"classes": 3}, r"classes must be one of \[1, 2, 4, 20\]"),
    ({"lr": 0.0}, r"lr must be in \(0, 1\]"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"crop": -224}, r"crop must be in \(0, 4096\]"),
    ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
    ({"lr": "fast"}, "lr takes float"),
    ({"learning_rate": 1e-3}, "unknown UnivFDConfig option"),
])
def test_bad_config_names_the_field_and_what_it_takes(flat, message):
    with pytest.raises(ValueError, match=message):
        UnivFDConfig.from_flat(flat)


# ------------------------------------------------------------------ a tiny real pipeline
@pytest.fixture(scope="module")
def ufd(tmp_path_factory):
    return scan(make_synthetic(tmp_path_factory.mktemp("ufd") / "synthetic", layout="ufd", n_train=4, n_test=2))


@pytest.fixture(scope="module")
def cached(ufd, tmp_path_factory):
    """Embeddings of the tiny random-init ViT, extracted once; two configs share the one view set."""
    config = UnivFDConfig.from_flat({**OFFLINE_OVERRIDES, "batch_size": 8, "epochs": 4})
    other = UnivFDConfig.from_flat({**OFFLINE_OVERRIDES, "classes": 1, "lr": 1e-3})
    cache = tmp_path_factory.mktemp("cache")
    requests = feature_requests([config, other], ufd)
    tables, stats = extract(list(requests.values()), cache, log=None)
    assert stats == {"computed": 2, "cached": 0}  # train + val of both class settings; the clean test set
    return config, dict(zip(requests, tables)), cache


def test_a_training_view_set_and_a_test_view_set_per_perturbation(ufd, cached):
    config, features, _ = cached
    assert list(features) == [view_name(config), view_name_for_tests(config)]
    train, tests = feature_requests([config], ufd).values()
    for request in (train, tests):
        assert request.outputs == ("embedding",) and isinstance(request.transform, FixedView)
        assert "CenterCrop(size=(224, 224))" in repr(request.transform) and request.root == str(ufd.root)
    assert set(train.paths) == {s.path for s in ufd.samples if s.split != "test"}  # train + val of all 4 classes
    assert set(tests.paths) == {s.path for s in ufd.samples if s.split == "test"} and tests.perturb == "none"
    (horse_only, _) = feature_requests([UnivFDConfig(**TINY, classes=1)], ufd).values()
    assert {s.group for s in ufd.samples if s.path in horse_only.paths} == {"horse"}
    assert len(feature_requests([config, UnivFDConfig(**TINY, crop=112)], ufd)) == 4  # a crop is its own view set
    blurred = UnivFDConfig.from_flat({**config.to_flat(), "test_perturb": "blur=3", "perturb_seed": 1})
    both = feature_requests([config, blurred], ufd)
    assert len(both) == 3 and both[view_name_for_tests(blurred)].perturb == "blur=3"  # one training view set
    assert both[view_name_for_tests(blurred)].perturb_seed == 1 and both[view_name_for_tests(blurred)].paths == tests.paths


def test_trainer_learns_and_reports_every_test_set_and_val_each_epoch(ufd, cached):
    config, features, _ = cached
    results = list(UnivFDTrainer(config, ufd, {"features": features}).run())
    assert [r["epoch"] for r in results] == [1, 2, 3, 4] and all(r["epoch_end"] for r in results)
    assert [r["step"] for r in results] == [4, 8, 12, 16]  # 4 classes x (4 real + 4 fake) at batch 8
    final = results[-1]
    assert {"train/loss", "data/skipped_files", "val/acc", "val/ap", "test/mean/acc", "test/mean/ap",
            "test/progan/acc", "test/deepfake/ap"} <= set(final)
    assert final["data/skipped_files"] == 0 and 0 <= final["test/mean/acc"] <= 1
    assert results[-1]["train/loss"] < results[0]["train/loss"]


def test_a_restored_trainer_continues_exactly(ufd, cached, from_file):
    config, features, _ = cached
    config = UnivFDConfig.from_flat({**config.to_flat(), "epochs": 2})
    straight = list(UnivFDTrainer(config, ufd, {"features": features}).run())
    first = UnivFDTrainer(config, ufd, {"features": features})
    next(first.run())
    state = from_file(first.state_dict())
    resumed = UnivFDTrainer(config, ufd, {"features": features})
    resumed.load_state_dict(state)
    assert list(resumed.run()) == straight[1:]
    other = UnivFDConfig.from_flat({**config.to_flat(), "lr": 1e-3})
    with pytest.raises(ValueError, match="different UnivFDConfig"):
        UnivFDTrainer(other, ufd, {"features": features}).load_state_dict(state)


def test_the_spec_prepares_the_same_features_from_the_cache(ufd, cached):
    config, features, cache = cached
    resolved = UNIVFD.resolve(config.to_flat(), ufd)
    shared = UNIVFD.prepare(ufd, [resolved], PrepareContext(cache_dir=str(cache), log=lambda line: None))
    for name, table in shared["features"].items():
        assert np.array_equal(table.features["embedding"], features[name].features["embedding"])
    assert UNIVFD.name == "univfd" and UNIVFD.layout == "ufd" and UNIVFD.uses_feature_store
    UNIVFD.config_cls.from_flat(dict(UNIVFD.offline))


def test_evaluate_scores_a_saved_probe_exactly_as_its_trainer_reported(ufd, cached, from_file):
    config, features, cache = cached
    trainer = UnivFDTrainer(config, ufd, {"features": features})
    last = list(trainer.run())[-1]
    state = from_file(trainer.state_dict())
    context = PrepareContext(cache_dir=str(cache), log=lambda line: None)
    metrics = UNIVFD.evaluate(config, state, ufd, context)
    tested = {k: v for k, v in last.items() if k.startswith("test/")}
    assert set(metrics) == set(tested) and len(tested) > 20
    for key, value in tested.items():
        assert metrics[key] == value if key.endswith(("/acc", "/n")) else metrics[key] == pytest.approx(value, abs=1e-9)
    blurred = UnivFDConfig.from_flat({**config.to_flat(), "test_perturb": "blur=9"})
    assert UNIVFD.evaluate(blurred, state, ufd, context)["test/mean/ap"] != metrics["test/mean/ap"]
    with pytest.raises(ValueError, match=r"'weight' has shape \[1, 16\], a UnivFD probe on the 32-d embedding of "
                                         r"aigid-tiny-vit expects \[1, 32\]"):
        UNIVFD.evaluate(config, {"model": {"weight": torch.zeros(1, 16), "bias": torch.zeros(1)}}, ufd, context)


def test_bad_data_fails_before_training(ufd, horse_only_ufd):
    only_horse = horse_only_ufd
    index = scan(only_horse)
    with pytest.raises(DataError, match=r"lacks \['car', 'cat', 'chair'\].*use classes=20 .* or classes=1"):
        check_data(UnivFDConfig(classes=4), index)
    check_data(UnivFDConfig(classes=1), index)
    check_data(UnivFDConfig(), index)  # every class found: horse
    for path in (only_horse / "train" / "horse" / "1_fake").iterdir():
        path.unlink()
    (only_horse / "train" / "horse" / "1_fake").rmdir()
    with pytest.raises(DataError, match="no 1_fake/ images"):
        check_data(UnivFDConfig(), scan(only_horse))


# ------------------------------------------------------------------ learning on hand-made features
DIM = 16


def separable(n=64, shift=1.5, seed=0, broken=0):
    """A UFD-shaped index (train/val: car, horse; test: progan, other) and its embedding table:
    real and fake features are two Gaussians `shift` apart along every dimension."""
    rng = np.random.default_rng(seed)
    samples, rows = [], []
    plan = (("train", ["progan"], n), ("val", ["progan"], n // 4), ("test", ["progan", "other"], n // 2))
    for split, subsets, n_split in plan:
        for subset in subsets:
            for group in (("car", "horse") if split != "test" else ("",)):
                for label in (REAL, FAKE):
                    for i in range(n_split):
                        path = f"/d/{split}/{subset}/{group}/{label}/{i}.png"
                        samples.append(Sample(path, label, subset, split, group))
                        rows.append(rng.normal(size=DIM) + shift * label)
    ok = np.ones(len(samples), dtype=bool)
    ok[:broken] = False  # the first training images could not be decoded
    table = FeatureTable(tuple(s.path for s in samples), {"embedding": np.stack(rows).astype(np.float16)}, ok)
    return DatasetIndex("/d", "ufd", True, samples), table


def probe(index, table, **overrides):
    config = UnivFDConfig.from_flat({**TINY, "lr": 1e-2, "batch_size": 32, "epochs": 10, **overrides})
    return UnivFDTrainer(config, index, {"features": {view_name(config): table, view_name_for_tests(config): table}})


def test_the_probe_separates_linearly_separable_features():
    index, table = separable()
    run = probe(index, table, lr=3e-2, epochs=20)
    results = list(run.run())
    assert results[-1]["test/mean/acc"] > 0.95 and results[-1]["test/mean/ap"] > 0.99
    assert results[-1]["val/acc"] > 0.95 and results[-1]["train/loss"] < results[0]["train/loss"] / 2
    assert run.model.weight.shape == (1, DIM)  # one linear layer on the embedding, nothing else
    assert sum(p.numel() for p in run.model.parameters()) == DIM + 1


def test_runs_are_deterministic_given_the_seed_and_count_undecodable_images():
    index, table = separable(broken=3)
    first, again, other = (list(probe(index, table, seed=s, epochs=2).run()) for s in (0, 0, 1))
    assert first == again and first[-1]["train/loss"] != other[-1]["train/loss"]
    assert first[-1]["data/skipped_files"] == 3


def test_a_class_setting_trains_on_its_classes_only():
    index, table = separable()
    run = probe(index, table, classes=1)  # horse
    trained = {table.paths[r].split("/")[4] for r in run.train.rows}
    validated = {table.paths[r].split("/")[4] for r in run.val.rows}
    assert trained == validated == {"horse"} and len(run.tests) == 2
