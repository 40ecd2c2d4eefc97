"""What every method's config dataclass shares: the flat-dict round trip Ray and MLflow see,
type and range checks that speak in field names, and per-dataset paper defaults."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, fields
from typing import ClassVar

from aigid.data import perturb
from aigid.data.index import DataError
from aigid.errors import ConfigError


def type_name(tp) -> str:
    """`float | None` -> 'float or None', `tuple[float, float]` -> 'tuple' (as a person reads a type)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp) or tp
    return getattr(origin, "__name__", str(tp))


def accepts(tp, value) -> bool:
    """Whether `value` is of annotated type `tp` (ints count as floats; lists as tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(arg, value) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(accepts(args[0], v) for v in value)
        return len(args) == len(value) and all(accepts(a, v) for a, v in zip(args, value))
    return True


# Bounds of fields several methods share that no paper value comes near: a hand-edited or corrupted
# config (best_config.json), checked by name before each dataclass's own range checks.
SANE = {
    # Every method steps with Adam or AdamW: the papers' rates run from 1e-7 (APN §4.2.2, its bases)
    # to 1e-3 (RINE §4.2, GenDet §4.1); a step above 1 only diverges.
    "lr": (0, 1, "an Adam step; the papers use 1e-7 to 1e-3"),
    # The papers crop 224 (LoL §4.2, RINE §4.2, APN §4.2.2); 4096² is 16M pixels an image.
    "crop": (0, 4096, "pixels; the papers crop 224"),
}


def check_bounds(name: str, value) -> None:
    """A learning rate or crop outside `SANE` (inf and NaN included) is a ConfigError naming the field."""
    low, high, why = SANE.get("lr" if name.endswith("_lr") else name, (None, None, ""))
    if low is not None and value is not None and not low < value <= high:
        raise ConfigError(f"{name} must be in ({low:g}, {high:g}] ({why}), got {value!r}")


def check_finite(flat: dict) -> None:
    """JSON's Infinity and NaN pass `alpha >= 0`-style range checks: refused by field name."""
    for name, value in flat.items():
        numbers = value if isinstance(value, (tuple, list)) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")


@dataclasses.dataclass
class FlatConfig:
    """Base of a method's config dataclass: a Ray trial config is a flat dict of overrides.

    `DATASET_DEFAULTS` maps a dataset layout to the paper's values of the fields that differ
    per dataset (left None in the dataclass); `BY_DATASET` names the fields a run cannot do
    without, so a layout with no paper defaults must set them explicitly.

    Every method is tested the same way under a perturbation (the papers' robustness tables: RINE
    Table 5, GenDet Table 4, LoL Table A4): `test_perturb` is applied to each test image before the
    method's preprocessing, drawn per image from `perturb_seed`, so every trial of a grid sees the
    same perturbed images and a frozen backbone runs once per perturbation, not per trial.
    """

    DATASET_DEFAULTS: ClassVar[dict[str, dict]] = {}
    BY_DATASET: ClassVar[tuple[str, ...]] = ()

    test_perturb: str = "none"  # a perturbation spec (aigid.data.perturb), e.g. "jpeg=30" or "blur=3@0.5"
    perturb_seed: int = 0  # seeds every perturbation's per-image draws (not the trial's seed: see above)

    @classmethod
    def from_flat(cls, flat: dict):
        """Build from a flat dict of overrides; any bad key or value is a ConfigError naming the field."""
        hints = typing.get_type_hints(cls)
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(flat) - set(names))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} option(s) {unknown}; known: {sorted(names)} "
                              f"(`aigid config <method>` lists them with their defaults)")
        for name, value in flat.items():
            if not accepts(hints[name], value):
                raise ConfigError(f"{name} takes {type_name(hints[name])}, got {value!r} "
                                  f"({type(value).__name__})")
            check_bounds(name, value)
        try:
            config = cls(**flat)
        except ConfigError:
            raise
        except (ValueError, TypeError) as error:  # a range check of __post_init__: the message names the field
            raise ConfigError(str(error)) from None
        check_finite(flat)  # after the range checks, whose messages name the range
        for name in (f.name for f in fields(cls) if f.name.endswith("perturb")):
            perturb.parse(getattr(config, name))  # a ConfigError listing the valid perturbations
        return config

    @property
    def test_perturbation(self) -> tuple[str, int]:
        """(test_perturb, its seed), the seed 0 when there is no perturbation: what tells one test view set or
        decoded entry from another, so every clean test shares one whatever `perturb_seed` says."""
        return self.test_perturb, self.perturb_seed if self.test_perturb != perturb.NONE else 0

    @property
    def test_perturb_seed(self) -> int:
        """The seed `test_perturbation` draws the test perturbation with (0 for clean tests)."""
        return self.test_perturbation[1]

    def to_flat(self) -> dict:
        return asdict(self)

    def for_layout(self, layout: str):
        """This config with the per-dataset paper defaults filled in for a `layout` dataset."""
        defaults = self.DATASET_DEFAULTS.get(layout, {})
        filled = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        missing = [name for name in self.BY_DATASET if getattr(self, name) is None and name not in filled]
        if missing:
            example = next(iter(self.DATASET_DEFAULTS.values()))
            raise DataError(f"{type(self).__name__} has paper defaults for {', '.join(self.DATASET_DEFAULTS)} "
                            f"datasets only; on a {layout} dataset set {', '.join(missing)} yourself, e.g. --set "
                            + " ".join(f"{n}={example[n]!r}" for n in missing))
        return dataclasses.replace(self, **filled) if filled else self

    def check_checkpoint(self, state: dict) -> None:
        """A trainer's `load_state_dict` calls this: a checkpoint of another config must not be mixed in."""
        if state["config"] != self.to_flat():
            raise ValueError(f"checkpoint was written by a run with a different {type(self).__name__}; "
                             "refusing to mix them")

    def require_resolved(self) -> None:
        """Trainers call this: the boundary (launcher, `aigid train`) resolves configs against the data."""
        unresolved = [name for name in self.BY_DATASET if getattr(self, name) is None]
        if unresolved:
            raise RuntimeError(f"{type(self).__name__} fields {unresolved} were not resolved against the dataset "
                               "(call for_layout before building a trainer)")
