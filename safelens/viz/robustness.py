"""Seed 002 and the robustness matrix: safety against perturbation strength, layer-wise
sensitivity bars, and the matrix as a heat map (matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from safelens.viz.style import legend_outside, overlap_labels, series_style

__all__ = ["plot_layer_sensitivity", "plot_matrix", "plot_robustness_curves",
           "plot_subspace_noise"]


def _strength_x(strengths: Sequence[Any]) -> tuple[list[float], list[str] | None]:
    if all(isinstance(s, int | float) for s in strengths):
        return [float(s) for s in strengths], None
    return list(range(len(strengths))), [str(s) for s in strengths]


def plot_robustness_curves(
    records: Mapping[str, Mapping[str, Any]],
    metric: str = "asr",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """One line per model: ``metric`` (percent, with its interval as error bars) against the
    attack strength of :mod:`safelens.attacks.curves` records; where a point has two or more
    seeds (``per_seed``), the spread over seeds (mean ± 1 s.d.) is drawn as a band.

    Args:
        records: ``{model label: record}``, records of one attack (same strengths' kind).
        metric: ``asr``, ``over_refusal`` or ``degenerate``.
        ax: a matplotlib axes (default: a new figure).
        title: default the attack's name.

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.6))
    labels = None
    # Records of one attack share their strengths, so equal values mean coinciding curves.
    names = overlap_labels({
        name: [p[metric]["value"] for p in rec["curve"] if p.get(metric)]
        for name, rec in records.items()
    })
    for i, (name, rec) in enumerate(records.items()):
        points = [p for p in rec["curve"] if p.get(metric)]
        xs, labels = _strength_x([p["strength"] for p in points])
        ys = [100 * p[metric]["value"] for p in points]
        lo = [100 * p[metric]["ci_low"] for p in points]
        hi = [100 * p[metric]["ci_high"] for p in points]
        per_seed = [[r["value"] for r in p[metric].get("per_seed") or [] if r and
                     r.get("value") is not None] for p in points]
        n_seeds = max((len(v) for v in per_seed), default=0)
        spread = f" (band: ± 1 s.d. over {n_seeds} seeds)" if n_seeds >= 2 else ""
        bars = ax.errorbar(xs, ys, yerr=[[y - a for y, a in zip(ys, lo, strict=True)],
                                         [b - y for y, b in zip(ys, hi, strict=True)]],
                           capsize=3, label=names[name] + spread, **series_style(i))
        if n_seeds >= 2:
            sd = np.array([100 * np.std(v, ddof=1) if len(v) >= 2 else np.nan for v in per_seed])
            mean = np.array([100 * np.mean(v) if v else np.nan for v in per_seed])
            ax.fill_between(xs, mean - sd, mean + sd, color=bars.lines[0].get_color(),
                            alpha=0.15, lw=0)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
    first = next(iter(records.values()))
    ax.set_xlabel({"parameter-noise": "relative parameter noise σ (‖ε‖ / ‖W‖ per tensor)",
                   "activation-noise": "relative activation noise σ (‖δ‖ / ‖a‖ per position)",
                   "quantization": "weight format (bits and scheme)"}.get(first["attack"],
                                                                          "strength (as given)"))
    ax.set_ylabel(f"{metric.replace('_', '-')} (% of prompts)")
    ax.set_ylim(-3, 103)
    ax.set_title(title or first["attack"])
    ax.grid(alpha=0.3)
    legend_outside(ax)
    ax.figure.tight_layout()
    return ax


def plot_layer_sensitivity(sensitivity: Mapping[str, float], top: int | None = None,
                           ax: Any = None, title: str = "layer-wise robustness sensitivity") -> Any:
    """Bars of :func:`safelens.training.zo.layer_sensitivity` per layer; the ``top`` largest
    (those a ``top:K`` refinement updates) are highlighted."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    names = list(sensitivity)
    values = [sensitivity[n] for n in names]
    ranked = sorted(range(len(names)), key=lambda i: -values[i])[: top or 0]
    colors = ["tab:red" if i in ranked else "tab:blue" for i in range(len(names))]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_xticks(range(len(names)), [n.replace("layers.", "") for n in names], rotation=90,
                  fontsize=7)
    ax.set_xlabel("block (index)" + (f"; red: top {top}" if top else ""))
    ax.set_ylabel("sensitivity s_l (nats / ε², ≈ tr H_ll)")
    ax.set_title(title)
    return ax


def plot_matrix(record: Mapping[str, Any], metric: str = "asr", ax: Any = None,
                title: str | None = None) -> Any:
    """The robustness matrix (:func:`safelens.attacks.matrix.robustness_matrix`) as a heat map:
    rows = models, columns = attacks, each cell ``metric`` in percent with its 95% interval
    (utility columns: the task's score, on their own colour scale; grey: not applicable)."""
    import matplotlib.pyplot as plt
    import numpy as np

    models, attacks = list(record["cells"]), list(record["attacks"])
    if ax is None:
        _, ax = plt.subplots(figsize=(1.05 * len(attacks) + 2, 0.62 * len(models) + 1.6))
    grid = np.full((len(models), len(attacks)), np.nan)
    text = [["" for _ in attacks] for _ in models]
    for i, model in enumerate(models):
        for j, attack in enumerate(attacks):
            cell = record["cells"][model].get(attack, {})
            utility = attack.startswith("utility")
            stat = cell.get("utility" if utility else metric)
            if cell.get("skipped"):
                text[i][j] = "n/a"
            elif stat and stat.get("value") is not None:
                value = 100 * stat["value"]
                if not utility:
                    grid[i, j] = value
                text[i][j] = (f"{value:.0f}\n[{100 * stat['ci_low']:.0f},"
                              f"{100 * stat['ci_high']:.0f}]")
    ax.imshow(np.ma.masked_invalid(grid), cmap="Reds", vmin=0, vmax=100, aspect="auto")
    for i in range(len(models)):
        for j in range(len(attacks)):
            dark = not np.isnan(grid[i, j]) and grid[i, j] > 60
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(attacks)), attacks, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title(title or f"{metric.replace('_', '-')} (%) per model and attack; "
                          "utility columns: task score (%)")
    return ax


def plot_subspace_noise(arms: Mapping[str, Mapping[str, Any]], axes: Any = None,
                        ylim: tuple[float, float] = (-3, 103)) -> Any:
    """Does the curvature of a subspace predict where safety breaks? One panel per subspace:
    ASR under Gaussian noise restricted to it against the noise's norm ``‖ε‖``, one line per
    model (and, faint, its share of degenerate answers, which do not count as successes), each
    with its predicted bypass radius ``sqrt(2 margin / λ_max(H_S))`` (dotted) and the radius
    measured along its top eigenvector (dashed), on the same axis.

    Args:
        arms: ``{model label: {subspace: entry}}``, entries as ``scripts/shapo_mechanism.py``
            writes them (``noise``: ``[{"eps_norm", "asr": Rate, "degenerate": Rate}]``,
            ``bypass``: ``{"predicted", ...}``, ``directions``: ``{"+v_top": {"measured"}}``,
            ``lambda_max``).
        axes: one matplotlib axes per subspace (default: a new figure).
        ylim: the ASR axis, percent.

    Returns:
        The axes (an array).
    """
    import matplotlib.pyplot as plt

    subspaces = list(next(iter(arms.values())))
    if axes is None:
        _, axes = plt.subplots(1, len(subspaces), figsize=(5.4 * len(subspaces), 3.8),
                               sharey=True, squeeze=False)
        axes = axes[0]
    for ax, sub in zip(axes, subspaces, strict=True):
        for i, (label, per_sub) in enumerate(arms.items()):
            entry = per_sub[sub]
            pts = [p for p in entry["noise"] if p.get("asr")]
            xs = [p["eps_norm"] for p in pts]
            ys = [100 * p["asr"]["value"] for p in pts]
            err = [[y - 100 * p["asr"]["ci_low"] for y, p in zip(ys, pts, strict=True)],
                   [100 * p["asr"]["ci_high"] - y for y, p in zip(ys, pts, strict=True)]]
            style = series_style(i)
            bars = ax.errorbar(xs, ys, yerr=err, capsize=3,
                               label=f"{label} (λ_max {entry['lambda_max']:.3g})", **style)
            color = bars.lines[0].get_color()
            degenerate = [(p["eps_norm"], 100 * p["degenerate"]["value"]) for p in entry["noise"]
                          if isinstance(p.get("degenerate"), Mapping)]
            if degenerate:  # why ASR falls again at large noise: the answers are word salad
                ax.plot(*zip(*degenerate, strict=True), color=color, ls=(0, (1, 2)), marker="x",
                        alpha=0.6, label=f"{label}: degenerate answers")
            predicted = entry["bypass"].get("predicted")
            measured = entry["directions"].get("+v_top", {}).get("measured")
            for r, ls, what in ((predicted, ":", "predicted"), (measured, "--", "measured")):
                if r is not None and np.isfinite(r):
                    ax.axvline(r, color=color, ls=ls, lw=1, label=f"_{what} radius, {label}")
        # log axis from the smallest radius (the radii and the noise norms can be decades apart)
        sizes = [p["eps_norm"] for e in arms.values() for p in e[sub]["noise"]]
        sizes += [e[sub]["bypass"].get("predicted") for e in arms.values()]
        sizes += [e[sub]["directions"].get("+v_top", {}).get("measured") for e in arms.values()]
        positive = [x for x in sizes if x is not None and np.isfinite(x) and x > 0]
        ax.set_xscale("symlog", linthresh=min(positive, default=1.0))
        ax.set_xlim(left=0)
        ax.set_xlabel("‖ε‖ of the noise on S (parameter units)")
        ax.set_title(f"noise restricted to the {sub} subspace")
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        legend_outside(ax, where="below", ncol=1,
                       title="dotted: predicted bypass radius; dashed: measured along +v_top",
                       title_fontsize=7)
    axes[0].set_ylabel("ASR (% of harmful prompts)")
    axes[0].figure.tight_layout()
    return axes
