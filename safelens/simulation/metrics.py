"""Distribution-alignment metrics of seed 001's pre-experiments (Table 2, Figs. 2-5).

Pure functions on two stacks of next-token distributions, ``p`` (the policy π_θ) and ``q``
(the reference π_aligned), each ``[N, V]`` with rows summing to 1 (N positions, V tokens). Each
returns the **mean over the N positions** as a 0-d tensor. The seed names these metrics but
defines none of them; every docstring says which reading is ours.

Relations worth knowing: Σ_v min(p, q) = 1 − ½Σ_v |p − q|, so the distribution overlap, the
total-variation distance and the vocabulary-mean absolute difference are one quantity on
three scales (mean_v |p − q| = 2 (1 − overlap) / V). We therefore give the seed's
"Probability Alignment" a reading that is *not* an L1 distance (see
:func:`probability_alignment`).

:func:`alignment_metrics` evaluates all of them from logits in one call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "METRIC_DIRECTIONS",
    "alignment_metrics",
    "argmax_agreement",
    "cosine_similarity",
    "data_token_prob_difference",
    "distribution_overlap",
    "kl_divergence",
    "kl_similarity",
    "pearson_correlation",
    "probability_alignment",
    "token_prob_difference",
]

#: +1 where higher is better (closer alignment), -1 where lower is better.
METRIC_DIRECTIONS: dict[str, int] = {
    "kl_divergence": -1,
    "token_prob_difference": -1,
    "data_token_prob_difference": -1,
    "cosine_similarity": 1,
    "pearson_correlation": 1,
    "distribution_overlap": 1,
    "kl_similarity": 1,
    "probability_alignment": -1,
    "argmax_agreement": 1,
}


def _check(p: torch.Tensor, q: torch.Tensor) -> None:
    if p.dim() != 2 or p.shape != q.shape or p.shape[0] == 0:
        raise ValueError(f"p and q must be [N, V] probability tensors of the same shape with "
                         f"N >= 1, got {tuple(p.shape)} and {tuple(q.shape)}")


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:  # [N, V] x2 -> [N]
    # xlogy gives 0 log 0 = 0; q = 0 where p > 0 gives +inf, the true KL.
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(p ‖ q) = Σ_v p log(p / q), in nats.

    Our reading of the seed's "KL Divergence" (Table 2, Fig. 5): the direction of PA's μ_t,
    KL(π_θ ‖ π_aligned), between the full next-token distributions.

    Examples:
        >>> import math, torch
        >>> p = torch.tensor([[0.5, 0.5]]); q = torch.tensor([[0.25, 0.75]])
        >>> round(kl_divergence(p, q).item(), 6) == round(0.5 * math.log(2) + 0.5 * math.log(2 / 3), 6)
        True
        >>> kl_divergence(q, q).item()
        0.0
    """
    _check(p, q)
    return _kl_rows(p, q).mean()


def kl_similarity(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of exp(−KL(p ‖ q)), in (0, 1]; 1 for identical distributions.

    Our reading of the seed's "KL Similarity" (Fig. 4, higher is better): a similarity made from
    the per-position KL. Averaging exp(−KL) per position (not exp of the mean KL) keeps it a
    mean of per-token values like the other metrics.

    Examples:
        >>> import math, torch
        >>> q = torch.tensor([[0.25, 0.75]])
        >>> kl_similarity(q, q).item()
        1.0
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> abs(kl_similarity(p, q).item() - math.exp(-kl_divergence(p, q).item())) < 1e-6
        True
    """
    _check(p, q)
    return torch.exp(-_kl_rows(p, q)).mean()


def token_prob_difference(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions **and vocabulary** of |p(v) − q(v)|.

    Our reading of the seed's "Per-Token Probability Diff." (Table 2: 0.0169 → 0.0051). It
    equals 2 TV / V, so it is small by construction: with V = 48 a total variation of 0.4 gives
    0.0167, the seed's scale. The other reading, |p(y_t) − q(y_t)| at the data token
    (:func:`data_token_prob_difference`), is of the order of TV itself (tenths), an order of
    magnitude above the seed's numbers, so we report the vocabulary mean as the Table 2 metric.

    Examples:
        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5, 0.0, 0.0]]); q = torch.tensor([[0.25, 0.75, 0.0, 0.0]])
        >>> token_prob_difference(p, q).item()  # (0.25 + 0.25) / 4
        0.125
    """
    _check(p, q)
    return (p - q).abs().mean()


def data_token_prob_difference(p: torch.Tensor, q: torch.Tensor,
                               targets: torch.Tensor) -> torch.Tensor:
    """Mean over positions of |p(y_t) − q(y_t)| at the observed (data) token y_t.

    The alternative reading of "Per-Token Probability Diff." (reported alongside, not in
    Table 2; see :func:`token_prob_difference`).

    Examples:
        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5]]); q = torch.tensor([[0.25, 0.75]])
        >>> data_token_prob_difference(p, q, torch.tensor([1])).item()
        0.25
    """
    _check(p, q)
    if targets.shape != p.shape[:1]:
        raise ValueError(f"targets must be [N] = [{p.shape[0]}] token ids, got "
                         f"{tuple(targets.shape)}")
    idx = targets.long().unsqueeze(-1)  # [N, 1]
    return (p.gather(-1, idx) - q.gather(-1, idx)).abs().mean()


def cosine_similarity(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of the cosine between the probability vectors p and q.

    Our reading of the seed's "Cosine Similarity" (Fig. 3, higher is better).

    Examples:
        >>> import torch
        >>> p = torch.tensor([[1.0, 0.0], [0.5, 0.5]]); q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
        >>> round(cosine_similarity(p, q).item(), 6)  # (0 + 1) / 2
        0.5
    """
    _check(p, q)
    return F.cosine_similarity(p, q, dim=-1, eps=1e-12).mean()


def pearson_correlation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of Pearson's r between the probability vectors, across the vocabulary.

    Our reading of the seed's "Pearson Correlation" (Fig. 3, higher is better): at each position
    the V pairs (p(v), q(v)) are the sample. A position where either vector is constant (a
    uniform distribution) has no defined r and contributes 0 (the denominator is clamped).

    Examples:
        >>> import torch
        >>> q = torch.tensor([[0.1, 0.2, 0.7]])
        >>> round(pearson_correlation(q, q).item(), 6)
        1.0
        >>> round(pearson_correlation(q, q.flip(-1)).item(), 4)
        -0.7419
    """
    _check(p, q)
    pc = p - p.mean(-1, keepdim=True)  # [N, V]
    qc = q - q.mean(-1, keepdim=True)  # [N, V]
    denom = (pc.norm(dim=-1) * qc.norm(dim=-1)).clamp_min(1e-12)  # [N]
    return ((pc * qc).sum(-1) / denom).mean()


def distribution_overlap(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of Σ_v min(p(v), q(v)) (= 1 − total variation), in [0, 1].

    Our reading of the seed's "Distribution Overlap" (Fig. 4, higher is better): the shared
    probability mass.

    Examples:
        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5]]); q = torch.tensor([[0.25, 0.75]])
        >>> distribution_overlap(p, q).item()
        0.75
    """
    _check(p, q)
    return torch.minimum(p, q).sum(-1).mean()


def probability_alignment(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over positions of |p(y*) − q(y*)| with y* = argmax q, the reference's preferred token.

    Our reading of the seed's "Probability Alignment" (Fig. 5, lower is better: a difference).
    The seed does not define it. An L1 reading (total variation, or mean |p − q|) would be
    1 − :func:`distribution_overlap` or a rescaling of it, i.e. not a separate metric; this one
    asks what PA is about — does the policy give the aligned model's preferred token the
    probability the aligned model gives it.

    Examples:
        >>> import torch
        >>> p = torch.tensor([[0.5, 0.5]]); q = torch.tensor([[0.25, 0.75]])
        >>> probability_alignment(p, q).item()  # y* = 1: |0.5 - 0.75|
        0.25
    """
    _check(p, q)
    y = q.argmax(-1, keepdim=True)  # [N, 1]
    return (p.gather(-1, y) - q.gather(-1, y)).abs().mean()


def argmax_agreement(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Share of positions where argmax p = argmax q (PA's target: y_θ = y_aligned).

    Not a metric of the seed; reported because PA acts exactly where this fails.

    Examples:
        >>> import torch
        >>> p = torch.tensor([[0.6, 0.4], [0.6, 0.4]]); q = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
        >>> argmax_agreement(p, q).item()
        0.5
    """
    _check(p, q)
    return (p.argmax(-1) == q.argmax(-1)).double().mean()


def alignment_metrics(
    policy_logits: torch.Tensor,  # [N, V] (or [..., V])
    ref_logits: torch.Tensor,  # same shape
    targets: torch.Tensor | None = None,  # [N] (or [...]) data tokens
) -> dict[str, float]:
    """Every metric of this module, from logits, as floats (float64 softmax).

    Examples:
        >>> import torch
        >>> z = torch.tensor([[2.0, 0.0, -1.0]])
        >>> m = alignment_metrics(z, z, torch.tensor([0]))
        >>> [round(m[k], 6) for k in ("kl_divergence", "cosine_similarity", "distribution_overlap")]
        [0.0, 1.0, 1.0]

    Args:
        policy_logits: ``[..., V]`` policy logits; leading dimensions are flattened to N.
        ref_logits: the reference's, same shape.
        targets: optional data tokens ``[...]``; adds ``data_token_prob_difference``.

    Returns:
        ``{metric name: value}`` (names as in :data:`METRIC_DIRECTIONS`).
    """
    if policy_logits.shape != ref_logits.shape:
        raise ValueError(f"policy_logits {tuple(policy_logits.shape)} and ref_logits "
                         f"{tuple(ref_logits.shape)} must have the same shape [..., V]")
    V = policy_logits.shape[-1]
    p = torch.softmax(policy_logits.detach().double().reshape(-1, V), -1)  # [N, V]
    q = torch.softmax(ref_logits.detach().double().reshape(-1, V), -1)  # [N, V]
    out = {
        "kl_divergence": kl_divergence(p, q),
        "token_prob_difference": token_prob_difference(p, q),
        "cosine_similarity": cosine_similarity(p, q),
        "pearson_correlation": pearson_correlation(p, q),
        "distribution_overlap": distribution_overlap(p, q),
        "kl_similarity": kl_similarity(p, q),
        "probability_alignment": probability_alignment(p, q),
        "argmax_agreement": argmax_agreement(p, q),
    }
    if targets is not None:
        out["data_token_prob_difference"] = data_token_prob_difference(p, q, targets.reshape(-1))
    return {k: float(v) for k, v in out.items()}
