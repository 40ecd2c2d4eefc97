"""Paper-style tables and figures from sweep results (`aigid.trials.Trial` records), independent of Ray."""
from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from aigid.metrics import PaperTestSets, mean_std
from aigid.trials import Trial, finished, label, layout_of, test_sets, where


def pooled(trials: Sequence[Trial], key: str) -> tuple[float, float]:
    """Mean ± std of `key` over the last epochs of every trial given (seeds pooled)."""
    return mean_std([v for t in trials for v in t.last_epochs(key)])


def pct(mean_and_std: tuple[float, float]) -> str:
    mean, std = mean_and_std
    return "—" if np.isnan(mean) else f"{100 * mean:.1f} (±{100 * std:.1f})"


def grid_table(
    trials: Sequence[Trial],
    row_axis: str,
    col_axis: str,
    cell: Callable[[list[Trial]], str],
    *,
    rows: Sequence | None = None,
    cols: Sequence | None = None,
    title: str = "",
) -> Table:
    """A rows × columns text table; each cell formats the finished trials of that grid point."""
    rows = list(rows) if rows is not None else _values(trials, row_axis)
    cols = list(cols) if cols is not None else _values(trials, col_axis)
    body = []
    for r in rows:
        line = [label(r)]
        for c in cols:
            point = where(trials, **{row_axis: r, col_axis: c})
            line.append(cell(finished(point)) if finished(point) else "failed" if point else "—")
        body.append(line)
    header = [f"{row_axis} \\ {col_axis}"] + [label(c) for c in cols]
    return render([header] + body, title=title)


def _values(trials: Sequence[Trial], axis: str) -> list:
    return sorted({tuple(v) if isinstance(v, list) else v for v in (t.config[axis] for t in trials)})


@dataclass(frozen=True)
class Table:
    """A paper-shaped table: a header row, body rows of formatted cells, a title. Prints as aligned
    text (a terminal, a Ray job log); exports as Markdown, LaTeX, HTML and CSV for papers and MLflow."""

    rows: tuple[tuple[str, ...], ...]  # the header first
    title: str = ""

    def __str__(self) -> str:
        if not self.rows:
            return self.title
        widths = [max(len(row[i]) for row in self.rows) for i in range(len(self.rows[0]))]
        lines = [self.title] if self.title else []
        for n, row in enumerate(self.rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def formatted(self, fmt: str) -> str:
        """The table in a `tabulate` format: "github" (Markdown), "latex_booktabs", "html"."""
        from tabulate import tabulate

        rows = [[v.replace("|", "\\|") for v in row] for row in self.rows] if fmt == "github" else self.rows
        body = tabulate(rows[1:], headers=rows[0], tablefmt=fmt, disable_numparse=True) if rows else ""
        if fmt == "github":
            return f"**{self.title}**\n\n{body}" if self.title else body
        if fmt.startswith("latex"):
            return f"% {self.title}\n{body}" if self.title else body
        return f"<h4>{html.escape(self.title)}</h4>\n{body}" if self.title else body

    def csv(self) -> str:
        out = io.StringIO()
        csv.writer(out).writerows(self.rows)
        return out.getvalue()


def render(rows: Sequence[Sequence[str]], *, title: str = "") -> Table:
    """A `Table` of `rows` (the header first); cells are shown as `str` gives them."""
    return Table(tuple(tuple(str(v) for v in row) for row in rows), title)


def tables_of(result) -> list[Table]:
    """A sweep's table function may return one Table or several (None for an empty part), or plain
    text, kept as a table of no rows."""
    if isinstance(result, str):
        return [Table((), result)]
    return [result] if isinstance(result, Table) else [t for t in result if t]


def final(trials: Sequence[Trial], key: str) -> str:
    """`key` (%) after the last epoch, mean (±std) over the trials given (seeds); 'failed' / '—' if none."""
    values = [t.last(key) for t in finished(trials) if key in t.epochs[-1]]
    if values:
        return pct(mean_std(values))
    return "failed" if any(not t.finished for t in trials) else "—"


def rows_table(trials: Sequence[Trial], axis: str, values: Sequence, columns: dict, *, title: str) -> Table:
    """One row per value of `axis`; `columns` maps a header to a function (value, trials of the row) -> cell."""
    body = [[str(v)] + [cell(v, where(trials, **{axis: v})) for cell in columns.values()] for v in values]
    return render([[axis, *columns]] + body, title=title)


def paper_columns(trials: Sequence[Trial], paper: PaperTestSets, prefix: str = "test") -> list[str]:
    """The test sets the trials report: the paper's (in its tables' order) first, then any extra ones."""
    return test_sets(trials, paper.paper(layout_of(trials)) or (), prefix)


def averaged_note(trials: Sequence[Trial], paper: PaperTestSets, prefix: str = "test") -> str:
    """What a table's means cover, for its title: how many of the paper's test sets, which of them
    the data lacks, and which sets it shows but does not average."""
    layout = layout_of(trials)
    found = test_sets(trials, prefix=prefix)
    averaged = paper.averaged(layout, found)
    listed = paper.paper(layout)
    if not found:
        return "no test set reported"
    if not listed:
        return f"mean over all {len(averaged)} test sets found ({paper.source} names none on {layout or 'this'} data)"
    if not set(listed) & set(found):
        return f"mean over all {len(averaged)} test sets found: none of the paper's {len(listed)} ({paper.source})"
    note = f"mean over {len(averaged)} of the paper's {len(listed)} test sets ({paper.source})"
    missing = [s for s in listed if s not in found]
    extra = [s for s in found if s not in averaged]
    if missing:
        note += f"; the data lacks {', '.join(missing)}"
    if extra:
        note += f"; shown, not averaged: {', '.join(extra)}"
    return note


def choices_table(choices) -> Table | None:
    """The protocol choices a method made where its paper is silent, as a table under its results."""
    rows = [["where the paper is silent", "choice"], *([k, v] for k, v in choices.items())]
    return render(rows, title="Protocol choices") if choices else None
