"""Which images an APN run trains and tests on (§4.1: GenImage, DiffusionForensics, Table 3's cross-scene test)."""
from __future__ import annotations

from pathlib import Path

from aigid.data.layouts import DatasetIndex, DataError, scan
from aigid.data.subsets import reals_apart, test_subsets, training_subset
from aigid.data.synthetic import ensure_synthetic
from aigid.methods.apn.config import DF_NAMES, SYNTHETIC_TEST_ROOT, APNConfig


def select_training_samples(index: DatasetIndex, config: APNConfig):
    """The training subset's images, of `train_scene` on DF (a balanced nested subsample when `train_volume` is set)."""
    scene = config.train_scene if index.layout == "diffusionforensics" else None
    return training_subset(index, config.train_subset, config.train_volume, config.seed, group=scene)


def _scene(index: DatasetIndex, config: APNConfig) -> str | None:
    if index.layout != "diffusionforensics":
        return None
    return config.test_scene or APNConfig.DATASET_DEFAULTS["diffusionforensics"]["test_scene"]


def select_test_samples(index: DatasetIndex, config: APNConfig, wanted=None) -> dict[str, list]:
    """Test images per subset: `wanted`, else `test_subsets`, else all. On DF, of one scene, as Table 2's
    columns: the scene's reals once (`real`), then each generator's fakes alone."""
    per_subset = test_subsets(index, wanted or config.test_subsets, config.test_limit, _scene(index, config))
    return reals_apart(per_subset) if index.layout == "diffusionforensics" else per_subset


def cross_scene_generator(test_index: DatasetIndex, config: APNConfig) -> str:
    """The DF generator folder that matches the GenImage training subset (Table 3), or a DataError."""
    scene = _scene(test_index, config)
    available = set(test_index.subsets(test_index.test_split)) & {
        s.subset for s in test_index.select(test_index.test_split, groups=[scene])}
    names = DF_NAMES.get(config.train_subset, (config.train_subset,))
    for name in names:
        if name in available:
            return name
    raise DataError(f"{test_index.root} has no {' / '.join(names)} generator in scene '{scene}' to test a model "
                    f"trained on '{config.train_subset}' (it has: {', '.join(sorted(available)) or 'nothing'})")


def open_test_index(config: APNConfig, index: DatasetIndex) -> DatasetIndex | None:
    """The DF dataset of `test_root`, scanned; "synthetic" writes/reuses the stand-in beside a synthetic `index`."""
    if config.test_root is None:
        return None
    root = config.test_root
    if root == SYNTHETIC_TEST_ROOT:
        if not index.synthetic:
            raise DataError("test_root='synthetic' pairs only with the synthetic training stand-in; "
                            "pass test_root=<your DiffusionForensics root>")
        root = ensure_synthetic(Path(index.root).parent / "synthetic-diffusionforensics", layout="diffusionforensics")
    return scan(root, "diffusionforensics")


def select_all_tests(index: DatasetIndex, config: APNConfig, test_index: DatasetIndex | None) -> dict[str, tuple]:
    """{metric prefix: (dataset index, per-subset samples)}: "test" on `index`; with test_root also
    "test_<scene>", DF's reals and the generator matching the training subset (Table 3's LSUN column
    is their mean: the average of the real and the fake accuracy)."""
    wanted = [config.train_subset] if config.test_in_domain_only else None
    tests = {"test": (index, select_test_samples(index, config, wanted))}
    if config.test_root is not None:
        test_index = test_index or open_test_index(config, index)
        tests[f"test_{_scene(test_index, config)}"] = (test_index, select_test_samples(
            test_index, config, [cross_scene_generator(test_index, config)]))
    return tests


def check_data(config: APNConfig, index: DatasetIndex, test_index: DatasetIndex | None = None) -> None:
    """Fail before any training when a training or test subset (or the cross-scene generator) is missing."""
    select_training_samples(index, config)
    select_all_tests(index, config, test_index)
