"""Running a validated sweep: Ray, storage, the MLflow parent run, the shared preparation, the Tuner."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import time

import ray
from ray import tune

from aigid.selection import SCORE
from aigid.trials import Trial, point_name
from trainables import tracking
from trainables.arguments import DEFAULT_STORAGE, Settings
from trainables.launcher import Launch
from trainables.prepare import prepare
from trainables.progress import Progress
from trainables.recovery import CheckpointRepair, repair_state_files, reported
from trainables.resources import check_fits
from trainables.search import Search, search_for
from trainables.storage import (StorageRoom, check_shared_cache, check_shared_storage, check_unchanged,
                                 has_trial_state, resolve_run, store_settings, stored_settings, taken)
from trainables.summary import collect, failures, report
from trainables.sweep import Sweep
from trainables.trainable import decode, trainable_for


def start_ray(address: str | None) -> None:
    """Join the cluster at `address`, or start a local Ray that reports no usage stats."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Per-epoch checkpoints of short trials trip Tune's snapshot-frequency warning constantly.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's newer console output prints a configuration box and a TensorBoard hint even at verbose=0;
    # its older one is silent there, and Progress says what a researcher needs.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING)
    else:
        ray.init(include_dashboard=False, log_to_driver=True, logging_level=logging.WARNING)


def build_tuner(sweep: Sweep, settings: Settings, launch: Launch, search: Search, shared: dict, *, storage: str,
                run_name: str, resuming: bool, callbacks: list) -> tune.Tuner:
    """A new Tuner over the search, or the interrupted one restored (finished trials kept); a run
    interrupted before its Tuner saved any state (in the preparation) starts its Tuner afresh."""
    trainable = tune.with_resources(
        tune.with_parameters(trainable_for(sweep.method), index=launch.index, shared=shared),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    if resuming and not has_trial_state(storage, run_name):
        print(f"[aigid] resuming {storage}/{run_name}: it was interrupted before any trial started; "
              "its trials start now", flush=True)
    elif resuming:
        print(f"[aigid] resuming {storage}/{run_name}: finished trials are kept, unfinished and failed ones "
              "continue from their last checkpoints", flush=True)
        node = ray._private.worker._global_node  # None under Ray Client: Ray's default folder then
        repair_state_files(f"{storage}/{run_name}", node.get_temp_dir_path() if node is not None else "/tmp/ray")
        return tune.Tuner.restore(f"{storage}/{run_name}", trainable, resume_unfinished=True, resume_errored=True)
    axes = list(launch.axes)
    return tune.Tuner(
        trainable,
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            metric=SCORE, mode=sweep.method.selection.mode,
            num_samples=search.num_samples, search_alg=search.search_alg, scheduler=search.scheduler,
            # reuse_actors: a new trial reuses a finished trial's worker process instead of paying
            # ~5 CPU-s to start one and import torch/open_clip again (benchmarks/RESULTS.md, Packing).
            reuse_actors=True, max_concurrent_trials=settings.max_concurrent or None,
            trial_name_creator=lambda trial: point_name(decode(trial.config), axes),
            trial_dirname_creator=lambda trial: f"{sweep.method.name}_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=storage,
            callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )


def report_folder(storage: str, run_name: str) -> str:
    """Beside the trials' results when --storage is a local path; under ./aigid_results otherwise."""
    base = DEFAULT_STORAGE if "://" in storage else storage
    return os.path.abspath(os.path.join(base, run_name, "report"))


def run_sweep(sweep: Sweep, settings: Settings, launch: Launch, client, uri: str, *,
              nest_under: str | None = None) -> list[Trial]:
    """Launch (or resume) the sweep under a parent MLflow run; print and log the paper's table.
    `nest_under`: a run the parent itself nests below (sweeps/compare.py: one child per detector)."""
    start_ray(settings.address)
    check_fits(settings.cpus_per_trial, settings.gpus_per_trial)
    method = sweep.method
    storage = check_shared_storage(settings.storage, settings.shared_storage)
    cache_dir = (check_shared_cache(settings.cache_dir, settings.shared_storage) if method.uses_feature_store
                 else os.path.abspath(settings.cache_dir))
    run_name, resuming = resolve_run(sweep.name, storage, settings.name, settings.resume)
    # Work the trials of a plain grid sweep share (RINE's stacks), kept for --resume until the sweep finishes;
    # named by run and storage (two storages may hold runs of one name).
    scratch = (os.path.join(cache_dir, ".sweeps", f"{run_name}-{hashlib.sha256(storage.encode()).hexdigest()[:8]}")
               if settings.search == "grid" and settings.scheduler == "none" else None)
    experiment = tracking.experiment_id(client, sweep.name)
    index = launch.index
    tags = {"method": method.name, "sweep": sweep.name, "dataset": index.layout, "data_root": index.root,
            "synthetic": str(index.synthetic).lower(), "git_commit": tracking.git_commit(),
            "ray_job_id": ray.get_runtime_context().get_job_id(), "aigid_run": run_name}
    parent_tags = {**tags, **({"mlflow.parentRunId": nest_under} if nest_under else {})}
    optuna_axes = sweep.single_grid(settings.synthetic) if settings.search == "optuna" else {}
    search = search_for(settings, launch.points, optuna_axes, method.selection.describe(launch.points[0]),
                        max(c.epochs for c in launch.configs))
    params = {
        **{f"base.{k}": v for k, v in launch.base.items()}, **{f"grid.{k}": v for k, v in launch.axes.items()},
        **search.params, "seeds": settings.seeds, "gpus_per_trial": settings.gpus_per_trial,
        "cpus_per_trial": settings.cpus_per_trial, "max_failures": settings.max_failures, "storage": storage,
    }
    found = tracking.find_parent(client, experiment, run_name)
    if found and not resuming:  # its folder is gone but its MLflow runs are not: never mix two sets of trials
        raise taken(run_name)
    recorded = {**params, "data": index.root}  # with the data: a resume on other data would mix two benchmarks
    stored = stored_settings(storage, run_name) if resuming else None
    if stored is not None:
        check_unchanged(run_name, stored, recorded)
    store_settings(storage, run_name, recorded)
    parent = found or tracking.parent_run(client, experiment, run_name, parent_tags, params)
    if found:
        client.update_run(found, status="RUNNING")
    print(f"[aigid] MLflow: experiment '{sweep.name}', parent run {parent} at {uri}", flush=True)
    if uri.startswith("http"):  # MLflow 3's UI opens in its GenAI view unless told otherwise
        print(f"[aigid] open {uri}/#/experiments/{experiment}/runs/{parent}?workflowType=machine_learning", flush=True)
    status, logger = "FAILED", None
    try:
        shared = prepare(method, index, launch.configs, cache_dir=cache_dir, gpus=settings.gpus_per_trial,
                         scratch=scratch, show=tracking.PrepareLines(client, parent))
        logger = tracking.SweepLogger(uri, experiment, parent, tags)
        epochs = [c.epochs for c in launch.configs]
        progress = Progress(search.total, sum(epochs) if settings.search == "grid" else search.total * epochs[0],
                            method, verbose=settings.verbose)
        room = StorageRoom(storage)
        tuner = build_tuner(sweep, settings, launch, search, shared, storage=storage, run_name=run_name,
                            resuming=resuming, callbacks=[CheckpointRepair(), room, logger, progress])
        try:
            result_grid = tuner.fit()
        except Exception:
            if room.error is not None:  # Tune wraps a callback's error: say the cause in its one line
                raise room.error from None
            raise
        tune_trials = result_grid._experiment_analysis.trials  # ResultGrid keeps results in this order
        records = [reported(t) for t in tune_trials]  # read once: MLflow's backfill and the report both use them
        logger.reconcile(tune_trials, records)
        trials = collect(result_grid, tune_trials, records, method, list(launch.axes), launch.index.layout)
        report(sweep, trials, client, parent, {"run": run_name, "axes": launch.axes, "synthetic": index.synthetic,
                                               "data_root": None if index.synthetic else index.root},
               folder=report_folder(storage, run_name))
        status = "FINISHED" if all(t.finished for t in trials) else "FAILED"
        if status == "FINISHED" and scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        if logger is not None:
            logger.close()  # every queued child-run write lands before the parent is closed
        client.set_terminated(parent, status=status, end_time=int(time.time() * 1000))
    if status == "FAILED":  # after the table: a script or scheduler sees the failure in the exit status
        print(failures(trials, settings.max_failures, run_name), file=sys.stderr, flush=True)
        if scratch and os.path.isdir(scratch):
            print(f"[aigid] kept {scratch} (work its trials share) for --resume; delete it if you will not resume",
                  file=sys.stderr, flush=True)
        raise SystemExit(1)
    return trials
