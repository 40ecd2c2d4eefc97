"""MLflow for sweeps: one experiment per sweep, a parent run, and one nested child run per trial.

Ray's own MLflowLoggerCallback logs flat runs and opens a new run whenever the driver sees a
trial start; this callback nests runs under the sweep's parent (`mlflow.parentRunId`) and
finds a trial's existing run by its trial id, so a resumed driver keeps logging to it.
"""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from ray import tune

from aigid.errors import UserError

DEFAULT_DB = "mlflow.db"
# MLflow retries an unreachable server for minutes; the pre-flight probe must fail at once.
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def tracking_uri(explicit: str | None) -> str:
    """--mlflow-uri, else $MLFLOW_TRACKING_URI, else a SQLite store in the working directory."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.abspath(DEFAULT_DB)}"


class TrackingError(UserError):
    """An MLflow tracking store that does not answer; the message names the URI and the fix."""


def connect(uri: str) -> MlflowClient:
    """A client whose store answered a request: fail before any trial runs, naming the URI."""
    client = MlflowClient(tracking_uri=uri)
    try:
        with environ(PROBE_ENV):
            client.search_experiments(max_results=1)
    except Exception as error:  # the store's own error types vary by backend
        raise TrackingError(
            f"MLflow tracking store {uri} is not reachable ({type(error).__name__}: {error}). "
            "Start the server or pass --mlflow-uri (default: a local sqlite:///mlflow.db)."
        ) from error
    return client


@contextlib.contextmanager
def environ(values: dict[str, str]):
    """Set environment variables for the duration of a block (MLflow reads them per request)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def experiment_id(client: MlflowClient, name: str) -> str:
    existing = client.get_experiment_by_name(name)
    return existing.experiment_id if existing else client.create_experiment(name)


def git_commit() -> str:
    """The checkout's commit, or 'unknown' outside a git checkout (e.g. a Ray job's working dir)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def as_params(flat: dict) -> list[Param]:
    return [Param(str(key), str(value)[:MAX_PARAM_LENGTH]) for key, value in sorted(flat.items())]


def as_metrics(result: dict, step: int) -> list[Metric]:
    """The numeric entries of a Tune result (bools and Tune's bookkeeping fields excluded)."""
    now = int(time.time() * 1000)
    skip = {"training_iteration", "timestamp", "pid", "time_this_iter_s", "time_total_s", "time_since_restore",
            "iterations_since_restore", "epoch_end", "done"}
    return [
        Metric(key, float(value), now, step)
        for key, value in result.items()
        if key not in skip and isinstance(value, (int, float)) and not isinstance(value, bool)
        and math.isfinite(float(value))
    ]


def error_line(trial) -> str:
    """The last line of a failed trial's error (the exception and its message)."""
    path = trial.error_file  # written on the driver as the error happens; storage syncs later
    if not path or not os.path.exists(path):
        return "unknown error"
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else "unknown error"


def parent_run(client: MlflowClient, experiment: str, run_name: str, tags: dict, params: dict) -> str:
    """The sweep's parent run: the existing one of a resumed sweep (same `aigid_run`), else a new one."""
    # Children carry `aigid_run` too: match the parent's own tag, or with more children than
    # max_results the newest hits are all children and a second parent would be created.
    found = client.search_runs([experiment], filter_string=f"tags.aigid_run = '{run_name}' and tags.aigid_parent = 'true'",
                               max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
    run_id = client.create_run(experiment, tags={**tags, "aigid_parent": "true"}, run_name=run_name).info.run_id
    client.log_batch(run_id, params=as_params(params))
    return run_id


class SweepLogger(tune.Callback):
    """Logs each trial to a child run of the sweep's parent run, from the driver."""

    def __init__(self, uri: str, experiment: str, parent_run_id: str, tags: dict[str, str]):
        self.uri, self.experiment, self.parent_run_id, self.tags = uri, experiment, parent_run_id, tags
        self.client: MlflowClient | None = None
        self.run_ids: dict[str, str] = {}
        self.last_step: dict[str, int] = {}  # run id -> highest step logged

    def _run_id(self, trial) -> str:
        if trial.trial_id in self.run_ids:
            return self.run_ids[trial.trial_id]
        if self.client is None:
            self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.search_runs(
            [self.experiment],
            filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_run_id}' and tags.trial_id = '{trial.trial_id}'",
            max_results=1,
        )
        if found:  # a resumed sweep: carry on after the steps this run already has
            run_id = found[0].info.run_id
            self.last_step[run_id] = max((m.step for m in self.client.get_metric_history(run_id, "epoch")), default=0)
        else:
            tags = {**self.tags, "mlflow.parentRunId": self.parent_run_id, "trial_id": trial.trial_id}
            run_id = self.client.create_run(self.experiment, tags=tags, run_name=str(trial)).info.run_id
            self.client.log_batch(run_id, params=as_params(trial.config))
        self.run_ids[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        self._run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self._run_id(trial)
        step = int(result.get("training_iteration", 0))
        if step <= self.last_step.get(run_id, 0):
            return  # an epoch redone after a restore from an older checkpoint: its step is already logged
        self.last_step[run_id] = step
        tags = [RunTag(key, str(result.get(key, ""))) for key in ("node_ip", "node_id", "hostname")]
        self.client.log_batch(run_id, metrics=as_metrics(result, step), tags=tags)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.client.set_terminated(self._run_id(trial), status="FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self._run_id(trial)
        self.client.set_tag(run_id, "error", error_line(trial)[:5000])
        self.client.set_terminated(run_id, status="FAILED")
