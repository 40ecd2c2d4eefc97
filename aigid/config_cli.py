"""`aigid config <method>`: every field a method's config takes, with its default, type and source.

The source is the comment beside the field in the config class (the paper's section or table,
or "paper silent" with the choice made), read from the code so it is written once.
"""
from __future__ import annotations

import inspect
import re
import typing
from dataclasses import MISSING, fields

from aigid.methods import METHODS
from aigid.methods.config import type_name

FIELD_LINE = re.compile(r"^\s+(\w+):[^=]*=.*?#\s*(.*)$")


def field_notes(config_cls) -> dict[str, str]:
    """{field: the comment on its line} from the config class's source."""
    notes = {}
    for cls in reversed(config_cls.__mro__):
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        notes.update({m.group(1): m.group(2).strip() for m in map(FIELD_LINE.match, source.splitlines()) if m})
    return notes


def describe(config_cls) -> list[tuple[str, str, str, str]]:
    """(field, type, default, source) for every field."""
    hints, notes = typing.get_type_hints(config_cls), field_notes(config_cls)
    rows = []
    for f in fields(config_cls):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, type_name(hints[f.name]), repr(default), notes.get(f.name, "")))
    return rows


def add_config_command(subparsers) -> None:
    parser = subparsers.add_parser("config", help="list a method's config fields (what --set takes)")
    parser.add_argument("method", choices=sorted(METHODS))
    parser.set_defaults(func=show)


def show(args) -> int:
    method = METHODS[args.method]
    rows = [("field", "type", "default", "source / allowed")] + describe(method.config_cls)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for n, row in enumerate(rows):
        print("  ".join(v.ljust(w) for v, w in zip(row[:3], widths)) + "  " + row[3])
        if n == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 16)
    by_dataset = getattr(method.config_cls, "DATASET_DEFAULTS", {})
    if by_dataset:
        print(f"\nNone = by dataset: {by_dataset}")
    print(f"\noffline (synthetic stand-in) overrides: {dict(method.offline)}\nsmoke overrides: {dict(method.smoke)}")
    print("\ntest sets the paper's means cover: " + "; ".join(
        f"{layout}: {len(sets)} ({', '.join(sets)})" for layout, sets in method.test_sets.by_layout.items())
        + f" [{method.test_sets.source}]")
    for what, choice in method.choices.items():
        print(f"paper silent on {what}: {choice}")
    return 0
