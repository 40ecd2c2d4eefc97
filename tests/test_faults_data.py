"""Faults in the data and the caches (issue 21): each is injected for real (bytes overwritten on disk, a
full filesystem, a symlink loop, a huge image) and must either recover with the right result or stop
with one line naming cause and fix, losing nothing finished."""
import os
import runpy
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigid.cli import main as cli_main
from aigid.data.datasets import ImageDataset, UnreadableImageWarning, collate_skip_bad
from aigid.data.decoded import decode_once
from aigid.data.index import Sample
from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.data.transforms import test_transform as centre_crop
from aigid.errors import StorageError
from aigid.features import FeatureRequest, FixedView, extract
from aigid.methods import RINE
from aigid.methods.lol import LoLConfig, LoLTrainer, select_test_samples
from aigid.methods.lol.config import SMALL_IMAGES
from aigid.methods.lol.evaluation import entry_key
from trainables.launcher import main
from trainables.sweep import Sweep, grid

REPO = Path(__file__).parent.parent


def load_sweep_module(name):
    return runpy.run_path(str(REPO / "sweeps" / f"{name}.py"))


@pytest.fixture
def test_paths(small_genimage):
    index = scan(small_genimage)
    return tuple(s.path for s in index.select(index.test_split, subsets=["adm", "biggan"]))


def request(paths, outputs=("block_cls_ln2",)):
    return FeatureRequest("aigid-tiny-vit", None, outputs, paths, FixedView(centre_crop(224, small="pad")))


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
    entry = decode_once(paths, config.crop, tmp_path, small=SMALL_IMAGES, log=None)
    images = tmp_path / entry.root.split("/")[-1] / "images.npy"
    expected = np.load(images)
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])  # a copy cut short
    lines = []
    again = decode_once(paths, config.crop, tmp_path, small=SMALL_IMAGES, log=lines.append)
    assert again == entry and sum("damaged" in line and "decoding them again" in line for line in lines) == 1
    assert np.array_equal(np.load(images), expected)
    trainer = LoLTrainer(config, index, {"test_images": {entry_key(config): again}})
    assert trainer.tests.decoded and 0.0 <= trainer.evaluate()["test/mean/acc"] <= 1.0


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
        decode_once(test_paths, crop, disk, small="tile", log=None)
    assert not list(disk.iterdir())
    resize("4m")
    entry = decode_once(test_paths, crop, disk, small="tile", log=None)
    assert entry.available() and entry.open()[1].all()


@pytest.fixture
def linked_genimage(tmp_path):
    """A synthetic GenImage tree, its images counted, then given a symlink loop, a dangling link, and a
    folder link and an image link from ai/ into nature/ (another label's folder)."""
    root = make_synthetic(tmp_path / "linked", n_train=2, n_test=1)
    counts = scan(root).counts()
    train = root / "imagenet_ai_0508_adm" / "train"
    (train / "nature" / "deeper").mkdir()
    (train / "nature" / "deeper" / "loop").symlink_to("..", target_is_directory=True)
    (train / "nature" / "gone.png").symlink_to("no_such_file.png")
    (train / "ai" / "from_nature").symlink_to("../nature", target_is_directory=True)
    (train / "ai" / "one_real.png").symlink_to(train / "nature" / "real_0000.png")
    return root, counts


def test_symlink_loops_and_links_across_labels_count_each_image_once_with_a_skip_line(linked_genimage, capsys):
    root, counts = linked_genimage
    index = scan(root)
    assert index.counts() == counts  # no image from the loop, none twice, none under the other label
    lines = [p for p in index.problems if p.startswith("skipped")]
    assert len(lines) == 3, lines
    assert any("1 symlink(s) that loop back" in p and "deeper/loop ->" in p for p in lines)
    assert any("1 broken symlink(s)" in p and "gone.png -> no_such_file.png" in p for p in lines)
    assert any("2 symlink(s) into another labelled folder" in p for p in lines)

    assert cli_main(["data", "inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert all(f"  - {line}" in out for line in lines) and "unreadable images: 0 of" in out
    sweep = load_sweep_module("lol_mask_grid")["SWEEP"]
    assert main(sweep, ["--data", str(root), "--set", "train_volume=None", "--dry-run"]) == []
    out = capsys.readouterr().out
    assert all(f"[aigid] data: {line}" in out for line in lines)  # the sweep's data summary says it too


def test_an_image_over_the_pixel_limit_is_skipped_like_an_unreadable_one_without_decoding_it(tmp_path, capsys):
    root = make_synthetic(tmp_path / "huge", n_train=1, n_test=1)
    huge = root / "imagenet_ai_0508_adm" / "val" / "ai" / "huge.png"
    Image.new("1", (12000, 12000)).save(huge)  # 144 Mpx in a file of a few kB
    measured = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(huge)], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    reason, grown = measured.stdout.strip().rsplit(" ", 1)
    assert "12000x12000 px is over aigid's limit of 40 Mpx" in reason and int(grown) < 50 * 2**20  # kB of maxrss
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        dataset = ImageDataset([Sample(str(huge), 1, "adm", "val")], centre_crop(64, small="pad"))
        with pytest.warns(UnreadableImageWarning, match="12000x12000 px is over"):
            assert collate_skip_bad([dataset[0]])[2] == 1  # counted in data/skipped_files as unreadable images are
    assert cli_main(["data", "inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "unreadable images: 1 of" in out and f"{huge}: ValueError: 12000x12000 px is over" in out


PEAK_MEMORY = """
import resource, sys
from aigid.data.datasets import UnreadableImage, load_rgb
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_rgb(sys.argv[1])
except UnreadableImage as error:
    print(error.reason, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.slow
def test_a_sweep_on_a_full_cache_dir_exits_2_with_one_line_and_its_rerun_finishes(ray_session, small_disk, tmp_path,
                                                                                  offline_cwd, capsys):
    disk, resize = small_disk
    offline_cwd("ufd")  # the synthetic stand-in is looked for here
    sweep = Sweep(name="full_cache_dir", method=RINE, plan=grid(q=[1]), table=load_sweep_module("rine_grid")["table"])
    argv = ["--smoke", "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage", str(tmp_path / "results"),
            "--cache-dir", str(disk), "--set", "proj_dim=8"]
    resize("16k")
    with pytest.raises(SystemExit) as exit_info:
        main(sweep, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert f"--cache-dir {disk} is full: this pass writes" in line and "bytes" in line and "a rerun" in line
    resize("64m")  # space freed
    trials = main(sweep, argv)
    assert len(trials) == 1 and trials[0].finished
    assert "features computed once" in capsys.readouterr().out


@pytest.mark.slow
def test_a_full_storage_stops_the_sweep_in_one_line_keeps_finished_trials_and_resume_completes(
        ray_session, small_disk, tmp_path, offline_cwd, capsys):
    """--storage on a real tmpfs: too small to start (the room check stops the sweep before any trial),
    then too small for the largest head's checkpoint (that trial fails in one line), then grown: --resume
    runs what is left, and no finished trial is run or logged twice."""
    from mlflow import MlflowClient

    disk, resize = small_disk
    offline_cwd("ufd")
    sweep = Sweep(name="full_storage", method=RINE, plan=grid(proj_dim=[8, 16, 1024]),
                  table=load_sweep_module("rine_grid")["table"])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    argv = ["--smoke", "--mlflow-uri", uri, "--storage", str(disk), "--cache-dir", str(tmp_path / "cache"),
            "--set", "q=1", "--max-concurrent", "1"]

    def run(*extra):
        with pytest.raises(SystemExit) as exit_info:
            main(sweep, [*argv, *extra])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return exit_info.value.code, err

    resize("512k")  # under the room check's margin for Tune's own state
    code, err = run("--name", "full")
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and f"--storage {disk} is full" in line and "--resume" in line
    resize("4m")  # room for the small heads, not for d' = 1024's ~13 MB checkpoint
    code, err = run("--resume", "full")
    assert code in (1, 2) and "is full" in err
    resize("128m")  # space freed
    trials = main(sweep, [*argv, "--resume", "full"])
    assert sorted(t.config["proj_dim"] for t in trials if t.finished) == [8, 16, 1024]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("full_storage")
    children = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert sorted(int(float(r.data.params["proj_dim"])) for r in children) == [8, 16, 1024]  # each logged once
