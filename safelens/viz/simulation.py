"""Figures of seed 001's pre-experiments (Table 2 / Fig. 2, Figs. 3-5) from ``run_many`` results.

Every function takes the dict :func:`safelens.simulation.run_many` returns (or the JSON it was
saved as), validates it, draws with matplotlib and returns the ``Figure``. Error bars and bands
are the 95% t-intervals over seeds stored in the result.

Examples:
    >>> from safelens.simulation import Pre1Config, run_many, run_pre1
    >>> import torch; torch.set_num_threads(1)
    >>> res = run_many(run_pre1, Pre1Config(quick=True), [0])
    >>> fig = plot_metric_bars(res, ["kl_divergence"])
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['CE', 'CE+PA']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from safelens.viz.style import integer_ticks, legend_outside, overlap_labels, series_style

__all__ = ["METRIC_LABELS", "plot_curves", "plot_metric_bars", "plot_paired_differences"]

#: Axis label (with unit) of each metric of ``safelens.simulation.metrics``.
METRIC_LABELS: dict[str, str] = {
    "kl_divergence": "KL(π_θ ‖ π_aligned) (nats)",
    "token_prob_difference": "mean |p_θ − p_ref| over vocab (prob.)",
    "data_token_prob_difference": "|p_θ(y) − p_ref(y)| at data token (prob.)",
    "cosine_similarity": "cosine similarity (−)",
    "pearson_correlation": "Pearson r (−)",
    "distribution_overlap": "Σ min(p_θ, p_ref) (prob. mass)",
    "kl_similarity": "exp(−KL) (−)",
    "probability_alignment": "|p_θ(y*) − p_ref(y*)|, y* = argmax p_ref (prob.)",
    "argmax_agreement": "argmax agreement (share of positions)",
    "heldout_nll": "held-out NLL of the data (nats/token)",
}


def _check(result: Mapping[str, Any], metrics: Sequence[str], key: str) -> list[str]:
    if not isinstance(result, Mapping) or key not in result or "groups" not in result:
        raise ValueError(f"result must be the dict run_many returns (with 'groups' and {key!r})")
    missing = [m for m in metrics if m not in result[key]]
    if missing or not metrics:
        raise ValueError(f"metrics {missing or list(metrics)} not in the result; it has "
                         f"{sorted(result[key])}")
    return list(result["groups"])


def _grid(n: int, width: float = 3.4, height: float = 3.2) -> tuple[Any, np.ndarray]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def _yerr(stats: Sequence[Mapping[str, Any]]) -> np.ndarray:  # [2, n]
    lo = [s["value"] - s["ci_low"] if s.get("ci_low") is not None else 0.0 for s in stats]
    hi = [s["ci_high"] - s["value"] if s.get("ci_high") is not None else 0.0 for s in stats]
    return np.maximum(np.array([lo, hi]), 0.0)


def plot_metric_bars(
    result: Mapping[str, Any],
    metrics: Sequence[str],
    reported: Mapping[str, Sequence[float]] | None = None,
    title: str | None = None,
) -> Any:
    """One panel per metric: each group's mean over seeds with its 95% CI (Fig. 2-5 analogue).

    Args:
        result: :func:`~safelens.simulation.run_many` output.
        metrics: metric names (keys of ``result["summary"]``).
        reported: optional ``{metric: [group 1 value, group 2 value]}`` the seed reports, drawn
            as hollow diamonds beside the bars on a secondary scale-free axis (same y units).
        title: figure title.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: a result without ``summary`` or a metric it lacks.
    """
    groups = _check(result, metrics, "summary")
    fig, axes = _grid(len(metrics))
    n = len(result.get("seeds", []))
    for k, (ax, m) in enumerate(zip(axes, metrics, strict=True)):
        stats = [result["summary"][m][g] for g in groups]
        x = np.arange(len(groups))
        ax.bar(x, [s["value"] for s in stats], 0.6, yerr=_yerr(stats), capsize=4,
               color=[f"C{i}" for i in range(len(groups))], label=f"here (mean, 95% CI, {n} seeds)")
        if reported and m in reported:
            ax.plot(x + 0.38, list(reported[m]), "D", mfc="none", mec="k", ms=7,
                    label="seed 001 reports")
        ax.set_xticks(x)
        ax.set_xticklabels(groups)
        ax.set_ylabel(METRIC_LABELS.get(m, m), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        top = max([s["ci_high"] or s["value"] for s in stats]
                  + (list(reported[m]) if reported and m in reported else []))
        ax.set_ylim(0, 1.1 * top if top > 0 else 1)
        if k == len(metrics) - 1:  # one legend, right of the last panel: the same in every one
            legend_outside(ax, fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(
    result: Mapping[str, Any],
    metrics: Sequence[str],
    log_y: Sequence[str] = ("kl_divergence",),
    title: str | None = None,
) -> Any:
    """One panel per metric: held-out value per epoch for each group, mean with a 95% band.

    Epoch 0 is the shared initialisation, before any training.

    Args:
        result: :func:`~safelens.simulation.run_many` output.
        metrics: metric names (keys of ``result["curves"]``).
        log_y: metrics drawn on a log y-axis.
        title: figure title.

    Returns:
        The matplotlib ``Figure``.
    """
    groups = _check(result, metrics, "curves")
    fig, axes = _grid(len(metrics), width=4.0)
    for ax, m in zip(axes, metrics, strict=True):
        names = overlap_labels({g: np.asarray(result["curves"][m][g]["value"], dtype=float)
                                for g in groups})
        for i, g in enumerate(groups):
            c = result["curves"][m][g]
            v = np.asarray(c["value"], dtype=float)
            x = np.arange(v.size)
            ax.plot(x, v, color=f"C{i}", label=names[g], ms=4,
                    markevery=max(1, v.size // 10), **series_style(i))
            if c["ci_low"][0] is not None:
                ax.fill_between(x, np.asarray(c["ci_low"], float), np.asarray(c["ci_high"], float),
                                color=f"C{i}", alpha=0.2, lw=0)
        if m in log_y:
            ax.set_yscale("log")
        ax.set_xlabel("epoch (count; 0 = initialisation)")
        ax.set_ylabel(METRIC_LABELS.get(m, m), fontsize=8)
        integer_ticks(ax)
        ax.grid(alpha=0.3)
        legend_outside(ax, where="below")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_paired_differences(
    result: Mapping[str, Any],
    metrics: Sequence[str],
    title: str | None = None,
) -> Any:
    """Paired difference Group 2 − Group 1 per metric, as % of Group 1's mean, with 95% CI.

    Each metric is oriented so that right of zero means Group 2 is *better* aligned (the sign
    is flipped for lower-is-better metrics), which lets metrics of different scales share one
    axis.

    Args:
        result: :func:`~safelens.simulation.run_many` output.
        metrics: metric names (keys of ``result["summary"]``).
        title: axes title.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    groups = _check(result, metrics, "summary")
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(metrics) + 1.4))
    y = np.arange(len(metrics))[::-1]
    for yi, m in zip(y, metrics, strict=True):
        s = result["summary"][m]
        base = abs(s[groups[0]]["value"]) or 1.0
        sign = s.get("direction", -1)
        d = s["diff"]
        v = 100 * sign * d["value"] / base
        if d.get("ci_low") is not None:
            lo, hi = sorted((100 * sign * d["ci_low"] / base, 100 * sign * d["ci_high"] / base))
            ax.plot([lo, hi], [yi, yi], color="C1", lw=2)
        ax.plot([v], [yi], "o", color="C1")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(metrics, fontsize=8)
    ax.set_xlabel(f"{groups[1]} − {groups[0]}, % of {groups[0]} mean (> 0: {groups[1]} better: "
                  "closer to π_aligned, or lower NLL)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
