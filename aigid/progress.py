"""Live progress of a once-per-sweep pass (the feature pass, decoding the test images): images done,
images/s and an ETA every LOG_EVERY_S seconds and at the end, so a pass of hours is never silent.

Each line is a `ProgressLine`: a str for the console that also carries its numbers, so whoever
receives it (trainables/prepare.py) can log them as metrics of the sweep's MLflow parent run.
"""
from __future__ import annotations

import os
import time
from typing import Callable

LOG_EVERY_S = float(os.environ.get("AIGID_PROGRESS_EVERY_S", 15))


class ProgressLine(str):
    """'[aigid] <what>: done/total images (N/s, ETA s)' with `what`, `done`, `total`, `per_s` kept."""

    def __new__(cls, what: str, done: int, total: int, per_s: float):
        eta = f", ETA {(total - done) / per_s:.0f} s" if done < total and per_s > 0 else ""
        line = super().__new__(cls, f"[aigid] {what}: {done}/{total} images ({per_s:.0f}/s{eta})")
        line.what, line.done, line.total, line.per_s = what, done, total, per_s
        return line

    def __reduce__(self):  # a Ray task's lines reach the driver pickled, numbers included
        return ProgressLine, (self.what, self.done, self.total, self.per_s)

    def metrics(self) -> dict[str, float]:
        left = (self.total - self.done) / self.per_s if self.per_s > 0 else 0.0
        return {"prepare/images_per_s": self.per_s, "prepare/done_fraction": self.done / max(self.total, 1),
                "prepare/eta_s": left}


class PassProgress:
    """Counts a pass's images; `advance(done)` after each batch says a line when LOG_EVERY_S has passed
    since the last one, and always at the end."""

    def __init__(self, what: str, total: int, log: Callable[[str], None] | None):
        self.what, self.total, self.log = what, total, log
        self.start = self.last = time.perf_counter()

    def advance(self, done: int) -> None:
        now = time.perf_counter()
        if self.log and (now - self.last >= LOG_EVERY_S or done >= self.total):
            self.log(ProgressLine(self.what, done, self.total, done / max(now - self.start, 1e-9)))
            self.last = now
