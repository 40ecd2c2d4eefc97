"""Cells of APN's tables: the paper reports each model once, after its last epoch."""
from __future__ import annotations

from typing import Sequence

from aigid.metrics import mean_std
from aigid.report import pct, render


def final(trials: Sequence[dict], key: str) -> str:
    """`key` (%) after the last epoch, mean (±std) over the trials given (seeds); 'failed' / '—' if none."""
    values = [t["epochs"][-1][key] for t in trials
              if t["status"] == "TERMINATED" and t["epochs"] and key in t["epochs"][-1]]
    if values:
        return pct(mean_std(values))
    return "failed" if any(t["status"] != "TERMINATED" for t in trials) else "—"


def rows_table(trials: Sequence[dict], axis: str, values: Sequence, columns: dict, *, title: str) -> str:
    """One row per value of `axis`; `columns` maps a header to a function (value, trials of the row) -> cell."""
    body = [[str(v)] + [cell(v, [t for t in trials if t["config"].get(axis) == v]) for cell in columns.values()]
            for v in values]
    return render([[axis, *columns]] + body, title=title)
