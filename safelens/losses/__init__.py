"""Pure loss functions on log-prob tensors (names and meanings fixed in DESIGN.md).

Sequence-level losses (``preference.py``) take summed response log-probs ``[B]``; token-level
losses (``token.py``) take per-token log-probs ``[B, T]`` and a response mask ``[B, T]``.
``SEQUENCE_LOSSES`` maps the trainer's method names to the DPO-family losses; they share
the first five arguments ``(pc, pr, rc, rr, beta)`` and take their extra hyper-parameter
(``eps`` or ``beta_prime``) by keyword.

Examples:
    >>> import torch
    >>> from safelens.losses import SEQUENCE_LOSSES
    >>> sorted(SEQUENCE_LOSSES)
    ['cdpo', 'dpo', 'drdpo', 'ipo', 'rdpo']
    >>> z = torch.zeros(2)
    >>> round(SEQUENCE_LOSSES["dpo"](z, z, z, z, beta=0.1).item(), 4)
    0.6931
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from safelens.losses.preference import (
    cdpo_loss,
    dpo_loss,
    drdpo_loss,
    ipo_loss,
    npo_loss,
    preference_logits,
    rdpo_loss,
    reward_level_loss,
    reward_soft_targets,
)
from safelens.losses.token import (
    PA_ARGMAX,
    Reduction,
    constrained_sft_betas,
    constrained_sft_betas_for_mask,
    constrained_sft_loss,
    csft_pa_loss,
    csft_token_weights,
    door_loss,
    kl_adaptive_weights,
    pa_delta_schedule,
    pa_loss,
    pa_terms,
    retain_loss,
    robust_refusal_loss,
    sft_loss,
    simnpo_loss,
    wdoor_public_loss,
    wdoor_token_weights,
)

SEQUENCE_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "dpo": dpo_loss,
    "ipo": ipo_loss,
    "cdpo": cdpo_loss,
    "rdpo": rdpo_loss,
    "drdpo": drdpo_loss,
}

__all__ = [
    "SEQUENCE_LOSSES",
    "Reduction",
    "cdpo_loss",
    "constrained_sft_betas",
    "constrained_sft_betas_for_mask",
    "constrained_sft_loss",
    "csft_pa_loss",
    "csft_token_weights",
    "door_loss",
    "dpo_loss",
    "drdpo_loss",
    "ipo_loss",
    "kl_adaptive_weights",
    "npo_loss",
    "PA_ARGMAX",
    "pa_delta_schedule",
    "pa_loss",
    "pa_terms",
    "preference_logits",
    "rdpo_loss",
    "retain_loss",
    "reward_level_loss",
    "reward_soft_targets",
    "robust_refusal_loss",
    "sft_loss",
    "simnpo_loss",
    "wdoor_public_loss",
    "wdoor_token_weights",
]
