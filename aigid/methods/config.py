"""What every method's config dataclass shares: the flat-dict round trip Ray and MLflow see."""
from __future__ import annotations

from dataclasses import asdict, fields


class FlatConfig:
    """Mixin for a method's config dataclass: a Ray trial config is a flat dict of overrides."""

    @classmethod
    def from_flat(cls, flat: dict):
        """Build from a flat dict; an unknown key is an error naming the known ones, not ignored."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(flat) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} option(s) {unknown}; known: {sorted(names)}")
        return cls(**flat)

    def to_flat(self) -> dict:
        return asdict(self)

    def for_layout(self, layout: str):
        """This config with per-dataset paper defaults filled in for a `layout` dataset (APN and GenDet
        leave such fields None); methods without any return it unchanged."""
        return self
