"""Sequence-level preference losses: DPO and its robust variants, NPO, reward-level BCE.

Every loss here takes **summed response log-probabilities** of shape ``[B]`` (one number per
pair, as returned by ``safelens.models.logprobs.response_logps``) and returns a scalar: the
mean over pairs unless the method says otherwise (Dr.DPO). With

    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)

the DPO family differs only in how it scores ``beta * h``. Formulas follow seed 000 (ShaPO,
Eq. 8 for DPO, Eq. 9-11 for the reward-level loss and the baselines of its Sec. 5 / App. E)
and, for NPO, seed 003 (DOOR's targeted-unlearning slide).

Nothing here detaches the reference log-probs: the caller computes them under ``no_grad``.
Constants the method defines as such (reward-model targets) are detached here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "cdpo_loss",
    "dpo_loss",
    "drdpo_loss",
    "ipo_loss",
    "npo_loss",
    "preference_logits",
    "rdpo_loss",
    "reward_level_loss",
    "reward_soft_targets",
]


# --------------------------------------------------------------------------- validation


def _check_positive(name: str, value: float, *, allow_inf: bool = False) -> None:
    """Raise ValueError unless ``value`` is a positive number (finite unless ``allow_inf``)."""
    if isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a Python number, got a tensor")
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        kind = "a positive number (inf allowed)" if allow_inf else "a finite positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def _check_sequence_inputs(**tensors: torch.Tensor) -> None:
    """Check that all tensors are non-empty 1-D ``[B]`` tensors of one shape."""
    shapes = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dim() != 1:
            raise ValueError(
                f"{name} must be [B] (summed response log-probs, one per pair), "
                f"got shape {tuple(tensor.shape)}"
            )
        shapes[name] = tuple(tensor.shape)
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}={s}" for n, s in shapes.items())
        raise ValueError(f"sequence-level loss inputs must all have the same shape [B]: {listed}")
    first = next(iter(shapes.values()))
    if first[0] == 0:
        raise ValueError("sequence-level loss got an empty batch (B = 0)")


def preference_logits(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
) -> torch.Tensor:  # [B]
    """Implicit reward margin h of each pair (before the beta scaling).

    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected).
    The trainer logs ``beta * h`` as ``rewards/margins``.

    Examples:
        >>> import torch
        >>> preference_logits(torch.tensor([-1.0]), torch.tensor([-3.0]),
        ...                   torch.tensor([-2.0]), torch.tensor([-2.0]))
        tensor([2.])

    Args:
        policy_chosen_logps: ``[B]`` summed log-probs of the chosen responses under the policy.
        policy_rejected_logps: ``[B]`` same for the rejected responses.
        ref_chosen_logps: ``[B]`` chosen responses under the reference model.
        ref_rejected_logps: ``[B]`` rejected responses under the reference model.

    Returns:
        ``[B]`` margins h.

    Raises:
        ValueError: if the inputs are not four non-empty ``[B]`` tensors of one shape.
    """
    _check_sequence_inputs(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    return (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)


# --------------------------------------------------------------------------- DPO family


def dpo_loss(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
    beta: float = 0.1,
) -> torch.Tensor:  # []
    """DPO loss (Rafailov et al., 2023): seed 000, Eq. 8 without the perturbation.

    loss = mean_i -log sigmoid(beta * h_i), computed with ``logsigmoid`` for stability.

    Examples:
        >>> import torch
        >>> z = torch.zeros(2)
        >>> round(dpo_loss(z, z, z, z, beta=0.1).item(), 4)  # h = 0 -> log 2
        0.6931
        >>> round(dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]),
        ...                torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5).item(), 4)
        0.3133

    Args:
        policy_chosen_logps: ``[B]`` summed response log-probs of the chosen answers (policy).
        policy_rejected_logps: ``[B]`` same for the rejected answers.
        ref_chosen_logps: ``[B]`` chosen answers under the frozen reference model.
        ref_rejected_logps: ``[B]`` rejected answers under the reference model.
        beta: inverse temperature (> 0); seed 000 uses 0.1.

    Returns:
        Scalar loss, the mean over the B pairs.

    Raises:
        ValueError: on shape mismatch, an empty batch or ``beta <= 0``.
    """
    _check_positive("beta", beta)
    h = preference_logits(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    return -F.logsigmoid(beta * h).mean()


def ipo_loss(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
    beta: float = 0.1,
) -> torch.Tensor:  # []
    """IPO loss (Gheshlaghi Azar et al., 2023), a ShaPO baseline (seed 000, Sec. 5).

    loss = mean_i (h_i - 1 / (2 * beta))^2

    Here beta plays the role of IPO's regularisation tau. The trainer passes
    **length-normalised** log-probs (summed log-prob / number of response tokens) for IPO,
    as its authors and TRL do; with raw sums the squared target 1/(2 beta) is dwarfed by
    the length of the responses. This function itself does not normalise.

    Examples:
        >>> import torch
        >>> z = torch.zeros(1)
        >>> round(ipo_loss(z, z, z, z, beta=0.5).item(), 4)  # (0 - 1)^2
        1.0
        >>> ipo_loss(torch.tensor([1.0]), z, z, z, beta=0.5).item()  # h hits the target
        0.0

    Args:
        policy_chosen_logps: ``[B]`` (length-normalised) log-probs of the chosen answers.
        policy_rejected_logps: ``[B]`` same for the rejected answers.
        ref_chosen_logps: ``[B]`` chosen answers under the reference model.
        ref_rejected_logps: ``[B]`` rejected answers under the reference model.
        beta: regularisation strength (> 0); the target margin is 1/(2 beta).

    Returns:
        Scalar loss, the mean over pairs.

    Raises:
        ValueError: on shape mismatch, an empty batch or ``beta <= 0``.
    """
    _check_positive("beta", beta)
    h = preference_logits(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    return ((h - 1.0 / (2.0 * beta)) ** 2).mean()


def _check_eps(eps: float, *, upper: float, closed: bool, method: str) -> None:
    if isinstance(eps, torch.Tensor):
        raise TypeError("eps must be a Python number, got a tensor")
    bad = math.isnan(eps) or eps < 0 or (eps > upper if closed else eps >= upper)
    if bad:
        interval = f"[0, {upper}]" if closed else f"[0, {upper})"
        raise ValueError(f"{method}: eps (label-flip rate) must be in {interval}, got {eps!r}")


def cdpo_loss(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
    beta: float = 0.1,
    eps: float = 0.1,
) -> torch.Tensor:  # []
    """Conservative DPO (Mitchell, 2023), a ShaPO baseline (seed 000, Sec. 5).

    loss = mean_i [ -(1 - eps) log sigmoid(beta h_i) - eps log sigmoid(-beta h_i) ]

    i.e. DPO with label smoothing eps: binary cross-entropy of sigmoid(beta h) against the
    soft label 1 - eps. ``eps = 0`` gives DPO exactly.

    Examples:
        >>> import torch
        >>> z = torch.zeros(2)
        >>> round(cdpo_loss(z, z, z, z, beta=0.1, eps=0.2).item(), 4)  # h = 0 -> log 2
        0.6931
        >>> pc, pr = torch.tensor([2.0]), torch.tensor([0.0])
        >>> round(cdpo_loss(pc, pr, torch.zeros(1), torch.zeros(1), beta=1.0, eps=0.1).item(), 4)
        0.3269

    Args:
        policy_chosen_logps: ``[B]`` summed response log-probs of the chosen answers (policy).
        policy_rejected_logps: ``[B]`` same for the rejected answers.
        ref_chosen_logps: ``[B]`` chosen answers under the reference model.
        ref_rejected_logps: ``[B]`` rejected answers under the reference model.
        beta: inverse temperature (> 0).
        eps: assumed label-flip rate in [0, 0.5] (TRL's ``label_smoothing`` range).

    Returns:
        Scalar loss, the mean over pairs.

    Raises:
        ValueError: on shape mismatch, an empty batch, ``beta <= 0`` or eps outside [0, 0.5].
    """
    _check_positive("beta", beta)
    _check_eps(eps, upper=0.5, closed=True, method="cdpo_loss")
    h = preference_logits(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    losses = -(1.0 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    return losses.mean()


def rdpo_loss(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
    beta: float = 0.1,
    eps: float = 0.1,
) -> torch.Tensor:  # []
    """Robust DPO (Chowdhury et al., 2024), a ShaPO baseline (seed 000, Sec. 5).

    loss = mean_i [ -(1 - eps) log sigmoid(beta h_i) + eps log sigmoid(-beta h_i) ] / (1 - 2 eps)

    The unbiased estimator of the clean DPO loss under a known label-flip rate eps. Note the
    ``+`` on the second term (it differs from cDPO), so the per-pair loss is unbounded below
    for large negative h; ``eps = 0`` gives DPO exactly.

    Examples:
        >>> import torch
        >>> z = torch.zeros(2)
        >>> round(rdpo_loss(z, z, z, z, beta=0.1, eps=0.2).item(), 4)  # h = 0 -> log 2
        0.6931
        >>> pc, pr = torch.tensor([2.0]), torch.tensor([0.0])
        >>> round(rdpo_loss(pc, pr, torch.zeros(1), torch.zeros(1), beta=1.0, eps=0.1).item(), 4)
        -0.1231

    Args:
        policy_chosen_logps: ``[B]`` summed response log-probs of the chosen answers (policy).
        policy_rejected_logps: ``[B]`` same for the rejected answers.
        ref_chosen_logps: ``[B]`` chosen answers under the reference model.
        ref_rejected_logps: ``[B]`` rejected answers under the reference model.
        beta: inverse temperature (> 0).
        eps: label-flip rate in [0, 0.5); at 0.5 the estimator divides by zero.

    Returns:
        Scalar loss, the mean over pairs.

    Raises:
        ValueError: on shape mismatch, an empty batch, ``beta <= 0`` or eps outside [0, 0.5).
    """
    _check_positive("beta", beta)
    _check_eps(eps, upper=0.5, closed=False, method="rdpo_loss")
    h = preference_logits(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    losses = (-(1.0 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (
        1.0 - 2.0 * eps
    )
    return losses.mean()


def drdpo_loss(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
    beta: float = 0.1,
    beta_prime: float = 1.0,
) -> torch.Tensor:  # []
    """Distributionally robust DPO (Dr.DPO, Wu et al., 2024), a ShaPO baseline (seed 000).

    loss = -beta' log mean_i exp(-l_i / beta'),   l_i = -log sigmoid(beta h_i)

    computed stably as -beta' * (logsumexp_i(-l_i / beta') - log B). The batch is the
    empirical distribution the DRO is taken over, so this is *not* a mean of per-pair
    losses: pairs with a large loss (likely flipped labels) are down-weighted by the
    softmax of -l / beta'. As beta' -> inf it tends to the plain DPO mean; ``beta_prime =
    math.inf`` returns that mean exactly. Seed 000 (App. E) uses beta' = 1.

    Examples:
        >>> import math, torch
        >>> pc = torch.tensor([2.0, -2.0]); z = torch.zeros(2)
        >>> round(drdpo_loss(pc, z, z, z, beta=1.0, beta_prime=1.0).item(), 4)
        0.6931
        >>> round(drdpo_loss(pc, z, z, z, beta=1.0, beta_prime=math.inf).item(), 4)
        1.1269
        >>> round(dpo_loss(pc, z, z, z, beta=1.0).item(), 4)
        1.1269

    Args:
        policy_chosen_logps: ``[B]`` summed response log-probs of the chosen answers (policy).
        policy_rejected_logps: ``[B]`` same for the rejected answers.
        ref_chosen_logps: ``[B]`` chosen answers under the reference model.
        ref_rejected_logps: ``[B]`` rejected answers under the reference model.
        beta: inverse temperature (> 0).
        beta_prime: DRO temperature beta' > 0; ``math.inf`` gives the DPO mean.

    Returns:
        Scalar batch loss.

    Raises:
        ValueError: on shape mismatch, an empty batch, ``beta <= 0`` or ``beta_prime <= 0``.
    """
    _check_positive("beta", beta)
    _check_positive("beta_prime", beta_prime, allow_inf=True)
    h = preference_logits(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    losses = -F.logsigmoid(beta * h)  # [B]
    if math.isinf(beta_prime):
        return losses.mean()
    n = losses.shape[0]
    return -beta_prime * (torch.logsumexp(-losses / beta_prime, dim=0) - math.log(n))


# --------------------------------------------------------------------------- NPO


def npo_loss(
    policy_logps: torch.Tensor,  # [B]
    ref_logps: torch.Tensor,  # [B]
    beta: float = 0.5,
) -> torch.Tensor:  # []
    """Negative preference optimisation (Zhang et al., 2024) on sequences to unlearn.

    loss = mean_i -(2 / beta) log sigmoid(-beta (policy_i - ref_i))
         = mean_i (2 / beta) log(1 + (pi_theta / pi_ref)^beta)

    Seed 003, DOOR "Targeted Unlearning" slide (L_NPO); DOOR applies it to the harmful
    responses with beta = 0.5. Its gradient pushes the policy's log-prob of the sequence
    down, with a weight that vanishes once the policy is far below the reference.

    Examples:
        >>> import torch
        >>> z = torch.zeros(3)
        >>> round(npo_loss(z, z, beta=0.5).item(), 4)  # (2 / beta) log 2
        2.7726
        >>> round(npo_loss(torch.tensor([-10.0]), torch.tensor([0.0]), beta=0.5).item(), 4)
        0.0269

    Args:
        policy_logps: ``[B]`` summed log-probs of the responses to unlearn under the policy.
        ref_logps: ``[B]`` the same responses under the reference model.
        beta: inverse temperature (> 0).

    Returns:
        Scalar loss, the mean over sequences.

    Raises:
        ValueError: on shape mismatch, an empty batch or ``beta <= 0``.
    """
    _check_positive("beta", beta)
    _check_sequence_inputs(policy_logps=policy_logps, ref_logps=ref_logps)
    return (-(2.0 / beta) * F.logsigmoid(-beta * (policy_logps - ref_logps))).mean()


# --------------------------------------------------------------------------- reward level


def reward_level_loss(
    policy_chosen_logps: torch.Tensor,  # [B]
    policy_rejected_logps: torch.Tensor,  # [B]
    ref_chosen_logps: torch.Tensor,  # [B]
    ref_rejected_logps: torch.Tensor,  # [B]
    reward_chosen: torch.Tensor,  # [B]
    reward_rejected: torch.Tensor,  # [B]
    beta: float = 0.1,
    beta_r: float = 10.0,
) -> torch.Tensor:  # []
    """Reward-level loss of ShaPO-R (seed 000, Eq. 9-11) before the subspace perturbation.

    t_i = sigmoid(beta_r (R_chosen_i - R_rejected_i))           (Eq. 9, a constant)
    p_i = sigmoid(beta h_i)                                       (Eq. 10)
    loss = mean_i -[t_i log p_i + (1 - t_i) log(1 - p_i)]        (Eq. 11)

    computed from the logit beta h with ``binary_cross_entropy_with_logits``; the rewards are
    detached (the targets are constants). Seed ambiguity: Eq. 10 writes p = sigmoid(s(y_w) -
    s(y_l)) with s "e.g. the log-likelihood", with no beta and no reference; we use the
    DPO-style implicit reward beta h (DESIGN.md), which reduces to Eq. 10 literally when
    ``beta = 1`` and the reference log-probs are zero. As beta_r grows the targets become the
    hard labels 1[R_chosen > R_rejected] (0.5 on ties) and the loss becomes DPO on pairs the
    reward model agrees with. Seed 000 uses beta_r = 10 (App. E).

    Examples:
        >>> import torch
        >>> z = torch.zeros(2)
        >>> round(reward_level_loss(z, z, z, z, z, z, beta=0.1, beta_r=10.0).item(), 4)
        0.6931
        >>> pc = torch.tensor([1.0]); o = torch.zeros(1)
        >>> round(reward_level_loss(pc, o, o, o, torch.tensor([1.0]), o,
        ...                         beta=1.0, beta_r=100.0).item(), 4)  # ~ DPO at h = 1
        0.3133

    Args:
        policy_chosen_logps: ``[B]`` summed response log-probs of the chosen answers (policy).
        policy_rejected_logps: ``[B]`` same for the rejected answers.
        ref_chosen_logps: ``[B]`` chosen answers under the reference model.
        ref_rejected_logps: ``[B]`` rejected answers under the reference model.
        reward_chosen: ``[B]`` reward-model scores R(y_chosen | x).
        reward_rejected: ``[B]`` reward-model scores R(y_rejected | x).
        beta: inverse temperature of the policy's implicit reward (> 0).
        beta_r: sharpness of the reward gap (>= 0, finite); 0 gives targets of 0.5.

    Returns:
        Scalar loss, the mean over pairs.

    Raises:
        ValueError: on shape mismatch, an empty batch, ``beta <= 0`` or a negative or
            non-finite ``beta_r``.
    """
    _check_positive("beta", beta)
    _check_sequence_inputs(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
        reward_chosen=reward_chosen,
        reward_rejected=reward_rejected,
    )
    h = preference_logits(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    targets = reward_soft_targets(reward_chosen - reward_rejected, beta_r).to(h.dtype)
    return F.binary_cross_entropy_with_logits(beta * h, targets)


def reward_soft_targets(reward_margins: torch.Tensor, beta_r: float) -> torch.Tensor:
    """Soft preference targets of ShaPO-R (seed 000, Eq. 9): ``t = sigmoid(beta_r * Δr)``.

    ``Δr = R(x, y_w) - R(x, y_l)`` is the reward model's margin on a pair. ``beta_r`` sets how
    sharp the targets are: ``0`` gives 0.5 everywhere, large values give the hard labels
    ``1[Δr > 0]`` (0.5 on ties). The targets are constants of the method, so they are
    detached (no gradient flows into the reward model).

    Examples:
        >>> import torch
        >>> reward_soft_targets(torch.tensor([-1.0, 0.0, 1.0]), beta_r=10.0).round(decimals=4)
        tensor([0.0000, 0.5000, 1.0000])
        >>> reward_soft_targets(torch.tensor([1.0]), beta_r=0.1).round(decimals=4)
        tensor([0.5250])

    Args:
        reward_margins: ``[...]`` reward margins ``Δr`` (any shape; ``[B]`` in the loss).
        beta_r: sharpness of the reward gap (>= 0, finite).

    Returns:
        Targets in ``[0, 1]``, the shape and dtype of ``reward_margins``, detached.

    Raises:
        ValueError: on a negative or non-finite ``beta_r``; TypeError if ``reward_margins``
            is not a tensor.
    """
    if isinstance(beta_r, torch.Tensor) or not math.isfinite(beta_r) or beta_r < 0:
        raise ValueError(f"beta_r must be a finite number >= 0, got {beta_r!r}")
    if not isinstance(reward_margins, torch.Tensor):
        raise TypeError(
            f"reward_margins must be a torch.Tensor, got {type(reward_margins).__name__}"
        )
    # Soft targets are constants of the method (Eq. 9): no gradient into the reward model.
    return torch.sigmoid(beta_r * reward_margins.detach())
