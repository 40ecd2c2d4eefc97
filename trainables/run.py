"""Running a validated sweep on Ray Tune and logging it to MLflow."""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time

import ray
from ray import tune

from aigid.report import failures
from trainables import tracking


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


class Progress(tune.Callback):
    """One line per evaluation and per finished trial, instead of Tune's full result tables."""

    def __init__(self, total: int, metric: str = "test/mean/acc"):
        self.total, self.metric, self.done = total, metric, 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self.metric)
        shown = f"{self.metric}={value:.3f}" if isinstance(value, float) else ""
        print(f"[aigid] {trial} epoch {result.get('epoch')}/{trial.config.get('epochs')} "
              f"loss={result.get('train/loss', float('nan')):.3f} {shown}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[aigid] {trial} finished ({self.done}/{self.total} trials done)", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[aigid] {trial} FAILED ({self.done}/{self.total}); error in {trial.error_file}", flush=True)


def param_space(grid: dict[str, list], base: dict, seeds: int) -> dict:
    """The Tune search space: the base overrides, each axis as a grid, seeds as one more axis."""
    first_seed = base.get("seed", 0)
    space = {**base, **{axis: tune.grid_search(list(values)) for axis, values in grid.items()}}
    space["seed"] = tune.grid_search(list(range(first_seed, first_seed + seeds)))
    return space


def collect(result_grid, config_cls) -> list[dict]:
    """Each trial as a plain dict for the tables: full config (defaults filled in), final metrics,
    epoch-end history, status."""
    trials = []
    for result in result_grid:
        history = result.metrics_dataframe
        epochs = []
        if history is not None and "epoch_end" in history:
            epochs = history[history["epoch_end"] == True].to_dict("records")  # noqa: E712 (pandas mask)
        trials.append({
            "name": os.path.basename(result.path),
            "config": config_cls.from_flat(result.config).to_flat(),
            "final": result.metrics or {},
            "epochs": epochs,
            "status": "ERROR" if result.error else "TERMINATED",
            "error": str(result.error).strip().splitlines()[-1] if result.error else "",
        })
    return trials


def run_trials(sweep, args, index, base: dict, grid: dict, configs: list, client, uri: str) -> list[dict]:
    """Launch the sweep as one Tuner with a parent MLflow run; print and log the paper table."""
    start_ray(args.address)
    experiment = tracking.experiment_id(client, sweep.name)
    tags = {"method": sweep.method.name, "sweep": sweep.name, "dataset": index.layout, "data_root": index.root,
            "synthetic": str(index.synthetic).lower(), "git_commit": tracking.git_commit(),
            "ray_job_id": ray.get_runtime_context().get_job_id()}
    run_name = args.name or f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    parent = client.create_run(experiment, tags=tags, run_name=run_name).info.run_id
    client.log_batch(parent, params=tracking.as_params({
        **{f"base.{k}": v for k, v in base.items()}, **{f"grid.{k}": v for k, v in grid.items()},
        "search": "grid", "seeds": args.seeds, "gpus_per_trial": args.gpus_per_trial,
        "cpus_per_trial": args.cpus_per_trial, "max_failures": args.max_failures,
    }))
    print(f"[aigid] MLflow: experiment '{sweep.name}', parent run {parent} at {uri}", flush=True)

    prepared = {}
    if sweep.method.prepare:
        prepared = sweep.method.prepare(index, configs, cache_dir=os.path.abspath(args.cache_dir),
                                        gpus=args.gpus_per_trial)
    trainable = tune.with_resources(
        tune.with_parameters(sweep.method.trainable, index=index, **prepared),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=param_space(grid, base, args.seeds),
        tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent or None),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=os.path.abspath(args.storage) if "://" not in args.storage else args.storage,
            callbacks=[tracking.SweepLogger(uri, experiment, parent, tags), Progress(len(configs))],
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )
    status = "FAILED"
    try:
        trials = collect(tuner.fit(), sweep.method.config_cls)
        table = sweep.table(trials)
        failed = failures(trials)
        print("\n" + table + ("\n\n" + failed if failed else "") + "\n", flush=True)
        with tempfile.TemporaryDirectory() as out:
            with open(os.path.join(out, "summary.txt"), "w") as f:
                f.write(table + "\n" + failed + "\n")
            with open(os.path.join(out, "trials.json"), "w") as f:
                json.dump(trials, f, indent=1, default=str)
            if sweep.artifacts:
                sweep.artifacts(trials, out)
            client.log_artifacts(parent, out)
        status = "FINISHED" if not failed else "FAILED"
        return trials
    finally:
        client.set_terminated(parent, status=status)
