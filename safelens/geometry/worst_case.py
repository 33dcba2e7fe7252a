"""Cumulative worst-case alignment loss under value-vector perturbations (ShaPO Figure 1).

For a neuron set ``S`` (value vectors of the first ``K`` neurons of a ranking) the first-order
worst-case perturbation of radius ``ρ`` restricted to ``S`` is the SAM step of ShaPO Eq. 14,
``ε_S = ρ g_S / ‖g_S‖`` with ``g_S = ∇_{θ_S} L(θ)`` (Eq. 13); it raises the loss by

    ΔL(K) = L(θ + ε_S) − L(θ)  ≈  ρ ‖g_S‖   (first order, ShaPO §3.4).

**Cumulative contribution fraction** (the y-axis of Figure 1), defined here as

    C(K) = ΔL(K) / ΔL(all),

where ``ΔL(all)`` is the same quantity with ``S`` = *every* value vector of the model (all
columns of all MLP output projections, i.e. all ``n_layers·d_mlp`` neurons) and the same ``ρ``.
Its first-order counterpart is ``‖g_S‖ / ‖g_all‖ ∈ [0, 1]``, monotone in ``K``; the measured
``C(K)`` includes higher-order terms and may exceed 1 slightly for large ``ρ``. The x-axis is the
fraction of neurons perturbed, ``K / (n_layers·d_mlp)``. One gradient serves the whole grid and
both rankings (probe Top-K and Random-K), and every perturbation is undone bit-exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from safelens.geometry.value_vectors import (
    ValueVectorParam,
    d_mlp_of,
    random_k_neurons,
    value_vector_params,
)

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = ["worst_case_loss_curve", "worst_case_curves", "fraction_at"]

_EPS = 1e-12  # ShaPO Algorithm 1, line 10


@dataclass
class _Context:
    """What every curve of one figure shares: the gradient, L(θ) and the all-neuron baseline."""

    loss_fn: Callable[[], Tensor]
    vv: list[ValueVectorParam]
    grads: list[Tensor]  # per layer, shaped like vv[l].param
    loss0: float
    rho: float
    n_neurons: int
    delta_all: float = float("nan")
    first_order_all: float = float("nan")


def _loss_now(loss_fn: Callable[[], Tensor]) -> float:
    with torch.no_grad():
        return float(loss_fn().detach().double())


def _build_context(loss_fn: Callable[[], Tensor], model: TransformerBridge, rho: float) -> _Context:
    """One gradient of the loss w.r.t. every value-vector parameter, and ΔL(all)."""
    if rho <= 0:
        raise ValueError(f"rho must be > 0, got {rho}")
    vv = value_vector_params(model)
    params = [v.param for v in vv]
    with torch.enable_grad():
        loss = loss_fn()
        if loss.ndim != 0:
            raise ValueError(f"loss_fn() must return a scalar, got shape {tuple(loss.shape)}")
        raw = torch.autograd.grad(loss, params, allow_unused=True)
    grads = [
        torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, raw, strict=True)
    ]
    # L(θ) from the same no-grad code path as the perturbed evaluations, so ΔL has no mode bias.
    ctx = _Context(
        loss_fn=loss_fn,
        vv=vv,
        grads=grads,
        loss0=_loss_now(loss_fn),
        rho=float(rho),
        n_neurons=len(vv) * d_mlp_of(model),
    )
    # ΔL(all) through the same code path as every K, so C(all neurons) is exactly 1.
    d_mlp = d_mlp_of(model)
    layer_idx = torch.arange(len(vv)).repeat_interleave(d_mlp)
    everything = torch.stack([layer_idx, torch.arange(d_mlp).repeat(len(vv))], dim=1)  # [N, 2]
    ctx.delta_all, ctx.first_order_all = _delta_for(ctx, everything)
    return ctx


def _delta_for(ctx: _Context, neurons: Tensor) -> tuple[float, float]:
    """``(ΔL, ρ‖g_S‖)`` for the value vectors of ``neurons`` ``[K, 2]``; parameters restored."""
    if neurons.numel() == 0:
        return 0.0, 0.0
    groups: list[tuple[ValueVectorParam, Tensor, Tensor]] = []
    sq = torch.zeros((), dtype=torch.float64)
    for info, g in zip(ctx.vv, ctx.grads, strict=True):
        idx = neurons[neurons[:, 0] == info.layer, 1].unique()
        if idx.numel() == 0:
            continue
        g_cols = g.index_select(info.neuron_dim, idx.to(g.device))
        g_cols = g_cols.t() if info.neuron_dim == 1 else g_cols  # [k_l, d_model]
        sq = sq + (g_cols.double() ** 2).sum().cpu()
        groups.append((info, idx, g_cols))
    g_norm = float(sq.sqrt())
    scale = ctx.rho / (g_norm + _EPS)  # ε_S = ρ g_S / (‖g_S‖ + 1e-12), ShaPO Eq. 14
    saved = [info.columns(idx) for info, idx, _ in groups]  # [k_l, d_model] copies
    try:
        for (info, idx, g_cols), orig in zip(groups, saved, strict=True):
            info.set_columns(idx, orig + scale * g_cols.to(orig.dtype))
        delta = _loss_now(ctx.loss_fn) - ctx.loss0
    finally:
        # Writing back the saved copies (not subtracting ε) makes the restore bit-exact.
        for (info, idx, _), orig in zip(groups, saved, strict=True):
            info.set_columns(idx, orig)
    return delta, ctx.rho * g_norm


def _curve(ctx: _Context, ranking: Tensor, ks: Sequence[int]) -> dict[str, Any]:
    ranking = ranking.long().cpu()
    if ranking.ndim != 2 or ranking.shape[1] != 2:
        raise ValueError(
            f"ranking_neurons must be [N, 2] (layer, neuron), got {tuple(ranking.shape)}"
        )
    ks_list = [int(k) for k in ks]
    for k in ks_list:
        if not 0 <= k <= ranking.shape[0]:
            raise ValueError(f"K={k} is outside [0, {ranking.shape[0]}] (the ranking's length)")
    deltas, firsts = [], []
    for k in ks_list:
        d, f = _delta_for(ctx, ranking[:k])
        deltas.append(d)
        firsts.append(f)
    delta = torch.tensor(deltas, dtype=torch.float64)
    first = torch.tensor(firsts, dtype=torch.float64)
    return {
        "k": torch.tensor(ks_list, dtype=torch.long),
        "fraction_of_neurons": torch.tensor(ks_list, dtype=torch.float64) / ctx.n_neurons,
        "delta_loss": delta,
        "first_order": first,
        "cumulative_fraction": delta / ctx.delta_all,
        "first_order_fraction": first / ctx.first_order_all,
        "delta_loss_all": ctx.delta_all,
        "first_order_all": ctx.first_order_all,
        "loss0": ctx.loss0,
        "rho": ctx.rho,
        "n_neurons": ctx.n_neurons,
    }


def worst_case_loss_curve(
    loss_fn: Callable[[], Tensor],
    model: TransformerBridge,
    ranking_neurons: Tensor,
    ks: Sequence[int],
    rho: float,
) -> dict[str, Any]:
    """Worst-case loss increase when perturbing the value vectors of the first ``K`` neurons.

    ShaPO Figure 1 / Eq. 13–14: one gradient ``g``, then for each ``K`` the perturbation
    ``ε_S = ρ g_S/‖g_S‖`` on the first ``K`` neurons' value vectors, one forward, and an exact
    restore. See the module docstring for the definition of the cumulative fraction.

    Args:
        loss_fn: closure returning the scalar alignment loss (e.g. DPO on a few pairs); called
            once with gradients and ``len(ks) + 2`` times under ``torch.no_grad()``. Put the
            model in eval mode first so the evaluations are deterministic.
        model: the ``TransformerBridge`` whose value vectors are perturbed in place.
        ranking_neurons: ``[N, 2]`` ``(layer, neuron)`` pairs, most important first (e.g.
            :func:`~safelens.geometry.value_vectors.top_k_neurons` with ``k=N``).
        ks: neuron counts ``K`` (each ``0 ≤ K ≤ N``).
        rho: perturbation radius ``ρ`` (L2 norm of ``ε_S``).

    Returns:
        dict with ``k`` ``[G]``, ``fraction_of_neurons`` ``[G]`` (``K/(n_layers·d_mlp)``),
        ``delta_loss`` ``[G]`` (measured ``ΔL(K)``), ``first_order`` ``[G]`` (``ρ‖g_S‖``),
        ``cumulative_fraction`` ``[G]`` (``ΔL(K)/ΔL(all)``), ``first_order_fraction`` ``[G]``
        (``‖g_S‖/‖g_all‖``), and floats ``delta_loss_all``, ``first_order_all``, ``loss0``,
        ``rho``, ``n_neurons``. ``G = len(ks)``; tensors are float64 on CPU.

    Examples:
        >>> scores = rank_value_vectors(model, probe.direction)  # doctest: +SKIP
        >>> ranking = top_k_neurons(scores, k=scores.numel())  # doctest: +SKIP
        >>> curve = worst_case_loss_curve(loss_fn, model, ranking, [10, 100, 1000], rho=0.05)  # doctest: +SKIP
        >>> fraction_at(curve, 0.005)  # share of ΔL(all) carried by 0.5% of neurons  # doctest: +SKIP
    """
    ctx = _build_context(loss_fn, model, rho)
    return _curve(ctx, ranking_neurons, ks)


def worst_case_curves(
    loss_fn: Callable[[], Tensor],
    model: TransformerBridge,
    ranking_neurons: Tensor,
    ks: Sequence[int],
    rho: float,
    n_random: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Top-K (the given ranking) and Random-K curves of ShaPO Figure 1 from one gradient.

    Args:
        loss_fn: scalar alignment loss closure (see :func:`worst_case_loss_curve`).
        model: the ``TransformerBridge``.
        ranking_neurons: ``[N, 2]`` probe ranking, best first.
        ks: neuron counts ``K``.
        rho: perturbation radius.
        n_random: number of random rankings (seeds ``seed, seed+1, ...``).
        seed: first random seed.

    Returns:
        ``{"top": curve, "random": [curve, ...], "random_mean": {key: mean over draws}}`` where
        each curve is a :func:`worst_case_loss_curve` dict and ``random_mean`` averages
        ``delta_loss``, ``first_order``, ``cumulative_fraction`` and ``first_order_fraction``.
    """
    ctx = _build_context(loss_fn, model, rho)
    top = _curve(ctx, ranking_neurons, ks)
    n_layers, d_mlp = len(ctx.vv), ctx.n_neurons // len(ctx.vv)
    kmax = max([int(k) for k in ks] + [0])
    randoms = [
        _curve(ctx, random_k_neurons(n_layers, d_mlp, kmax, seed=seed + i), ks)
        for i in range(n_random)
    ]
    keys = ("delta_loss", "first_order", "cumulative_fraction", "first_order_fraction")
    mean = {
        key: torch.stack([r[key] for r in randoms]).mean(0) if randoms else top[key] * float("nan")
        for key in keys
    }
    mean["fraction_of_neurons"] = top["fraction_of_neurons"]
    return {"top": top, "random": randoms, "random_mean": mean}


def fraction_at(curve: dict[str, Any], frac_of_neurons: float, key: str = "cumulative_fraction") -> float:
    """Cumulative contribution at a given fraction of neurons, linearly interpolated.

    Used for ShaPO's claim that "perturbing fewer than 0.5% of these neurons already accounts for
    over 80% of the cumulative worst-case alignment loss": ``fraction_at(curve, 0.005) > 0.8``.
    The curve is taken to pass through ``(0, 0)``; beyond its last ``K`` the last value is held.

    Args:
        curve: a dict from :func:`worst_case_loss_curve` (or ``worst_case_curves(...)["random_mean"]``).
        frac_of_neurons: x value, ``K/(n_layers·d_mlp)``.
        key: which y series to read (``"cumulative_fraction"`` or ``"first_order_fraction"``).

    Returns:
        The interpolated fraction.

    Examples:
        >>> c = {"fraction_of_neurons": torch.tensor([0.01, 0.02]),
        ...      "cumulative_fraction": torch.tensor([0.5, 0.9])}
        >>> round(fraction_at(c, 0.015), 3)
        0.7
    """
    x = np.asarray(curve["fraction_of_neurons"], dtype=np.float64)
    y = np.asarray(curve[key], dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x.size == 0 or x[0] > 0:
        x, y = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
    return float(np.interp(frac_of_neurons, x, y))
