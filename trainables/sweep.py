"""A sweep as the papers' tables state it: grids and explicit points, fixed settings said once.

A `Sweep` names its method, its plan (one or more `Grid`s), the settings fixed for every trial,
its table and figures. A value written `Offline(paper, synthetic)` is the paper's with --data
and the stand-in's without (tiny models, small volumes). The plan is expanded once, by
`expand`, and exactly those points are validated and handed to Tune.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

from aigid.errors import UserError
from aigid.methods.spec import MethodSpec
from aigid.report import choices_table, tables_of


@dataclass(frozen=True)
class Offline:
    """A setting that differs on the synthetic stand-in: `paper` with --data, `synthetic` without."""

    paper: object
    synthetic: object


def pick(value, synthetic: bool):
    """The value that holds for this run: an `Offline` value's side, or the value itself."""
    if isinstance(value, Offline):
        return value.synthetic if synthetic else value.paper
    return value


@dataclass(frozen=True)
class Grid:
    """The cartesian product of `axes` (each the paper's values, in its order), with `fixed` settings."""

    axes: dict
    fixed: dict = field(default_factory=dict)

    def resolved_axes(self, synthetic: bool) -> dict[str, list]:
        return {axis: list(pick(values, synthetic)) for axis, values in self.axes.items()}

    def points(self, synthetic: bool) -> list[dict]:
        axes = self.resolved_axes(synthetic)
        fixed = {k: pick(v, synthetic) for k, v in self.fixed.items()}
        return [{**fixed, **dict(zip(axes, values))} for values in itertools.product(*axes.values())]


@dataclass(frozen=True)
class Option:
    """A sweep-specific flag that sets one config field for every trial (e.g. --test-data -> test_root)."""

    flag: str
    field: str
    help: str
    path: bool = False  # made absolute (trials run in their own working directories)
    required_with_data: bool = False  # with --data the flag must be given (offline, `fixed` supplies it)


@dataclass(frozen=True)
class Variant:
    """A named alternative plan of the same sweep, chosen by a flag (e.g. RINE's --all-settings)."""

    flag: str
    help: str
    sweep: "Sweep"


@dataclass(frozen=True)
class Sweep:
    """A published grid: its method, plan, fixed settings, and the paper-shaped table of its trials."""

    name: str  # the MLflow experiment and the Ray run name
    method: MethodSpec
    plan: Sequence[Grid]
    table: Callable  # (list[Trial]) -> str
    doc: str = ""  # which table or figure of the paper this reproduces
    fixed: dict = field(default_factory=dict)  # settings of every trial beyond the method's defaults
    prune: Callable | None = None  # (points, index) -> (points, note): drop points the data cannot hold
    figures: Callable | None = None  # (trials, out_dir, synthetic) -> None: the paper's figures, as PNGs
    options: tuple[Option, ...] = ()
    variants: tuple[Variant, ...] = ()

    def tables(self, trials) -> list:
        """The paper's tables of `trials`, then the method's protocol choices where the paper is silent."""
        return [*tables_of(self.table(trials)), *filter(None, [choices_table(self.method.choices)])]

    def axes(self, synthetic: bool) -> dict[str, list]:
        """Every field the plan sets per point, with the values it takes, in first-seen order."""
        axes: dict[str, list] = {}
        for part in self.plan:
            for axis, values in {**part.resolved_axes(synthetic),
                                 **{k: [pick(v, synthetic)] for k, v in part.fixed.items()}}.items():
                seen = axes.setdefault(axis, [])
                seen += [v for v in values if v not in seen]
        return axes

    def single_grid(self, synthetic: bool) -> dict[str, list]:
        """The axes of a one-grid plan (what Optuna samples); a UserError for plans of several parts."""
        if len(self.plan) != 1:
            raise UserError(f"{self.name} runs {len(self.plan)} grids; --search optuna samples one grid's axes")
        return self.plan[0].resolved_axes(synthetic)


def grid(**axes) -> tuple[Grid]:
    """A plan of one grid: `grid(q=[1, 2], xi=[0.1, 0.2])`."""
    return (Grid(axes),)


def expand(sweep: Sweep, synthetic: bool, base: dict, seeds: int) -> list[dict]:
    """Every trial's flat overrides, each once: the plan's points over `base`, repeated per seed."""
    first_seed = base.get("seed", 0)
    seen, trials = set(), []
    for part in sweep.plan:
        for point in part.points(synthetic):
            for seed in range(first_seed, first_seed + seeds):
                flat = {**base, **point, "seed": seed}
                key = repr(sorted(flat.items()))
                if key not in seen:
                    seen.add(key)
                    trials.append(flat)
    return trials
