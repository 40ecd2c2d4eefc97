"""Test images decoded once per sweep: the same evaluation as decoding per trial, stored whole or not at all."""
import numpy as np
import pytest
import torch

from aigid.data.datasets import UnreadableImageWarning
from aigid.data.decoded import decode_once
from aigid.data.layouts import scan
from aigid.methods.lol import LoLConfig, LoLTrainer, select_test_samples
from aigid.methods.lol.config import SMALL_IMAGES
from aigid.methods.lol.evaluation import entry_key

CONFIG = {"backbone": "aigid-tiny-rn", "pretrained": None, "train_volume": 8, "test_limit": 4, "epochs": 1,
          "batch_size": 4}


@pytest.fixture
def index(small_genimage):
    return scan(small_genimage)


def test_lol_evaluates_the_decoded_crops_exactly_as_its_own_loaders(index, tmp_path):
    config = LoLConfig.from_flat(CONFIG)
    paths = [s.path for samples in select_test_samples(index, config).values() for s in samples]
    decoded = decode_once(paths, config.crop, tmp_path, small=SMALL_IMAGES, log=None)
    torch.manual_seed(0)
    per_trial = LoLTrainer(config, index)
    torch.manual_seed(0)
    shared = LoLTrainer(config, index, {"test_images": {entry_key(config): decoded}})
    assert shared.tests.decoded and not shared.tests.loaders and per_trial.tests.loaders
    ours, theirs = shared.evaluate(), per_trial.evaluate()
    assert ours.keys() == theirs.keys()
    assert all(ours[k] == pytest.approx(theirs[k], abs=1e-6) for k in ours)


def test_an_entry_is_decoded_once_and_skips_unreadable_files(index, tmp_path, capsys):
    paths = [s.path for s in index.select(index.test_split, subsets=["adm"])]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.warns(UnreadableImageWarning, match="broken.png"):
        entry = decode_once([*paths, str(broken)], 64, tmp_path / "cache", small=SMALL_IMAGES)
    assert "decoded once for every trial" in capsys.readouterr().out
    images, ok, row_of = entry.open()
    assert images.shape == (len(paths) + 1, 3, 64, 64) and images.dtype == np.uint8
    assert not ok[row_of[str(broken)]] and ok.sum() == len(paths)
    again = decode_once(reversed([*paths, str(broken)]), 64, tmp_path / "cache", small=SMALL_IMAGES)
    assert again == entry and "read from" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [entry.root.split("/")[-1]]  # no partial left


def test_a_trainer_on_a_node_without_the_entry_decodes_for_itself(index, tmp_path):
    config = LoLConfig.from_flat(CONFIG)
    paths = [s.path for samples in select_test_samples(index, config).values() for s in samples]
    entry = decode_once(paths, config.crop, tmp_path, small=SMALL_IMAGES, log=None)
    missing = type(entry)(str(tmp_path / "elsewhere"), entry.paths, entry.crop)
    trainer = LoLTrainer(config, index, {"test_images": {entry_key(config): missing}})
    assert trainer.tests.loaders and not trainer.tests.decoded
