"""LoL's evaluation-only path (MethodSpec.evaluate) and its perturbations (Table A4), on real files."""
import runpy
from pathlib import Path

import pytest
import torch

from aigid.data import perturb
from aigid.data.datasets import ImageDataset
from aigid.data.layouts import scan
from aigid.errors import ConfigError
from aigid.methods.lol import OFFLINE_OVERRIDES, LoLConfig, LoLTrainer, select_training_samples
from aigid.methods.lol.spec import LOL
from aigid.methods.spec import PrepareContext
from trainables.sweep import expand, pick

FLAT = {**OFFLINE_OVERRIDES, "epochs": 1, "train_volume": 8, "test_limit": 4,
        "test_subsets": ("sdv14", "midjourney")}


def trained(root, cache, **overrides):
    """(config, index, the last report, state) of a one-epoch run on sweep-decoded test images."""
    torch.set_num_threads(1)
    index = scan(root)
    config = LOL.resolve({**FLAT, **overrides}, index)
    shared = LOL.prepare(index, [config], PrepareContext(str(cache), log=lambda line: None))
    trainer = LoLTrainer(config, index, shared)
    *_, last = trainer.run()
    return config, index, last, trainer.state_dict()


def test_evaluate_reproduces_the_trainers_last_report_from_its_state(small_genimage, tmp_path):
    config, index, last, state = trained(small_genimage, tmp_path, test_perturb="jpeg=20")
    context = PrepareContext(str(tmp_path), log=lambda line: None)
    ours = LOL.evaluate(config, state, index, context)
    expected = {k: v for k, v in last.items() if k.startswith("test/")}
    assert set(ours) == set(expected) and "test/mean/acc" in ours
    for key, value in expected.items():
        assert ours[key] == (value if key.endswith(("/acc", "/n")) else pytest.approx(value, abs=1e-9)), key
    clean = LOL.evaluate(LoLConfig.from_flat({**config.to_flat(), "test_perturb": "none"}), state, index, context)
    assert any(clean[k] != ours[k] for k in ours if k.endswith(("/ap", "/loss")))  # jpeg=20 moved the scores


def test_a_state_of_another_backbone_is_one_line_naming_the_key(small_genimage, tmp_path):
    config, index, _, state = trained(small_genimage, tmp_path)
    other = LoLConfig.from_flat({**config.to_flat(), "backbone": "aigid-tiny-vit"})
    with pytest.raises(ConfigError, match=r"^the checkpoint (lacks|has) '[^']+'"):
        LOL.evaluate(other, state, index, PrepareContext(str(tmp_path), log=lambda line: None))
    with pytest.raises(ConfigError, match="lacks 'encoder"):
        LOL.evaluate(config, {"config": state["config"]}, index, PrepareContext(str(tmp_path), log=lambda line: None))


def test_training_images_are_perturbed_per_path_by_train_perturb(small_genimage):
    index = scan(small_genimage)
    config = LoLConfig.from_flat({**FLAT, "train_perturb": "blur=3"})
    sample = select_training_samples(index, config)[0]
    trainer = LoLTrainer(config, index)
    seen, _ = trainer.train_loader.dataset[0]
    dataset = trainer.train_loader.dataset
    assert dataset.perturb == "blur=3" and dataset.root == str(index.root)
    plain = ImageDataset([sample], lambda img: img)[0][0]
    blurred = ImageDataset([sample], lambda img: img, perturb="blur=3", root=str(index.root))[0][0]
    assert blurred.tobytes() == perturb.apply("blur=3", plain, seed=0, path=sample.path, root=str(index.root)).tobytes()
    assert blurred.tobytes() != plain.tobytes() and seen.shape == (3, 224, 224)


def test_a_bad_train_perturb_is_a_config_error_listing_the_valid_ones():
    with pytest.raises(ConfigError, match="^perturbation 'smudge=3': unknown step.*valid: jpeg="):
        LoLConfig.from_flat({"train_perturb": "smudge=3"})


def test_robustness_and_fig_a7_plans_perturb_training_and_test_images_alike():
    """Table A4: each trial trains and tests under one of the four perturbations; Fig. A7 under all four in sequence."""
    sweeps = Path(__file__).parent.parent / "sweeps"
    loaded = {"lol_robustness": runpy.run_path(str(sweeps / "lol_robustness.py"))["SWEEP"],
              "lol_fig_a7": runpy.run_path(str(sweeps / "lol_cross_generator.py"))["FIG_A7"]}
    points = {name: expand(sweep, False, {k: pick(v, False) for k, v in sweep.fixed.items()}, 1)
              for name, sweep in loaded.items()}
    specs = [perturb.LOL_TABLE_A4[name].spec() for name in ("noise", "blur", "compress", "crop")]
    assert [(p["train_perturb"], p["test_perturb"]) for p in points["lol_robustness"]] == [(s, s) for s in specs for _ in range(5)]
    assert [p["train_volume"] for p in points["lol_robustness"]] == [1600, 3200, 6400, 12800, 25600] * 4
    combined = perturb.LOL_TABLE_A4["combined"].spec()
    assert len(points["lol_fig_a7"]) == 8 and all(
        (p["train_perturb"], p["test_perturb"], p["train_volume"]) == (combined, combined, 3200) for p in points["lol_fig_a7"])
