"""Largest algebraic eigenvalue of a (subspace-restricted) Hessian from Hessian-vector products.

ShaPO (seed 000, §3.4 and Appendix C, Eq. 16) measures the curvature of the alignment loss
restricted to the safety-critical subspace S by ``λ_max(H_S)``: the sharpness
``max_{‖ε_S‖≤ρ} L(θ+ε_S) − L(θ) ≈ ½ ρ² λ_max(H_S)`` and the bypass radius
``δ ≲ sqrt(2(τ − L)/λ_max(H_S))`` both depend on it. ``H_S = P H Pᵀ`` where ``P`` selects the
masked coordinates; we never form it, only products ``H_S v``.

Two solvers share one HVP operator:

* ``"lanczos"`` (default): ARPACK's implicitly restarted Lanczos through
  :func:`scipy.sparse.linalg.eigsh` with ``which="LA"`` — the largest *algebraic* eigenvalue.
* ``"power"``: plain power iteration as in PyHessian (Yao et al., 2020), which converges to the
  eigenvalue of largest *magnitude*; when that one is negative we run a second power iteration
  on ``H − λ₁ I`` (all eigenvalues ≥ 0 there, the top one is ``λ_max − λ₁``) and add ``λ₁`` back.
  Kept for :mod:`benchmarks.bench_hessian`. Its estimate is a Rayleigh quotient, hence never
  above ``λ_max``, but when ``|λ_min| ≈ λ_max`` (common for losses near a saddle) the iterate
  oscillates between the two ends of the spectrum and the relative-change test can stop it early
  and low. Lanczos has no such failure mode, which is why it is the default.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from safelens.geometry.value_vectors import Subspace

__all__ = ["HessianInfo", "hessian_lambda_max", "HVPOperator"]


@dataclass
class HessianInfo:
    """What :func:`hessian_lambda_max` found, besides the eigenvalue.

    Attributes:
        eigenvalue: the largest algebraic eigenvalue of ``H_S`` (same as the returned float).
        eigenvector: unit eigenvector as tensors shaped like ``params`` (zero outside the masks).
        n_hvp: number of Hessian-vector products used (the cost unit of the benchmark).
        n_dims: number of masked coordinates, ``dim(S)``.
        converged: whether the solver met ``tol`` within ``iters``.
        method: ``"lanczos"`` or ``"power"``.
        seconds: wall time of the solve, gradient graph included.
        largest_magnitude: power iteration only — the first-stage eigenvalue (largest |λ|).
    """

    eigenvalue: float
    eigenvector: list[Tensor]
    n_hvp: int
    n_dims: int
    converged: bool
    method: str
    seconds: float
    largest_magnitude: float | None = None
    history: list[float] = field(default_factory=list)


class HVPOperator:
    """``v ↦ H_S v`` on the flat vector of masked coordinates, by double backward.

    The gradient graph ``g = ∇L(θ)`` is built once (``create_graph=True``) and reused for every
    product when ``reuse_graph`` is true — one backward per HVP instead of a forward and two
    backwards; set it false when the retained graph does not fit in memory.

    Args:
        loss_fn: closure returning the scalar loss ``L(θ)``; called with gradients enabled.
        params: tensors ``θ`` (``requires_grad=True``).
        masks: one bool mask per param (same shape) or ``None`` for the whole tensor.
        reuse_graph: keep the gradient graph between products.

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> op = HVPOperator(lambda: (w ** 2).sum() * 1.5, [w])
        >>> op.matvec(torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
        [3.0, 0.0]
    """

    def __init__(
        self,
        loss_fn: Callable[[], Tensor],
        params: Sequence[Tensor],
        masks: Sequence[Tensor | None] | None = None,
        reuse_graph: bool = True,
    ) -> None:
        self.loss_fn = loss_fn
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: the subspace has no coordinates")
        for i, p in enumerate(self.params):
            if not p.requires_grad:
                raise ValueError(f"params[{i}] (shape {tuple(p.shape)}) does not require grad")
        if masks is None:
            masks = [None] * len(self.params)
        if len(masks) != len(self.params):
            raise ValueError(f"got {len(masks)} masks for {len(self.params)} params")
        self.masks: list[Tensor | None] = []
        for i, (p, m) in enumerate(zip(self.params, masks, strict=True)):
            if m is not None:
                if m.shape != p.shape:
                    raise ValueError(
                        f"masks[{i}] has shape {tuple(m.shape)}, expected {tuple(p.shape)} "
                        f"(the shape of params[{i}])"
                    )
                m = m.to(device=p.device, dtype=torch.bool)
            self.masks.append(m)
        self.sizes = [
            p.numel() if m is None else int(m.sum())
            for p, m in zip(self.params, self.masks, strict=True)
        ]
        self.n = sum(self.sizes)
        if self.n == 0:
            raise ValueError("the masks select no coordinates")
        self.reuse_graph = reuse_graph
        self.n_hvp = 0
        self._grads: tuple[Tensor, ...] | None = None

    def _gradient(self) -> tuple[Tensor, ...]:
        with torch.enable_grad():
            loss = self.loss_fn()
            if loss.ndim != 0:
                raise ValueError(f"loss_fn() must return a scalar, got shape {tuple(loss.shape)}")
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        # A param the loss does not touch has zero gradient and zero Hessian rows.
        return tuple(
            torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads, strict=True)
        )

    def unflatten(self, v: Tensor) -> list[Tensor]:
        """Scatter a flat ``[n]`` vector into tensors shaped like ``params``, zero off-mask."""
        out, start = [], 0
        for p, m, k in zip(self.params, self.masks, self.sizes, strict=True):
            chunk = v[start : start + k].to(device=p.device, dtype=p.dtype)
            start += k
            if m is None:
                out.append(chunk.reshape(p.shape))
            else:
                full = torch.zeros_like(p)
                full[m] = chunk
                out.append(full)
        return out

    def flatten(self, tensors: Sequence[Tensor]) -> Tensor:
        """Gather the masked coordinates of tensors shaped like ``params`` into ``[n]`` float64."""
        parts = [
            (t.reshape(-1) if m is None else t[m]).detach().to("cpu", torch.float64)
            for t, m in zip(tensors, self.masks, strict=True)
        ]
        return torch.cat(parts)

    def matvec(self, v: Tensor) -> Tensor:
        """``H_S v`` for a flat float64 ``[n]`` vector; returns float64 ``[n]`` on CPU."""
        grads = self._grads
        if grads is None:
            grads = self._gradient()
            if self.reuse_graph:
                self._grads = grads
        vs = self.unflatten(v)
        # A gradient with no graph (loss linear in that param) contributes no curvature.
        live = [i for i, g in enumerate(grads) if g.requires_grad]
        hv = [torch.zeros_like(p) for p in self.params]
        if live:
            with torch.enable_grad():
                # Zero off-mask entries of v make this P H Pᵀ v after the gather below.
                out = torch.autograd.grad(
                    [grads[i] for i in live],
                    self.params,
                    grad_outputs=[vs[i] for i in live],
                    retain_graph=self.reuse_graph,
                    allow_unused=True,
                )
            hv = [z if h is None else h for z, h in zip(hv, out, strict=True)]
        self.n_hvp += 1
        return self.flatten(hv)

    def release(self) -> None:
        """Drop the retained gradient graph."""
        self._grads = None


@overload
def hessian_lambda_max(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor] | Subspace,
    masks: Sequence[Tensor | None] | None = ...,
    iters: int = ...,
    tol: float = ...,
    seed: int = ...,
    method: Literal["lanczos", "power"] = ...,
    return_info: Literal[False] = ...,
    reuse_graph: bool = ...,
    ncv: int | None = ...,
) -> float: ...


@overload
def hessian_lambda_max(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor] | Subspace,
    masks: Sequence[Tensor | None] | None = ...,
    iters: int = ...,
    tol: float = ...,
    seed: int = ...,
    method: Literal["lanczos", "power"] = ...,
    *,
    return_info: Literal[True],
    reuse_graph: bool = ...,
    ncv: int | None = ...,
) -> tuple[float, HessianInfo]: ...


def hessian_lambda_max(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor] | Subspace,
    masks: Sequence[Tensor | None] | None = None,
    iters: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    method: Literal["lanczos", "power"] = "lanczos",
    return_info: bool = False,
    reuse_graph: bool = True,
    ncv: int | None = None,
) -> float | tuple[float, HessianInfo]:
    """Largest algebraic eigenvalue ``λ_max(H_S)`` of the Hessian of ``loss_fn()`` on a subspace.

    Implements the curvature term of ShaPO §3.4 / Appendix C (Eq. 16): ``H_S`` is the Hessian of
    the alignment loss restricted to the masked coordinates ``S`` (the submatrix of the full
    Hessian on those coordinates), accessed only through Hessian-vector products.

    Args:
        loss_fn: closure returning the scalar loss; it is called once (``reuse_graph=True``) or
            once per HVP (``reuse_graph=False``).
        params: the tensors ``θ`` (``requires_grad=True``), or a
            :class:`~safelens.geometry.value_vectors.Subspace` (then ``masks`` must be None).
        masks: per-param bool masks shaped like the param, ``None`` = the whole tensor.
        iters: ``"lanczos"``: ARPACK restarts (``maxiter``); ``"power"``: iterations per stage.
        tol: ``"lanczos"``: ARPACK relative accuracy of the Ritz value; ``"power"``: relative
            change of the Rayleigh quotient between iterations (PyHessian's criterion).
        seed: seeds the random start vector (results are deterministic for a given seed).
        method: ``"lanczos"`` (default) or ``"power"`` (shifted power iteration).
        return_info: also return a :class:`HessianInfo` (HVP count, eigenvector, ...).
        reuse_graph: build the gradient graph once and reuse it for all HVPs.
        ncv: Lanczos basis size (ARPACK default ``min(n, 20)`` when None).

    Returns:
        ``λ_max`` as a float, or ``(λ_max, info)`` when ``return_info`` is true.

    Raises:
        ValueError: on empty subspaces, bad masks, or an unknown method.

    Examples:
        >>> import torch
        >>> w = torch.zeros(3, requires_grad=True)
        >>> A = torch.diag(torch.tensor([-5.0, 1.0, 2.0]))
        >>> round(hessian_lambda_max(lambda: 0.5 * w @ A @ w, [w]), 4)
        2.0
    """
    if hasattr(params, "params") and hasattr(params, "masks"):
        if masks is not None:
            raise ValueError("pass masks either inside the Subspace or as masks=, not both")
        params, masks = params.params, params.masks  # type: ignore[union-attr]
    if method not in ("lanczos", "power"):
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    t0 = time.perf_counter()
    op = HVPOperator(loss_fn, params, masks, reuse_graph=reuse_graph)
    rng = np.random.default_rng(seed)
    v0 = rng.standard_normal(op.n)
    try:
        if method == "lanczos":
            lam, vec, converged = _lanczos(op, v0, iters, tol, ncv)
            info_extra: dict[str, Any] = {}
        else:
            lam, vec, converged, info_extra = _shifted_power(op, v0, iters, tol)
    finally:
        op.release()
    info = HessianInfo(
        eigenvalue=lam,
        eigenvector=op.unflatten(torch.from_numpy(vec)),
        n_hvp=op.n_hvp,
        n_dims=op.n,
        converged=converged,
        method=method,
        seconds=time.perf_counter() - t0,
        **info_extra,
    )
    if not converged:
        warnings.warn(
            f"hessian_lambda_max({method}) did not reach tol={tol} in iters={iters} "
            f"({op.n_hvp} HVPs); returning the last estimate {lam:.6g}",
            RuntimeWarning,
            stacklevel=2,
        )
    return (lam, info) if return_info else lam


def _lanczos(
    op: HVPOperator, v0: np.ndarray, iters: int, tol: float, ncv: int | None
) -> tuple[float, np.ndarray, bool]:
    """ARPACK Lanczos for the top algebraic eigenpair; tiny subspaces are solved densely."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    def mv(x: np.ndarray) -> np.ndarray:
        return op.matvec(torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(-1))).numpy()

    if op.n <= 2:
        # ARPACK needs k < n; n HVPs give the whole matrix here.
        H = np.stack([mv(e) for e in np.eye(op.n)], axis=1)
        H = 0.5 * (H + H.T)
        w, V = np.linalg.eigh(H)
        return float(w[-1]), V[:, -1], True
    lin = LinearOperator((op.n, op.n), matvec=mv, dtype=np.float64)
    try:
        w, V = eigsh(lin, k=1, which="LA", tol=tol, maxiter=iters, v0=v0, ncv=ncv)
        return float(w[0]), V[:, 0], True
    except ArpackNoConvergence as e:
        if len(e.eigenvalues) == 0:
            raise RuntimeError(
                f"Lanczos found no Ritz value in maxiter={iters}; raise iters or ncv"
            ) from e
        return float(e.eigenvalues[0]), e.eigenvectors[:, 0], False


def _power(
    op: HVPOperator, v: Tensor, iters: int, tol: float, shift: float = 0.0
) -> tuple[float, Tensor, bool, list[float]]:
    """PyHessian-style power iteration on ``H_S − shift·I``; returns its dominant eigenpair."""
    v = v / v.norm()
    lam_prev: float | None = None
    history: list[float] = []
    lam = 0.0
    for _ in range(iters):
        hv = op.matvec(v) - shift * v
        lam = float(v @ hv)  # Rayleigh quotient of the (shifted) operator
        history.append(lam + shift)
        nrm = float(hv.norm())
        if nrm == 0.0:
            return lam, v, True, history
        v = hv / nrm
        if lam_prev is not None and abs(lam - lam_prev) / (abs(lam_prev) + 1e-6) < tol:
            return lam, v, True, history
        lam_prev = lam
    return lam, v, False, history


def _shifted_power(
    op: HVPOperator, v0: np.ndarray, iters: int, tol: float
) -> tuple[float, np.ndarray, bool, dict[str, Any]]:
    """Power iteration, then a shifted second stage when the dominant eigenvalue is negative."""
    v0t = torch.from_numpy(v0)
    lam1, v1, conv1, hist1 = _power(op, v0t, iters, tol)
    if lam1 >= 0 or math.isclose(lam1, 0.0):
        # The largest-magnitude eigenvalue is non-negative, so it is also the top algebraic one.
        return lam1, v1.numpy(), conv1, {"largest_magnitude": lam1, "history": hist1}
    # Spectrum of H − λ₁I lies in [0, λ_max − λ₁]; its dominant eigenvalue is λ_max − λ₁.
    mu, v2, conv2, hist2 = _power(op, v0t, iters, tol, shift=lam1)
    return (
        mu + lam1,
        v2.numpy(),
        conv1 and conv2,
        {
            "largest_magnitude": lam1,
            "history": hist1 + hist2,
        },
    )
