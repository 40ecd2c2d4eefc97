"""Paper-style tables and figures from sweep results (`aigid.trials.Trial` records), independent of Ray."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from aigid.metrics import mean_std
from aigid.trials import Trial, finished, label, where


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
) -> str:
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


def render(rows: Sequence[Sequence[str]], *, title: str = "") -> str:
    """Plain aligned text: readable in a terminal, a Ray job log and an MLflow artifact."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = [title] if title else []
    for n, row in enumerate(rows):
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def failures(trials: Sequence[Trial]) -> str:
    """One line per failed trial with its reason, or '' when every trial finished."""
    return "\n".join(f"FAILED {t.name}: {t.error}" for t in trials if not t.finished)


def heatmap_figure(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], title: str):
    """A matplotlib heat map (train subset × test subset), values in percent, like the LoL paper's Fig. 4,
    on a diverging scale centred on chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.colors import TwoSlopeNorm

    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(col_labels), 1 + 0.7 * len(row_labels)))
    # Diverging around chance: a binary detector at 50 % is white, better is blue, worse is red.
    image = ax.imshow(100 * matrix, cmap="RdBu", norm=TwoSlopeNorm(vmin=0, vcenter=50, vmax=100))
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel("test subset")
    ax.set_ylabel("train subset")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if not np.isnan(matrix[i, j]):
                far = abs(100 * matrix[i, j] - 50) > 30  # dark cell: white text
                ax.text(j, i, f"{100 * matrix[i, j]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if far else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="ACC (%)")
    fig.tight_layout()
    return fig


def final(trials: Sequence[Trial], key: str) -> str:
    """`key` (%) after the last epoch, mean (±std) over the trials given (seeds); 'failed' / '—' if none."""
    values = [t.last(key) for t in finished(trials) if key in t.history[-1]]
    if values:
        return pct(mean_std(values))
    return "failed" if any(not t.finished for t in trials) else "—"


def rows_table(trials: Sequence[Trial], axis: str, values: Sequence, columns: dict, *, title: str) -> str:
    """One row per value of `axis`; `columns` maps a header to a function (value, trials of the row) -> cell."""
    body = [[str(v)] + [cell(v, where(trials, **{axis: v})) for cell in columns.values()] for v in values]
    return render([[axis, *columns]] + body, title=title)
