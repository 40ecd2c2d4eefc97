"""Running a validated sweep on Ray Tune and logging it to MLflow."""
from __future__ import annotations

import ast
import functools
import json
import logging
import os
import tempfile
import time

import ray
from ray import tune

from aigid.report import failures
from trainables import tracking
from trainables.search import search_setup
from trainables.storage import check_shared_storage, resolve_run


class PrepareError(ValueError):
    """A method's once-per-sweep preparation (the frozen-feature pass) failed on the data or backbone."""


class Progress(tune.Callback):
    """One line per evaluation and per finished trial, instead of Tune's full result tables."""

    def __init__(self, total: int, metric: str, config_cls: type, layout: str):
        self.total, self.metric, self.config_cls, self.layout, self.done = total, metric, config_cls, layout, 0
        self.planned: dict[str, int] = {}  # trial id -> its epochs, as its config (defaults filled in) says

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self.metric)
        shown = f"{self.metric}={value:.3f}" if isinstance(value, float) else ""
        if trial.trial_id not in self.planned:
            config = self.config_cls.from_flat(decode(trial.config)).for_layout(self.layout)
            self.planned[trial.trial_id] = config.epochs
        print(f"[aigid] {trial} epoch {result.get('epoch')}/{self.planned[trial.trial_id]} "
              f"loss={result.get('train/loss', float('nan')):.3f} {shown} on node {str(result.get('node_id'))[:8]}",
              flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[aigid] {trial} finished ({self.done}/{self.total} trials done)", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[aigid] {trial} FAILED ({self.done}/{self.total}): {tracking.error_line(trial)}", flush=True)


def start_ray(address: str | None) -> None:
    """Join the cluster at `address`, or start a local Ray that reports no usage stats."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Per-epoch checkpoints of short trials trip Tune's snapshot-frequency warning constantly.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    logging.getLogger("ray.tune.logger.tensorboardx").setLevel(logging.WARNING)  # tuple params can't go to TB
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(include_dashboard=False, log_to_driver=True)


def decode(config: dict) -> dict:
    """Undo the string encoding of tuple choices (Optuna's categoricals take only scalars)."""
    return {k: ast.literal_eval(v) if isinstance(v, str) and v.startswith("(") else v for k, v in config.items()}


def decoding(trainable):
    @functools.wraps(trainable)
    def wrapper(config, **kwargs):
        return trainable(decode(config), **kwargs)

    return wrapper


def collect(result_grid, config_cls) -> list[dict]:
    """Each trial as a plain dict for the tables: full config (defaults filled in), final metrics,
    epoch-end history, status and node."""
    trials = []
    for result in result_grid:
        history = result.metrics_dataframe
        epochs = []
        if history is not None and "epoch_end" in history:
            epochs = history[history["epoch_end"] == True].to_dict("records")  # noqa: E712 (pandas mask)
        final = result.metrics or {}
        trials.append({
            "name": os.path.basename(result.path),
            "config": config_cls.from_flat(decode(result.config)).to_flat(),
            "final": final,
            "epochs": epochs,
            "status": "ERROR" if result.error else "TERMINATED",
            "error": str(result.error).strip().splitlines()[-1] if result.error else "",
            "node": f"{final.get('node_ip', '')}/{str(final.get('node_id', ''))[:8]}" if final else "",
        })
    return trials


def outcome(trials: list[dict], metric: str) -> str:
    """Best config by `metric`, trials stopped early, and where each trial ran."""
    done = [t for t in trials if t["status"] == "TERMINATED" and metric in t["final"]]
    lines = []
    early = [t for t in done if t["final"].get("epoch", 0) < t["config"].get("epochs", 0)]
    if early:
        lines.append(f"{len(early)} trial(s) stopped early by the scheduler")
    if done:
        best = max(done, key=lambda t: t["final"][metric])
        lines.append(f"best by final {metric} = {best['final'][metric]:.4f}: {best['name']}")
    nodes = sorted({t["node"] for t in trials if t["node"]})
    lines.append(f"trials ran on {len(nodes)} node(s): {', '.join(nodes)}")
    return "\n".join(lines)


def run_trials(sweep, args, index, base: dict, grid: dict, configs: list, client, uri: str) -> list[dict]:
    """Launch (or resume) the sweep as one Tuner under a parent MLflow run; print and log the paper table."""
    start_ray(args.address)
    storage = check_shared_storage(args.storage, args.shared_storage)
    run_name, resuming = resolve_run(sweep.name, storage, args.name, args.resume)
    experiment = tracking.experiment_id(client, sweep.name)
    tags = {"method": sweep.method.name, "sweep": sweep.name, "dataset": index.layout, "data_root": index.root,
            "synthetic": str(index.synthetic).lower(), "git_commit": tracking.git_commit(),
            "ray_job_id": ray.get_runtime_context().get_job_id(), "aigid_run": run_name}
    epochs = max(c.epochs for c in configs)
    search = search_setup(args, grid, base, sweep.method.metric, epochs, len(configs))
    parent = tracking.parent_run(client, experiment, run_name, tags, params={
        **{f"base.{k}": v for k, v in base.items()}, **{f"grid.{k}": v for k, v in grid.items()},
        **search.params, "seeds": args.seeds, "gpus_per_trial": args.gpus_per_trial,
        "cpus_per_trial": args.cpus_per_trial, "max_failures": args.max_failures, "storage": storage,
    })
    print(f"[aigid] MLflow: experiment '{sweep.name}', parent run {parent} at {uri}", flush=True)

    prepared = {}
    if sweep.method.prepare:
        try:
            prepared = sweep.method.prepare(index, configs, cache_dir=os.path.abspath(args.cache_dir),
                                            gpus=args.gpus_per_trial)
        except Exception as error:
            client.set_terminated(parent, status="FAILED", end_time=int(time.time() * 1000))
            cause = getattr(error, "cause", error)  # a Ray task's exception arrives wrapped
            if isinstance(cause, ValueError):  # DataError, BackboneError: the message names the fix
                raise PrepareError(f"{sweep.method.name} could not prepare the sweep: {cause}") from error
            raise
    trainable = tune.with_resources(
        tune.with_parameters(decoding(sweep.method.trainable), index=index, **prepared),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    if resuming:
        print(f"[aigid] resuming {storage}/{run_name}: finished trials are kept, unfinished and failed ones "
              "continue from their last checkpoints", flush=True)
        tuner = tune.Tuner.restore(f"{storage}/{run_name}", trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=search.param_space,
            # reuse_actors: a new trial reuses a finished trial's worker process instead of paying
            # ~5 CPU-s to start one and import torch/open_clip again (benchmarks/RESULTS.md, Packing).
            tune_config=tune.TuneConfig(num_samples=search.num_samples, search_alg=search.search_alg,
                                        scheduler=search.scheduler, reuse_actors=True,
                                        max_concurrent_trials=args.max_concurrent or None),
            run_config=tune.RunConfig(
                name=run_name,
                storage_path=storage,
                callbacks=[tracking.SweepLogger(uri, experiment, parent, tags),
                           Progress(search.total, sweep.method.metric, sweep.method.config_cls, index.layout)],
                failure_config=tune.FailureConfig(max_failures=args.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=0,
            ),
        )
    status = "FAILED"
    try:
        trials = collect(tuner.fit(), sweep.method.config_cls)
        table = sweep.table(trials)
        summary = "\n\n".join(part for part in (table, outcome(trials, sweep.method.metric), failures(trials)) if part)
        print("\n" + summary + "\n", flush=True)
        with tempfile.TemporaryDirectory() as out:
            with open(os.path.join(out, "summary.txt"), "w") as f:
                f.write(summary + "\n")
            with open(os.path.join(out, "trials.json"), "w") as f:
                json.dump(trials, f, indent=1, default=str)
            if sweep.artifacts:
                sweep.artifacts(trials, out)
            client.log_artifacts(parent, out)
        status = "FINISHED" if not failures(trials) else "FAILED"
        return trials
    finally:
        client.set_terminated(parent, status=status, end_time=int(time.time() * 1000))
