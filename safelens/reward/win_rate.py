"""Win rate (WR) against reference responses, judged by a reward model.

WR here = the fraction of prompts where the reward of the **policy's response** beats the reward
of the **reference response** (the preference row's ``chosen``, or a prompt row's ``reference``)::

    WR = mean_i ( 1[R(x_i, y_i) > R(x_i, y_ref,i)] + ½ · 1[R(x_i, y_i) = R(x_i, y_ref,i)] )

This is the ShaPO seed's WR protocol ("Win Rate compared with the chosen response", Fig. 4) with
a reward-model judge — :class:`safelens.reward.RewardModel` on the independent MiniLM encoder, or
any :class:`safelens.reward.HFRewardModel` — instead of GPT-4.1-mini. Ties count ½ so that a
policy that reproduces the reference exactly scores 0.5 (neither better nor worse), the usual
convention of pairwise win rates; ``tie_tol`` widens "equal" to ``|Δ| <= tie_tol``.

Examples:
    >>> win_rate([2.0, 1.0, 0.5], [1.0, 1.0, 3.0])
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from safelens.eval.metrics import bootstrap_ci
from safelens.reward.model import RewardScorer


def _as_1d(name: str, x: np.ndarray | torch.Tensor | Sequence[float]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {arr.shape}")
    return arr


def win_outcomes(
    policy_scores: np.ndarray | torch.Tensor | Sequence[float],
    reference_scores: np.ndarray | torch.Tensor | Sequence[float],
    tie_tol: float = 0.0,
) -> np.ndarray:
    """Per-prompt outcome: 1 = policy wins, ½ = tie, 0 = loss.

    Args:
        policy_scores: ``[N]`` rewards of the policy's responses.
        reference_scores: ``[N]`` rewards of the reference responses.
        tie_tol: differences with ``|Δ| <= tie_tol`` are ties.

    Returns:
        ``[N]`` float64 in {0, 0.5, 1}.

    Raises:
        ValueError: if the shapes differ or are not 1-D, or ``tie_tol < 0``.
    """
    p = _as_1d("policy_scores", policy_scores)
    r = _as_1d("reference_scores", reference_scores)
    if p.shape != r.shape:
        raise ValueError(
            f"win rate: policy_scores {p.shape} and reference_scores {r.shape} differ; "
            "expected one reference per policy response"
        )
    if tie_tol < 0:
        raise ValueError(f"win rate: tie_tol must be >= 0, got {tie_tol}")
    d = p - r
    return np.where(np.abs(d) <= tie_tol, 0.5, (d > 0).astype(np.float64))


def win_rate(
    policy_scores: np.ndarray | torch.Tensor | Sequence[float],
    reference_scores: np.ndarray | torch.Tensor | Sequence[float],
    tie_tol: float = 0.0,
) -> float:
    """Fraction of prompts where the policy beats the reference (ties ½); nan when empty.

    Args:
        policy_scores: ``[N]`` rewards of the policy's responses.
        reference_scores: ``[N]`` rewards of the reference responses.
        tie_tol: see :func:`win_outcomes`.

    Examples:
        >>> win_rate([1.0, 1.0], [1.0, 0.0])
        0.75
    """
    w = win_outcomes(policy_scores, reference_scores, tie_tol)
    return float(w.mean()) if w.size else float("nan")


def win_rate_ci(
    policy_scores: np.ndarray | torch.Tensor | Sequence[float],
    reference_scores: np.ndarray | torch.Tensor | Sequence[float],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    tie_tol: float = 0.0,
) -> tuple[float, float, float]:
    """Win rate with a percentile-bootstrap CI over prompts.

    Returns:
        ``(win_rate, ci_low, ci_high)``; all nan when empty.
    """
    w = win_outcomes(policy_scores, reference_scores, tie_tol)
    lo, hi = bootstrap_ci(w, n_boot=n_boot, alpha=alpha, seed=seed)
    return (float(w.mean()) if w.size else float("nan"), lo, hi)


def win_rate_summary(
    policy_scores: np.ndarray | torch.Tensor | Sequence[float],
    reference_scores: np.ndarray | torch.Tensor | Sequence[float],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    tie_tol: float = 0.0,
) -> dict[str, Any]:
    """The win-rate record of already computed rewards (what :func:`reward_win_rate` returns).

    Returns:
        ``{"win_rate", "ci_low", "ci_high", "n", "reward/policy", "reward/reference"}`` (the
        last two are mean rewards).

    Examples:
        >>> win_rate_summary([2.0, 0.0], [1.0, 1.0])["win_rate"]
        0.5
    """
    sp = _as_1d("policy_scores", policy_scores)
    sr = _as_1d("reference_scores", reference_scores)
    wr, lo, hi = win_rate_ci(sp, sr, n_boot=n_boot, alpha=alpha, seed=seed, tie_tol=tie_tol)
    return {
        "win_rate": wr,
        "ci_low": lo,
        "ci_high": hi,
        "n": int(sp.size),
        "reward/policy": float(sp.mean()) if sp.size else float("nan"),
        "reward/reference": float(sr.mean()) if sr.size else float("nan"),
    }


def reward_win_rate(
    scorer: RewardScorer,
    prompts: Sequence[str],
    responses: Sequence[str],
    references: Sequence[str],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    tie_tol: float = 0.0,
) -> dict[str, Any]:
    """Score policy responses and references with ``scorer`` and compute the win rate.

    Args:
        scorer: a reward model (``score(prompts, responses) -> [B]``).
        prompts: ``N`` prompts.
        responses: ``N`` policy responses.
        references: ``N`` reference responses (the rows' ``chosen`` / ``reference``).
        n_boot, alpha, seed: bootstrap settings.
        tie_tol: see :func:`win_outcomes`.

    Returns:
        ``{"win_rate", "ci_low", "ci_high", "n", "reward/policy", "reward/reference"}``
        (the last two are mean rewards).

    Raises:
        ValueError: if the three sequences differ in length.
    """
    if not len(prompts) == len(responses) == len(references):
        raise ValueError(
            f"reward_win_rate: {len(prompts)} prompts, {len(responses)} responses and "
            f"{len(references)} references; expected equal lengths"
        )
    return win_rate_summary(scorer.score(prompts, responses), scorer.score(prompts, references),
                            n_boot=n_boot, alpha=alpha, seed=seed, tie_tol=tie_tol)
