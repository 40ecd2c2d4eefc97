"""A method as the launcher sees it: its config class, its trainable and its presets."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Method:
    """Everything the launcher needs to sweep one detector.

    A trainable is called as `trainable(config, index=index, **prepared)` inside a trial.

    `offline` overrides the config when no `--data` is given (the synthetic stand-in and a
    tiny random-init backbone); `smoke` shortens a run further for a minutes-long check.
    """

    name: str
    config_cls: type
    trainable: Callable  # (config: dict, index: DatasetIndex) -> None, inside a Tune trial
    check_data: Callable  # (config, index) -> None, raises DataError before launch
    layout: str  # the synthetic benchmark's layout for this method
    metric: str = "test/mean/acc"  # what ASHA, Optuna and "best config" maximise
    # False where the metric only measures the method's detector in its last epochs (GenDet's
    # classifier comes last): ASHA would then rank trials on something else, so it is refused.
    early_stopping: bool = True
    offline: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)
    # (index, configs, *, cache_dir, gpus) -> dict of extra trainable kwargs, run once on the
    # driver before any trial: e.g. frozen-backbone features every trial of the grid shares.
    prepare: Callable | None = None
