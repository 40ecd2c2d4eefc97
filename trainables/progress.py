"""What the console shows while a sweep runs: one line per evaluation and per finished trial."""
from __future__ import annotations

from ray import tune

from aigid.methods.spec import MethodSpec
from trainables.trainable import decode
from trainables import tracking


class Progress(tune.Callback):
    """One line per evaluation and per finished trial, instead of Tune's full result tables."""

    def __init__(self, total: int, method: MethodSpec):
        self.total, self.method, self.done = total, method, 0
        self.planned: dict[str, int] = {}  # trial id -> its epochs, as its resolved config says

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metric = self.method.metric
        value = result.get(metric)
        shown = f"{metric}={value:.3f}" if isinstance(value, float) else ""
        if trial.trial_id not in self.planned:
            self.planned[trial.trial_id] = self.method.config_cls.from_flat(decode(trial.config)).epochs
        print(f"[aigid] {trial} epoch {result.get('epoch')}/{self.planned[trial.trial_id]} "
              f"loss={result.get('train/loss', float('nan')):.3f} {shown} on node {str(result.get('node_id'))[:8]}",
              flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[aigid] {trial} finished ({self.done}/{self.total} trials done)", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        print(f"[aigid] {trial} FAILED ({self.done}/{self.total}): {tracking.error_line(trial)}", flush=True)
