"""Safety-geometry plots: probe accuracy per layer, Figure 1, λ_max bars, KL depth, bypass radius,
reward margins and ShaPO-R soft targets (Figure 5).

Every function validates its input (naming the expected shape), draws with matplotlib and returns
the ``Figure`` (it displays itself in Jupyter); ``ax=`` draws into an existing axes instead.
Figures follow :mod:`safelens.viz.style`: units on every axis label, legends outside the data
area, integer ticks on layer / position axes, distinct line styles and an ``(overlaps X)``
legend note where curves coincide; save them with :func:`safelens.viz.save_figure`. The
``*_plotly`` variants return a ``plotly.graph_objects.Figure`` for interactive notebooks. No
computation a user would reuse without a plot lives here (see :mod:`safelens.geometry`).

Examples:
    >>> fig = plot_kl_depth({"dpo": {"mean": [1.0, 0.5, 0.2], "std": [0.1, 0.1, 0.1]}})
    >>> fig.axes[0].get_xlabel()
    'response token position k (tokens)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from safelens.losses import reward_soft_targets
from safelens.viz.style import integer_ticks, legend_outside, overlap_labels, series_style

__all__ = [
    "plot_probe_accuracy",
    "plot_worst_case_curves",
    "plot_share_readings",
    "plot_lambda_max",
    "plot_kl_depth",
    "plot_bypass",
    "plot_reward_margins",
    "probe_accuracy_plotly",
    "worst_case_curves_plotly",
]

_TOP, _RANDOM = "tab:red", "tab:gray"


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _arr(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _probe_table(probes: Mapping[int, Any] | Sequence[Any]) -> tuple[list[int], list, list]:
    """``(layers, train_acc, val_acc)`` from ``{layer: Probe}`` or a per-layer list of probes."""
    items = list(probes.items()) if isinstance(probes, Mapping) else list(enumerate(probes))
    if not items:
        raise ValueError(
            "probes is empty; expected {layer: Probe} or a list of one Probe per layer"
        )
    for layer, p in items:
        if not (hasattr(p, "accuracy_train") and hasattr(p, "accuracy_val")):
            raise ValueError(
                f"probes[{layer!r}] is not a Probe (needs accuracy_train/accuracy_val)"
            )
    return (
        [int(k) for k, _ in items],
        [float(p.accuracy_train) for _, p in items],
        [float(p.accuracy_val) for _, p in items],
    )


def plot_probe_accuracy(
    probes: Mapping[int, Any] | Sequence[Any],
    ax: Any = None,
    title: str | None = "Safety probe accuracy per layer",
) -> Any:
    """Train and held-out accuracy of the safe/unsafe probe at each layer (ShaPO Eq. 6).

    Args:
        probes: ``{layer: Probe}`` (:func:`safelens.geometry.report.probe_layers`) or the list
            of :func:`safelens.geometry.probe_all_layers`.
        ax: axes to draw into.
        title: axes title.

    Returns:
        The matplotlib ``Figure``.
    """
    layers, train, val = _probe_table(probes)
    fig, ax = _axes(ax, (6.0, 3.4))
    names = overlap_labels({"train": train, "held-out": val})
    ax.plot(layers, train, marker=".", ls="--", color="tab:blue", alpha=0.6, label=names["train"])
    ax.plot(layers, val, marker="o", ls="-", color="tab:blue", label=names["held-out"])
    ax.axhline(0.5, color="k", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("layer l (blocks.{l}.hook_resid_post, index)")
    ax.set_ylabel("accuracy (fraction of examples)")
    ax.set_ylim(0.4, 1.02)
    integer_ticks(ax)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def _check_curve(name: str, curve: Any, key: str) -> None:
    if not isinstance(curve, Mapping) or "fraction_of_neurons" not in curve or key not in curve:
        raise ValueError(
            f"curves[{name!r}] must be a worst-case curve dict with 'fraction_of_neurons' and "
            f"{key!r} (see safelens.geometry.worst_case_curves)"
        )
    if len(curve["fraction_of_neurons"]) != len(curve[key]):
        raise ValueError(f"curves[{name!r}]: {key!r} needs one value per K")


def plot_worst_case_curves(
    curves: Mapping[str, Any],
    key: str = "cumulative_fraction",
    claim: tuple[float, float] | None = (0.005, 0.8),
    show_first_order: bool = True,
    ax: Any = None,
    title: str | None = "Cumulative worst-case loss: Top-K vs Random-K",
    log_x: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """ShaPO Figure 1: share of the all-neuron worst-case loss increase vs fraction of neurons.

    Args:
        curves: :func:`safelens.geometry.worst_case_curves` output (``top``, ``random``,
            ``random_mean``).
        key: ``"cumulative_fraction"`` (measured ``ΔL(K)/ΔL(all)``) or
            ``"first_order_fraction"`` (``‖g_S‖/‖g_all‖``).
        claim: ``(fraction of neurons, share)`` marked as the seed's claim, or ``None``.
        show_first_order: also draw the first-order curves dashed (when ``key`` is measured).
        ax: axes to draw into.
        title: axes title.
        log_x: logarithmic x axis (the interesting part is below 1%).
        extra: more curves on the same x grid, ``{label: y [G]}`` (e.g. first-order shares of
            other rankings from :func:`safelens.geometry.report.first_order_share`), dotted.

    Returns:
        The matplotlib ``Figure``.
    """
    for part in ("top", "random_mean"):
        if part not in curves:
            raise ValueError(f"curves needs {part!r} (the dict of worst_case_curves)")
        _check_curve(part, curves[part], key)
    fig, ax = _axes(ax, (6.0, 3.8))
    x = 100 * _arr(curves["top"]["fraction_of_neurons"])
    main = {"Top-K (probe-ranked)": _arr(curves["top"][key]),
            "Random-K (mean)": _arr(curves["random_mean"][key])}
    if show_first_order and key == "cumulative_fraction":
        main["Top-K, first order ‖g_S‖/‖g‖"] = _arr(curves["top"]["first_order_fraction"])
        main["Random-K, first order"] = _arr(curves["random_mean"]["first_order_fraction"])
    main.update({label: _arr(y) for label, y in (extra or {}).items()})
    names = overlap_labels(main)
    ax.plot(x, main["Top-K (probe-ranked)"], marker="o", color=_TOP,
            label=names["Top-K (probe-ranked)"])
    for i, r in enumerate(curves.get("random", [])):
        ax.plot(
            x,
            _arr(r[key]),
            color=_RANDOM,
            alpha=0.35,
            lw=0.8,
            label="Random-K draws" if i == 0 else None,
        )
    ax.plot(x, main["Random-K (mean)"], marker="s", ls="-.", color="k",
            label=names["Random-K (mean)"])
    if show_first_order and key == "cumulative_fraction":
        for label, color, marker in (("Top-K, first order ‖g_S‖/‖g‖", _TOP, "^"),
                                     ("Random-K, first order", "k", "v")):
            ax.plot(x, main[label], ls="--", marker=marker, ms=4, color=color, alpha=0.6,
                    label=names[label])
    for i, label in enumerate(extra or {}):
        y = main[label]
        if y.shape != x.shape:
            raise ValueError(f"extra[{label!r}] must have one value per K ([{len(x)}])")
        ax.plot(x, y, ls=":", marker=series_style(i + 2)["marker"], ms=4, label=names[label])
    if claim is not None:
        ax.axvline(100 * claim[0], color="tab:green", lw=0.8, ls=":")
        ax.axhline(
            claim[1],
            color="tab:green",
            lw=0.8,
            ls=":",
            label=f"seed claim: {100 * claim[0]:g}% → {100 * claim[1]:g}%",
        )
    if log_x and np.all(x > 0):
        ax.set_xscale("log")
    ax.set_xlabel("neurons perturbed (% of all n_layers·d_mlp)")
    ax.set_ylabel("ΔL(K) / ΔL(all neurons) (fraction)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax, fontsize=7)
    fig.tight_layout()
    return fig


def plot_share_readings(
    fig1: Mapping[str, Any],
    claim: tuple[float, float] | None = (0.005, 0.8),
    ax: Any = None,
    title: str | None = "Figure 1: joint vs additive share",
) -> Any:
    """Figure 1's first-order share of the worst-case loss carried by the top-K neurons, in both
    readings on one plot: *joint* ``‖g_S‖ / ‖g_all‖`` (solid; the loss rise of one ε on all of S,
    :func:`safelens.geometry.report.first_order_share`) and *additive*
    ``Σ_{j∈S} ‖g_j‖ / Σ_all ‖g_j‖`` (dashed; the sum of per-neuron worst cases,
    :func:`~safelens.geometry.report.additive_share`), one colour per ranking.

    Args:
        fig1: ``{"fractions": [G], "rankings": {name: {"joint": [G], "additive": [G]}}}`` (the
            ``fig1`` entry of ``scripts/shapo_calibration.py``'s results).
        claim: ``(fraction of neurons, share)`` marked as the seed's claim, or ``None``.
        ax: axes to draw into.
        title: axes title.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: a ranking without both readings, or not one value per fraction.
    """
    x = 100 * _arr(fig1["fractions"])
    fig, ax = _axes(ax, (6.4, 3.9))
    for i, (name, shares) in enumerate(fig1["rankings"].items()):
        for reading, ls in (("joint", "-"), ("additive", "--")):
            if reading not in shares or len(shares[reading]) != len(x):
                raise ValueError(f"ranking {name!r} needs {reading!r} with one share per "
                                 f"fraction ({len(x)})")
            ax.plot(x, _arr(shares[reading]), ls=ls, marker=series_style(i)["marker"],
                    color=f"C{i}", ms=4, label=f"{name}, {reading}")
    if claim is not None:
        ax.axvline(100 * claim[0], color="tab:green", lw=0.8, ls=":")
        ax.axhline(claim[1], color="tab:green", lw=0.8, ls=":",
                   label=f"seed claim: {100 * claim[0]:g}% → {100 * claim[1]:g}%")
    ax.set_xscale("log")
    ax.set_xlabel("neurons in S (% of all n_layers·d_mlp)")
    ax.set_ylabel("share of the worst-case loss rise")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax, fontsize=7)
    fig.tight_layout()
    return fig


def plot_lambda_max(
    results: Mapping[str, Any],
    ax: Any = None,
    title: str | None = "Subspace curvature λ_max(H_S)",
    log_y: bool = False,
) -> Any:
    """Bars of ``λ_max(H_S)`` per subspace, annotated with ``dim(S)`` and convergence.

    Args:
        results: ``{label: HessianInfo or float}``
            (:func:`safelens.geometry.report.subspace_lambda_max`).
        ax: axes to draw into.
        title: axes title.
        log_y: logarithmic y axis (only if every value is positive).

    Returns:
        The matplotlib ``Figure``.
    """
    if not results:
        raise ValueError("results is empty; expected {subspace label: HessianInfo or float}")
    labels, values, notes = [], [], []
    for label, r in results.items():
        value = float(getattr(r, "eigenvalue", r))
        if not math.isfinite(value):
            raise ValueError(f"results[{label!r}] is not a finite eigenvalue: {value}")
        labels.append(label)
        values.append(value)
        dims = getattr(r, "n_dims", None)
        note = f"dim {dims:,}" if dims is not None else ""
        if getattr(r, "converged", True) is False:
            note += " (not conv.)"
        notes.append(note)
    fig, ax = _axes(ax, (5.5, 3.4))
    bars = ax.bar(
        range(len(values)),
        values,
        color=[_TOP, _RANDOM, "tab:blue", "tab:purple"][: len(values)]
        + ["tab:olive"] * max(0, len(values) - 4),
    )
    for b, v, n in zip(bars, values, notes, strict=True):
        ax.annotate(
            f"{v:.3g}\n{n}",
            (b.get_x() + b.get_width() / 2, b.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("λ_max(H_S) (nats / ‖Δθ‖²)")
    if log_y and all(v > 0 for v in values):
        ax.set_yscale("log")
    ax.margins(y=0.25)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_kl_depth(
    profiles: Mapping[str, Mapping[str, Any]],
    ax: Any = None,
    title: str | None = "Per-token KL(aligned ‖ base) on harmful answers",
    log_y: bool = True,
    band: bool = True,
) -> Any:
    """Per-token KL depth profile (Qi et al., seed 003, Fig. 1): mean per position and a band.

    Args:
        profiles: ``{label: kl_depth_profile(...)}`` (``mean`` ``[K]``; optional ``positions``
            ``[K]``, ``per_example`` ``[B, K]``, ``std`` ``[K]``; tensors or lists).
        ax: axes to draw into.
        title: axes title.
        log_y: logarithmic y axis.
        band: shade the spread over examples: the 25–75% quantiles of ``per_example`` when given
            (readable on a log axis), else mean ± std.

    Returns:
        The matplotlib ``Figure``.
    """
    if not profiles:
        raise ValueError("profiles is empty; expected {label: kl_depth_profile result}")
    fig, ax = _axes(ax, (6.0, 3.6))
    names = overlap_labels(
        {label: _arr(p["mean"]) for label, p in profiles.items()
         if isinstance(p, Mapping) and "mean" in p}
    )
    for i, (label, prof) in enumerate(profiles.items()):
        if not isinstance(prof, Mapping) or "mean" not in prof:
            raise ValueError(
                f"profiles[{label!r}] must have 'mean' [K] (a kl_depth_profile result)"
            )
        mean = _arr(prof["mean"])
        pos = _arr(prof["positions"]) if "positions" in prof else np.arange(len(mean))
        if len(pos) != len(mean):
            raise ValueError(f"profiles[{label!r}]: 'positions' and 'mean' must both be [K]")
        (line,) = ax.plot(pos, mean, label=f"{names[label]} (mean)", ms=4, **series_style(i))
        if not band:
            continue
        if "per_example" in prof:
            per = _arr(prof["per_example"])
            if per.ndim != 2 or per.shape[1] != len(mean):
                raise ValueError(f"profiles[{label!r}]['per_example'] must be [B, K={len(mean)}]")
            ok = ~np.isnan(per).all(0)
            low, high = np.full(len(mean), np.nan), np.full(len(mean), np.nan)
            low[ok] = np.nanquantile(per[:, ok], 0.25, axis=0)
            high[ok] = np.nanquantile(per[:, ok], 0.75, axis=0)
            ax.fill_between(
                pos, low, high, alpha=0.15, color=line.get_color(), label=f"{label} (25–75%)"
            )
        elif "std" in prof:
            std = _arr(prof["std"])
            low = np.clip(mean - std, mean / 10 if log_y else 0.0, None)
            ax.fill_between(pos, low, mean + std, alpha=0.15, color=line.get_color())
    ax.set_xlabel("response token position k (tokens)")
    ax.set_ylabel("KL (nats per token)")
    integer_ticks(ax)
    if log_y:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_bypass(result: Mapping[str, Any], title: str | None = "Bypass radius") -> Any:
    """Bypass radius: loss along each direction (left) and predicted vs measured radii (right).

    Args:
        result: :func:`safelens.geometry.report.bypass_check` output.
        title: figure title.

    Returns:
        The matplotlib ``Figure`` (two axes).
    """
    import matplotlib.pyplot as plt

    for key in ("loss0", "tau", "predicted", "directions"):
        if key not in result:
            raise ValueError(
                f"result needs {key!r} (the dict of safelens.geometry.report.bypass_check)"
            )
    dirs = result["directions"]
    if not dirs:
        raise ValueError("result['directions'] is empty")
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10.0, 3.6))
    lines = {
        name: ([0.0] + list(d["grid_radii"]), [result["loss0"]] + list(d["grid_losses"]))
        for name, d in dirs.items()
    }
    names = overlap_labels(lines)
    for i, (name, (r, loss)) in enumerate(lines.items()):
        ax0.plot(r, loss, ms=4, label=names[name], **series_style(i))
    ax0.axhline(result["tau"], color="k", ls=":", lw=0.8, label="τ")
    ax0.axvline(result["predicted"], color="tab:green", ls="--", lw=0.8, label="predicted δ (seed)")
    ax0.set_xlabel("‖Δθ‖ along direction (L2 norm of the parameter change)")
    ax0.set_ylabel("alignment loss (nats)")
    ax0.grid(alpha=0.3)
    legend_outside(ax0, where="below", fontsize=7)

    names = list(dirs)
    cap = float(result.get("max_radius", np.nan))
    measured = [d["measured"] if math.isfinite(d["measured"]) else cap for d in dirs.values()]
    quad = [d["quadratic"] if math.isfinite(d["quadratic"]) else cap for d in dirs.values()]
    x = np.arange(len(names))
    ax1.bar(x - 0.2, measured, width=0.4, label="measured (line search)", color="tab:blue")
    ax1.bar(
        x + 0.2,
        quad,
        width=0.4,
        label="quadratic model r·⟨g,d⟩ + ½r²dᵀHd",
        color="tab:orange",
        alpha=0.8,
    )
    for i, d in enumerate(dirs.values()):
        if not d["crossed"]:
            ax1.annotate("> max", (x[i] - 0.2, cap), ha="center", va="bottom", fontsize=7)
        if not math.isfinite(d["quadratic"]):
            ax1.annotate("∞", (x[i] + 0.2, cap), ha="center", va="bottom", fontsize=7)
    ax1.axhline(
        result["predicted"], color="tab:green", ls="--", lw=1.0, label="seed: √(2(τ−L)/λ_max)"
    )
    if "predicted_with_gradient" in result:
        ax1.axhline(
            result["predicted_with_gradient"],
            color="tab:purple",
            ls=":",
            lw=1.0,
            label="worst case with gradient",
        )
    ax1.set_xticks(x)
    ax1.set_xticklabels(names, fontsize=8, rotation=20)
    ax1.set_ylabel("radius to reach τ (‖Δθ‖, L2)")
    ax1.set_yscale("log")
    ax1.grid(alpha=0.3, axis="y")
    legend_outside(ax1, where="below", fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_reward_margins(
    margins: Any,
    beta_rs: Sequence[float] = (0.1, 1.0, 10.0),
    groups: Mapping[str, Any] | None = None,
    bins: int = 40,
    threshold: float = 0.99,
    title: str | None = "Reward margins Δr and soft targets σ(β_r Δr)",
) -> Any:
    """ShaPO Figure 5: histogram of ``Δr`` (left) and of ``σ(β_r Δr)`` for each ``β_r`` (right).

    The targets come from :func:`safelens.losses.reward_soft_targets`, the function ShaPO-R
    trains with. Each group is one overlaid histogram; each target panel notes the share of
    the group's targets above ``threshold`` (near-hard labels).

    Args:
        margins: ``[N]`` reward margins ``R(x, y_w) − R(x, y_l)``
            (:func:`safelens.reward.score_pairs`; tensor, array or list).
        beta_rs: ``β_r`` values, one target panel each.
        groups: ``{label: bool mask [N]}`` (e.g. :func:`safelens.reward.harm_groups`);
            ``None`` draws all pairs as one group.
        bins: histogram bins of the ``Δr`` panel (the target panels use ``bins`` bins on [0, 1]).
        threshold: the saturation level noted in the target panels.
        title: figure title.

    Returns:
        The matplotlib ``Figure`` (``1 + len(beta_rs)`` axes).

    Raises:
        ValueError: if ``margins`` is not a non-empty finite ``[N]``, a mask is not ``[N]``
            bool, or ``beta_rs`` is empty.
    """
    import matplotlib.pyplot as plt
    import torch


    m = _arr(margins)
    if m.ndim != 1 or len(m) == 0:
        raise ValueError(f"margins must be a non-empty [N] of reward margins, got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("margins has non-finite values")
    if not beta_rs:
        raise ValueError("beta_rs is empty; expected e.g. (0.1, 1.0, 10.0)")
    masks: dict[str, np.ndarray] = {}
    for label, mask in (groups or {"all pairs": np.ones(len(m), dtype=bool)}).items():
        mask = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
        if mask.dtype != bool or mask.shape != m.shape:
            raise ValueError(
                f"groups[{label!r}] must be a bool mask [N={len(m)}], got {mask.dtype} "
                f"{mask.shape}"
            )
        masks[label] = mask
    n_ax = 1 + len(beta_rs)
    fig, axes = plt.subplots(1, n_ax, figsize=(3.2 * n_ax, 3.2))
    colors = [f"C{i}" for i in range(len(masks))]
    edges = np.histogram_bin_edges(m, bins=bins)
    ax0 = axes[0]
    for (label, mask), c in zip(masks.items(), colors, strict=True):
        ax0.hist(m[mask], bins=edges, alpha=0.5, color=c, label=f"{label} (n={int(mask.sum())})")
    ax0.axvline(0.0, color="k", lw=0.8, ls=":")
    ax0.set_xlabel("Δr = R(x, y_w) − R(x, y_l) (reward units)")
    ax0.set_ylabel("pairs (count)")
    ax0.set_title("reward margin", fontsize=9)
    ax0.grid(alpha=0.3)
    legend_outside(ax0, where="below", fontsize=7, ncol=1)
    t_edges = np.linspace(0.0, 1.0, bins + 1)
    for ax, b in zip(axes[1:], beta_rs, strict=True):
        notes = []
        for (label, mask), c in zip(masks.items(), colors, strict=True):
            t = reward_soft_targets(torch.from_numpy(m[mask]), float(b)).numpy()  # [n]
            ax.hist(t, bins=t_edges, alpha=0.5, color=c)
            if len(t):
                notes.append(f"{label}: {100 * np.mean(t > threshold):.0f}% > {threshold:g}")
        ax.text(
            0.03,
            0.97,
            "\n".join(notes),
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            bbox={"facecolor": "white", "alpha": 0.7, "lw": 0},
        )
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel(f"σ(β_r Δr), β_r = {b:g} (probability)")
        ax.set_ylabel("pairs (count)")
        ax.set_title(f"soft target, β_r = {b:g}", fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def probe_accuracy_plotly(probes: Mapping[int, Any] | Sequence[Any]) -> Any:
    """Plotly version of :func:`plot_probe_accuracy` (hover shows the exact accuracies)."""
    import plotly.graph_objects as go

    layers, train, val = _probe_table(probes)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=layers, y=train, mode="lines+markers", name="train"))
    fig.add_trace(go.Scatter(x=layers, y=val, mode="lines+markers", name="held-out"))
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_layout(
        xaxis_title="layer (index)",
        yaxis_title="accuracy (fraction)",
        yaxis_range=[0.4, 1.02],
        title="Safety probe accuracy per layer",
    )
    return fig


def worst_case_curves_plotly(curves: Mapping[str, Any], key: str = "cumulative_fraction") -> Any:
    """Plotly version of :func:`plot_worst_case_curves` (log x, hover shows K)."""
    import plotly.graph_objects as go

    for part in ("top", "random_mean"):
        if part not in curves:
            raise ValueError(f"curves needs {part!r} (the dict of worst_case_curves)")
        _check_curve(part, curves[part], key)
    x = 100 * _arr(curves["top"]["fraction_of_neurons"])
    k = _arr(curves["top"]["k"]).astype(int) if "k" in curves["top"] else None
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=_arr(curves["top"][key]),
            mode="lines+markers",
            name="Top-K",
            customdata=k,
            hovertemplate="K=%{customdata}<br>%{y:.3f}",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x, y=_arr(curves["random_mean"][key]), mode="lines+markers", name="Random-K (mean)"
        )
    )
    fig.update_layout(
        xaxis_type="log",
        xaxis_title="neurons perturbed (% of all)",
        yaxis_title="ΔL(K) / ΔL(all) (fraction)",
        title="Top-K vs Random-K",
    )
    return fig
