"""Fixtures shared across the suite: one local Ray per session, small synthetic benchmarks."""
import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray, started once for the whole session (starting one costs seconds)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def small_genimage(tmp_path_factory):
    """A small synthetic GenImage tree (8 subsets, 8+8 train and 4+4 val images each)."""
    from aigid.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("genimage") / "synthetic", n_train=8, n_test=4)
