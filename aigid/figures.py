"""The generic figures every sweep gets, drawn from its `aigid.trials.Trial` records and saved as PNGs.

Each figure function takes the trials, the swept field(s) and a `score(trial) -> float` (a fraction,
shown in percent; NaN where a trial has none), writes one PNG and returns its path, or returns None
and writes nothing when there is not enough to draw (fewer than two scored trials, an axis with a
single value). Failed trials and NaN scores are left out and counted in each figure's n note, so a
figure never silently looks complete when part of the sweep is missing. The numbers behind the
figures (`cell_means`, `curve_points`, `importances`) are public so tables and tests can use them.
"""
from __future__ import annotations

import math
import os
import textwrap
import warnings
from dataclasses import fields
from typing import Callable, Mapping, Sequence

import numpy as np

from aigid.data import perturb
from aigid.trials import Trial, finished, label

Score = Callable[[Trial], float]
DPI = 110
SYNTHETIC = "SYNTHETIC stand-in — "


def _norm(value):
    """A config value in a hashable, comparable form: JSON round trips turn tuples into lists."""
    return tuple(_norm(v) for v in value) if isinstance(value, (list, tuple)) else value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scored(trials: Sequence[Trial], score: Score) -> tuple[list[tuple[Trial, float]], int]:
    """(trial, score) of every finished trial with a finite score, and how many trials were left out."""
    pairs = []
    for trial in trials:
        if trial.finished:
            value = float(score(trial))
            if math.isfinite(value):
                pairs.append((trial, value))
    return pairs, len(trials) - len(pairs)


def _values(trials: Sequence[Trial], axis: str, order: Sequence | None = None) -> list:
    """The values of `axis`: `order` if given, else as they first appear in the trials; numeric axes
    ascending, so rows and x positions read like a scale."""
    seen = list(dict.fromkeys(_norm(v) for v in order)) if order is not None else \
        list(dict.fromkeys(_norm(t.config.get(axis)) for t in trials))
    return sorted(seen) if seen and all(_is_number(v) for v in seen) else seen


def _title(title: str, n: int, skipped: int, synthetic: bool, width: int) -> str:
    """The title wrapped to the figure, with the sample size under it: a reader should never have to
    guess how many trials a mean is over or whether some are missing."""
    head = textwrap.fill((SYNTHETIC if synthetic else "") + title, width)
    note = f"n = {n} finished trials" + (f", {skipped} failed or unscored not shown" if skipped else "")
    return f"{head}\n{note}"


def pyplot():
    """matplotlib.pyplot on the Agg backend: figures are files, and a cluster node has no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path


def _span(lo: float, hi: float) -> tuple[float, float]:
    """A colour scale's limits: the data's range, one point wide at least, so a constant score gets
    a plain scale rather than one of offsets in 1e-7."""
    return (lo, hi) if hi - lo >= 1 else ((lo + hi) / 2 - 0.5, (lo + hi) / 2 + 0.5)


def cell_means(
    trials: Sequence[Trial],
    row_axis: str,
    col_axis: str,
    score: Score,
    *,
    rows: Sequence | None = None,
    cols: Sequence | None = None,
) -> tuple[np.ndarray, list, list]:
    """(matrix, row values, column values): the mean score of each (row, col) grid point over its
    seeds (and over any other field that varies), NaN where no trial of that point finished."""
    pairs, _ = _scored(trials, score)
    rows, cols = _values(trials, row_axis, rows), _values(trials, col_axis, cols)
    sums, counts = np.zeros((len(rows), len(cols))), np.zeros((len(rows), len(cols)))
    index_r, index_c = {v: i for i, v in enumerate(rows)}, {v: j for j, v in enumerate(cols)}
    for trial, value in pairs:
        i, j = index_r.get(_norm(trial.config.get(row_axis))), index_c.get(_norm(trial.config.get(col_axis)))
        if i is not None and j is not None:
            sums[i, j] += value
            counts[i, j] += 1
    with np.errstate(invalid="ignore"):
        return sums / counts, rows, cols


def heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str,
    row_name: str,
    col_name: str,
    score_label: str,
    chance: float | None = 0.5,
):
    """A matplotlib figure of `matrix` (fractions, shown in percent), one annotated cell per entry,
    on a diverging scale centred on `chance` (white = chance, blue above, red below) as wide as the
    farthest cell, so a cell's colour says at a glance whether it beats guessing; a sequential scale
    when `chance` is None. Missing entries (NaN) are grey and say so: they must not look like chance."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    plt = pyplot()
    percent = 100 * matrix[np.isfinite(matrix)]
    if chance is None:
        cmap, norm = plt.get_cmap("viridis"), Normalize(*_span(percent.min(), percent.max()))
    else:
        centre = 100 * chance
        half = max(float(np.abs(percent - centre).max()), 1.0)
        cmap, norm = plt.get_cmap("RdBu"), TwoSlopeNorm(vmin=centre - half, vcenter=centre, vmax=centre + half)
    cmap = cmap.with_extremes(bad="lightgrey")
    width = max(6.0, 2.5 + 0.85 * len(col_labels))
    fig, ax = plt.subplots(figsize=(width, max(4.0, 2.4 + 0.45 * len(row_labels))))
    image = ax.imshow(100 * matrix, cmap=cmap, norm=norm, aspect="auto")
    for i, j in np.ndindex(matrix.shape):
        if np.isfinite(matrix[i, j]):
            r, g, b, _ = cmap(norm(100 * matrix[i, j]))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, f"{100 * matrix[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
        else:
            ax.text(j, i, "no result", ha="center", va="center", fontsize=7, color="dimgrey")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45 if len(col_labels) > 4 else 0, ha="right"
                  if len(col_labels) > 4 else "center")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel(col_name)
    ax.set_ylabel(row_name)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=score_label)
    fig.tight_layout()
    return fig


def grid_heatmap(
    trials: Sequence[Trial],
    row_axis: str,
    col_axis: str,
    score: Score,
    *,
    title: str,
    path: str,
    score_label: str,
    chance: float | None = 0.5,
    synthetic: bool = False,
    rows: Sequence | None = None,
    cols: Sequence | None = None,
) -> str | None:
    """The mean score (seeds pooled) over a two-field grid, as a `heatmap`."""
    pairs, skipped = _scored(trials, score)
    matrix, rows, cols = cell_means(trials, row_axis, col_axis, score, rows=rows, cols=cols)
    if len(pairs) < 2 or len(rows) < 2 or len(cols) < 2 or not np.isfinite(matrix).any():
        return None
    width = max(6.0, 2.5 + 0.85 * len(cols))
    fig = heatmap(matrix, [label(r) for r in rows], [label(c) for c in cols],
                  title=_title(title, len(pairs), skipped, synthetic, int(11 * width)), row_name=row_axis,
                  col_name=col_axis, score_label=score_label, chance=chance)
    return save(fig, path)


def _log_scale(values: Sequence[float]) -> bool:
    """Whether numbers span a decade or so (learning rates, K, d', data volume): such grids are
    geometric, and a linear scale would crowd their small values together."""
    return min(values) > 0 and max(values) / min(values) >= 8


def _positions(values: list) -> tuple[dict, bool]:
    """Where each value of an axis sits on a 0-1 vertical axis, and whether the axis is numeric:
    numbers by value (log-spaced when they span decades, as learning rates do), anything else
    (strings, tuples, mixed) evenly in sweep order."""
    if len(values) > 1 and all(_is_number(v) for v in values):
        x = np.asarray(values, dtype=float)
        if _log_scale(values):
            x = np.log10(x)
        span = x.max() - x.min()
        return {v: (p - x.min()) / span if span else 0.5 for v, p in zip(values, x)}, True
    step = 1 / (len(values) - 1) if len(values) > 1 else 0
    return {v: i * step if step else 0.5 for i, v in enumerate(values)}, False


def parallel_coordinates(
    trials: Sequence[Trial],
    axes: Sequence[str],
    score: Score,
    *,
    title: str,
    path: str,
    score_label: str,
    synthetic: bool = False,
    orders: dict[str, Sequence] | None = None,
) -> str | None:
    """One vertical axis per swept field and a last one for the score; each trial a line coloured by
    its score, so the settings the best trials share show up as bundles of the same colour."""
    pairs, skipped = _scored(trials, score)
    if len(pairs) < 2 or not axes:
        return None
    plt = pyplot()
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    done = [t for t, _ in pairs]
    scores = 100 * np.array([s for _, s in pairs])
    lo, hi = float(scores.min()), float(scores.max())
    norm = Normalize(*_span(lo, hi))
    cmap = plt.get_cmap("viridis")
    placed = [_positions(_values(done, axis, (orders or {}).get(axis))) for axis in axes]
    score_y = (scores - lo) / (hi - lo) if hi > lo else np.full_like(scores, 0.5)

    width = 2.0 + 1.7 * (len(axes) + 1)
    fig, ax = plt.subplots(figsize=(width, 4.8))
    for k in np.argsort(scores):  # best trials drawn last, on top
        ys = [pos[_norm(done[k].config.get(axis))] for axis, (pos, _) in zip(axes, placed)]
        ax.plot(range(len(axes) + 1), ys + [score_y[k]], color=cmap(norm(scores[k])), alpha=0.8, lw=1.4)
    ticks = dict(ha="right", va="center", fontsize=8, bbox=dict(fc="white", ec="none", alpha=0.8, pad=1))
    score_ticks = {**ticks, "ha": "left"}  # right of the last axis, where no line runs
    for x, (pos, numeric) in enumerate(placed):
        ax.axvline(x, color="black", lw=1)
        shown = list(pos.items())
        if numeric and len(shown) > 8:  # many numeric values: label a readable subset
            shown = [shown[i] for i in np.linspace(0, len(shown) - 1, 6).round().astype(int)]
        for value, y in shown:
            ax.text(x - 0.04, y, label(value), **ticks)
    ax.axvline(len(axes), color="black", lw=1)
    for y in np.linspace(0, 1, 5) if hi > lo else [0.5]:
        ax.text(len(axes) + 0.04, y, f"{lo + y * (hi - lo):.1f}", **score_ticks)
    ax.set_xticks(range(len(axes) + 1), [*axes, score_label], fontsize=9)
    ax.set_xlim(-0.6, len(axes) + 0.35)
    ax.set_ylim(-0.06, 1.06)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("swept fields, then the score")
    ax.set_title(_title(title, len(pairs), skipped, synthetic, int(11 * width)), fontsize=10)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=score_label, pad=0.02)
    fig.tight_layout()
    return save(fig, path)


def importances(trials: Sequence[Trial], axes: Sequence[str], score: Score) -> dict[str, float]:
    """fANOVA importance of each field that takes more than one value among the scored trials (the
    share of the score's variance it explains), most important first; {} under three trials or
    when the score does not vary.

    Every value is a categorical choice (tuples by their label), as a grid sweep samples them:
    the same in-memory Optuna study whatever the sweep's search algorithm was."""
    import optuna

    pairs, _ = _scored(trials, score)
    if len(pairs) < 3 or len({value for _, value in pairs}) < 2:
        return {}  # too few trials, or a constant score: no variance to share out
    done = [t for t, _ in pairs]
    choices = {axis: list(dict.fromkeys(label(_norm(t.config.get(axis))) for t in done)) for axis in axes}
    choices = {axis: c for axis, c in choices.items() if len(c) > 1}
    if not choices:
        return {}
    distributions = {axis: optuna.distributions.CategoricalDistribution(c) for axis, c in choices.items()}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(direction="maximize")
            study.add_trials([
                optuna.trial.create_trial(
                    params={axis: label(_norm(t.config.get(axis))) for axis in choices},
                    distributions=distributions,
                    value=value,
                )
                for t, value in pairs
            ])
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return {axis: float(v) for axis, v in found.items()}


def param_importance(
    trials: Sequence[Trial],
    axes: Sequence[str],
    score: Score,
    *,
    title: str,
    path: str,
    synthetic: bool = False,
) -> str | None:
    """A bar per swept field, its fANOVA importance: which knobs the score actually depends on, and
    which could be fixed in the next sweep."""
    found = importances(trials, axes, score)
    if not found:
        return None
    pairs, skipped = _scored(trials, score)
    plt = pyplot()
    names, values = list(found), list(found.values())
    fig, ax = plt.subplots(figsize=(6.4, 1.9 + 0.45 * len(names)))
    ax.barh(range(len(names)), values, color="tab:blue")
    for y, v in enumerate(values):
        ax.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()  # most important on top
    ax.set_xlim(0, min(1.0, max(values)) * 1.15 or 1.0)
    ax.set_xlabel("fANOVA importance (share of score variance)")
    ax.set_ylabel("swept field")
    ax.set_title(_title(title, len(pairs), skipped, synthetic, 75), fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def curve_points(
    trials: Sequence[Trial], axis: str, score: Score, *, values: Sequence | None = None,
) -> list[tuple[object, list[float]]]:
    """(value, scores of its trials) for each value of `axis` with at least one scored trial,
    in sweep order (numbers ascending)."""
    pairs, _ = _scored(trials, score)
    by_value = {v: [] for v in _values(trials, axis, values)}
    for trial, value in pairs:
        by_value.setdefault(_norm(trial.config.get(axis)), []).append(value)
    return [(v, s) for v, s in by_value.items() if s]


def curve(
    trials: Sequence[Trial],
    axis: str,
    score: Score,
    *,
    title: str,
    path: str,
    score_label: str,
    chance: float | None = 0.5,
    synthetic: bool = False,
    values: Sequence | None = None,
    by: str | None = None,
) -> str | None:
    """The score against one field (K, epochs, data volume…): mean ± std over seeds with every trial
    as a dot behind, and chance as a dashed line, so a trend is read against its seed noise. `by`
    draws one such line per value of another field (e.g. the backbone)."""
    pairs, skipped = _scored(trials, score)
    everything = curve_points(trials, axis, score, values=values)
    if len(pairs) < 2 or len(everything) < 2:
        return None
    plt = pyplot()
    numeric = all(_is_number(v) for v, _ in everything)
    position = {v: (float(v) if numeric else i) for i, (v, _) in enumerate(everything)}
    width = max(6.0, 1.0 + 0.7 * len(everything))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    series = [(None, trials)] if by is None else [(v, [t for t in trials if _norm(t.config.get(by)) == v])
                                                   for v in _values(trials, by)]
    for n, (name, here) in enumerate(series):
        points = curve_points(here, axis, score, values=values)
        if not points:
            continue
        color = f"C{n}"
        xs = [position[v] for v, _ in points]
        ax.scatter([x for x, (_, s) in zip(xs, points) for _ in s], [100 * v for _, s in points for v in s],
                   s=12, color=color, alpha=0.3, label="trial" if by is None else None, zorder=2)
        ax.errorbar(xs, [100 * np.mean(s) for _, s in points], yerr=[100 * np.std(s) for _, s in points],
                    marker="o", capsize=4, color=color, zorder=3,
                    label="mean ± std over seeds" if by is None else f"{by}={label(name)}")
    if chance is not None:
        ax.axhline(100 * chance, color="grey", ls="--", lw=1, label=f"chance ({100 * chance:g} %)")
    xs, labels = list(position.values()), [label(v) for v in position]
    if numeric and _log_scale(xs):
        ax.set_xscale("log")
    if not numeric or len(xs) <= 10:
        ax.set_xticks(xs, labels)
        ax.minorticks_off()
    if max(map(len, labels)) * 0.09 > (width - 1.2) / len(labels):  # labels wider than their slot: slant them
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    ax.set_xlabel(axis)
    ax.set_ylabel(score_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(_title(title, len(pairs), skipped, synthetic, int(11 * width)), fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def step_curves(
    trials: Sequence[Trial], key: str, name_of, *, title: str, path: str, score_label: str,
    chance: float | None = 0.5, synthetic: bool = False,
) -> str | None:
    """`key` against the training step at every evaluation of each finished trial (its `history`, mid-epoch
    rows included), one line per trial named by `name_of(trial)` (LoL Fig. 2)."""
    lines = [(name_of(t), [(row["step"], 100 * row[key]) for row in t.history if key in row and "step" in row])
             for t in finished(trials)]
    lines = [(name, points) for name, points in lines if points]
    if not lines:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for n, (name, points) in enumerate(lines):
        ax.plot(*zip(*points), marker="o", ms=3, color=f"C{n}", label=name)
    if chance is not None:
        ax.axhline(100 * chance, color="grey", ls="--", lw=1, label=f"chance ({100 * chance:g} %)")
    ax.set_xlabel("training step")
    ax.set_ylabel(score_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(_title(title, len(lines), len(trials) - len(lines), synthetic, 80), fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def sweep_figures(
    trials: Sequence[Trial],
    axes: dict[str, list],
    score: Score,
    out_dir: str,
    *,
    name: str,
    score_label: str,
    chance: float | None = 0.5,
    synthetic: bool = False,
) -> list[str]:
    """The default figures of any sweep over `axes` (field -> its values, in sweep order): parallel
    coordinates and parameter importance over the fields that vary, plus a heat map when exactly two
    vary or a curve when exactly one does. Returns the paths written (figures with nothing to draw
    are skipped)."""
    varying = {axis: values for axis, values in axes.items() if len(values) > 1}
    if not varying:
        return []
    names = list(varying)
    base = os.path.join(out_dir, name)
    common = dict(score=score, synthetic=synthetic)
    paths = [
        parallel_coordinates(trials, names, title=f"{name}: parallel coordinates", path=f"{base}_parallel.png",
                             score_label=score_label, orders=varying, **common),
        param_importance(trials, names, title=f"{name}: parameter importance", path=f"{base}_importance.png",
                         **common),
    ]
    if len(names) == 2:
        paths.append(grid_heatmap(trials, *names, title=f"{name}: mean {score_label}", path=f"{base}_heatmap.png",
                                  score_label=score_label, chance=chance, rows=varying[names[0]],
                                  cols=varying[names[1]], **common))
    elif len(names) == 1:
        paths.append(curve(trials, names[0], title=f"{name}: {score_label} vs {names[0]}", path=f"{base}_curve.png",
                           score_label=score_label, chance=chance, values=varying[names[0]], **common))
    return [p for p in paths if p]


ROBUSTNESS_KEYS = {"test/mean/acc": "mean ACC (%)", "test/mean/ap": "mean AP (%)"}


def strengths(specs: Sequence[str]) -> tuple[str, dict[str, float]] | None:
    """(axis name, spec -> value) when every perturbed spec is one step of one kind at one fixed value and
    p 1 (jpeg=90 … jpeg=10), so x can be that strength; None otherwise (x is then the specs as labels)."""
    found = {}
    for spec in specs:
        if spec == perturb.NONE:
            continue
        chain = perturb.parsed(spec)
        if chain.p != 1 or len(chain.steps) != 1:
            return None
        (step,) = chain.steps
        main = fields(step)[0].name
        param = getattr(step, main)
        if len(param.values) != 1 or ";" in step.spec():  # a range, a set of values or a non-default option
            return None
        found[spec] = (f"{step.NAME} {main}", float(param.values[0]))
    names = {name for name, _ in found.values()}
    return (names.pop(), {spec: value for spec, (_, value) in found.items()}) if len(names) == 1 else None


def robustness(
    trials: Sequence[Trial],
    series: str,
    path: str,
    title: str,
    *,
    perturbations: Sequence[str] | None = None,
    names: Mapping[str, str] | None = None,
    synthetic: bool = False,
) -> str | None:
    """Mean ACC and AP over the test sets against the test perturbation (the trials' `test_perturb`, in the
    order given, else as the trials list them), one line per value of `series` (a detector, a setting),
    mean ± std over seeds. When every perturbation is one step of one kind at fixed values the x axis is
    that strength (e.g. JPEG quality, in the order given) and the clean result a dotted line; else the specs
    label the points (`names`: a table's short name for a spec, e.g. RINE Table 5's "blur"). None when fewer
    than two perturbations have a finished trial."""
    order = list(dict.fromkeys(perturbations or [t.config.get("test_perturb") for t in trials]))
    scale = strengths(order)
    pairs, skipped = _scored(trials, lambda t: t.last("test/mean/acc"))
    if len(pairs) < 2 or len(curve_points(trials, "test_perturb", lambda t: t.last("test/mean/acc"), values=order)) < 2:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(max(9.0, 2.0 + 0.9 * len(order)), 4.4))
    for ax, (key, name) in zip(axes, ROBUSTNESS_KEYS.items()):
        for n, value in enumerate(_values(trials, series)):
            here = [t for t in trials if _norm(t.config.get(series)) == value]
            points = curve_points(here, "test_perturb", lambda t: t.last(key), values=order)
            tag, color = f"{series}={label(value)}", f"C{n}"
            clean = [s for v, s in points if scale and v not in scale[1]]
            if clean:
                ax.axhline(100 * np.mean(clean[0]), color=color, ls=":", lw=1.2, label=f"{tag}, clean")
            shown = [(v, s) for v, s in points if not scale or v in scale[1]]
            xs = [scale[1][v] if scale else order.index(v) for v, _ in shown]
            ax.errorbar(xs, [100 * np.mean(s) for _, s in shown], yerr=[100 * np.std(s) for _, s in shown],
                        marker="o", capsize=3, color=color, label=tag)
        if scale:
            values = [scale[1][s] for s in order if s in scale[1]]
            ax.set_xticks(values, [label(v) for v in values])
            ax.set_xlabel(scale[0])
            if values[0] > values[-1]:  # the order given runs from weak to strong as a descending value (JPEG)
                ax.invert_xaxis()
        else:
            ax.set_xticks(range(len(order)), [(names or {}).get(s, s) for s in order], rotation=30, ha="right")
            ax.set_xlabel("test perturbation")
        ax.minorticks_off()
        if key.endswith("acc"):
            ax.axhline(50, color="grey", ls="--", lw=1, label="chance (50 %)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(_title(title, len(pairs), skipped, synthetic, 110), fontsize=10)
    fig.tight_layout()
    return save(fig, path)
