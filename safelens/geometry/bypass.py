"""Bypass radius: how far parameters can move before the alignment loss crosses a threshold.

ShaPO §3.4 / Appendix C.2 (seed 000): with ``L(θ + Δθ) ≈ L(θ) + ½ Δθᵀ H Δθ ≤ L(θ) + ½ λ_max ‖Δθ‖²``
the loss stays below the safety threshold ``τ`` for every ``‖Δθ‖ ≤ δ`` with

    δ ≲ sqrt( 2 (τ − L(θ)) / λ_max(H_S) ).

:func:`predicted_bypass_radius` evaluates that bound; :func:`measured_bypass_radius` measures the
actual radius along one direction (the top Hessian eigenvector, where the bound is tight to second
order, or random directions inside the subspace) by a line search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, overload

import torch
from torch import Tensor

if TYPE_CHECKING:
    from safelens.geometry.value_vectors import Subspace

__all__ = [
    "BypassInfo",
    "predicted_bypass_radius",
    "measured_bypass_radius",
    "random_subspace_directions",
]


def predicted_bypass_radius(loss: float, tau: float, lambda_max: float) -> float:
    """Second-order bypass radius ``δ = sqrt(2(τ − L)/λ_max)`` (ShaPO §3.4, Appendix C.2).

    Args:
        loss: current alignment loss ``L(θ)``.
        tau: risk threshold ``τ``.
        lambda_max: ``λ_max(H_S)`` (e.g. from :func:`~safelens.geometry.hessian.hessian_lambda_max`).

    Returns:
        ``δ``; ``0`` when ``L ≥ τ`` already, ``inf`` when ``λ_max ≤ 0`` (no positive curvature:
        the quadratic model never reaches ``τ``).

    Examples:
        >>> predicted_bypass_radius(loss=1.0, tau=3.0, lambda_max=4.0)
        1.0
    """
    if loss >= tau:
        return 0.0
    if lambda_max <= 0:
        return math.inf
    return math.sqrt(2.0 * (tau - loss) / lambda_max)


@dataclass
class BypassInfo:
    """Details of a :func:`measured_bypass_radius` line search.

    Attributes:
        radius: smallest ``r`` found with ``L(θ + r d) ≥ τ`` (``inf`` if none up to ``max_radius``).
        loss0: ``L(θ)``.
        crossed: whether ``τ`` was reached within ``max_radius``.
        grid_radii: radii of the coarse grid that were evaluated.
        grid_losses: losses there.
        n_evals: loss evaluations in total.
    """

    radius: float
    loss0: float
    crossed: bool
    grid_radii: list[float] = field(default_factory=list)
    grid_losses: list[float] = field(default_factory=list)
    n_evals: int = 0


def _unpack(
    params: Sequence[Tensor] | Subspace, masks: Sequence[Tensor | None] | None
) -> tuple[list[Tensor], list[Tensor | None]]:
    if hasattr(params, "params") and hasattr(params, "masks"):
        if masks is not None:
            raise ValueError("pass masks either inside the Subspace or as masks=, not both")
        return list(params.params), list(params.masks)
    plist = list(params)
    return plist, list(masks) if masks is not None else [None] * len(plist)


def _unit(
    direction: Sequence[Tensor], params: list[Tensor], masks: list[Tensor | None]
) -> list[Tensor]:
    """Restrict ``direction`` to the masks and scale it to unit joint L2 norm."""
    if len(direction) != len(params):
        raise ValueError(f"direction has {len(direction)} tensors for {len(params)} params")
    out = []
    for i, (d, p, m) in enumerate(zip(direction, params, masks, strict=True)):
        if d.shape != p.shape:
            raise ValueError(f"direction[{i}] has shape {tuple(d.shape)}, param {tuple(p.shape)}")
        d = d.detach().to(device=p.device, dtype=p.dtype)
        out.append(d if m is None else d * m.to(device=p.device, dtype=p.dtype))
    norm = math.sqrt(sum(float((d.double() ** 2).sum()) for d in out))
    if norm == 0.0:
        raise ValueError("direction is zero on the subspace")
    return [d / norm for d in out]


def random_subspace_directions(
    params: Sequence[Tensor] | Subspace,
    masks: Sequence[Tensor | None] | None = None,
    n: int = 1,
    seed: int = 0,
) -> list[list[Tensor]]:
    """``n`` random unit directions (Gaussian, then normalised) inside the masked subspace.

    Args:
        params: tensors or a :class:`~safelens.geometry.value_vectors.Subspace`.
        masks: per-param masks (``None`` = whole tensor) when ``params`` is a list.
        n: number of directions.
        seed: seeds a private generator.

    Returns:
        ``n`` lists of tensors shaped like ``params``, zero off-mask, joint norm 1.
    """
    plist, mlist = _unpack(params, masks)
    gen = torch.Generator().manual_seed(seed)
    dirs = []
    for _ in range(n):
        raw = [torch.randn(p.shape, generator=gen, dtype=torch.float32) for p in plist]
        dirs.append(_unit(raw, plist, mlist))
    return dirs


@overload
def measured_bypass_radius(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor] | Subspace,
    direction: Sequence[Tensor],
    tau: float,
    max_radius: float,
    steps: int = ...,
    bisect_iters: int = ...,
    masks: Sequence[Tensor | None] | None = ...,
    return_info: Literal[False] = ...,
) -> float: ...


@overload
def measured_bypass_radius(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor] | Subspace,
    direction: Sequence[Tensor],
    tau: float,
    max_radius: float,
    steps: int = ...,
    bisect_iters: int = ...,
    masks: Sequence[Tensor | None] | None = ...,
    *,
    return_info: Literal[True],
) -> tuple[float, BypassInfo]: ...


def measured_bypass_radius(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor] | Subspace,
    direction: Sequence[Tensor],
    tau: float,
    max_radius: float,
    steps: int = 20,
    bisect_iters: int = 20,
    masks: Sequence[Tensor | None] | None = None,
    return_info: bool = False,
) -> float | tuple[float, BypassInfo]:
    """Measured bypass radius along one direction: smallest ``r`` with ``L(θ + r·d) ≥ τ``.

    The empirical counterpart of ShaPO's ``δ`` (§3.4): a coarse grid ``r_i = i·max_radius/steps``
    finds the first crossing, then bisection on ``[r_{i−1}, r_i]`` refines it to
    ``max_radius/steps/2^bisect_iters``. (A loss that crosses and comes back between grid points
    can be missed; refine ``steps`` if the landscape is rough.) Parameters are set to
    ``θ + r·d`` from a saved copy of ``θ`` and restored from it bit-exactly.

    Args:
        loss_fn: closure returning the scalar loss; evaluated under ``torch.no_grad()``.
        params: tensors ``θ`` or a :class:`~safelens.geometry.value_vectors.Subspace`.
        direction: tensors shaped like ``params``; restricted to the masks and normalised to unit
            joint norm (so ``r`` is an L2 distance in parameter space).
        tau: risk threshold ``τ``.
        max_radius: largest radius searched.
        steps: coarse grid points.
        bisect_iters: bisection iterations after the first grid crossing.
        masks: per-param masks when ``params`` is a list.
        return_info: also return a :class:`BypassInfo`.

    Returns:
        The radius (``0`` if ``L(θ) ≥ τ``; ``inf`` if ``τ`` is not reached by ``max_radius``),
        or ``(radius, info)``.

    Examples:
        >>> w = torch.zeros(2)
        >>> f = lambda: 0.5 * 4.0 * w[0] ** 2  # λ = 4 along e0
        >>> r = measured_bypass_radius(f, [w], [torch.tensor([1.0, 0.0])], tau=2.0, max_radius=5.0)
        >>> round(r, 4)  # sqrt(2·2/4) = 1
        1.0
    """
    if max_radius <= 0 or steps < 1:
        raise ValueError(f"need max_radius > 0 and steps >= 1, got {max_radius}, {steps}")
    plist, mlist = _unpack(params, masks)
    unit = _unit(direction, plist, mlist)
    saved = [p.detach().clone() for p in plist]
    n_evals = 0

    def loss_at(r: float) -> float:
        nonlocal n_evals
        n_evals += 1
        with torch.no_grad():
            for p, s, d in zip(plist, saved, unit, strict=True):
                p.copy_(s + r * d)
            return float(loss_fn().detach().double())

    radii: list[float] = []
    losses: list[float] = []
    try:
        with torch.no_grad():
            loss0 = float(loss_fn().detach().double())
        n_evals += 1
        radius, crossed = math.inf, False
        if loss0 >= tau:
            radius, crossed = 0.0, True
        else:
            lo = 0.0
            for i in range(1, steps + 1):
                r = max_radius * i / steps
                val = loss_at(r)
                radii.append(r)
                losses.append(val)
                if val >= tau:
                    hi = r
                    for _ in range(bisect_iters):
                        mid = 0.5 * (lo + hi)
                        if loss_at(mid) >= tau:
                            hi = mid
                        else:
                            lo = mid
                    radius, crossed = hi, True
                    break
                lo = r
    finally:
        with torch.no_grad():
            for p, s in zip(plist, saved, strict=True):
                p.copy_(s)
    info = BypassInfo(radius, loss0, crossed, radii, losses, n_evals)
    return (radius, info) if return_info else radius
