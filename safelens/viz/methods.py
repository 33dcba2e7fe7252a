"""Method-comparison plots: rates with CIs per method (ShaPO Tables 1-3, Fig. 4), a metric
against the label-flip rate (Fig. 3), training curves from run logs (Fig. 7), and paired
differences to a baseline arm with their intervals (the powered comparisons' verdicts).

A *rate* is the dict every safelens metric returns: ``{"value", "ci_low", "ci_high", "n"}``
(``summary["asr"]``, ``summary["over_refusal"]``; a win rate ``{"win_rate", "ci_low",
"ci_high"}`` is accepted too). Functions validate their input, draw with matplotlib and return
the ``Figure``.

Examples:
    >>> r = lambda v: {"value": v, "ci_low": v - 0.1, "ci_high": v + 0.1, "n": 20}
    >>> fig = plot_rate_bars({"DPO": {"ASR": r(0.5), "WR": r(0.4)},
    ...                       "ShaPO-T": {"ASR": r(0.3), "WR": r(0.5)}})
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['DPO', 'ShaPO-T']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from safelens.errors import SafelensError
from safelens.viz.plots import _axes
from safelens.viz.style import (
    integer_ticks,
    legend_outside,
    overlap_labels,
    seed_band,
    series_style,
)

__all__ = ["METRIC_UNITS", "plot_differences", "plot_rate_bars", "plot_rate_vs",
           "plot_training_curves", "rate_value"]

#: Unit of each logged metric (TRL's names) for the y axis of :func:`plot_training_curves`.
METRIC_UNITS: dict[str, str] = {
    "loss": "nats",
    "rewards/chosen": "β·log-ratio, nats",
    "rewards/rejected": "β·log-ratio, nats",
    "rewards/margins": "β·log-ratio, nats",
    "rewards/accuracies": "fraction of pairs",
    "logps/chosen": "nats",
    "logps/rejected": "nats",
    "grad_norm": "L2 norm",
    "learning_rate": "per step",
    "pref_loss": "nats",
    "nll_loss": "nats",
    "sam/loss_perturbed": "nats",
    "sam/gap": "perturbed − clean loss, nats",
    "sam/rho": "radius ‖ε_S‖, L2 norm",
}


def rate_value(stat: Mapping[str, Any]) -> tuple[float, float, float]:
    """``(value, ci_low, ci_high)`` of a rate dict (``value`` or ``win_rate`` key).

    Raises:
        ValueError: neither key present.

    Examples:
        >>> rate_value({"win_rate": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10})
        (0.5, 0.4, 0.6)
    """
    key = "value" if "value" in stat else "win_rate" if "win_rate" in stat else None
    if key is None:
        raise ValueError(f"a rate needs 'value' (or 'win_rate'), 'ci_low', 'ci_high'; got keys "
                         f"{sorted(stat)}")
    v = float(stat[key])
    return v, float(stat.get("ci_low", v)), float(stat.get("ci_high", v))


def _err(values: list[tuple[float, float, float]]) -> np.ndarray:
    """``[2, n]`` asymmetric error bars (nan CIs drawn as none)."""
    lo = [v - lo if math.isfinite(lo) else 0.0 for v, lo, _ in values]
    hi = [hi - v if math.isfinite(hi) else 0.0 for v, _, hi in values]
    return np.maximum(np.array([lo, hi]), 0.0)


def _finish(fig: Any, ax: Any, xlabel: str | None, ylabel: str, title: str | None,
            grid_axis: str = "both", legend_size: int = 8, legend_title: str | None = None) -> Any:
    """Labels, grid, legend and title shared by the plots of this module; returns ``fig``."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis=grid_axis, alpha=0.3)
    legend_outside(ax, fontsize=legend_size, title=legend_title, title_fontsize=legend_size)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_rate_bars(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    ylabel: str = "rate (%)",
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Grouped bars with 95% CIs: one group per row of ``table``, one bar per column.

    Args:
        table: ``{group: {series: rate}}``, e.g. ``{method: {"ASR": ..., "over-refusal": ...,
            "WR": ...}}`` (Table 1) or ``{loss: {"without ShaPO": wr, "with ShaPO": wr}}``
            (Fig. 4). Every group must have the same series.
        ylabel: y-axis label (values are drawn in percent).
        title: axes title.
        ax: draw into this axes.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: empty table, groups with different series, or a malformed rate.
    """
    if not table:
        raise ValueError("table is empty; expected {group: {series: rate}}")
    groups = list(table)
    series = list(table[groups[0]])
    for g in groups:
        if list(table[g]) != series:
            raise ValueError(f"group {g!r} has series {list(table[g])}; expected {series} "
                             "(every group needs the same series, in the same order)")
    fig, ax = _axes(ax, (max(5.0, 0.9 * len(groups) * max(1, len(series)) / 2 + 2), 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, s in enumerate(series):
        vals = [rate_value(table[g][s]) for g in groups]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [100 * v for v, _, _ in vals], width,
               yerr=100 * _err(vals), capsize=2, label=s, color=f"C{i}")
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 5 else 0, ha="right"
                       if len(groups) > 5 else "center")
    ax.set_ylim(0, 105)
    return _finish(fig, ax, None, ylabel, title, grid_axis="y")


def plot_rate_vs(
    xs: Sequence[float],
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    xlabel: str = "label-flip rate (%)",
    ylabel: str = "win rate (%)",
    x_scale: float = 100.0,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """One line with a CI band per method: a rate against a setting (ShaPO Fig. 3).

    Args:
        xs: ``[K]`` settings (e.g. flip rates ``0, 0.1, 0.2, 0.4``).
        curves: ``{method: [K rates]}``.
        xlabel, ylabel: axis labels; ``x_scale`` multiplies ``xs`` for display.
        title: axes title.
        ax: draw into this axes.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: no curves, or a curve without one rate per setting.
    """
    if not curves:
        raise ValueError("curves is empty; expected {method: [rate per x]}")
    x = np.asarray(xs, dtype=np.float64) * x_scale
    fig, ax = _axes(ax, (5.2, 3.6))
    for name, rates in curves.items():
        if len(rates) != len(x):
            raise ValueError(f"curve {name!r} has {len(rates)} rates for {len(x)} x values")
    names = overlap_labels({n: [rate_value(r) for r in rates] for n, rates in curves.items()})
    for i, (name, rates) in enumerate(curves.items()):
        vals = np.array([rate_value(r) for r in rates]) * 100  # [K, 3]
        ax.plot(x, vals[:, 0], color=f"C{i}", label=names[name], **series_style(i))
        ax.fill_between(x, vals[:, 1], vals[:, 2], color=f"C{i}", alpha=0.12)
    ax.set_ylim(0, 100)
    return _finish(fig, ax, xlabel, ylabel, title)


def _seed_runs(name: str, runs: Any) -> list[Sequence[Mapping[str, Any]]]:
    """``runs`` as a list of per-seed record lists (one run: a list of records)."""
    runs = list(runs)
    if runs and all(isinstance(r, Mapping) for r in runs):
        return [runs]
    if not all(isinstance(r, Sequence) and not isinstance(r, str | bytes) for r in runs):
        raise SafelensError(f"histories[{name!r}] must be log records (dicts with 'step') or one "
                            "list of them per seed")
    return runs


def plot_training_curves(
    histories: Mapping[str, Any],
    key: str = "rewards/margins",
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """``key`` against the optimizer step for each run (ShaPO Fig. 7: reward margins).

    A method given several seeds' logs is drawn as the mean over seeds with a band of
    ± 1 s.d.; methods whose curves coincide are noted ``(overlaps X)`` in the legend and drawn
    with distinct line styles and markers.

    Args:
        histories: ``{method: log records}`` (``RunRecord.history`` / ``log.jsonl`` rows with
            ``step`` and ``key``) or ``{method: [records of seed 1, records of seed 2, ...]}``.
            Runs that never log ``key`` (e.g. SFT has no reward margin) are skipped and named in
            the legend title.
        key: the logged metric (TRL's names: ``rewards/margins``, ``rewards/accuracies``,
            ``loss``, ...; its unit from :data:`METRIC_UNITS`).
        title: axes title.
        ax: draw into this axes.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: no run logs ``key``, or a method's logs are neither records nor a list of
            them per seed.

    Examples:
        >>> logs = {"DPO": [[{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.5}],
        ...                 [{"step": 1, "loss": 0.6}, {"step": 2, "loss": 0.4}]]}
        >>> ax = plot_training_curves(logs, key="loss").axes[0]
        >>> ax.get_ylabel(), [round(float(v), 2) for v in ax.get_lines()[0].get_ydata()]
        ('loss (nats)', [0.65, 0.45])
    """
    fig, ax = _axes(ax, (5.6, 3.6))
    skipped = []
    drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name: (steps [K], per seed [S, K])
    for name, runs in histories.items():
        per_seed = []
        for records in _seed_runs(name, runs):
            pts = {int(r["step"]): float(r[key]) for r in records
                   if r.get(key) is not None and r.get("step") is not None}
            if pts:
                per_seed.append(pts)
        if not per_seed:
            skipped.append(name)
            continue
        steps = np.array(sorted(set().union(*per_seed)))  # [K]
        table = np.array([[p.get(int(t), np.nan) for t in steps] for p in per_seed])  # [S, K]
        drawn[name] = (steps, table)
    if not drawn:
        raise ValueError(f"no run logs {key!r} (runs: {list(histories)})")
    names = overlap_labels({n: np.concatenate([st, np.nanmean(t, 0)]) for n, (st, t) in
                            drawn.items()})
    for name, (steps, table) in drawn.items():
        i = list(histories).index(name)
        style = series_style(i)
        seed_band(ax, steps, table, names[name], color=f"C{i % 10}", lw=1.2,
                  linestyle=style["linestyle"], marker=style["marker"],
                  markevery=max(1, len(steps) // 10), ms=4)
    integer_ticks(ax)
    unit = METRIC_UNITS.get(key, "as logged")
    return _finish(fig, ax, "optimizer step (count)", f"{key} ({unit})", title, legend_size=7,
                   legend_title=f"not logged: {', '.join(skipped)}" if skipped else None)


def plot_differences(
    comparisons: Mapping[str, Mapping[str, Mapping[str, Any]]],
    smallest_effect: float | None = None,
    ax: Any = None,
    title: str | None = "Paired differences (percentage points, 95% CI)",
) -> Any:
    """A forest plot of paired differences: one row per metric, one marker per comparison with
    its 95% interval, zero marked, and the band ``±smallest_effect`` inside which a claim is
    "not reproduced" (:func:`safelens.eval.metrics.claim_verdict`).

    Args:
        comparisons: ``{label ("ShaPO-T − DPO"): {metric: paired_bootstrap_difference(...)}}``
            (``diff``, ``ci_low``, ``ci_high`` as fractions).
        smallest_effect: the smallest difference worth claiming, a fraction (``None``: no band).
        ax: a matplotlib axes (default: a new figure).
        title: the axes' title.

    Returns:
        The ``Figure``.

    Raises:
        SafelensError: no comparison, or one without ``diff`` / ``ci_low`` / ``ci_high``.

    Examples:
        >>> d = lambda v: {"diff": v, "ci_low": v - 0.02, "ci_high": v + 0.02}
        >>> fig = plot_differences({"A − DPO": {"asr": d(-0.05)}, "B − DPO": {"asr": d(0.01)}},
        ...                        smallest_effect=0.05)
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['asr']
    """
    if not comparisons:
        raise SafelensError("plot_differences: no comparison given")
    metrics: list[str] = []
    for label, per_metric in comparisons.items():
        for m, d in per_metric.items():
            if not all(k in d for k in ("diff", "ci_low", "ci_high")):
                raise SafelensError(f"plot_differences: {label!r} / {m!r} needs diff, ci_low and "
                                    f"ci_high (a paired_bootstrap_difference), got {sorted(d)}")
            if m not in metrics:
                metrics.append(m)
    fig, ax = _axes(ax, (7.5, 0.55 * len(metrics) * max(1, len(comparisons)) ** 0.5 + 1.4))
    n = len(comparisons)
    offsets = np.linspace(-0.3, 0.3, n) if n > 1 else np.zeros(1)
    for i, (label, per_metric) in enumerate(comparisons.items()):
        style = series_style(i)
        ys = [metrics.index(m) + offsets[i] for m in per_metric]
        xs = [100 * float(d["diff"]) for d in per_metric.values()]
        err = [[x - 100 * float(d["ci_low"]) for x, d in zip(xs, per_metric.values(), strict=True)],
               [100 * float(d["ci_high"]) - x for x, d in zip(xs, per_metric.values(), strict=True)]]
        ax.errorbar(xs, ys, xerr=err, fmt=style["marker"], capsize=3, label=label)
    ax.axvline(0, color="black", lw=0.8)
    if smallest_effect:
        ax.axvspan(-100 * smallest_effect, 100 * smallest_effect, color="grey", alpha=0.12, lw=0,
                   label=f"±{100 * smallest_effect:g} points (smallest effect worth claiming)")
    ax.set_yticks(range(len(metrics)), metrics)
    ax.invert_yaxis()
    ax.set_xlabel("difference (percentage points)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    legend_outside(ax)
    fig.tight_layout()
    return fig
