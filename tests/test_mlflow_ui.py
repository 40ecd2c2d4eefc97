"""A sweep against a real `mlflow server` on loopback, checked through the API and in the MLflow UI
rendered by headless Chromium; and the launcher's refusal to start when the server is unreachable."""
import html
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from aigid.report import render as render_table
from browser import render
from trainables.launcher import main
from trainables.sweep import Sweep, grid
from aigid.methods import LOL

REPO = Path(__file__).resolve().parent.parent
MLFLOW = Path(sys.executable).with_name("mlflow")  # the venv's CLI, the same MLflow the launcher imports


def free_port() -> int:
    """A loopback port nothing listens on (the OS picks it; closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(uri: str, server: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    """Poll /health every half second until it answers; fail with the server's log if it dies or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{uri}/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server at {uri} did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, request):
    """A real tracking server on 127.0.0.1 with a SQLite store, serving artifacts over HTTP as on a cluster.
    Ray starts while the server boots: each takes seconds."""
    root = tmp_path_factory.mktemp("mlflow-server")
    uri = f"http://127.0.0.1:{free_port()}"
    log = root / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # the job runner costs startup seconds; unused
    with open(log, "w") as out:
        server = subprocess.Popen(
            [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", uri.rsplit(":", 1)[1], "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True,
        )
    try:
        request.getfixturevalue("ray_session")
        wait_until_up(uri, server, log)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def two_trial_sweep(name: str) -> Sweep:
    return Sweep(name=name, method=LOL, plan=grid(mask_ratio=[(0.0, 0.2), (0.6, 0.8)]),
                 table=lambda trials: render_table([["trials"], [len(trials)]]), doc="MLflow server test")


def rendered(page: str, screenshot: Path, wanted) -> str:
    """The page's text once `wanted(text)` holds, giving a loaded machine more page time on each try;
    the screenshot is kept under test-output/ either way."""
    for budget_ms in (15000, 30000, 60000):
        text = html.unescape(render(page, screenshot, budget_ms=budget_ms))
        if wanted(text):
            break
    kept = REPO / "test-output" / screenshot.name
    kept.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, kept)
    return text


def sweep_argv(data, tmp_path, uri: str) -> list[str]:
    """A smoke run of the tiny model on the suite's small synthetic tree, logged to `uri`."""
    return ["--data", str(data), "--backbone", "aigid-tiny-rn", "--pretrained", "none", "--set", "train_volume=None",
            "--smoke", "--mlflow-uri", uri, "--storage", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]


def runs_page(uri: str, experiment_id: str) -> str:
    """The experiment's runs table sorted by run name: a non-date sort lists child runs flat instead of
    collapsed under their parent, so every run's name is on the page."""
    return f"{uri}/#/experiments/{experiment_id}/runs?orderByKey=tags.%60mlflow.runName%60&orderByAsc=true"


@pytest.mark.slow
def test_sweep_logs_to_a_tracking_server_and_its_runs_show_in_the_ui(mlflow_server, small_genimage, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    trials = main(two_trial_sweep("lol_ui"), sweep_argv(small_genimage, tmp_path, mlflow_server))
    assert len(trials) == 2 and all(t.finished for t in trials)

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("lol_ui")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    parent = parents[0].info.run_id
    assert {"summary.txt", "summary.md", "trials.json", "best_config.json", "lol_ui_curve.png"} <= {
        a.path for a in client.list_artifacts(parent)}
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"  # not MLflow 3's GenAI view

    names = {r.info.run_name for r in runs}
    page = runs_page(mlflow_server, experiment.experiment_id)
    text = rendered(page, tmp_path / "mlflow_ui.png", lambda text: all(name in text for name in names))
    missing = sorted(name for name in names if name not in text)
    assert not missing, f"the MLflow UI at {page} does not list runs {missing} (test-output/mlflow_ui.png)"

    # The parent's page shows the sweep's headline metrics; its figure renders in the artifact viewer.
    run_page = f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/{parent}"
    view = "?workflowType=machine_learning"  # the link the sweep prints: MLflow's model-training view
    headline = ("best/score", "best/test/mean/acc", "trials/finished")
    text = rendered(run_page + view, tmp_path / "mlflow_parent_run.png", lambda text: all(m in text for m in headline))
    assert all(m in text for m in headline), f"{run_page} does not show {headline} (test-output/mlflow_parent_run.png)"
    figure = "lol_ui_curve.png"
    dom = rendered(f"{run_page}/artifacts/{figure}{view}", tmp_path / "mlflow_figure.png",
                   lambda text: any("blob:" in tag.split(">")[0] for tag in text.split("<img")[1:]))
    # The viewer fetched the PNG and shows it from a blob: the figure is on the page, not a download link.
    assert any("blob:" in tag.split(">")[0] for tag in dom.split("<img")[1:]) and figure in dom, \
        f"no image of {figure} shown (test-output/mlflow_figure.png)"
    served = requests.get(f"{mlflow_server}/get-artifact", params={"path": figure, "run_uuid": parent}, timeout=10)
    assert served.ok and served.content.startswith(b"\x89PNG")


def test_unreachable_tracking_server_fails_before_any_trial(small_genimage, tmp_path, monkeypatch, capsys):
    import trainables.run

    def no_trials(*args, **kwargs):
        pytest.fail("trials were launched although the tracking server is unreachable")

    monkeypatch.setattr(trainables.run, "run_sweep", no_trials)
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SystemExit) as exit_info:
        main(two_trial_sweep("lol_unreachable"), sweep_argv(small_genimage, tmp_path, uri))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert uri in error and "not reachable" in error
    assert not (tmp_path / "results").exists()
