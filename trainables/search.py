"""How a sweep explores its axes: the paper's grid, or Optuna's TPE over the same axes; ASHA optional."""
from __future__ import annotations

from dataclasses import dataclass

from ray import tune


@dataclass
class SearchSetup:
    param_space: dict
    num_samples: int
    search_alg: object | None
    scheduler: object | None
    total: int  # trials this search will run
    params: dict  # what the MLflow parent run records about the search


def optuna_axis(values: list):
    """An axis as Optuna sees it: a float range spanning the paper's values, else a choice.

    Ranges on a log scale when they span a factor of 10 or more; tuples become their repr
    (Optuna's categoricals take scalars only) and are decoded back in the trial.
    """
    if all(isinstance(v, float) for v in values) and len(values) > 1:
        low, high = min(values), max(values)
        return tune.loguniform(low, high) if low > 0 and high / low >= 10 else tune.uniform(low, high)
    return tune.choice([repr(tuple(v)) if isinstance(v, (tuple, list)) else v for v in values])


def search_setup(args, grid: dict[str, list], base: dict, metric: str, max_epochs: int, n_grid_trials: int) -> SearchSetup:
    scheduler = None
    if args.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # Early stopping on the method's selection metric, at most one rung per epoch.
        scheduler = ASHAScheduler(metric=metric, mode="max", time_attr="training_iteration", max_t=max_epochs,
                                  grace_period=1, reduction_factor=2)
    params = {"search": args.search, "scheduler": args.scheduler, "metric": metric}
    if args.search == "grid":
        first_seed = base.get("seed", 0)
        space = {**base, **{axis: tune.grid_search(list(values)) for axis, values in grid.items()},
                 "seed": tune.grid_search(list(range(first_seed, first_seed + args.seeds)))}
        return SearchSetup(space, 1, None, scheduler, n_grid_trials, params)
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(metric=metric, mode="max", seed=base.get("seed", 0))
    if args.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=args.max_concurrent)
    space = {**base, **{axis: optuna_axis(values) for axis, values in grid.items()}}
    params["num_samples"] = args.num_samples
    return SearchSetup(space, args.num_samples, searcher, scheduler, args.num_samples, params)
