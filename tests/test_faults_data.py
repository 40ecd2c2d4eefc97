"""Faults in the data and the caches (issue 21): each is injected for real (bytes overwritten on disk, a
full filesystem, a symlink loop, a huge image) and must either recover with the right result or stop
with one line naming cause and fix, losing nothing finished."""
import shutil
import subprocess

import numpy as np
import pytest

from aigid.data.decoded import decode_once
from aigid.data.layouts import scan
from aigid.data.transforms import test_transform as centre_crop
from aigid.errors import StorageError
from aigid.features import FeatureRequest, FixedView, extract
from aigid.methods.lol import LoLConfig, LoLTrainer, select_test_samples


@pytest.fixture
def test_paths(small_genimage):
    index = scan(small_genimage)
    return tuple(s.path for s in index.select(index.test_split, subsets=["adm", "biggan"]))


def request(paths, outputs=("block_cls_ln2",)):
    return FeatureRequest("aigid-tiny-vit", None, outputs, paths, FixedView(centre_crop(224)))


@pytest.fixture
def small_disk(tmp_path):
    """A real tmpfs at tmp_path/disk; `resize(size)` mounts it, or grows it as freeing space would."""
    disk = tmp_path / "disk"
    disk.mkdir()

    def resize(size: str):
        options = f"size={size}" + (",remount" if disk.is_mount() else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], check=True)

    yield disk, resize
    if disk.is_mount():
        subprocess.run(["umount", "-l", str(disk)], check=True)


def flip_bytes(path, at: float):
    """Overwrite 16 bytes in place, `at` of the way into the file: same size, other bytes."""
    with open(path, "r+b") as file:
        file.seek(int(path.stat().st_size * at))
        old = file.read(16)
        file.seek(-16, 1)
        file.write(bytes(b ^ 0xFF for b in old))


def test_bytes_overwritten_in_a_stored_feature_file_are_found_and_the_entry_recomputed(test_paths, tmp_path):
    req = request(test_paths)
    (table,), _ = extract([req], tmp_path, log=None)
    expected = np.array(table.features["block_cls_ln2"])
    flip_bytes(tmp_path / req.key() / "block_cls_ln2.npy", at=0.6)
    assert not np.array_equal(np.load(tmp_path / req.key() / "block_cls_ln2.npy"), expected)  # the damage is real
    lines = []
    (again,), stats = extract([req], tmp_path, log=lines.append)
    assert stats == {"computed": 1, "cached": 0}
    damaged = [line for line in lines if "damaged" in line]
    assert len(damaged) == 1 and "block_cls_ln2.npy has other bytes" in damaged[0] and "recomputing it" in damaged[0]
    assert np.array_equal(again.features["block_cls_ln2"], expected)
    assert extract([req], tmp_path, log=None)[1] == {"computed": 0, "cached": 1}  # sound again


def test_a_truncated_decoded_test_image_cache_is_decoded_again_and_lol_evaluates_on_it(small_genimage, tmp_path):
    index = scan(small_genimage)
    config = LoLConfig.from_flat({"backbone": "aigid-tiny-rn", "pretrained": None, "train_volume": 8, "test_limit": 4,
                                  "epochs": 1, "batch_size": 4})
    paths = [s.path for samples in select_test_samples(index, config).values() for s in samples]
    entry = decode_once(paths, config.crop, tmp_path, log=None)
    images = tmp_path / entry.root.split("/")[-1] / "images.npy"
    expected = np.load(images)
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])  # a copy cut short
    lines = []
    again = decode_once(paths, config.crop, tmp_path, log=lines.append)
    assert again == entry and sum("damaged" in line and "decoding them again" in line for line in lines) == 1
    assert np.array_equal(np.load(images), expected)
    trainer = LoLTrainer(config, index, {"test_images": {again.crop: again}})
    assert trainer.decoded_tests and 0.0 <= trainer.evaluate()["test/mean/acc"] <= 1.0


def test_a_full_feature_store_is_one_line_keeps_what_was_stored_and_a_rerun_completes(test_paths, small_disk):
    disk, resize = small_disk
    small, large = request(test_paths, ("embedding",)), request(test_paths, ("patch_tokens",))  # 64 B, 25 KiB a row
    resize("64k")  # room for the embeddings, not for the patch tokens
    with pytest.raises(StorageError) as error:
        extract([small, large], disk, log=None)
    message = str(error.value)
    need = len(test_paths) * (196 * 64 * 2 + 1)
    assert "\n" not in message and f"--cache-dir {disk} is full" in message and f"writes {need} bytes" in message
    assert (disk / small.key()).is_dir() and not (disk / large.key()).exists()
    assert not list(disk.glob(".*.partial"))  # no half-written folder holds the space
    resize("4m")  # space freed
    (stored, computed), stats = extract([small, large], disk, log=None)
    assert stats == {"computed": 1, "cached": 1} and computed.ok.all()


def test_a_disk_that_fills_while_decoding_is_one_line_and_a_rerun_completes(test_paths, small_disk):
    disk, resize = small_disk
    crop = 64
    need = len(test_paths) * (3 * crop * crop + 1)  # what the check asks for: the rows and the ok mask
    pages = -(-need // 4096)
    resize(f"{pages * 4}k")  # the check passes; the file's header then takes the last page ok.npy needed
    assert shutil.disk_usage(disk).free >= need
    with pytest.raises(StorageError, match=f"is full: this pass writes {need} bytes"):
        decode_once(test_paths, crop, disk, log=None)
    assert not list(disk.iterdir())
    resize("4m")
    entry = decode_once(test_paths, crop, disk, log=None)
    assert entry.available() and entry.open()[1].all()
