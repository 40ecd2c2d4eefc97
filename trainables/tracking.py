"""MLflow for sweeps: one experiment per sweep, a parent run, and one nested child run per trial.

Ray's own MLflowLoggerCallback logs flat runs and opens a new run whenever the driver sees a
trial start; this callback nests runs under the sweep's parent (`mlflow.parentRunId`) and
finds a trial's existing run by its trial id, so a resumed driver keeps logging to it.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from ray import tune

from aigid.errors import UserError
from trainables.trainable import ITERATION  # Tune's count of a trial's results: the MLflow step

DEFAULT_DB = "mlflow.db"
SQLITE = "sqlite:///"
# MLflow retries an unreachable server for minutes; the pre-flight probe must fail at once.
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
SEARCH_MAX_RESULTS = 50000  # MLflow's limit on one search_runs page


def tracking_uri(explicit: str | None) -> str:
    """--mlflow-uri, else $MLFLOW_TRACKING_URI, else a SQLite store in the working directory."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE}{os.path.abspath(DEFAULT_DB)}"


class TrackingError(UserError):
    """An MLflow tracking store that does not answer; the message names the URI and the fix."""


def connect(uri: str, *, read_only: bool = False) -> MlflowClient:
    """A client whose store answered a request: fail before any trial runs, naming the URI. A sweep
    may create the store (under a lock); a reader (`aigid results`) opens an existing one and writes
    nothing beside it."""
    try:
        with (contextlib.nullcontext() if read_only else sqlite_lock(uri)), environ(PROBE_ENV):
            client = MlflowClient(tracking_uri=uri)  # creates and migrates a SQLite store's tables
            client.search_experiments(max_results=1)
    except Exception as error:  # the store's own error types vary by backend
        raise TrackingError(
            f"MLflow tracking store {uri} is not reachable ({type(error).__name__}: {error}). "
            "Start the server or pass --mlflow-uri (default: a local sqlite:///mlflow.db)."
        ) from error
    return client


@contextlib.contextmanager
def sqlite_lock(uri: str):
    """Hold a lock beside a local SQLite store while a client opens it: two sweeps started at once on a
    fresh store otherwise both create and migrate its tables ('duplicate column name: step'). A new
    store's folder is made, as a sweep makes its --storage."""
    if not uri.startswith(SQLITE):
        yield
        return
    path = Path(uri[len(SQLITE):])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


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


# MLflow 3 opens an experiment with no kind in its GenAI view (traces, prompts); sweeps train models.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def experiment_id(client: MlflowClient, name: str) -> str:
    """The sweep's experiment, created on first use, shown in MLflow's model-training view."""
    existing = client.get_experiment_by_name(name)
    if existing:
        return existing.experiment_id
    return client.create_experiment(name, tags=dict([EXPERIMENT_KIND]))


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
    """The numeric entries of a Tune result (Tune's bookkeeping fields excluded; of the bools only
    `epoch_end`, as 1/0, so that a mid-epoch evaluation (0) reads apart from an epoch end (1); each
    row also carries the training `step`, the x-axis of LoL's Fig. 2)."""
    now = int(time.time() * 1000)
    skip = {"timestamp", "pid", "time_this_iter_s", "time_total_s", "time_since_restore",
            "iterations_since_restore", "done"}
    return [
        Metric(key, float(value), now, step)
        for key, value in result.items()
        if key not in skip and isinstance(value, (int, float)) and (key == "epoch_end" or not isinstance(value, bool))
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


def find_parent(client: MlflowClient, experiment: str, run_name: str) -> str | None:
    """The parent run of the sweep run `run_name` (its `aigid_run` tag), if MLflow has one."""
    # Children carry `aigid_run` too: match the parent's own tag, or with more children than
    # max_results the newest hits are all children and a second parent would be created.
    found = client.search_runs([experiment], filter_string=f"tags.aigid_run = '{run_name}' and tags.aigid_parent = 'true'",
                               max_results=1)
    return found[0].info.run_id if found else None


def parent_run(client: MlflowClient, experiment: str, run_name: str, tags: dict, params: dict) -> str:
    """A new sweep's parent run, with the sweep's settings as params."""
    run_id = client.create_run(experiment, tags={**tags, "aigid_parent": "true"}, run_name=run_name).info.run_id
    client.log_batch(run_id, params=as_params(params))
    return run_id


class PrepareLines:
    """The shared preparation's lines, as they arrive: printed, and a progress line's numbers
    (aigid.progress.ProgressLine: images/s, done fraction, ETA) logged on the parent run, with the
    line itself as its `prepare_progress` tag, so the MLflow UI shows a long pass moving."""

    def __init__(self, client: MlflowClient, parent_run_id: str):
        self.client, self.parent_run_id, self.step = client, parent_run_id, 0

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        if not hasattr(line, "metrics"):
            return
        self.step += 1
        now = int(time.time() * 1000)
        try:
            self.client.log_batch(self.parent_run_id, tags=[RunTag("prepare_progress", str(line))],
                                  metrics=[Metric(key, value, now, self.step) for key, value in line.metrics().items()])
        except Exception as error:  # noqa: BLE001 — a lost progress metric must not stop the pass
            print(f"[aigid] MLflow logging failed: {type(error).__name__}: {error}", flush=True)


class SweepLogger(tune.Callback):
    """Logs each trial to a child run of the sweep's parent run, from the driver.

    MLflow calls run on one background thread, in the order Tune's events arrive: Tune's event
    loop hands a trial's next result back to it only after every callback returns, so logging
    inline (tens of ms per call on a SQLite store) made the trials wait on MLflow. `close()`
    (at the experiment's end, or from the launcher's `finally`) waits until everything queued
    is written.
    """

    def __init__(self, uri: str, experiment: str, parent_run_id: str, tags: dict[str, str]):
        self.uri, self.experiment, self.parent_run_id, self.tags = uri, experiment, parent_run_id, tags
        self.client: MlflowClient | None = None
        self.run_ids: dict[str, str] = {}
        self.last_step: dict[str, int] = {}  # run id -> highest step logged
        self.stale_errors: set[str] = set()  # runs of a resumed sweep that carry an earlier attempt's error tag
        self.queue: queue.Queue = queue.Queue()
        self.writer: threading.Thread | None = None  # started with the first event

    def __getstate__(self):  # Tune pickles its callbacks with the experiment; a resumed driver starts afresh
        return {"uri": self.uri, "experiment": self.experiment, "parent_run_id": self.parent_run_id, "tags": self.tags}

    def __setstate__(self, state):
        self.__init__(**state)

    def _put(self, job) -> None:
        if self.writer is None:
            self.writer = threading.Thread(target=self._write, name="aigid-mlflow", daemon=True)
            self.writer.start()
        self.queue.put(job)

    def _write(self) -> None:
        while (job := self.queue.get()) is not None:
            try:
                job()
            except Exception as error:  # a lost metric must not stop the sweep; say so once per failure
                print(f"[aigid] MLflow logging failed: {type(error).__name__}: {error}", flush=True)

    def close(self) -> None:
        if self.writer is not None and self.writer.is_alive():
            self.queue.put(None)
            self.writer.join()

    def _run_id(self, trial_id: str, name: str, config: dict) -> str:
        if trial_id in self.run_ids:
            return self.run_ids[trial_id]
        if self.client is None:
            self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.search_runs(
            [self.experiment],
            filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_run_id}' and tags.trial_id = '{trial_id}'",
            max_results=1,
        )
        if found:  # a resumed sweep: carry on after the steps this run already has
            run_id = found[0].info.run_id
            if "error" in found[0].data.tags:
                self.stale_errors.add(run_id)
            self.last_step[run_id] = max((m.step for m in self.client.get_metric_history(run_id, "epoch")), default=0)
        else:
            tags = {**self.tags, "mlflow.parentRunId": self.parent_run_id, "trial_id": trial_id}
            run_id = self.client.create_run(self.experiment, tags=tags, run_name=name).info.run_id
            self.client.log_batch(run_id, params=as_params(config))
        self.run_ids[trial_id] = run_id
        return run_id

    def _log_result(self, trial_id: str, name: str, config: dict, result: dict) -> None:
        run_id = self._run_id(trial_id, name, config)
        step = int(result.get(ITERATION, 0))
        if step <= self.last_step.get(run_id, 0):
            return  # an epoch redone after a restore from an older checkpoint: its step is already logged
        self.last_step[run_id] = step
        tags = [RunTag(key, str(result[key])) for key in ("node_ip", "node_id", "hostname") if key in result]
        self.client.log_batch(run_id, metrics=as_metrics(result, step), tags=tags)

    def _end(self, trial_id: str, name: str, config: dict, status: str, error: str | None) -> None:
        run_id = self._run_id(trial_id, name, config)
        if error is not None:
            self.client.set_tag(run_id, "error", error[:5000])
        elif run_id in self.stale_errors:  # failed before the resume, finished after it
            self.client.delete_tag(run_id, "error")
            self.stale_errors.discard(run_id)
        self.client.set_terminated(run_id, status=status)

    @staticmethod
    def _which(trial) -> tuple[str, str, dict]:
        return trial.trial_id, str(trial), dict(trial.config)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._put(functools.partial(self._run_id, *self._which(trial)))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._put(functools.partial(self._log_result, *self._which(trial), dict(result)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._put(functools.partial(self._end, *self._which(trial), "FINISHED", None))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._put(functools.partial(self._end, *self._which(trial), "FAILED", error_line(trial)))

    def on_experiment_end(self, trials, **info):
        self.close()

    def reconcile(self, trials, records: list[list[dict]]) -> None:
        """After the sweep, give each child run the results and the end it lacks (`records`: each
        trial's recovery.reported, final once Tune has returned). A driver killed with writes still queued leaves runs short,
        and a resumed Tune calls no callback for a trial that had already ended."""
        self.close()
        if self.client is None:
            self.client = MlflowClient(tracking_uri=self.uri)
        children = self.client.search_runs(
            [self.experiment], filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_run_id}'",
            max_results=SEARCH_MAX_RESULTS,
        )
        runs = {run.data.tags.get("trial_id"): run for run in children}
        for trial, results in zip(trials, records):
            run = runs.get(trial.trial_id)
            if results and results[-1][ITERATION] > (run.data.metrics.get(ITERATION, 0) if run else 0):
                for result in results:  # steps already logged are skipped
                    self._log_result(*self._which(trial), result)
            if (run is None or run.info.status == "RUNNING") and trial.status in ("TERMINATED", "ERROR"):
                failed = trial.status == "ERROR"
                self._end(*self._which(trial), "FAILED" if failed else "FINISHED", error_line(trial) if failed else None)
