"""Reward margins ``Δr = R(x, y_w) − R(x, y_l)`` on preference pairs and their ShaPO-R targets.

- :func:`score_pairs` — reward-model scores of the ``chosen`` and ``rejected`` answers of rows
  (one scoring call); ``reward-level`` / ``shapo-r`` training scores its rows with it.
- :func:`harm_groups` — boolean masks splitting rows into harmful vs benign/look-alike.
- :func:`margin_summary` — pure: statistics of ``Δr`` and of the soft targets
  ``σ(β_r Δr)`` (:func:`safelens.losses.reward_soft_targets`) per group and ``β_r`` (ShaPO
  Figure 5; :func:`safelens.viz.plot_reward_margins` draws it).

Examples:
    >>> import torch
    >>> s = margin_summary(torch.tensor([-1.0, 0.5, 2.0]), beta_rs=(1.0, 10.0))
    >>> s["all"]["n"], round(s["all"]["frac_positive"], 3)
    (3, 0.667)
    >>> round(s["all"]["frac_target>0.99 (β_r=1)"], 3), round(s["all"]["frac_target>0.99 (β_r=10)"], 3)
    (0.0, 0.667)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from safelens.losses import reward_soft_targets

__all__ = ["FIG5_BETA_RS", "harm_groups", "margin_summary", "score_fn", "score_pairs"]

Scorer = Callable[[Sequence[str], Sequence[str]], torch.Tensor]

#: ``β_r`` values of the seed's Figure 5 (its ShaPO-R runs use 10).
FIG5_BETA_RS = (0.1, 1.0, 10.0)


def score_fn(scorer: Any) -> Scorer:
    """``scorer.score`` for an object with ``.score(prompts, responses)``, else the callable."""
    if hasattr(scorer, "score"):
        return scorer.score
    if callable(scorer):
        return scorer
    raise TypeError(
        f"reward scorer must have .score(prompts, responses) or be callable, "
        f"got {type(scorer).__name__}"
    )


def score_pairs(
    scorer: Any, rows: Sequence[Mapping[str, Any]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward-model scores of each row's ``chosen`` and ``rejected`` answer.

    Args:
        scorer: a :class:`~safelens.reward.RewardModel`, an
            :class:`~safelens.reward.HFRewardModel`, anything with ``.score(prompts,
            responses) -> [B]``, or such a callable.
        rows: preference rows (``prompt``, ``chosen``, ``rejected``).

    Returns:
        ``(reward_chosen [N], reward_rejected [N])`` float32 on CPU; ``Δr`` is their difference.

    Raises:
        ValueError: if a row lacks a field or the scorer returns the wrong number of scores.
    """
    for i, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected"):
            if key not in row:
                raise ValueError(f"score_pairs: row {i} (id={row.get('id')!r}) has no {key!r}")
    n = len(rows)
    if n == 0:
        return torch.zeros(0), torch.zeros(0)
    prompts = [r["prompt"] for r in rows]
    # One scoring call for both columns: the encoder sees each prompt twice, but in one batch.
    both = score_fn(scorer)(
        prompts + prompts, [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    )
    both = torch.as_tensor(both).detach().float().cpu().reshape(-1)  # [2N]
    if len(both) != 2 * n:
        raise ValueError(f"score_pairs: the scorer returned {len(both)} scores for {2 * n} pairs")
    return both[:n].contiguous(), both[n:].contiguous()  # [N], [N]


def harm_groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """``{"harmful": mask [N], "benign/look-alike": mask [N]}`` from the rows' ``harmful`` flag."""
    for i, row in enumerate(rows):
        if not isinstance(row.get("harmful"), bool):
            raise ValueError(f"harm_groups: row {i} (id={row.get('id')!r}) has no bool 'harmful'")
    harmful = torch.tensor([bool(r["harmful"]) for r in rows], dtype=torch.bool)  # [N]
    return {"harmful": harmful, "benign/look-alike": ~harmful}


def _check_groups(groups: Mapping[str, Any] | None, n: int) -> dict[str, torch.Tensor]:
    if groups is None:
        return {}
    out = {}
    for name, mask in groups.items():
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool or mask.shape != (n,):
            raise ValueError(
                f"groups[{name!r}] must be a bool mask [N={n}], got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
        out[name] = mask
    return out


def margin_summary(
    margins: torch.Tensor,
    beta_rs: Sequence[float] = FIG5_BETA_RS,
    groups: Mapping[str, Any] | None = None,
    threshold: float = 0.99,
) -> dict[str, dict[str, float]]:
    """Statistics of reward margins ``Δr`` and soft targets ``σ(β_r Δr)``, per group.

    Args:
        margins: ``[N]`` reward margins ``R(x, y_w) − R(x, y_l)``.
        beta_rs: ``β_r`` values for the targets.
        groups: ``{name: bool mask [N]}`` (e.g. :func:`harm_groups`); ``"all"`` is always
            reported first.
        threshold: a target above it counts as saturated (a near-hard label).

    Returns:
        ``{group: {"n", "mean", "median", "std", "min", "max", "frac_positive",
        "mean_target (β_r=b)", "frac_target>0.99 (β_r=b)", ...}}`` (plain floats; a group
        with no rows has NaN statistics). ``frac_positive`` is the share of pairs the reward
        model orders as the labels do (``Δr > 0``).

    Raises:
        ValueError: if ``margins`` is not ``[N]``, non-finite, or a mask is not ``[N]`` bool.
    """
    margins = torch.as_tensor(margins).detach().double().cpu()
    if margins.ndim != 1:
        raise ValueError(f"margins must be [N] reward margins, got {tuple(margins.shape)}")
    if not torch.isfinite(margins).all():
        raise ValueError("margins has non-finite values")
    masks = {"all": torch.ones(len(margins), dtype=torch.bool)}
    masks.update(_check_groups(groups, len(margins)))
    nan = float("nan")
    out: dict[str, dict[str, float]] = {}
    for name, mask in masks.items():
        m = margins[mask]  # [n]
        n = len(m)
        row: dict[str, float] = {
            "n": n,
            "mean": float(m.mean()) if n else nan,
            "median": float(m.median()) if n else nan,
            "std": float(m.std()) if n > 1 else nan,
            "min": float(m.min()) if n else nan,
            "max": float(m.max()) if n else nan,
            "frac_positive": float((m > 0).double().mean()) if n else nan,
        }
        for b in beta_rs:
            t = reward_soft_targets(m, float(b))  # [n]
            row[f"mean_target (β_r={b:g})"] = float(t.mean()) if n else nan
            row[f"frac_target>{threshold:g} (β_r={b:g})"] = (
                float((t > threshold).double().mean()) if n else nan
            )
        out[name] = row
    return out
