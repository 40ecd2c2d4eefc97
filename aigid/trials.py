"""A sweep's trials as the tables read them: typed records, independent of Ray and MLflow."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

from aigid.metrics import subsets_in
from aigid.selection import SCORE

FINISHED, FAILED = "finished", "failed"


def _same(a, b) -> bool:
    """Config values compare equal across a JSON round trip (tuples come back as lists)."""
    norm = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
    return norm(a) == norm(b)


def label(value) -> str:
    """A config value as a table or a run name shows it: (0.33, 3), 0.1, ViT-L-14."""
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(label(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_name(config: dict, axes: Sequence[str]) -> str:
    """A trial's name from the fields its sweep varies and its seed: `mask_ratio=(0.4, 0.6) aspect_ratio=(1, 1) s0`."""
    return " ".join([*(f"{axis}={label(config.get(axis))}" for axis in axes), f"s{config.get('seed', 0)}"])


@dataclass(frozen=True)
class Trial:
    """One trial: its full resolved config, how it ended, its last metrics and its history of evaluations.

    `history` holds every evaluation in order: the epoch ends, and between them the mid-epoch ones of a
    method that evaluates every few steps (LoL's `eval_every_steps`, Fig. 2), marked `epoch_end: False`
    and carrying their training `step`. The per-epoch readers (score, last, at_epoch, last_epochs) read
    the epoch ends only (`epochs`); a row without the mark is an epoch end (reports before the mark).
    """

    name: str
    config: dict
    status: str  # FINISHED or FAILED
    final: dict = field(default_factory=dict)  # the last reported metrics
    history: tuple[dict, ...] = ()  # metrics at every evaluation, in order (see above)
    node: str = ""
    error: str = ""
    layout: str = ""  # the dataset's layout (aigid.data.layouts): which of the paper's test-set lists applies

    @property
    def epochs(self) -> tuple[dict, ...]:
        """The epoch-end rows of `history`."""
        return tuple(row for row in self.history if row.get("epoch_end", True))

    @property
    def finished(self) -> bool:
        return self.status == FINISHED and bool(self.epochs)

    @property
    def score(self) -> float:
        """The method's selection rule after the last epoch (aigid.selection), NaN if never reported."""
        return self.epochs[-1].get(SCORE, math.nan) if self.epochs else math.nan

    @property
    def point(self) -> str:
        """The grid point: the name without the seed (seeds of one point are pooled)."""
        return self.name.rsplit(" s", 1)[0]

    def matches(self, **values) -> bool:
        return all(_same(self.config.get(k), v) for k, v in values.items())

    def at_epoch(self, epoch: int, key: str) -> float:
        """`key` at the end of `epoch` (1-based), NaN where it was not reached."""
        return next((e[key] for e in self.epochs if e.get("epoch") == epoch and key in e), math.nan)

    def last(self, key: str) -> float:
        """`key` after the last epoch, NaN if absent."""
        return self.epochs[-1].get(key, math.nan) if self.epochs else math.nan

    def last_epochs(self, key: str, k: int | None = None) -> list[float]:
        """`key` at the final k epoch ends (k = the trial's `stability_epochs`, the papers' five)."""
        k = k or int(self.config.get("stability_epochs", 5))
        return [e[key] for e in self.epochs[-k:] if key in e]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Trial":
        return cls(**{**data, "history": tuple(data.get("history", ()))})


def finished(trials: Iterable[Trial]) -> list[Trial]:
    return [t for t in trials if t.finished]


def where(trials: Iterable[Trial], **values) -> list[Trial]:
    """The trials whose config has all of `values`."""
    return [t for t in trials if t.matches(**values)]


def best_point(trials: Iterable[Trial], mode: str = "max") -> tuple[list[Trial], float] | None:
    """The grid point whose finished trials have the best mean score (seeds pooled, as the tables
    pool them), with that mean; None when no trial scored."""
    points: dict[str, list[Trial]] = {}
    for trial in finished(trials):
        if not math.isnan(trial.score):
            points.setdefault(trial.point, []).append(trial)
    if not points:
        return None
    mean = {name: sum(t.score for t in here) / len(here) for name, here in points.items()}
    best = (max if mode == "max" else min)(mean, key=mean.get)
    return points[best], mean[best]


def test_sets(trials: Sequence[Trial], order: Sequence[str] = (), prefix: str = "test") -> list[str]:
    """The test subsets the trials report, those named in `order` first (in that order), then the rest sorted."""
    found = set(subsets_in((key for t in trials for key in t.final), prefix=prefix))
    return [s for s in order if s in found] + sorted(found - set(order))


def layout_of(trials: Sequence[Trial]) -> str:
    """The dataset layout the trials ran on ('' for records written before it was kept)."""
    return next((t.layout for t in trials if t.layout), "")
