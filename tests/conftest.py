"""Fixtures shared across the suite: one local Ray per session, small synthetic benchmarks."""
import functools
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Checkpoint at every epoch end, as a long trial would: the fault tests crash and kill trials mid-run
# and check that they continue from a checkpoint (trainables.trainable.CHECKPOINT_EVERY_S).
os.environ["AIGID_CHECKPOINT_EVERY_S"] = "0"


def pytest_collection_modifyitems(items):
    """A test that starts Ray (the `ray_session` fixture) is a multi-process test: marked slow, so `make test`
    stays minutes long and `make test-all` (CI) runs it."""
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray, started once for the whole session (starting one costs seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def from_file(tmp_path):
    """A trainer's state as a resumed trial reads it: saved, then loaded weights-only (aigid.checkpoints)."""
    from aigid import checkpoints

    def through(state: dict) -> dict:
        checkpoints.save(state, tmp_path / "trainer.pt")
        return checkpoints.load(tmp_path / "trainer.pt", fix="a test's own checkpoint")

    return through


@pytest.fixture(scope="session")
def small_genimage(tmp_path_factory):
    """A small synthetic GenImage tree (8 subsets, 8+8 train and 4+4 val images each)."""
    from aigid.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("genimage") / "synthetic", n_train=8, n_test=4)


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory):
    """`stand_ins(folder, *layouts)` puts each layout's offline stand-in where a run without --data in
    `folder` looks for it (the launcher's aigid_data/synthetic-<layout>) -> {layout: its path}. Each is
    generated once per session (the GenImage one takes ~13 s, the UFD one ~10 s) and copied (0.1 s): the
    same files the run would have generated, as they are seeded."""
    from aigid.data.synthetic import ensure_synthetic
    from trainables.launcher import DEFAULT_DATA_DIR

    root = tmp_path_factory.mktemp("stand-ins")
    generated = functools.cache(lambda layout: ensure_synthetic(root / layout, layout=layout))

    def place(folder: Path, *layouts: str) -> dict[str, Path]:
        where = {layout: Path(folder) / DEFAULT_DATA_DIR / f"synthetic-{layout}" for layout in layouts}
        for layout, path in where.items():
            shutil.copytree(generated(layout), path)
        return where

    return place


@pytest.fixture
def offline_cwd(tmp_path, monkeypatch, stand_ins):
    """`offline_cwd(*layouts)`: tmp_path becomes the working directory of runs without --data, with
    those layouts' stand-ins already in it (see stand_ins)."""

    def enter(*layouts):
        stand_ins(tmp_path, *layouts)
        monkeypatch.chdir(tmp_path)

    return enter


@pytest.fixture
def horse_only_ufd(tmp_path):
    """A synthetic UFD tree whose train/ and val/ hold ProGAN's horse class only (RINE's 1-class setting)."""
    from aigid.data.synthetic import make_synthetic

    root = make_synthetic(tmp_path / "horse-only", layout="ufd", n_train=1, n_test=1)
    for cls in ("car", "cat", "chair"):
        for split in ("train", "val"):
            for path in sorted((root / split / cls).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            (root / split / cls).rmdir()
    return root
