"""What the console shows while a sweep runs: a throttled status line with an ETA, failures at once,
and (with -v) one line per epoch and per finished trial."""
from __future__ import annotations

import math
import os
import time

from ray import tune

from aigid.methods.spec import MethodSpec
from aigid.selection import SCORE
from trainables import tracking
from trainables.trainable import decode

STATUS_EVERY_S = float(os.environ.get("AIGID_STATUS_EVERY_S", 15))


def duration(seconds: float) -> str:
    """1h02m, 3m05s, 42s."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s" if rest >= 60 else f"{rest}s"


class Progress(tune.Callback):
    """Trials running / done / failed, elapsed, the ETA from the epochs finished so far, and the best
    trial so far by the sweep's score; printed at most every STATUS_EVERY_S and when the sweep ends."""

    def __init__(self, total: int, total_epochs: int, method: MethodSpec, *, verbose: bool = False):
        self.total, self.total_epochs, self.method, self.verbose = total, max(total_epochs, 1), method, verbose
        self.planned: dict[str, int] = {}  # trial id -> its epochs, as its resolved config says
        self.started = time.monotonic()
        self.last_status = self.started
        self.epochs: dict[str, int] = {}  # trial id -> epochs finished
        self.scores: dict[str, tuple[float, str]] = {}  # trial id -> (score, trial name)
        self.done = self.failed = 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("epoch_end"):
            self.epochs[trial.trial_id] = int(result.get("epoch", 0))
        score = result.get(SCORE)
        if isinstance(score, float) and not math.isnan(score):
            self.scores[trial.trial_id] = (score, str(trial))
        if self.verbose:
            if trial.trial_id not in self.planned:
                self.planned[trial.trial_id] = self.method.config_cls.from_flat(decode(trial.config)).epochs
            print(f"[aigid] {trial} epoch {result.get('epoch')}/{self.planned[trial.trial_id]} loss={result.get('train/loss', math.nan):.3f} "
                  f"{SCORE}={result.get(SCORE, math.nan):.4f} on node {str(result.get('node_id'))[:8]}", flush=True)
        self.maybe_status(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        if self.verbose:
            print(f"[aigid] {trial} finished ({self.done}/{self.total})", flush=True)
        self.maybe_status(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        print(f"[aigid] {trial} FAILED: {tracking.error_line(trial)}", flush=True)
        self.maybe_status(trials)

    def on_experiment_end(self, trials, **info):
        self.status(trials)

    def maybe_status(self, trials) -> None:
        if time.monotonic() - self.last_status >= STATUS_EVERY_S:
            self.status(trials)

    def status(self, trials) -> None:
        self.last_status = now = time.monotonic()
        elapsed = now - self.started
        running = sum(t.status == "RUNNING" for t in trials)
        finished_epochs = sum(self.epochs.values())
        left = self.total_epochs - finished_epochs
        eta = f"ETA {duration(elapsed / finished_epochs * left)}" if finished_epochs and left > 0 else \
            "ETA —" if left > 0 else "done"
        line = (f"[aigid] {self.done}/{self.total} trials done, {running} running, {self.failed} failed · "
                f"{duration(elapsed)} elapsed, {eta}")
        if self.scores:
            pick = max if self.method.selection.mode == "max" else min
            score, name = pick(self.scores.values(), key=lambda entry: entry[0])  # ties: the first to get there
            line += f" · best so far {name}: {SCORE} {score:.4f}"
        print(line, flush=True)
