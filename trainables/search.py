"""How a sweep explores its plan: exactly the validated points, or Optuna's TPE over one grid's axes;
ASHA optional. The metric and mode are Tune's (TuneConfig), set once from the method's spec."""
from __future__ import annotations

from dataclasses import dataclass

from ray import tune

from trainables.arguments import Settings
from trainables.trainable import encode


@dataclass(frozen=True)
class Search:
    param_space: dict
    num_samples: int
    search_alg: object
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


def search_for(settings: Settings, points: list[dict], axes: dict[str, list], ranked_by: str, max_epochs: int) -> Search:
    """Tune's search over `points` (each a full flat config), or Optuna over `axes` around the first point."""
    scheduler = None
    if settings.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # Early stopping on the trials' score (TuneConfig's metric), at most one rung per epoch.
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_epochs, grace_period=1,
                                  reduction_factor=2)
    params = {"search": settings.search, "scheduler": settings.scheduler, "ranked_by": ranked_by}
    if settings.search == "grid":
        from ray.tune.search import BasicVariantGenerator

        encoded = [encode(point) for point in points]
        searcher = BasicVariantGenerator(points_to_evaluate=encoded,
                                         max_concurrent=settings.max_concurrent)
        return Search({key: None for key in encoded[0]}, len(points), searcher, scheduler, len(points), params)
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(seed=points[0].get("seed", 0))
    if settings.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=settings.max_concurrent)
    space = {**encode(points[0]), **{axis: optuna_axis(values) for axis, values in axes.items()}}
    params["num_samples"] = settings.num_samples
    return Search(space, settings.num_samples, searcher, scheduler, settings.num_samples, params)
