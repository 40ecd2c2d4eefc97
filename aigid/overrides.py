"""`KEY=VALUE` overrides of a method's config, shared by the `aigid` command and the sweeps."""
from __future__ import annotations

import ast
from typing import Sequence

from aigid.errors import ConfigError


def parse_overrides(items: Sequence[str]) -> dict:
    """KEY=VALUE pairs; values are Python literals when they parse as one (1e-5, (0.2, 0.4), None)."""
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key.strip()] = raw
    if overrides.get("pretrained") in ("none", "None", ""):
        overrides["pretrained"] = None
    return overrides
