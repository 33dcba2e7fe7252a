"""Token-level losses: SFT, constrained SFT (Qi et al.), DOOR / W-DOOR, CSFT + PA.

Inputs are **per-token log-probs** ``[B, T]`` (``per_token[b, t] = log p(token t | tokens < t)``
on response tokens, as ``safelens.models.logprobs.response_logps`` returns them) and a
**response mask** ``[B, T]`` (1 on response tokens, 0 on prompt and padding). Losses return
the **mean over unmasked tokens** of the whole batch unless asked for another reduction.

Masking multiplies by the mask, so a NaN anywhere in an input makes the loss NaN instead of
being silently dropped. A row of the mask with no response token is an error.

Seeds: 003 (constrained SFT with its beta_t schedule, DOOR / W-DOOR) and 001 (CSFT + PA:
the token-level preference-alignment loss, Eq. 1-7). W-DOOR also as the public DOOR code
computes it (:func:`wdoor_public_loss`, :func:`simnpo_loss`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from safelens.losses.preference import _check_positive, _check_sequence_inputs, npo_loss

__all__ = [
    "PA_ARGMAX",
    "Reduction",
    "constrained_sft_betas",
    "constrained_sft_betas_for_mask",
    "constrained_sft_loss",
    "csft_pa_loss",
    "csft_token_weights",
    "door_loss",
    "kl_adaptive_weights",
    "pa_delta_schedule",
    "pa_loss",
    "pa_terms",
    "retain_loss",
    "robust_refusal_loss",
    "sft_loss",
    "simnpo_loss",
    "wdoor_public_loss",
    "wdoor_token_weights",
]

Reduction = Literal["token_mean", "sequence_sum"]


# --------------------------------------------------------------------------- validation


def _check_mask(mask: torch.Tensor, name: str = "mask") -> None:
    """A response mask must be a 0/1 ``[B, T]`` tensor with at least one 1 per row."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() != 2:
        raise ValueError(f"{name} must be [B, T] (response mask), got shape {tuple(mask.shape)}")
    if mask.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (B = 0)")
    if mask.dtype != torch.bool and ((mask != 0) & (mask != 1)).any():
        raise ValueError(f"{name} must contain only 0 and 1")
    empty = (mask.sum(dim=-1) == 0).nonzero()
    if empty.numel() > 0:
        i = int(empty[0, 0])
        raise ValueError(f"{name}: row {i} has an empty response (no 1 in the mask)")


def _check_like_mask(mask: torch.Tensor, mask_name: str = "mask", **tensors: torch.Tensor) -> None:
    """Every tensor must have exactly the mask's ``[B, T]`` shape."""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.shape != mask.shape:
            raise ValueError(
                f"{name} must have the shape of {mask_name} [B, T] = {tuple(mask.shape)}, "
                f"got {tuple(tensor.shape)}"
            )


def _check_beta_t(beta_t: float | torch.Tensor, shape: torch.Size, name: str = "beta_t") -> None:
    """beta_t: a positive number, or a positive tensor broadcastable to ``shape``."""
    if isinstance(beta_t, torch.Tensor):
        try:
            out = torch.broadcast_shapes(beta_t.shape, shape)
        except RuntimeError:
            out = None
        if out != shape:
            raise ValueError(
                f"{name} of shape {tuple(beta_t.shape)} does not broadcast to [B, T] = "
                f"{tuple(shape)}"
            )
        if not bool(torch.isfinite(beta_t).all()) or bool((beta_t <= 0).any()):
            raise ValueError(f"{name} must be finite and > 0 everywhere")
    else:
        if not math.isfinite(beta_t) or beta_t <= 0:
            raise ValueError(f"{name} must be a finite positive number, got {beta_t!r}")


def _reduce(
    values: torch.Tensor,  # [B, T] per-token losses
    mask: torch.Tensor,  # [B, T]
    reduction: Reduction,
) -> torch.Tensor:  # []
    """Masked reduction by multiplication (NaN anywhere propagates on purpose)."""
    m = mask.to(values.dtype)
    if reduction == "token_mean":
        return (values * m).sum() / m.sum()
    if reduction == "sequence_sum":
        return (values * m).sum(dim=-1).mean()
    raise ValueError(f"reduction must be 'token_mean' or 'sequence_sum', got {reduction!r}")


# --------------------------------------------------------------------------- SFT


def sft_loss(
    tok_logps: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T]
    *,
    weights: torch.Tensor | None = None,  # [B, T]
    reduction: Reduction = "token_mean",
) -> torch.Tensor:  # []
    """Supervised fine-tuning loss: negative log-likelihood of the response tokens.

    loss = mean over unmasked (b, t) of -w[b, t] * log p[b, t]        (w = 1 by default)

    ``reduction="sequence_sum"`` instead sums over each row's tokens and averages over rows,
    i.e. the -log pi(y | x) of a whole response that seeds 003 and 001 write.

    Examples:
        >>> import math, torch
        >>> lp = torch.log(torch.tensor([[0.5, 0.25, 1.0]]))
        >>> mask = torch.tensor([[1, 1, 0]])
        >>> round(sft_loss(lp, mask).item(), 4) == round(1.5 * math.log(2), 4)
        True
        >>> round(sft_loss(lp, mask, reduction="sequence_sum").item(), 4)
        2.0794

    Args:
        tok_logps: ``[B, T]`` per-token log-probs of the target tokens.
        mask: ``[B, T]`` response mask (1 = response token).
        weights: optional ``[B, T]`` per-token weights, used as given (detach them yourself
            if they are constants).
        reduction: ``"token_mean"`` (default) or ``"sequence_sum"``.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch, a non-binary mask or a row with an empty response.
    """
    _check_mask(mask)
    _check_like_mask(mask, tok_logps=tok_logps)
    values = -tok_logps
    if weights is not None:
        _check_like_mask(mask, weights=weights)
        values = weights * values
    return _reduce(values, mask, reduction)


# --------------------------------------------------------------------------- constrained SFT


def constrained_sft_loss(
    tok_p: torch.Tensor,  # [B, T]
    tok_ref: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T]
    beta_t: float | torch.Tensor,  # broadcastable to [B, T]
    *,
    reduction: Reduction = "token_mean",
) -> torch.Tensor:  # []
    """Token-wise constrained SFT of Qi et al. (seed 003, "Eqn 3"; seed 001, Eq. 2).

    loss = mean over unmasked (b, t) of -(2 / beta_t) log sigmoid(beta_t (tok_p - tok_ref))

    (seed 003 writes a sum over t per sequence; the token mean is the project's
    convention, ``reduction="sequence_sum"`` gives the seed's). Small beta_t behaves like
    SFT: the loss is 2 log 2 / beta_t - (tok_p - tok_ref) + O(beta_t), whose gradient in
    tok_p is that of the NLL. Large beta_t pins the policy to the aligned model: the loss
    tends to 2 * max(tok_ref - tok_p, 0). Qi et al.'s schedule is
    :func:`constrained_sft_betas_for_mask`.

    Examples:
        >>> import math, torch
        >>> p = torch.tensor([[-1.0, -2.0]]); mask = torch.ones(1, 2)
        >>> round(constrained_sft_loss(p, p, mask, 0.5).item(), 4)  # 2 log 2 / beta
        2.7726
        >>> betas = constrained_sft_betas_for_mask(mask)
        >>> betas
        tensor([[0.5000, 2.0000]])
        >>> round(constrained_sft_loss(p, p - 1.0, mask, betas).item(), 4)
        1.0116

    Args:
        tok_p: ``[B, T]`` per-token log-probs under the model being fine-tuned.
        tok_ref: ``[B, T]`` per-token log-probs under the (frozen) aligned model.
        mask: ``[B, T]`` response mask.
        beta_t: per-token constraint strength > 0: a number or a tensor broadcastable to
            ``[B, T]`` (e.g. ``[T]`` or ``[B, T]``).
        reduction: ``"token_mean"`` (default) or ``"sequence_sum"``.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch, non-positive beta_t or a row with an empty response.
    """
    _check_mask(mask)
    _check_like_mask(mask, tok_p=tok_p, tok_ref=tok_ref)
    _check_beta_t(beta_t, mask.shape)
    values = -(2.0 / beta_t) * F.logsigmoid(beta_t * (tok_p - tok_ref))  # [B, T]
    return _reduce(values, mask, reduction)


def _schedule_at(
    pos: torch.Tensor,  # [...] 1-based response positions
    beta_first: float,
    beta_early: float,
    early_until: int,
    beta_rest: float,
    dtype: torch.dtype,
) -> torch.Tensor:
    for name, value in (
        ("beta_first", beta_first),
        ("beta_early", beta_early),
        ("beta_rest", beta_rest),
    ):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    if int(early_until) != early_until or early_until < 1:
        raise ValueError(f"early_until must be an integer >= 1, got {early_until!r}")
    first = torch.tensor(beta_first, dtype=dtype, device=pos.device)
    early = torch.tensor(beta_early, dtype=dtype, device=pos.device)
    rest = torch.tensor(beta_rest, dtype=dtype, device=pos.device)
    return torch.where(pos == 1, first, torch.where(pos <= early_until, early, rest))


def constrained_sft_betas(
    T: int,
    beta_first: float = 0.5,
    beta_early: float = 2.0,
    early_until: int = 5,
    beta_rest: float = 0.1,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:  # [T]
    """Qi et al.'s beta_t schedule for response positions t = 1..T (seed 003, Table 4).

    beta_1 = 0.5; beta_t = 2 for 2 <= t <= 5; beta_t = 0.1 for t > 5.

    Position 1 is the **first response token**. Use this only when every row's response
    starts at column 0; for chat batches (prompt first, right padding) use
    :func:`constrained_sft_betas_for_mask`.

    Examples:
        >>> constrained_sft_betas(7)
        tensor([0.5000, 2.0000, 2.0000, 2.0000, 2.0000, 0.1000, 0.1000])

    Args:
        T: number of response positions (>= 0).
        beta_first: beta_1.
        beta_early: beta_t for 2 <= t <= early_until.
        early_until: last position that gets ``beta_early``.
        beta_rest: beta_t after ``early_until``.
        dtype: dtype of the result.
        device: device of the result.

    Returns:
        ``[T]`` tensor of betas.

    Raises:
        ValueError: on a negative T, a non-positive beta or ``early_until < 1``.
    """
    if int(T) != T or T < 0:
        raise ValueError(f"T must be an integer >= 0, got {T!r}")
    pos = torch.arange(1, int(T) + 1, device=device)  # [T]
    return _schedule_at(pos, beta_first, beta_early, early_until, beta_rest, dtype)


def constrained_sft_betas_for_mask(
    mask: torch.Tensor,  # [B, T]
    beta_first: float = 0.5,
    beta_early: float = 2.0,
    early_until: int = 5,
    beta_rest: float = 0.1,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:  # [B, T]
    """Qi et al.'s beta_t schedule aligned with each row's first response token.

    Rows hold prompts of different lengths and are right-padded, so the k-th response token
    of row b sits at a different column in each row. Its position is counted as the number
    of response tokens up to and including it (cumulative sum of the mask), so the first
    response token gets beta_1 = 0.5, the next four 2.0, the rest 0.1 (seed 003, Table 4).
    Columns outside the response get ``beta_rest`` (any positive value would do: the losses
    mask them out).

    Examples:
        >>> import torch
        >>> mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 0],
        ...                      [0, 1, 1, 0, 0, 0, 0, 0, 0]])
        >>> constrained_sft_betas_for_mask(mask)
        tensor([[0.1000, 0.1000, 0.5000, 2.0000, 2.0000, 2.0000, 2.0000, 0.1000, 0.1000],
                [0.1000, 0.5000, 2.0000, 0.1000, 0.1000, 0.1000, 0.1000, 0.1000, 0.1000]])

    Args:
        mask: ``[B, T]`` response mask.
        beta_first: beta_1.
        beta_early: beta_t for 2 <= t <= early_until.
        early_until: last response position that gets ``beta_early``.
        beta_rest: beta_t after ``early_until`` (and outside the response).
        dtype: dtype of the result.

    Returns:
        ``[B, T]`` betas, ready for :func:`constrained_sft_loss`.

    Raises:
        ValueError: on a malformed mask, a row with an empty response, a non-positive beta.
    """
    _check_mask(mask)
    in_response = mask.bool()  # [B, T]
    pos = torch.cumsum(in_response.long(), dim=-1)  # [B, T], 1 at the first response token
    betas = _schedule_at(pos, beta_first, beta_early, early_until, beta_rest, dtype)
    return torch.where(in_response, betas, torch.full_like(betas, beta_rest))


# --------------------------------------------------------------------------- DOOR / W-DOOR


def robust_refusal_loss(
    tok_logps: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T]
    *,
    weights: torch.Tensor | None = None,  # [B, T]
    reduction: Reduction = "token_mean",
) -> torch.Tensor:  # []
    """DOOR's robust-refusal term: NLL of a refusal after a harmful prefix (seed 003).

    loss = mean over unmasked (b, t) of -w[b, t] log pi(y^s_t | x + y^h_<k, y^s_<t)

    ``tok_logps`` are the refusal tokens' log-probs with the prompt followed by a harmful
    prefix of k tokens (k ~ Uniform[1, C], built by the data transforms) as context; the mask
    covers the refusal only. Without weights this is DOOR's term; with
    :func:`wdoor_token_weights` it is W-DOOR's. Weights are detached here: they are
    constants of the method.

    Examples:
        >>> import math, torch
        >>> lp = torch.log(torch.tensor([[0.5, 0.5]])); mask = torch.ones(1, 2)
        >>> round(robust_refusal_loss(lp, mask).item(), 4)
        0.6931
        >>> w = torch.tensor([[2.0, 0.0]])
        >>> round(robust_refusal_loss(lp, mask, weights=w).item(), 4)  # (2 log 2 + 0) / 2
        0.6931

    Args:
        tok_logps: ``[B, T]`` per-token log-probs of the refusal under the policy.
        mask: ``[B, T]`` mask of the refusal tokens.
        weights: optional ``[B, T]`` token weights beta_t (W-DOOR).
        reduction: ``"token_mean"`` (default) or ``"sequence_sum"`` (the seed's and public
            code's sum over tokens, mean over rows).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch or a row with an empty response.
    """
    if weights is not None:
        weights = weights.detach()
    return sft_loss(tok_logps, mask, weights=weights, reduction=reduction)


def retain_loss(
    tok_logps: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T]
    *,
    reduction: Reduction = "token_mean",
) -> torch.Tensor:  # []
    """DOOR's utility-retain term: SFT on benign examples (seed 003, L_Retain).

    loss = mean over unmasked (b, t) of -log pi(y_t | x, y_<t)

    Examples:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[0.5, 0.25]])); mask = torch.ones(1, 2)
        >>> round(retain_loss(lp, mask).item(), 4)  # 1.5 log 2
        1.0397

    Args:
        tok_logps: ``[B, T]`` per-token log-probs of the benign responses.
        mask: ``[B, T]`` response mask.
        reduction: ``"token_mean"`` (default) or ``"sequence_sum"``.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch or a row with an empty response.
    """
    return sft_loss(tok_logps, mask, reduction=reduction)


def door_loss(
    refusal_tok_logps: torch.Tensor,  # [B, T]
    refusal_mask: torch.Tensor,  # [B, T]
    harmful_logps: torch.Tensor,  # [B_h]
    harmful_ref_logps: torch.Tensor,  # [B_h]
    retain_tok_logps: torch.Tensor,  # [B_r, T_r]
    retain_mask: torch.Tensor,  # [B_r, T_r]
    *,
    beta: float = 0.5,
    alpha: float = 0.2,
    refusal_weights: torch.Tensor | None = None,  # [B, T]
    reduction: Reduction = "token_mean",
) -> torch.Tensor:  # []
    """DOOR / W-DOOR total loss (seed 003, "Overall Loss").

    loss = alpha * [ refusal + NPO ] + (1 - alpha) * retain

    refusal = :func:`robust_refusal_loss` (weighted by ``refusal_weights`` for W-DOOR),
    NPO = :func:`npo_loss` of the harmful responses against the reference (beta),
    retain = :func:`retain_loss` on benign data. Defaults beta = 0.5, alpha = 0.2 as in the
    public DOOR code.

    Seed ambiguity: the slide's L_DOOR puts the NPO term inside the sum over t with token
    indices (y^h_t); the NPO slide just before it, and the public code, use the
    sequence-level NPO on the summed log-probs of the whole harmful response. We take the
    sequence-level reading (pass summed log-probs ``[B_h]``). The seed sums the NLL over
    tokens; our default is the project's token mean, ``reduction="sequence_sum"`` gives the
    seed's (and public code's) scale for the refusal and retain terms.

    Examples:
        >>> import math, torch
        >>> lp = torch.log(torch.full((1, 2), 0.5)); mask = torch.ones(1, 2)
        >>> z = torch.zeros(1)
        >>> total = door_loss(lp, mask, z, z, lp, mask, beta=0.5, alpha=0.2)
        >>> expected = 0.2 * (math.log(2) + 4 * math.log(2)) + 0.8 * math.log(2)
        >>> abs(total.item() - expected) < 1e-6
        True

    Args:
        refusal_tok_logps: ``[B, T]`` policy log-probs of refusals after harmful prefixes.
        refusal_mask: ``[B, T]`` mask of the refusal tokens.
        harmful_logps: ``[B_h]`` summed policy log-probs of the harmful responses.
        harmful_ref_logps: ``[B_h]`` the same under the reference model.
        retain_tok_logps: ``[B_r, T_r]`` policy log-probs of benign (utility) responses.
        retain_mask: ``[B_r, T_r]`` their response mask.
        beta: NPO inverse temperature (> 0).
        alpha: weight of the safety terms, in [0, 1].
        refusal_weights: optional ``[B, T]`` W-DOOR token weights
            (:func:`wdoor_token_weights`); None gives DOOR.
        reduction: reduction of the two NLL terms (see :func:`sft_loss`).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch, an empty response, ``beta <= 0`` or alpha outside
            [0, 1].
    """
    if isinstance(alpha, torch.Tensor) or not (0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    refusal = robust_refusal_loss(
        refusal_tok_logps, refusal_mask, weights=refusal_weights, reduction=reduction
    )
    npo = npo_loss(harmful_logps, harmful_ref_logps, beta=beta)
    retain = retain_loss(retain_tok_logps, retain_mask, reduction=reduction)
    return alpha * (refusal + npo) + (1.0 - alpha) * retain


def wdoor_token_weights(
    tok_logps_star: torch.Tensor,  # [B, T]
    tok_logps_ref: torch.Tensor,  # [B, T]
    tau: float = 5.0,
    inverse: bool = False,
    kind: Literal["exp", "sigmoid"] = "exp",
) -> torch.Tensor:  # [B, T]
    """W-DOOR reward-based token weights beta_t (seed 003, "Reward based Token weighting").

    weight = exp(r_t / tau) = (pi*(y_t) / pi_ref(y_t))^(1 / tau),
    r_t = tok_logps_star - tok_logps_ref

    where pi* is an "ideal" safer policy (in practice a DPO-aligned copy of the model) and
    the weights are computed on the refusal y^s. Seed 003's Table 1 uses tau = 5.
    ``kind="sigmoid"`` gives sigmoid(r_t / tau) instead; ``inverse=True`` uses -r_t in
    either.

    Discrepancy: the public DOOR code (github.com/wicai24/DOOR-Alignment, ``utils/loss.py``)
    computes ``exp_weights`` = exp((log pi_ref - log pi*) / tau) (lines 165-168; its W-DOOR,
    ``train.py --type 12``, with tau = 1), the **inverse** ratio, which up-weights tokens the
    ideal policy finds *less* likely than the reference: ``inverse=True``. Its other
    variant ``sigmoid_weights`` = 1 - sigmoid(gamma (log pi* - log pi_ref)) (lines 160-163;
    ``--type 11``, gamma = 1) is ``kind="sigmoid", inverse=True, tau=1/gamma``. The
    defaults follow the seed's formula.

    The result is detached: the weights are constants. Positions outside the response get
    whatever the inputs give there (exp(0) = 1 for zero-filled log-probs); the losses mask
    them out.

    Examples:
        >>> import math, torch
        >>> star = torch.tensor([[math.log(0.5), math.log(0.9)]])
        >>> ref = torch.tensor([[math.log(0.25), math.log(0.9)]])
        >>> wdoor_token_weights(star, ref, tau=1.0)
        tensor([[2., 1.]])
        >>> wdoor_token_weights(star, ref, tau=1.0, inverse=True)
        tensor([[0.5000, 1.0000]])
        >>> wdoor_token_weights(star, ref, tau=1.0, inverse=True, kind="sigmoid")  # 1 - 2/3
        tensor([[0.3333, 0.5000]])

    Args:
        tok_logps_star: ``[B, T]`` log-probs of the refusal tokens under the ideal policy pi*.
        tok_logps_ref: ``[B, T]`` log-probs of the same tokens under the reference model.
        tau: temperature > 0.
        inverse: use the public code's inverse ratio (pi_ref / pi*).
        kind: ``"exp"`` (the seed's; the public W-DOOR) or ``"sigmoid"``.

    Returns:
        ``[B, T]`` weights, detached.

    Raises:
        ValueError: on shape mismatch, ``tau <= 0`` or an unknown ``kind``.
    """
    if isinstance(tau, torch.Tensor) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a finite positive number, got {tau!r}")
    if kind not in ("exp", "sigmoid"):
        raise ValueError(f"kind must be 'exp' or 'sigmoid', got {kind!r}")
    if tok_logps_star.shape != tok_logps_ref.shape:
        raise ValueError(
            f"tok_logps_star {tuple(tok_logps_star.shape)} and tok_logps_ref "
            f"{tuple(tok_logps_ref.shape)} must have the same shape [B, T]"
        )
    log_ratio = tok_logps_star.detach() - tok_logps_ref.detach()  # [B, T]
    if inverse:
        log_ratio = -log_ratio
    if kind == "sigmoid":
        return torch.sigmoid(log_ratio / tau)
    return torch.exp(log_ratio / tau)


def simnpo_loss(
    policy_logps: torch.Tensor,  # [B]
    lengths: torch.Tensor,  # [B]
    *,
    beta: float = 0.5,
    gamma: float = 1.0,
) -> torch.Tensor:  # []
    """Reference-free, length-normalised NPO with a margin: the public W-DOOR's unlearning term.

    loss = mean_i -(2 / beta) log sigmoid(-beta * policy_i / L_i - gamma)

    The form of SimNPO (Fan et al., 2024, "Simplicity Prevails: Rethinking Negative
    Preference Optimization for LLM Unlearning"): NPO (:func:`~safelens.losses.npo_loss`)
    with the reference log-prob replaced by a length normalisation and a margin gamma. The
    public DOOR code's W-DOOR (github.com/wicai24/DOOR-Alignment, ``utils/loss.py``,
    ``wgdnpo_loss``, lines 206-213)::

        seq_lengths = torch.sum(non_preferred_attention_mask, dim=1)
        normalized_log_probs = non_preferred_log_probs_main_seq / seq_lengths
        npo_loss_val = -F.logsigmoid(-beta * normalized_log_probs - gamma)
        npo_loss_val = npo_loss_val.sum(dim=-1).mean()
        wgdnpo_loss_val = gd_loss_val + (npo_loss_val * 2 / beta)

    with beta = 0.5 and gamma = 1.0 (its defaults, lines 170-171). Two readings to know: its
    L_i is the attention-mask length of the whole encoded sequence (chat template, prompt,
    prefix and continuation, not SimNPO's |y|): pass what you mean by ``lengths``; and its
    ``.sum(dim=-1)`` runs over the *batch* ([B] values), so its term is the sum over the
    per-device batch (2 rows in ``train.py``) where this is the mean over rows, the
    project's convention (the public value = this one times B).

    Examples:
        >>> import math, torch
        >>> p, n = torch.tensor([-6.0]), torch.tensor([3])
        >>> round(simnpo_loss(p, n, beta=0.5, gamma=1.0).item(), 4)  # -(2/beta) log sigmoid(0)
        2.7726
        >>> round(4 * math.log(2), 4)
        2.7726

    Args:
        policy_logps: ``[B]`` summed log-probs of the responses to unlearn under the policy.
        lengths: ``[B]`` positive lengths L_i that normalise them (tokens).
        beta: inverse temperature (> 0).
        gamma: margin (finite; 0 gives length-normalised NPO without a reference).

    Returns:
        Scalar loss, the mean over rows.

    Raises:
        ValueError: on shape mismatch, an empty batch, ``beta <= 0``, a non-finite
            ``gamma`` or a length <= 0.
    """
    _check_positive("beta", beta)
    if isinstance(gamma, torch.Tensor) or not math.isfinite(gamma):
        raise ValueError(f"gamma must be a finite number, got {gamma!r}")
    _check_sequence_inputs(policy_logps=policy_logps, lengths=lengths)
    if bool((lengths <= 0).any()):
        raise ValueError("lengths must be > 0 (tokens that normalise each log-prob)")
    normalized = policy_logps / lengths.to(policy_logps.dtype)  # [B]
    return (-(2.0 / beta) * F.logsigmoid(-beta * normalized - gamma)).mean()


def wdoor_public_loss(
    refusal_tok_logps: torch.Tensor,  # [B, T]
    refusal_mask: torch.Tensor,  # [B, T]
    harmful_logps: torch.Tensor,  # [B_h]
    harmful_lengths: torch.Tensor,  # [B_h]
    retain_tok_logps: torch.Tensor,  # [B_r, T_r]
    retain_mask: torch.Tensor,  # [B_r, T_r]
    *,
    refusal_weights: torch.Tensor | None = None,  # [B, T]
    beta: float = 0.5,
    gamma: float = 1.0,
    alpha: float = 0.2,
    reduction: Reduction = "sequence_sum",
) -> torch.Tensor:  # []
    """W-DOOR as the public DOOR code computes it (``wgdnpo_loss``), total loss.

    loss = alpha * [ sum_t -w_t log pi(y^s_t | x + h_<k, y^s_<t)
                     - (2 / beta) log sigmoid(-beta log pi(h_>=k | x + h_<k) / L - gamma) ]
           + (1 - alpha) * sum_t -log pi(y_t | x')

    i.e. :func:`robust_refusal_loss` weighted by ``refusal_weights``
    (:func:`wdoor_token_weights`; the public W-DOOR's are ``inverse=True, tau=1``), plus
    :func:`simnpo_loss` on the harmful continuations, weighted by alpha, plus
    :func:`retain_loss`. Source: github.com/wicai24/DOOR-Alignment, ``utils/loss.py``
    lines 170-226: the weighted refusal NLL ``-(adaptive_weights * log_probs).sum(-1).mean()``
    (lines 203-204), the unlearning term (206-213, see :func:`simnpo_loss`), the retain NLL
    ``-utility_log_probs.mean()`` (219-221) and ``alpha * wgdnpo + (1 - alpha) * utility``
    (line 222), with beta = 0.5, alpha = 0.2, gamma = 1.0 (lines 170-171). Unlike seed 003's
    W-DOOR (:func:`door_loss` with weights) the unlearning term needs no reference model;
    only the weights do. Defaults are the public code's, including the ``sequence_sum``
    reduction (sum over tokens, mean over rows) of the two NLL terms.

    Examples:
        >>> import math, torch
        >>> lp = torch.log(torch.tensor([[0.5, 0.25]])); mask = torch.ones(1, 2)
        >>> w = torch.tensor([[2.0, 1.0]])                        # refusal: 2 ln2 + 2 ln2
        >>> h, n = torch.tensor([-6.0]), torch.tensor([3])         # unlearning: (2/0.5) ln2
        >>> r = torch.log(torch.tensor([[0.5]])); rm = torch.ones(1, 1)  # retain: ln2
        >>> total = wdoor_public_loss(lp, mask, h, n, r, rm, refusal_weights=w)
        >>> abs(total.item() - 2.4 * math.log(2)) < 1e-6          # 0.2 * 8 ln2 + 0.8 ln2
        True

    Args:
        refusal_tok_logps: ``[B, T]`` policy log-probs of refusals after harmful prefixes.
        refusal_mask: ``[B, T]`` mask of the refusal tokens.
        harmful_logps: ``[B_h]`` summed policy log-probs of the harmful continuations.
        harmful_lengths: ``[B_h]`` their normalising lengths (see :func:`simnpo_loss`).
        retain_tok_logps: ``[B_r, T_r]`` policy log-probs of benign (utility) responses.
        retain_mask: ``[B_r, T_r]`` their response mask.
        refusal_weights: optional ``[B, T]`` token weights (detached here).
        beta: inverse temperature of the unlearning term (> 0).
        gamma: its margin.
        alpha: weight of the safety terms, in [0, 1].
        reduction: reduction of the two NLL terms (see :func:`sft_loss`).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch, an empty response, ``beta <= 0``, a length <= 0 or
            alpha outside [0, 1].
    """
    if isinstance(alpha, torch.Tensor) or not (0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    refusal = robust_refusal_loss(
        refusal_tok_logps, refusal_mask, weights=refusal_weights, reduction=reduction
    )
    unlearn = simnpo_loss(harmful_logps, harmful_lengths, beta=beta, gamma=gamma)
    retain = retain_loss(retain_tok_logps, retain_mask, reduction=reduction)
    return alpha * (refusal + unlearn) + (1.0 - alpha) * retain


# --------------------------------------------------------------------------- CSFT + PA


def csft_token_weights(
    tok_p: torch.Tensor,  # [B, T]
    tok_ref: torch.Tensor,  # [B, T]
    beta_t: float | torch.Tensor,  # broadcastable to [B, T]
) -> torch.Tensor:  # [B, T]
    """Seed 001's weights w_t of the CSFT loss written as a weighted NLL (Eq. 2).

    w_t = 2 * (1 - sigmoid(beta_t (log pi_theta(y_t) - log pi_aligned(y_t)))), detached.

    Seed 001 writes L_CSFT = -sum_t w_t log pi_theta(y_t) with w_t detached; its gradient is
    exactly that of :func:`constrained_sft_loss` (d/dx of -(2/b) log sigmoid(b x) is
    -w), though the values differ. We use :func:`constrained_sft_loss` for the value.

    Examples:
        >>> import torch
        >>> p = torch.zeros(1, 2)
        >>> csft_token_weights(p, p, 0.1)
        tensor([[1., 1.]])

    Args:
        tok_p: ``[B, T]`` per-token log-probs under the model being fine-tuned.
        tok_ref: ``[B, T]`` per-token log-probs under the aligned model.
        beta_t: constraint strength, a number or a tensor broadcastable to ``[B, T]``.

    Returns:
        ``[B, T]`` weights in (0, 2), detached.

    Raises:
        ValueError: on shape mismatch or non-positive beta_t.
    """
    _check_like_mask(tok_p, mask_name="tok_p", tok_ref=tok_ref)
    _check_beta_t(beta_t, tok_p.shape)
    x = (tok_p - tok_ref).detach()
    return 2.0 * (1.0 - torch.sigmoid(beta_t * x))


def _check_logits(mask: torch.Tensor, **logits: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in logits.items()}
    for name, t in logits.items():
        if t.dim() != 3 or t.shape[:2] != mask.shape:
            raise ValueError(
                f"{name} must be [B, T, V] with [B, T] = mask's {tuple(mask.shape)}, "
                f"got {tuple(t.shape)}"
            )
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}={s}" for n, s in shapes.items())
        raise ValueError(f"logits must have the same shape [B, T, V]: {listed}")


def kl_adaptive_weights(
    policy_logits: torch.Tensor,  # [..., V]
    ref_logits: torch.Tensor,  # [..., V]
    *,
    detach: bool = False,
) -> torch.Tensor:  # [...]
    """PA's adaptive weight mu_t: per-position KL(pi_theta || pi_aligned) (seed 001, Eq. 6).

    mu_t = sum_v pi_theta(v | x, y_<t) * (log pi_theta(v | x, y_<t) - log pi_aligned(v | ...))

    Seed ambiguity: Eq. 6 writes D_KL(pi_theta(y_t | ...) || pi_aligned(y_t | ...)) with the
    token y_t inside; we read it as the KL between the two full next-token distributions
    (the appendix argues its bound from a finite vocabulary, which only makes sense for that
    reading). The appendix differentiates through mu_t, so by default gradients flow into
    the policy through it; ``detach=True`` makes it a constant weight.

    Examples:
        >>> import math, torch
        >>> same = torch.zeros(1, 1, 3)
        >>> kl_adaptive_weights(same, same)
        tensor([[0.]])
        >>> p = torch.log(torch.tensor([[[0.5, 0.5]]])); q = torch.log(torch.tensor([[[0.25, 0.75]]]))
        >>> round(kl_adaptive_weights(p, q).item(), 4) == round(
        ...     0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75), 4)
        True

    Args:
        policy_logits: ``[..., V]`` next-token logits of the policy (typically ``[B, T, V]``).
        ref_logits: ``[..., V]`` next-token logits of the aligned model, same shape.
        detach: return mu_t without gradient.

    Returns:
        ``[...]`` KL per position (>= 0).

    Raises:
        ValueError: on shape mismatch.
    """
    if policy_logits.shape != ref_logits.shape:
        raise ValueError(
            f"policy_logits {tuple(policy_logits.shape)} and ref_logits "
            f"{tuple(ref_logits.shape)} must have the same shape [..., V]"
        )
    logp = F.log_softmax(policy_logits, dim=-1)  # [..., V]
    logq = F.log_softmax(ref_logits, dim=-1)  # [..., V]
    p = logp.exp()
    # 0 * log(0 / 0) is 0 by convention: tokens with -inf logits in both models (e.g. masked
    # vocabulary padding) would otherwise give NaN values and NaN gradients.
    diff = torch.where(p > 0, logp - logq, torch.zeros_like(logp))  # [..., V]
    kl = (p * diff).sum(dim=-1)  # [...]
    return kl.detach() if detach else kl


#: ``log pi_aligned`` is floored here before the KL of Eq. 6: a reference that gives a token
#: probability 0 (a -inf logit) where the policy puts mass would make mu_t infinite.
REF_LOGP_FLOOR = -100.0

#: The two readings of the argmax tokens y_aligned and y_theta of Eq. 5 (see :func:`pa_terms`).
PA_ARGMAX = ("soft", "hard")


def _soft_or_hard_logp(logp: torch.Tensor, logits: torch.Tensor, argmax: str,
                       temperature: float) -> torch.Tensor:
    """``[N]`` log pi_theta at the argmax of ``logits``: gathered (hard) or softmax-weighted."""
    if argmax == "hard":
        return logp.gather(-1, logits.argmax(dim=-1, keepdim=True)).squeeze(-1)
    weights = F.softmax(logits / temperature, dim=-1)  # [N, V]
    return (weights * logp).sum(-1)


def pa_terms(
    policy_logits: torch.Tensor,  # [N, V]
    ref_logits: torch.Tensor,  # [N, V]
    *,
    mu: torch.Tensor | None = None,  # [N]
    detach_mu: bool = False,
    max_mu: float | None = None,
    argmax: str = "soft",
    temperature: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Per-position terms of the PA loss (seed 001, Eq. 3-6) on ``N`` response positions.

    With Delta_t = log pi_theta(y_al) - log pi_theta(y_th) and mu_t = KL(pi_theta || pi_al),
    the loss term of position t is -log sigmoid(mu_t * Delta_t).

    **Seed readings (defaults = the appendix's).** y_al / y_th are the argmax tokens of
    pi_aligned / pi_theta. The appendix (A.2.3) says argmax is handled "through a softened
    version (such as temperature-scaled softmax)" to keep gradients flowing, and differentiates
    through mu_t (A.2.4); it detaches only the CSFT weights w_t. So by default:

    * ``argmax="soft"``: log pi_theta(y) is replaced by sum_v softmax(z / temperature)_v
      log pi_theta(v), z the logits of the model whose argmax it is (the policy's softmax
      weights carry gradient); ``temperature`` -> 0 recovers the hard argmax. The seed gives
      no temperature; 0.1 makes the weights near one-hot whenever the top two logits differ
      by more than ~0.5. ``argmax="hard"`` gathers at the argmax indices (Eq. 5 as printed;
      the gathered log-probs are still differentiable).
    * ``detach_mu=False``: gradients flow through mu_t; ``True`` makes it a constant weight.

    mu_t never overflows: ``log pi_aligned`` is floored at :data:`REF_LOGP_FLOOR` (a
    reference probability of 0 would make the KL infinite), and ``max_mu`` clamps it; the
    returned ``clipped`` flags say where the clamp bit, for logging.

    Examples:
        >>> import torch
        >>> pol = torch.log(torch.tensor([[0.6, 0.4]])); ref = torch.log(torch.tensor([[0.2, 0.8]]))
        >>> t = pa_terms(pol, ref, argmax="hard")
        >>> round(t["delta"].item(), 4), round(t["mu"].item(), 4)  # log(0.4/0.6), KL
        (-0.4055, 0.3819)
        >>> round(t["loss"].item(), 4)
        0.7736

    Args:
        policy_logits: ``[N, V]`` next-token logits of the policy at N response positions.
        ref_logits: ``[N, V]`` logits (or log-probs) of the aligned model, same positions.
        mu: optional precomputed ``[N]`` weights (else Eq. 6 is computed here).
        detach_mu: treat mu_t as a constant.
        max_mu: upper clamp on mu_t (None: no clamp).
        argmax: ``"soft"`` (default) or ``"hard"``.
        temperature: softmax temperature of the soft argmax (> 0).

    Returns:
        ``{"loss": [N], "mu": [N], "delta": [N], "clipped": [N] bool, "disagree": [N] bool}``;
        ``disagree`` marks positions whose hard argmax tokens differ.

    Raises:
        ValueError: on shape mismatch, an unknown ``argmax`` or a non-positive temperature.
    """
    if policy_logits.dim() != 2 or policy_logits.shape != ref_logits.shape:
        raise ValueError(f"policy_logits {tuple(policy_logits.shape)} and ref_logits "
                         f"{tuple(ref_logits.shape)} must both be [N, V]")
    if argmax not in PA_ARGMAX:
        raise ValueError(f"argmax must be one of {PA_ARGMAX}, got {argmax!r}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    # bf16 logits (autocast) are upcast; float64 stays float64 (gradcheck).
    pol = policy_logits if policy_logits.dtype == torch.float64 else policy_logits.float()
    ref = F.log_softmax(ref_logits.to(pol.dtype), dim=-1).clamp(min=REF_LOGP_FLOOR)  # [N, V]
    logp = F.log_softmax(pol, dim=-1)  # [N, V]
    lp_al = _soft_or_hard_logp(logp, ref, argmax, temperature)  # [N]
    lp_th = _soft_or_hard_logp(logp, pol, argmax, temperature)  # [N]
    delta = lp_al - lp_th  # [N]
    mu_n = kl_adaptive_weights(pol, ref, detach=detach_mu) if mu is None else (
        mu.detach() if detach_mu else mu)
    clipped = torch.zeros_like(delta, dtype=torch.bool)
    if max_mu is not None:
        clipped = mu_n.detach() > max_mu
        mu_n = mu_n.clamp(max=max_mu)
    with torch.no_grad():
        disagree = ref.argmax(-1) != policy_logits.argmax(-1)
    return {"loss": -F.logsigmoid(mu_n * delta), "mu": mu_n, "delta": delta,
            "clipped": clipped, "disagree": disagree}


def pa_loss(
    policy_logits: torch.Tensor,  # [B, T, V]
    ref_logits: torch.Tensor,  # [B, T, V]
    mask: torch.Tensor,  # [B, T]
    *,
    mu: torch.Tensor | float | None = None,
    detach_mu: bool = False,
    max_mu: float | None = None,
    argmax: str = "soft",
    temperature: float = 0.1,
) -> torch.Tensor:  # []
    """Token-level preference-alignment loss of CSFT + PA (seed 001, Eq. 3-6).

    At each response position t, with y_al = argmax pi_aligned(. | x, y_<t) and
    y_th = argmax pi_theta(. | x, y_<t) (the appendix defines both as argmax predictions):

        Delta_t = log pi_theta(y_al | x, y_<t) - log pi_theta(y_th | x, y_<t)     (<= 0)
        loss = mean over unmasked (b, t) of -log sigmoid(mu_t * Delta_t)

    with mu_t = :func:`kl_adaptive_weights` (Eq. 6). The seed sums over t per sequence;
    we take the project's token mean. The per-position terms, the soft/hard argmax and the
    detach of mu_t (defaults: the seed appendix's reading) are those of :func:`pa_terms`.
    Where both models agree (y_al = y_th, hard argmax), Delta_t = 0 and the term is the
    constant log 2 with zero gradient: "only activates when there is a discrepancy".

    ``policy_logits[b, t]`` must be the next-token distribution **for** position t (i.e. the
    model's logits shifted by one, aligned with ``mask`` and the per-token log-probs). Only
    response positions are read, which keeps memory at ``[N, V]`` for N response tokens.

    Examples:
        >>> import math, torch
        >>> mask = torch.ones(1, 1)
        >>> agree = torch.tensor([[[2.0, 0.0]]])
        >>> round(pa_loss(agree, agree, mask).item(), 4)  # Delta = 0 -> log 2
        0.6931
        >>> pol = torch.log(torch.tensor([[[0.6, 0.4]]]))
        >>> ref = torch.log(torch.tensor([[[0.2, 0.8]]]))
        >>> mu = 0.6 * math.log(0.6 / 0.2) + 0.4 * math.log(0.4 / 0.8)
        >>> expected = -math.log(1 / (1 + math.exp(-mu * math.log(0.4 / 0.6))))
        >>> abs(pa_loss(pol, ref, mask, argmax="hard").item() - expected) < 1e-6
        True

    Args:
        policy_logits: ``[B, T, V]`` next-token logits of the model being fine-tuned.
        ref_logits: ``[B, T, V]`` next-token logits of the safety-aligned model (no grad).
        mask: ``[B, T]`` response mask.
        mu: optional precomputed weights (a number or a tensor broadcastable to ``[B, T]``);
            by default Eq. 6's KL is computed here.
        detach_mu: treat the computed mu_t as a constant.
        max_mu: optional upper clamp on mu_t.
        argmax: ``"soft"`` (default) or ``"hard"``, see :func:`pa_terms`.
        temperature: temperature of the soft argmax.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch or a row with an empty response.
    """
    _check_mask(mask)
    _check_logits(mask, policy_logits=policy_logits, ref_logits=ref_logits)
    sel = mask.bool()  # [B, T]
    mu_n = None
    if isinstance(mu, torch.Tensor):
        try:
            mu_n = torch.broadcast_to(mu, mask.shape)[sel]  # [N]
        except RuntimeError as err:
            raise ValueError(
                f"mu of shape {tuple(mu.shape)} does not broadcast to [B, T] = {tuple(mask.shape)}"
            ) from err
    elif mu is not None:
        mu_n = torch.full((int(sel.sum()),), float(mu), dtype=torch.float32,
                          device=policy_logits.device)
    terms = pa_terms(policy_logits[sel], ref_logits[sel], mu=mu_n, detach_mu=detach_mu,
                     max_mu=max_mu, argmax=argmax, temperature=temperature)
    return terms["loss"].mean()


def pa_delta_schedule(
    epoch: float,
    max_epoch: float,
    *,
    start: float = 0.1,
    span: float = 0.2,
) -> float:
    """PA's scheduling coefficient delta_epoch (seed 001, Eq. 7).

    delta_epoch = 0.1 + 0.2 * epoch / max_epoch

    rising linearly from 0.1 to the cap 0.3 at ``epoch == max_epoch``. Seed ambiguity: the
    seed does not say whether epochs count from 0 or 1. We take ``epoch`` as given (a float
    is fine, e.g. a fractional epoch): pass the 0-based epoch index to start at exactly 0.1,
    or the 1-based one to end at exactly 0.3.

    Examples:
        >>> pa_delta_schedule(0, 4)
        0.1
        >>> round(pa_delta_schedule(2, 4), 6)
        0.2
        >>> round(pa_delta_schedule(4, 4), 6)
        0.3

    Args:
        epoch: current epoch, 0 <= epoch <= max_epoch.
        max_epoch: number of epochs (> 0).
        start: value at epoch 0.
        span: increase over the whole run.

    Returns:
        The coefficient delta_epoch.

    Raises:
        ValueError: if max_epoch <= 0 or epoch is outside [0, max_epoch].
    """
    if not max_epoch > 0:
        raise ValueError(f"max_epoch must be > 0, got {max_epoch!r}")
    if not 0 <= epoch <= max_epoch:
        raise ValueError(f"epoch must be in [0, max_epoch={max_epoch}], got {epoch!r}")
    return start + span * epoch / max_epoch


def csft_pa_loss(
    tok_p: torch.Tensor,  # [B, T]
    tok_ref: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T]
    beta_t: float | torch.Tensor,  # broadcastable to [B, T]
    policy_logits: torch.Tensor,  # [B, T, V]
    ref_logits: torch.Tensor,  # [B, T, V]
    delta: float,
    *,
    detach_mu: bool = False,
    max_mu: float | None = None,
    argmax: str = "soft",
    temperature: float = 0.1,
) -> torch.Tensor:  # []
    """Total CSFT + PA loss (seed 001, Eq. 1): L_CSFT + delta_epoch * L_PA.

    L_CSFT = :func:`constrained_sft_loss` (same gradient as seed 001's weighted-NLL Eq. 2,
    see :func:`csft_token_weights`), L_PA = :func:`pa_loss`, delta from
    :func:`pa_delta_schedule`. ``tok_p`` must be the log-softmax of ``policy_logits``
    gathered at the data tokens (the trainer computes both from one forward pass).

    Examples:
        >>> import math, torch
        >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]); mask = torch.ones(1, 2)
        >>> lp = torch.log_softmax(logits, -1)[..., 0]
        >>> loss = csft_pa_loss(lp, lp, mask, 0.5, logits, logits, delta=0.1)
        >>> abs(loss.item() - (4 * math.log(2) + 0.1 * math.log(2))) < 1e-6
        True

    Args:
        tok_p: ``[B, T]`` per-token log-probs of the data under the model being fine-tuned.
        tok_ref: ``[B, T]`` the same under the aligned model.
        mask: ``[B, T]`` response mask.
        beta_t: constrained-SFT betas (number or broadcastable tensor).
        policy_logits: ``[B, T, V]`` next-token logits of the model (aligned with mask).
        ref_logits: ``[B, T, V]`` next-token logits of the aligned model.
        delta: PA coefficient delta_epoch.
        detach_mu: see :func:`pa_loss`.
        max_mu: see :func:`pa_loss`.
        argmax: see :func:`pa_terms`.
        temperature: see :func:`pa_terms`.

    Returns:
        Scalar loss.

    Raises:
        ValueError: on shape mismatch, a row with an empty response or bad betas.
    """
    csft = constrained_sft_loss(tok_p, tok_ref, mask, beta_t)
    pa = pa_loss(policy_logits, ref_logits, mask, detach_mu=detach_mu, max_mu=max_mu,
                 argmax=argmax, temperature=temperature)
    return csft + delta * pa
