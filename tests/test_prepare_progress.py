"""The shared preparation says how far it is while it runs (issue 23, 4): images/s and an ETA every
aigid.progress.LOG_EVERY_S, on the console and as metrics of the sweep's MLflow parent run, for the
decode-once pass (LoL) and the frozen-backbone feature pass alike. Real Ray, real MLflow store."""
import pytest

from aigid import progress
from aigid.data.layouts import scan
from aigid.data.synthetic import make_synthetic
from aigid.data.transforms import test_transform as centre_crop
from aigid.features import FeatureRequest, FixedView, extract
from aigid.methods import LOL
from trainables import tracking
from trainables import prepare as prepare_module
from trainables.prepare import prepare


@pytest.fixture
def every_batch(monkeypatch):
    """A line after every batch, so a pass of a few batches shows what an hours-long one shows."""
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)


@pytest.mark.parametrize("in_task", [False, True], ids=["in the driver", "as a Ray task"])
def test_a_sweeps_decode_pass_shows_images_per_second_and_an_eta_on_the_console_and_the_parent_run(
        ray_session, every_batch, tmp_path, capsys, monkeypatch, in_task):
    """In the driver (a local CPU sweep) or as a Ray task (a cluster, a GPU), whose lines reach the
    driver through a queue while it runs."""
    monkeypatch.setattr(prepare_module, "in_driver", lambda on_gpu: not in_task)
    index = scan(make_synthetic(tmp_path / "data", n_train=1, n_test=12), "genimage")  # 192 test images: 3 batches
    client = tracking.connect(f"sqlite:///{tmp_path}/mlflow.db")
    parent = tracking.parent_run(client, tracking.experiment_id(client, "progress"), "sweep", {}, {})

    prepare(LOL, index, [LOL.resolve(dict(LOL.offline), index)], cache_dir=str(tmp_path / "cache"), gpus=0,
            show=tracking.PrepareLines(client, parent))

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[aigid] test images decoded:")]
    assert lines == ["[aigid] test images decoded: 64/192" + lines[0].split("64/192")[1], *lines[1:]] and len(lines) == 3
    assert "/s, ETA " in lines[0] and lines[-1].endswith("/s)")  # the last one: done, no ETA left
    fractions = [m.value for m in sorted(client.get_metric_history(parent, "prepare/done_fraction"), key=lambda m: m.step)]
    assert fractions == pytest.approx([1 / 3, 2 / 3, 1.0])  # logged during the pass, not once at its end
    assert all(m.value > 0 for m in client.get_metric_history(parent, "prepare/images_per_s"))
    assert client.get_run(parent).data.tags["prepare_progress"] == lines[-1]


def test_the_feature_pass_says_its_progress_after_each_batch_with_its_numbers(every_batch, tmp_path):
    paths = tuple(s.path for s in scan(make_synthetic(tmp_path / "data", layout="ufd", n_train=2, n_test=2)).select("val"))
    assert len(paths) == 16
    said = []
    extract([FeatureRequest("aigid-tiny-vit", None, ("block_cls_ln2",), paths, FixedView(centre_crop(224, small="pad")),
                            label="val")], tmp_path / "cache", batch_size=6, log=said.append)
    lines = [line for line in said if isinstance(line, progress.ProgressLine)]
    assert [(line.done, line.total) for line in lines] == [(6, 16), (12, 16), (16, 16)]
    assert lines[0].startswith("[aigid] features val: 6/16 images (") and ", ETA " in lines[0]
    assert lines[-1].metrics()["prepare/done_fraction"] == 1.0 and lines[-1].metrics()["prepare/images_per_s"] > 0
