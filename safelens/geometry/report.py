"""One-call analyses the safety-geometry notebook runs (``notebooks/01_safety_geometry.ipynb``).

Each function glues the parts of :mod:`safelens.geometry` into one measurement a user would rerun
on another model or data set, and returns plain dicts/tensors that :mod:`safelens.viz.plots`
draws:

- :func:`dpo_loss_fn` — the alignment loss every measurement differentiates: DPO on preference
  pairs with the reference = the model itself at the current ``θ`` (so ``L(θ) = log 2`` and the
  gradient is the DPO gradient at the start of alignment).
- :func:`probe_layers` — safety probes at a chosen set of layers from one forward pass.
- :func:`claim_fractions` — the Figure 1 numbers (Top-K vs Random-K at 0.5% and 1% of neurons).
- :func:`neuron_gradient_norms` / :func:`first_order_share` (joint) / :func:`additive_share`
  (per-neuron sum) — first-order Figure 1 curves for any
  number of rankings from one gradient (e.g. the oracle ranking by gradient norm, which bounds
  how concentrated the worst-case loss can be for *any* neuron ranking).
- :func:`all_value_vectors` — the "uniform" curvature control restricted to every value vector.
- :func:`subspace_lambda_max` — ``λ_max(H_S)`` for several subspaces on the same loss.
- :func:`bypass_check` — ShaPO's predicted bypass radius against line-search measurements.
- :func:`kl_depth_of` — the per-token KL depth profile of an aligned model against its base on
  (prompt, harmful answer) rows, loading by name and cached; :func:`kl_depth_summary` — its
  early-vs-late summary.

No training loop lives here; aligned models come from :mod:`safelens.training`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from safelens.data.jsonfile import cached_json, rows_key
from safelens.geometry.bypass import (
    measured_bypass_radius,
    predicted_bypass_radius,
    random_subspace_directions,
)
from safelens.geometry.hessian import HessianInfo, HVPOperator, hessian_lambda_max
from safelens.geometry.kl_depth import kl_depth_profile
from safelens.geometry.probes import (
    Pooling,
    Probe,
    _encode_rows,
    collect_activations,
    resid_post_hook,
    train_probe,
)
from safelens.geometry.value_vectors import Subspace, value_vector_params
from safelens.geometry.worst_case import fraction_at
from safelens.losses import dpo_loss
from safelens.models.chat import encode
from safelens.models.fingerprint import model_identity
from safelens.models.loading import load_model
from safelens.models.logprobs import response_logps

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = [
    "dpo_loss_fn",
    "probe_layers",
    "claim_fractions",
    "neuron_gradient_norms",
    "first_order_share",
    "additive_share",
    "all_value_vectors",
    "subspace_lambda_max",
    "bypass_check",
    "kl_depth_of",
    "kl_depth_summary",
]


def dpo_loss_fn(
    model: TransformerBridge,
    rows: Sequence[Mapping[str, Any]],
    beta: float = 0.1,
    max_length: int = 128,
) -> Callable[[], Tensor]:
    """DPO loss closure on preference pairs, reference = the model at the current ``θ``.

    The reference log-probs are computed once, now, without gradients; the closure recomputes
    the policy log-probs at whatever the parameters are when it is called. At the current ``θ``
    the DPO margin is 0, so ``L(θ) = log 2`` exactly and ``∇L = −(β/2) ∇(log π(y_w) − log π(y_l))``:
    the direction DPO would move first. This is the loss of ShaPO Eq. 8 with ``ε_S = 0``.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer`` (put it in eval mode).
        rows: preference rows (``prompt``, ``chosen``, ``rejected``).
        beta: DPO ``β`` (seed 000: 0.1).
        max_length: token budget per (prompt, response); longer responses are cut.

    Returns:
        A zero-argument closure returning the scalar loss.

    Examples:
        >>> loss_fn = dpo_loss_fn(model, rows[:4])  # doctest: +SKIP
        >>> round(float(loss_fn()), 4)  # doctest: +SKIP
        0.6931
    """
    rows = list(rows)
    if not rows:
        raise ValueError("dpo_loss_fn needs at least one preference row")
    for i, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected"):
            if not row.get(key):
                raise ValueError(f"row {i} (id={row.get('id')!r}): {key!r} is missing or empty")
    device = next(model.original_model.parameters()).device
    prompts = [r["prompt"] for r in rows]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*truncated.*|.*cut to max_length.*")
        chosen = encode(
            model.tokenizer, prompts, [r["chosen"] for r in rows], max_length=max_length
        )
        rejected = encode(
            model.tokenizer, prompts, [r["rejected"] for r in rows], max_length=max_length
        )
    chosen, rejected = chosen.to(device), rejected.to(device)
    with torch.no_grad():
        ref_c, _ = response_logps(model, chosen)  # [B]
        ref_r, _ = response_logps(model, rejected)  # [B]

    def loss_fn() -> Tensor:
        pc, _ = response_logps(model, chosen)  # [B]
        pr, _ = response_logps(model, rejected)  # [B]
        return dpo_loss(pc, pr, ref_c, ref_r, beta)

    return loss_fn


def probe_layers(
    model: TransformerBridge,
    rows: Iterable[Mapping[str, Any]],
    layers: Sequence[int] | None = None,
    pooling: Pooling = "last",
    seed: int = 0,
    l2: float = 1e-3,
    val_fraction: float = 0.25,
    batch_size: int = 8,
    max_length: int = 128,
) -> dict[int, Probe]:
    """Safety probes (ShaPO Eq. 6) at ``blocks.{l}.hook_resid_post`` for the given layers.

    One forward pass per mini-batch collects every requested layer (it stops after the deepest),
    so probing a handful of layers costs what probing the deepest one costs.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        rows: preference rows; harmful ones give (chosen = safe, rejected = unsafe) examples.
        layers: block indices (default: all, in order).
        pooling, seed, l2, val_fraction, batch_size, max_length: see
            :func:`~safelens.geometry.probes.probe_direction`.

    Returns:
        ``{layer: Probe}`` in the order of ``layers``.
    """
    n_layers = int(model.cfg.n_layers)
    layers = list(range(n_layers)) if layers is None else [int(x) for x in layers]
    bad = [x for x in layers if not 0 <= x < n_layers]
    if bad or not layers:
        raise ValueError(f"layers must be a non-empty list in [0, {n_layers}), got {layers}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*truncated.*|.*cut to max_length.*")
        batch, labels = _encode_rows(model, rows, max_length)
    names = [resid_post_hook(x) for x in layers]
    feats = collect_activations(model, batch, names, pooling, batch_size)
    return {
        x: train_probe(feats[n], labels, seed=seed, l2=l2, val_fraction=val_fraction, hook_name=n)
        for x, n in zip(layers, names, strict=True)
    }


def claim_fractions(
    curves: Mapping[str, Any], at: Sequence[float] = (0.005, 0.01)
) -> dict[str, dict[float, float]]:
    """Figure 1's numbers: the share of ``ΔL(all)`` carried by a fraction of the neurons.

    Args:
        curves: the dict of :func:`~safelens.geometry.worst_case.worst_case_curves`.
        at: fractions of all neurons (ShaPO's claim is about 0.005; it selects 0.01).

    Returns:
        ``{"top": {f: C}, "random": {f: C}, "top_first_order": {f: C1},
        "random_first_order": {f: C1}}`` with ``C`` the measured cumulative fraction
        ``ΔL(K)/ΔL(all)`` and ``C1 = ‖g_S‖/‖g_all‖`` its first-order counterpart, interpolated
        at each fraction (see :func:`~safelens.geometry.worst_case.fraction_at`).
    """
    top, rnd = curves["top"], curves["random_mean"]
    out: dict[str, dict[float, float]] = {}
    for name, curve in (("top", top), ("random", rnd)):
        out[name] = {f: fraction_at(curve, f) for f in at}
        out[f"{name}_first_order"] = {
            f: fraction_at(curve, f, key="first_order_fraction") for f in at
        }
    return out


def neuron_gradient_norms(loss_fn: Callable[[], Tensor], model: TransformerBridge) -> Tensor:
    """Per-neuron gradient norm ``‖∂L/∂W_out[l, j]‖`` of the loss, ``[n_layers, d_mlp]``.

    The first-order worst-case increase when perturbing a neuron set ``S`` by ``ρ`` is
    ``ρ‖g_S‖ = ρ sqrt(Σ_{j∈S} ‖g_j‖²)``, so these norms give the first-order Figure 1 curve of any
    ranking (:func:`first_order_share`) from this one gradient.

    Args:
        loss_fn: scalar loss closure.
        model: the ``TransformerBridge``.

    Returns:
        ``[n_layers, d_mlp]`` float64 on CPU.
    """
    vv = value_vector_params(model)
    _, grads = _gradient(loss_fn, [v.param for v in vv])
    rows = []
    for info, g in zip(vv, grads, strict=True):
        other = 1 - info.neuron_dim  # the d_model axis
        rows.append(g.double().pow(2).sum(other).sqrt().cpu())  # [d_mlp]
    return torch.stack(rows)  # [n_layers, d_mlp]


def _ranked(grad_norms: Tensor, ranking: Tensor, ks: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Checked inputs of the Fig. 1 shares: the norms in ranking order ``[N]`` and ``ks``."""
    if grad_norms.ndim != 2:
        raise ValueError(f"grad_norms must be [n_layers, d_mlp], got {tuple(grad_norms.shape)}")
    if ranking.ndim != 2 or ranking.shape[1] != 2:
        raise ValueError(f"ranking must be [N, 2] (layer, neuron), got {tuple(ranking.shape)}")
    g = grad_norms.double()[ranking[:, 0], ranking[:, 1]]  # [N]
    idx = torch.tensor([int(k) for k in ks], dtype=torch.long)
    if bool((idx < 0).any()) or bool((idx > len(g)).any()):
        raise ValueError(f"ks must lie in [0, {len(g)}], got {list(ks)}")
    return g, idx


def first_order_share(grad_norms: Tensor, ranking: Tensor, ks: Sequence[int]) -> Tensor:
    """First-order share ``‖g_S‖/‖g_all‖`` of the first ``K`` neurons of a ranking, per ``K``.

    Args:
        grad_norms: ``[n_layers, d_mlp]`` from :func:`neuron_gradient_norms`.
        ranking: ``[N, 2]`` ``(layer, neuron)`` pairs, best first.
        ks: neuron counts (each ``≤ N``).

    Returns:
        ``[len(ks)]`` float64 in ``[0, 1]``.

    Examples:
        >>> g = torch.tensor([[3.0, 0.0], [4.0, 0.0]])
        >>> first_order_share(g, torch.tensor([[1, 0], [0, 0], [0, 1]]), [1, 2]).tolist()
        [0.8, 1.0]
    """
    sq, idx = _ranked(grad_norms, ranking, ks)
    sq = sq.pow(2)  # [N]
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), sq.cumsum(0)])  # [N + 1]
    total = float(grad_norms.double().pow(2).sum())
    return (cum[idx] / max(total, 1e-300)).sqrt()


def additive_share(grad_norms: Tensor, ranking: Tensor, ks: Sequence[int]) -> Tensor:
    """Additive share ``Σ_{j∈S} ‖g_j‖ / Σ_all ‖g_j‖`` of the first ``K`` neurons of a ranking.

    The other reading of ShaPO's "< 0.5% of neurons carry > 80% of the worst-case loss":
    perturbing each neuron ``j`` on its own by ``ρ`` along its gradient raises the loss by
    ``ρ‖g_j‖`` to first order, and this is the share of the sum of those per-neuron increases.
    :func:`first_order_share` is the joint reading (one perturbation of norm ``ρ`` on all of
    S: ``ρ‖g_S‖``, a root of a sum of squares). On a ranking by gradient norm the joint share is
    never below the additive one (squares weight the largest gradients more, and a root raises
    a share); on other rankings either can be larger.

    Args:
        grad_norms: ``[n_layers, d_mlp]`` from :func:`neuron_gradient_norms`.
        ranking: ``[N, 2]`` ``(layer, neuron)`` pairs, best first.
        ks: neuron counts (each ``≤ N``).

    Returns:
        ``[len(ks)]`` float64 in ``[0, 1]``.

    Examples:
        >>> g = torch.tensor([[3.0, 0.0], [4.0, 0.0]])
        >>> [round(x, 3) for x in additive_share(g, torch.tensor([[1, 0], [0, 0]]), [1, 2]).tolist()]
        [0.571, 1.0]
    """
    g, idx = _ranked(grad_norms, ranking, ks)  # [N], [len(ks)]
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), g.cumsum(0)])  # [N + 1]
    total = float(grad_norms.double().sum())
    return cum[idx] / total if total > 0 else torch.zeros(len(idx), dtype=torch.float64)


def all_value_vectors(model: TransformerBridge) -> Subspace:
    """The uniform control restricted to MLP value vectors: every column of every ``W_out``.

    ``Subspace.uniform`` (all 135M parameters of the default model) is out of reach for Lanczos on
    a CPU — its float64 Krylov basis alone would take ``ncv × 8 × 135M`` bytes — so the
    curvature comparison uses the same parameter family as Top-K / Random-K at K = 100%.

    Returns:
        A :class:`Subspace` named ``"uniform (all value vectors)"`` with ``None`` masks.
    """
    vv = value_vector_params(model)
    return Subspace(
        name="uniform (all value vectors)",
        params=[v.param for v in vv],
        masks=[None] * len(vv),
        param_names=[v.name for v in vv],
    )


def subspace_lambda_max(
    loss_fn: Callable[[], Tensor],
    subspaces: Mapping[str, Subspace],
    iters: int = 20,
    tol: float = 1e-2,
    ncv: int | None = 8,
    seed: int = 0,
) -> dict[str, HessianInfo]:
    """``λ_max(H_S)`` (ShaPO §3.4) for each subspace, on one loss, by Lanczos.

    Args:
        loss_fn: scalar loss closure.
        subspaces: ``{label: Subspace}``.
        iters: ARPACK restarts (``maxiter``); an unconverged estimate is returned with
            ``info.converged = False`` (no warning raised: check the flag).
        tol: ARPACK relative tolerance.
        ncv: Lanczos basis size (its float64 basis costs ``ncv × 8 × dim(S)`` bytes).
        seed: start-vector seed.

    Returns:
        ``{label: HessianInfo}`` (``info.eigenvalue``, ``info.eigenvector``, ``info.n_hvp``, ...).
    """
    out: dict[str, HessianInfo] = {}
    for label, sub in subspaces.items():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="hessian_lambda_max.*did not reach")
            _, info = hessian_lambda_max(
                loss_fn, sub, iters=iters, tol=tol, seed=seed, ncv=ncv, return_info=True
            )
        out[label] = info
    return out


def _gradient(
    loss_fn: Callable[[], Tensor], params: Sequence[Tensor]
) -> tuple[float, list[Tensor]]:
    with torch.enable_grad():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return float(loss.detach()), [
        torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads, strict=True)
    ]


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b, strict=True)))


def _quadratic_root(slope: float, curvature: float, budget: float) -> float:
    """Smallest ``r > 0`` with ``slope·r + ½ curvature·r² = budget`` (``inf`` if none)."""
    if budget <= 0:
        return 0.0
    if curvature > 0:
        return (-slope + math.sqrt(slope * slope + 2.0 * curvature * budget)) / curvature
    if curvature == 0:
        return budget / slope if slope > 0 else math.inf
    disc = slope * slope + 2.0 * curvature * budget  # concave: may never reach the budget
    return (-slope + math.sqrt(disc)) / curvature if slope > 0 and disc >= 0 else math.inf


def bypass_check(
    loss_fn: Callable[[], Tensor],
    subspace: Subspace,
    hessian: HessianInfo,
    tau_margin: float = 0.05,
    n_random: int = 2,
    include_negative: bool = True,
    max_radius: float | None = None,
    steps: int = 10,
    bisect_iters: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """ShaPO §3.4's bypass radius: the prediction against the measured radius along directions.

    With ``τ = L(θ) + tau_margin`` the seed predicts ``δ = sqrt(2(τ − L)/λ_max(H_S))`` — the radius
    within which *no* direction in ``S`` reaches ``τ``, derived at a stationary point. Our ``θ``
    is not one (the DPO gradient is non-zero), so each direction ``d`` also gets the quadratic
    model's own root of ``r⟨g, d⟩ + ½ r² dᵀH_S d = τ − L`` (one HVP per direction), and the
    worst-case bound with the gradient, ``r‖g_S‖ + ½ r² λ_max = τ − L``.

    Directions: ``+v`` and ``−v`` (top eigenvector, sign fixed so ``⟨g, v⟩ ≥ 0`` for ``+v``),
    the subspace gradient ``g_S/‖g_S‖`` (the SAM / Figure 1 direction) and ``n_random`` random
    unit directions in ``S``. Each is line-searched by
    :func:`~safelens.geometry.bypass.measured_bypass_radius`; ``inf`` = not reached by
    ``max_radius``.

    Args:
        loss_fn: scalar loss closure.
        subspace: the subspace ``S`` (e.g. ShaPO's top-1% value vectors).
        hessian: :func:`hessian_lambda_max` info for this loss and subspace (eigenvalue + vector).
        tau_margin: ``τ − L(θ)`` in loss units.
        n_random: random directions.
        include_negative: also search along ``−v``.
        max_radius: largest radius searched (default: 8 × the stationary-point prediction).
        steps, bisect_iters: line-search grid and bisection (see ``measured_bypass_radius``).
        seed: seed of the random directions.

    Returns:
        dict with ``loss0``, ``tau``, ``lambda_max``, ``grad_norm``, ``predicted`` (seed's
        formula), ``predicted_with_gradient`` and ``directions``: ``{name: {"measured",
        "crossed", "slope", "curvature", "quadratic", "grid_radii", "grid_losses"}}``.
    """
    params, masks = list(subspace.params), list(subspace.masks)
    loss0, grads = _gradient(loss_fn, params)
    g_s = subspace.masked(grads)
    g_norm = math.sqrt(_dot(g_s, g_s))  # type: ignore[arg-type]
    lam = float(hessian.eigenvalue)
    tau = loss0 + tau_margin
    predicted = predicted_bypass_radius(loss0, tau, lam)
    with_grad = _quadratic_root(g_norm, lam, tau_margin)
    if max_radius is None:
        max_radius = 8.0 * predicted if math.isfinite(predicted) else 1.0
    v = [t.detach() for t in hessian.eigenvector]
    if _dot(g_s, v) < 0:  # type: ignore[arg-type]
        v = [-t for t in v]
    directions: dict[str, list[Tensor]] = {"+v_top": v}
    if include_negative:
        directions["-v_top"] = [-t for t in v]
    directions["gradient"] = [t.clone() for t in g_s]  # type: ignore[union-attr]
    for i, d in enumerate(random_subspace_directions(subspace, n=n_random, seed=seed)):
        directions[f"random {i}"] = d
    units: dict[str, list[Tensor]] = {}
    for name, d in directions.items():
        norm = math.sqrt(_dot(d, d))
        units[name] = [t / norm for t in d]
    # All HVPs first: the line searches edit the parameters in place, which would invalidate
    # the gradient graph the operator keeps between products.
    op = HVPOperator(loss_fn, params, masks)
    try:
        curv = {
            name: float(op.flatten(u) @ op.matvec(op.flatten(u)))  # dᵀ H_S d
            for name, u in units.items()
        }
    finally:
        op.release()
    results: dict[str, dict[str, Any]] = {}
    for name, unit in units.items():
        slope = _dot(g_s, unit)  # type: ignore[arg-type]
        radius, info = measured_bypass_radius(
            loss_fn,
            subspace,
            unit,
            tau=tau,
            max_radius=max_radius,
            steps=steps,
            bisect_iters=bisect_iters,
            return_info=True,
        )
        results[name] = {
            "measured": radius,
            "crossed": info.crossed,
            "slope": slope,
            "curvature": curv[name],
            "quadratic": _quadratic_root(slope, curv[name], tau_margin),
            "grid_radii": info.grid_radii,
            "grid_losses": info.grid_losses,
        }
    return {
        "loss0": loss0,
        "tau": tau,
        "lambda_max": lam,
        "grad_norm": g_norm,
        "predicted": predicted,
        "predicted_with_gradient": with_grad,
        "max_radius": max_radius,
        "directions": results,
    }


def kl_depth_summary(profile: Mapping[str, Any], early: int = 5) -> dict[str, float]:
    """Where a per-token KL depth profile puts its mass: first ``early`` positions vs the rest.

    Args:
        profile: a :func:`~safelens.geometry.kl_depth.kl_depth_profile` result (tensors or lists).
        early: number of leading response positions counted as "early".

    Returns:
        ``{"mean_early", "mean_late", "ratio_early_late", "share_early", "peak_position"}``:
        mean KL over positions ``< early`` and ``≥ early``, their ratio, the share of the summed
        per-position mean KL in the early positions, and the position of the largest mean.

    Examples:
        >>> s = kl_depth_summary({"mean": [4.0, 2.0, 1.0, 1.0]}, early=2)
        >>> s["mean_early"], s["mean_late"], s["share_early"], s["peak_position"]
        (3.0, 1.0, 0.75, 0)
        >>> kl_depth_summary({"mean": [4.0, None]}, early=1)["mean_late"]   # read back from JSON
        0.0
    """
    raw = profile["mean"]
    raw = raw.detach().cpu().numpy() if hasattr(raw, "detach") else raw
    mean = torch.as_tensor(np.asarray(raw, dtype=np.float64)).flatten()  # None (JSON) -> nan
    mean = torch.nan_to_num(mean, nan=0.0)
    if mean.numel() == 0:
        raise ValueError("profile['mean'] is empty: no response positions were profiled")
    head, tail = mean[:early], mean[early:]
    m_early = float(head.mean())
    m_late = float(tail.mean()) if tail.numel() else float("nan")
    total = float(mean.sum())
    return {
        "mean_early": m_early,
        "mean_late": m_late,
        "ratio_early_late": m_early / m_late if tail.numel() and m_late > 0 else float("nan"),
        "share_early": float(head.sum()) / total if total > 0 else float("nan"),
        "peak_position": int(mean.argmax()),
    }


def kl_depth_of(
    aligned: TransformerBridge | str | Path,
    base: TransformerBridge | str | Path,
    rows: Sequence[Mapping[str, Any]],
    max_positions: int = 40,
    max_length: int = 256,
    out: str | Path | None = None,
    reuse: bool = True,
) -> dict[str, list[Any]]:
    """Per-token KL(aligned ‖ base) on the rows' (prompt, ``harmful_response``) pairs, cached.

    Qi et al. (seed 003), Fig. 1, as one call: rows encoded with the aligned model's tokenizer
    (:func:`safelens.models.chat.encode`), :func:`~safelens.geometry.kl_depth.kl_depth_profile`,
    and lists instead of tensors. With ``out`` the result is cached
    (:func:`safelens.data.jsonfile.cached_json`) under both models' identities
    (:func:`safelens.models.fingerprint.model_identity`), the rows and the settings; a model
    given by name or path is loaded only when nothing finished can be reused.

    Args:
        aligned: the aligned model, or its name / saved directory.
        base: the base model (same tokenizer), or its name / directory.
        rows: prompt rows with ``prompt`` and ``harmful_response``.
        max_positions: response positions profiled.
        max_length: tokens per encoded row.
        out: JSON cache file; ``None`` = no cache.
        reuse: read a finished ``out`` back when its key matches.

    Returns:
        ``{"mean", "std", "count", "positions"}`` (``[K]`` lists, ``None`` where undefined) and
        ``"per_example"`` (``[B][K]``), what :func:`safelens.viz.plot_kl_depth` draws.

    Raises:
        ValueError: a row without ``harmful_response``.
    """
    missing = [r.get("id", i) for i, r in enumerate(rows) if not r.get("harmful_response")]
    if missing:
        raise ValueError(f"kl_depth_of: rows {missing[:5]} have no 'harmful_response' (the "
                         "answer the KL is measured along)")
    key = {"format": "safelens.kl-depth/1", "aligned": model_identity(aligned),
           "base": model_identity(base), "max_positions": int(max_positions),
           "max_length": int(max_length),
           "rows_sha256": rows_key(rows, ("id", "prompt", "harmful_response"))}

    def compute() -> dict[str, list[Any]]:
        a = aligned if isinstance(aligned, torch.nn.Module) else load_model(str(aligned))
        b = base if isinstance(base, torch.nn.Module) else load_model(str(base))
        batch = encode(a.tokenizer, [r["prompt"] for r in rows],
                       [r["harmful_response"] for r in rows], max_length=max_length)
        prof = kl_depth_profile(a, b, batch, max_positions=max_positions)
        return {k: prof[k].tolist() for k in ("mean", "std", "count", "positions",
                                              "per_example")}

    result: dict[str, list[Any]] = cached_json(out, key, compute, reuse=reuse)
    return result
