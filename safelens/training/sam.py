"""Subspace SAM: the optimizer wrapper of ShaPO (seed 000, Algorithm 1, Eq. 13-15).

On a SAM step (every ``every``-th call, 1-based, as ``t mod tau == 0`` in Algorithm 1) the
wrapper

1. takes the gradient ``g_S`` at ``theta`` on the subspace S (a pass that computes no
   weight gradients outside S: only ``g_S`` is used),
2. perturbs ONLY the coordinates of S by ``eps_S = rho * g_S / (||g_S||_2 + 1e-12)`` (the norm
   is over S alone),
3. runs the closure again (it zeroes the gradients first) for the gradient at
   ``theta + eps_S``,
4. writes the saved values of the touched coordinates back (bit-exact restore, also when the
   perturbed pass raises), then clips and calls ``optimizer.step()`` with that gradient.

Every other step is one plain pass (closure, clip, step), exactly :class:`DefaultStep`.

Modes:

``exact``
    two forward-backward passes on SAM steps (steps 1-4 above).
``reuse``
    one pass per step: a SAM step perturbs with the subspace gradient saved from the previous
    step (the gradient that step applied, before clipping: the direction is all that matters),
    so steps 1 and 3 share one pass. The first SAM step that has no saved gradient (only
    step 1 with ``every == 1``, or a checkpoint without one) falls back to ``exact``. The saved
    gradient is part of ``state_dict()``, so resuming stays exact.

Gap-held radius (``target_gap``, our addition for issue 16): the seed fixes ``rho``, so the
gap ``L(θ + ε_S) − L(θ) ≈ rho ||g_S||`` shrinks with ``||g_S||`` as the preference loss
saturates and SAM stops acting. With ``target_gap`` set, each SAM step's radius is
``min(rho, target_gap / ||g_S||)``: the first-order gap stays at ``target_gap`` nats until the
radius reaches ``rho``, which is then a cap. Every SAM step logs the radius it used
(``sam/rho``) and its first-order gap ``rho ||g_S||`` (``sam/gap_first_order``); an exact step
also logs the perturbed loss (``sam/loss_perturbed``: the realised gap is it minus ``loss``). A
reuse step has no pass at ``θ``: its ``loss`` is the perturbed loss and ``sam/gap_first_order``
(with the reused ``g_S``) is its only gap.

Calibration: :func:`sam_gap` measures the perturbed-loss gap ``L(θ + ε_S) − L(θ)`` a radius
gives on a loss, :func:`rho_for_gap` finds the radius for a wanted gap (subspaces compared at a
matched gap, issue 16).

An empty subspace (:meth:`Subspace.none`) never perturbs: the wrapper is then step for step
:class:`~safelens.training.optim.DefaultStep`, so ``--subspace none`` equals the base method.

Examples:
    >>> import torch
    >>> from safelens.geometry.value_vectors import Subspace
    >>> from safelens.training.optim import StepOutput
    >>> w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> def closure(backward=True):
    ...     w.grad = None
    ...     loss = (w ** 2).sum()
    ...     loss.backward()
    ...     return StepOutput(float(loss.detach()))
    >>> opt = torch.optim.SGD([w], lr=0.1)
    >>> sam = SubspaceSAM(opt, [w], Subspace("w0", [w], [torch.tensor([True, False])]),
    ...                   rho=0.5, every=1, max_grad_norm=None)
    >>> out = sam.step(closure)        # eps = (0.5, 0): gradient at (1.5, 2) is (3, 4)
    >>> [round(v, 4) for v in w.detach().tolist()], sam.passes, round(sam.last_eps_norm, 6)
    ([0.7, 1.6], 2, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from safelens.geometry.value_vectors import Subspace
from safelens.training.optim import LossClosure, StepOutput, clip_gradients

SAM_MODES = ("exact", "reuse")
#: the stabiliser of Eq. 14 / Algorithm 1 line 10
SAM_EPS = 1e-12


def subspace_grad_norm(g_s: list[Tensor]) -> float:
    """``||g_S||_2`` over all subspace coordinates (fp32 accumulation)."""
    return float(torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.float()) for g in g_s])))


def perturb_subspace(subspace: Subspace, g_s: list[Tensor], rho: float,
                     g_norm: float | None = None) -> tuple[list[Tensor], float]:
    """Add ``eps_S = rho * g_S / (||g_S|| + 1e-12)`` to the subspace coordinates (Eq. 14).

    Args:
        subspace: the coordinates S.
        g_s: ``g_S``, one flat tensor per subspace param (its masked values).
        rho: the radius.
        g_norm: ``||g_S||`` when the caller has it (:func:`subspace_grad_norm`); else computed.

    Returns:
        ``(saved, ||eps_S||)``: the coordinates' values before, for :func:`restore_subspace`.
    """
    scale = rho / ((subspace_grad_norm(g_s) if g_norm is None else g_norm) + SAM_EPS)
    saved, eps_sq = [], 0.0
    with torch.no_grad():
        for p, m, g in zip(subspace.params, subspace.masks, g_s, strict=True):
            e = (g.float() * scale).to(p.dtype)  # eps_S on this param's coordinates
            eps_sq += float(e.float().pow(2).sum())
            if m is None:
                saved.append(p.detach().clone())
                p.add_(e.view_as(p))
            else:
                old = p.detach()[m].clone()  # [numel(S ∩ p)]
                saved.append(old)
                p[m] = old + e
    return saved, math.sqrt(eps_sq)


def restore_subspace(subspace: Subspace, saved: list[Tensor]) -> None:
    """Write the values :func:`perturb_subspace` saved back (bit-exact)."""
    with torch.no_grad():
        for p, m, old in zip(subspace.params, subspace.masks, saved, strict=True):
            if m is None:
                p.copy_(old)
            else:
                p[m] = old


class SubspaceSAM:
    """Sharpness-aware step restricted to a parameter subspace (see the module docstring).

    Args:
        optimizer: the torch optimizer.
        params: all trainable parameters (clipped together, as in :class:`DefaultStep`).
        subspace: the coordinates to perturb; its params must be among ``params``.
        rho: perturbation radius ``rho > 0`` (the norm of ``eps_S``); with ``target_gap``, the
            largest radius a step may use.
        every: SAM every ``every`` steps (the seed's ``tau``; >= 1).
        mode: ``"exact"`` or ``"reuse"``.
        max_grad_norm: clip to this norm; ``None`` or 0 only measures it.
        target_gap: hold the first-order perturbed-loss gap at this many nats: the radius of a
            SAM step is ``min(rho, target_gap / ||g_S||)`` (``None``: always ``rho``, the seed).

    Attributes:
        steps: optimizer steps taken (kept in ``state_dict``).
        passes: closure calls made (forward-backward passes; not checkpointed).
        sam_steps: steps that used a perturbed gradient.
        last_eps_norm: ``||eps_S||`` of the latest perturbation (``nan`` before the first).
        last_rho: the radius of the latest perturbation (``nan`` before the first).
        last_gap_first_order: ``rho ||g_S||`` of the latest perturbation (``nan`` before the
            first): the first-order perturbed-loss gap.

    Raises:
        ValueError: ``rho <= 0``, ``every < 1``, an unknown mode, ``target_gap <= 0``, or a
            subspace parameter that is not trainable.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                 subspace: Subspace, rho: float = 0.05, every: int = 5, mode: str = "exact",
                 max_grad_norm: float | None = 1.0, target_gap: float | None = None) -> None:
        if not (isinstance(rho, int | float) and rho > 0 and math.isfinite(rho)):
            raise ValueError(f"SubspaceSAM rho must be a finite number > 0, got {rho!r}")
        if target_gap is not None and not (isinstance(target_gap, int | float)
                                           and target_gap > 0 and math.isfinite(target_gap)):
            raise ValueError("SubspaceSAM target_gap must be None or a finite number > 0 nats, "
                             f"got {target_gap!r}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"SubspaceSAM every (tau) must be an integer >= 1, got {every!r}")
        if mode not in SAM_MODES:
            raise ValueError(f"SubspaceSAM mode must be one of {SAM_MODES}, got {mode!r}")
        trainable = {id(p) for p in params}
        for i, p in enumerate(subspace.params):
            if id(p) not in trainable:
                name = subspace.param_names[i] if i < len(subspace.param_names) else f"#{i}"
                raise ValueError(f"subspace parameter {name} is not among the trainable "
                                 "parameters (frozen?); build the subspace from trainable ones")
        self.optimizer, self.params, self.subspace = optimizer, params, subspace
        self.rho, self.every, self.mode, self.max_grad_norm = float(rho), every, mode, max_grad_norm
        self.target_gap = None if target_gap is None else float(target_gap)
        self.last_rho = math.nan
        self.last_gap_first_order = math.nan
        self.steps = 0
        self.passes = 0
        self.sam_steps = 0
        self.last_eps_norm = math.nan
        # reuse mode: g_S of the previous step, one flat tensor per subspace param (masked values)
        self._saved: list[Tensor] | None = None

    # -- subspace coordinates ------------------------------------------------------------------
    def _values(self, tensor: Tensor, mask: Tensor | None) -> Tensor:
        """The subspace coordinates of ``tensor`` (a param or its grad) as a flat copy."""
        return tensor.detach().reshape(-1).clone() if mask is None else tensor.detach()[mask]

    def _grads_s(self) -> list[Tensor]:
        """``g_S``: the current gradient on S, one flat tensor per subspace param (0 if no grad)."""
        out = []
        for p, m in zip(self.subspace.params, self.subspace.masks, strict=True):
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            out.append(self._values(g, m))
        return out

    def radius(self, g_s: list[Tensor], g_norm: float | None = None) -> float:
        """The radius of a SAM step with subspace gradient ``g_s`` (of norm ``g_norm``, computed
        when not given): ``rho``, or with ``target_gap`` ``min(rho, target_gap / ||g_S||)``."""
        if self.target_gap is None:
            return self.rho
        norm = subspace_grad_norm(g_s) if g_norm is None else g_norm
        return min(self.rho, self.target_gap / (norm + SAM_EPS))

    def _perturb(self, g_s: list[Tensor]) -> list[Tensor]:
        """Add ``eps_S`` to the subspace coordinates; returns their saved values."""
        g_norm = subspace_grad_norm(g_s)  # once per step: the radius and eps_S both need it
        self.last_rho = self.radius(g_s, g_norm)
        self.last_gap_first_order = self.last_rho * g_norm
        saved, self.last_eps_norm = perturb_subspace(self.subspace, g_s, self.last_rho, g_norm)
        return saved

    def _restore(self, saved: list[Tensor]) -> None:
        """Write the saved coordinates back (bit-exact)."""
        restore_subspace(self.subspace, saved)

    def _call(self, closure: LossClosure) -> StepOutput:
        self.passes += 1
        return closure()

    def _subspace_pass(self, closure: LossClosure) -> StepOutput:
        """A pass that computes gradients for the subspace's parameters only.

        The first pass of a SAM step only feeds ``g_S`` (its other gradients are overwritten
        by the perturbed pass), so the other trainable parameters are marked
        ``requires_grad=False`` for it: backward then skips their weight gradients (about a
        third of a pass's cost when S is a few value-vector matrices). Restored afterwards,
        also when the pass raises.
        """
        in_s = {id(p) for p in self.subspace.params}
        off = [p for p in self.params if id(p) not in in_s and p.requires_grad]
        for p in off:
            p.requires_grad_(False)
        try:
            return self._call(closure)
        finally:
            for p in off:
                p.requires_grad_(True)

    def _perturbed_pass(self, closure: LossClosure, g_s: list[Tensor]) -> StepOutput:
        saved = self._perturb(g_s)
        try:
            return self._call(closure)
        finally:
            self._restore(saved)

    # -- protocol ---------------------------------------------------------------------------------
    def step(self, closure: LossClosure) -> StepOutput:
        """One optimizer step (plain, or SAM every ``every`` steps); see the module docstring."""
        t = self.steps + 1
        sam = len(self.subspace) > 0 and t % self.every == 0
        if not sam:
            out = self._call(closure)
        elif self.mode == "reuse" and self._saved is not None:
            out = self._perturbed_pass(closure, self._saved)
            out.metrics = {**out.metrics, "sam/rho": self.last_rho,
                           "sam/gap_first_order": self.last_gap_first_order}
        else:
            first = self._subspace_pass(closure)  # g_S at theta (Eq. 13)
            perturbed = self._perturbed_pass(closure, self._grads_s())
            # log loss and metrics at theta (comparable with the base method) + the perturbed loss
            out = StepOutput(first.loss, {**first.metrics, "sam/loss_perturbed": perturbed.loss,
                                          "sam/rho": self.last_rho,
                                          "sam/gap_first_order": self.last_gap_first_order})
        if sam:
            self.sam_steps += 1
        if self.mode == "reuse" and len(self.subspace) > 0:
            self._saved = self._grads_s()
        out.grad_norm = clip_gradients(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.steps = t
        return out

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"steps": self.steps, "sam_steps": self.sam_steps}
        if self._saved is not None:
            state["saved_grad_s"] = [g.detach().cpu() for g in self._saved]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state.get("steps", 0))
        self.sam_steps = int(state.get("sam_steps", 0))
        saved = state.get("saved_grad_s")
        if saved is not None:
            devices = [p.device for p in self.subspace.params]
            self._saved = [g.to(d) for g, d in zip(saved, devices, strict=True)]
        else:
            self._saved = None


# ------------------------------------------------------------------------------ calibration


def _subspace_grad(loss_fn: Callable[[], Tensor], subspace: Subspace) -> tuple[float, list[Tensor]]:
    """``L(θ)`` and ``g_S`` (flat per subspace param) from one backward pass."""
    params = list(subspace.params)
    with torch.enable_grad():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    g_s = []
    for p, m, g in zip(params, subspace.masks, grads, strict=True):
        g = torch.zeros_like(p) if g is None else g.detach()
        g_s.append(g.reshape(-1).clone() if m is None else g[m])
    return float(loss.detach()), g_s


def sam_gap(loss_fn: Callable[[], Tensor], subspace: Subspace, rho: float,
            g_s: list[Tensor] | None = None, loss0: float | None = None) -> float:
    """``L(θ + ε_S) − L(θ)`` with ``ε_S = ρ g_S / ‖g_S‖`` (Eq. 14): what a SAM step's
    ``sam/loss_perturbed − loss`` logs at ``θ``; the parameters are restored bit-exactly.

    Args:
        loss_fn: zero-argument closure returning the scalar loss at the current parameters
            (e.g. :func:`safelens.geometry.report.dpo_loss_fn`).
        subspace: the SAM subspace S.
        rho: the radius.
        g_s, loss0: ``g_S`` and ``L(θ)`` when already computed (else one backward pass).
    """
    if g_s is None or loss0 is None:
        loss0, g_s = _subspace_grad(loss_fn, subspace)
    saved, _ = perturb_subspace(subspace, g_s, float(rho))
    try:
        with torch.no_grad():
            perturbed = float(loss_fn())
    finally:
        restore_subspace(subspace, saved)
    return perturbed - loss0


def rho_for_gap(loss_fn: Callable[[], Tensor], subspace: Subspace, target: float,
                rel_tol: float = 0.1, max_iters: int = 12) -> dict[str, Any]:
    """The SAM radius ρ at which the perturbed loss rises by ``target`` nats on ``loss_fn``.

    Issue 16 compares subspaces at a matched perturbed-loss gap rather than a matched ρ: a
    radius that moves the loss by 0.5 nats in all parameters may move it by 0.01 in 1% of
    the value vectors. Starts from the first-order guess ``ρ = target / ‖g_S‖``
    (``ΔL ≈ ρ‖g_S‖``) and rescales ρ by ``target / gap`` (doubling while the gap is ≤ 0) until
    the measured gap is within ``rel_tol`` of ``target``.

    Args:
        loss_fn: zero-argument closure returning the scalar loss (e.g. the DPO loss of the
            run's first batches, :func:`safelens.geometry.report.dpo_loss_fn`).
        subspace: the SAM subspace.
        target: wanted gap in nats (> 0).
        rel_tol: accepted relative error of the gap.
        max_iters: perturbed evaluations at most.

    Returns:
        ``{"rho", "gap", "grad_norm", "loss", "converged", "history": [(rho, gap), ...]}``.

    Raises:
        ValueError: ``target <= 0``, an empty subspace or a zero subspace gradient.

    Examples:
        >>> w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        >>> s = Subspace("w0", [w], [torch.tensor([True, False])])
        >>> out = rho_for_gap(lambda: (w ** 2).sum(), s, target=0.5)   # gap = 2ρ + ρ²
        >>> round(out["rho"], 2), abs(out["gap"] - 0.5) <= 0.05, w.tolist()
        (0.22, True, [1.0, 2.0])
    """
    if not (target > 0 and math.isfinite(target)):
        raise ValueError(f"rho_for_gap: target must be a finite gap > 0 nats, got {target!r}")
    if len(subspace) == 0:
        raise ValueError("rho_for_gap: the subspace is empty (nothing to perturb)")
    loss0, g_s = _subspace_grad(loss_fn, subspace)
    norm = float(torch.linalg.vector_norm(torch.stack(
        [torch.linalg.vector_norm(g.float()) for g in g_s])))
    if not norm > 0:
        raise ValueError("rho_for_gap: the loss has no gradient on the subspace at θ")
    rho, history = target / norm, []
    gap = math.nan
    for _ in range(max_iters):
        gap = sam_gap(loss_fn, subspace, rho, g_s, loss0)
        history.append((rho, gap))
        if abs(gap - target) <= rel_tol * target:
            break
        rho = rho * 2.0 if gap <= 0 else rho * target / gap
    return {"rho": history[-1][0], "gap": gap, "grad_norm": norm, "loss": loss0,
            "converged": abs(gap - target) <= rel_tol * target, "history": history}
