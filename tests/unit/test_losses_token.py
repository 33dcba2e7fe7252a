"""Token-level losses (safelens.losses.token) against hand-computed values and limits.

Expected values are computed with ``math`` on plain floats, never with the torch expression
under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from safelens.losses import (
    constrained_sft_betas,
    constrained_sft_betas_for_mask,
    constrained_sft_loss,
    csft_pa_loss,
    csft_token_weights,
    door_loss,
    kl_adaptive_weights,
    npo_loss,
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

F64 = torch.float64

# Two right-padded rows with prompts of different lengths:
# row 0: prompt at cols 0-1, response at cols 2-4; row 1: prompt at col 0, response cols 1-2.
MASK = [[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]]
TOK_P = [[0.0, 0.0, -0.5, -1.0, -2.0], [0.0, -0.2, -3.0, 0.0, 0.0]]
TOK_REF = [[0.0, 0.0, -0.7, -0.4, -2.5], [0.0, -1.0, -2.0, 0.0, 0.0]]


def _t(values, grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=F64, requires_grad=grad)


def _mask() -> torch.Tensor:
    return torch.tensor(MASK)


def _response_cells() -> list[tuple[int, int]]:
    return [(b, t) for b, row in enumerate(MASK) for t, m in enumerate(row) if m]


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _qi_beta(k: int) -> float:
    """Qi et al.'s schedule at 1-based response position k (seed 003, Table 4)."""
    return 0.5 if k == 1 else (2.0 if k <= 5 else 0.1)


# ----------------------------------------------------------------------------- SFT


def test_sft_matches_hand() -> None:
    cells = _response_cells()
    expected = sum(-TOK_P[b][t] for b, t in cells) / len(cells)
    assert sft_loss(_t(TOK_P), _mask()).item() == pytest.approx(expected, rel=1e-12)


def test_sft_sequence_sum_matches_hand() -> None:
    sums = [sum(-TOK_P[b][t] for t in range(5) if MASK[b][t]) for b in range(2)]
    got = sft_loss(_t(TOK_P), _mask(), reduction="sequence_sum").item()
    assert got == pytest.approx(sum(sums) / 2, rel=1e-12)


def test_sft_accepts_bool_and_float_masks() -> None:
    a = sft_loss(_t(TOK_P), _mask())
    assert sft_loss(_t(TOK_P), _mask().bool()).item() == pytest.approx(a.item())
    assert sft_loss(_t(TOK_P), _mask().to(F64)).item() == pytest.approx(a.item())


def test_bad_reduction_rejected() -> None:
    with pytest.raises(ValueError, match="reduction"):
        sft_loss(_t(TOK_P), _mask(), reduction="mean")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- constrained SFT


def test_constrained_sft_matches_hand_with_scalar_beta() -> None:
    beta = 0.5
    cells = _response_cells()
    per = [-(2 / beta) * _log_sigmoid(beta * (TOK_P[b][t] - TOK_REF[b][t])) for b, t in cells]
    got = constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), beta).item()
    assert got == pytest.approx(sum(per) / len(per), rel=1e-12)


def test_constrained_sft_matches_hand_with_schedule() -> None:
    per = []
    for b, row in enumerate(MASK):
        k = 0
        for t, m in enumerate(row):
            if m:
                k += 1
                beta = _qi_beta(k)
                per.append(-(2 / beta) * _log_sigmoid(beta * (TOK_P[b][t] - TOK_REF[b][t])))
    betas = constrained_sft_betas_for_mask(_mask(), dtype=F64)
    got = constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), betas).item()
    assert got == pytest.approx(sum(per) / len(per), rel=1e-12)


def test_constrained_sft_beta_broadcasts_over_rows() -> None:
    betas_t = _t([1.0, 1.0, 0.5, 2.0, 0.1])  # [T]
    full = betas_t.expand(2, 5)
    a = constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), betas_t)
    b = constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), full)
    assert a.item() == pytest.approx(b.item(), rel=1e-14)


def test_constrained_sft_small_beta_is_sft_up_to_constant() -> None:
    # -(2/b) log sigmoid(b x) = 2 log 2 / b - x + b x^2 / 4 + O(b^3): its gradient is SFT's.
    beta = 1e-5
    cells = _response_cells()
    tok_p = _t(TOK_P, grad=True)
    loss = constrained_sft_loss(tok_p, _t(TOK_REF), _mask(), beta)
    mean_x = sum(TOK_P[b][t] - TOK_REF[b][t] for b, t in cells) / len(cells)
    assert loss.item() - 2 * math.log(2) / beta == pytest.approx(-mean_x, abs=1e-4)
    loss.backward()
    tok_p_sft = _t(TOK_P, grad=True)
    sft_loss(tok_p_sft, _mask()).backward()
    torch.testing.assert_close(tok_p.grad, tok_p_sft.grad, atol=1e-5, rtol=0)


def test_constrained_sft_large_beta_is_hinge() -> None:
    # As beta -> inf the loss tends to 2 * max(tok_ref - tok_p, 0).
    beta = 1e4
    cells = _response_cells()
    expected = sum(2 * max(TOK_REF[b][t] - TOK_P[b][t], 0.0) for b, t in cells) / len(cells)
    got = constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), beta).item()
    assert got == pytest.approx(expected, abs=1e-3)


def test_gradcheck_constrained_sft() -> None:
    betas = constrained_sft_betas_for_mask(_mask(), dtype=F64)
    assert torch.autograd.gradcheck(
        lambda p, r: constrained_sft_loss(p, r, _mask(), betas),
        (_t(TOK_P, True), _t(TOK_REF, True)),
    )


@pytest.mark.parametrize("beta", [0.0, -1.0, math.inf])
def test_constrained_sft_rejects_bad_beta(beta: float) -> None:
    with pytest.raises(ValueError, match="beta_t"):
        constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), beta)


def test_constrained_sft_rejects_non_broadcastable_beta() -> None:
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 5\)"):
        constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), _t([0.1, 0.2, 0.3]))


def test_constrained_sft_rejects_zero_in_beta_tensor() -> None:
    betas = constrained_sft_betas_for_mask(_mask(), dtype=F64)
    betas[0, 3] = 0.0
    with pytest.raises(ValueError, match="beta_t"):
        constrained_sft_loss(_t(TOK_P), _t(TOK_REF), _mask(), betas)


def test_csft_weighted_nll_form_has_the_same_gradient() -> None:
    # Seed 001 Eq. 2: -sum w_t log pi, w_t = 2 (1 - sigmoid(beta_t x)) detached.
    betas = constrained_sft_betas_for_mask(_mask(), dtype=F64)
    p1 = _t(TOK_P, grad=True)
    constrained_sft_loss(p1, _t(TOK_REF), _mask(), betas).backward()
    p2 = _t(TOK_P, grad=True)
    w = csft_token_weights(p2, _t(TOK_REF), betas)
    assert not w.requires_grad
    sft_loss(p2, _mask(), weights=w).backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=1e-12)


def test_csft_token_weights_hand() -> None:
    w = csft_token_weights(_t([[0.0, -1.0]]), _t([[0.0, 0.0]]), 2.0)
    expected = [1.0, 2 * (1 - 1 / (1 + math.exp(2.0)))]
    assert w[0].tolist() == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- beta schedule


def test_betas_schedule_values() -> None:
    assert constrained_sft_betas(8).tolist() == pytest.approx(
        [0.5, 2.0, 2.0, 2.0, 2.0, 0.1, 0.1, 0.1]
    )
    assert constrained_sft_betas(0).shape == (0,)
    assert constrained_sft_betas(3, dtype=F64).dtype == F64


def test_betas_for_mask_follow_each_rows_first_response_token() -> None:
    mask = torch.tensor(
        [
            [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0],  # long prompt, 7 response tokens, 1 pad
            [0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],  # short prompt, 3 response tokens
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # response from column 0
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  # a single response token at the end
        ]
    )
    betas = constrained_sft_betas_for_mask(mask)
    for b in range(mask.shape[0]):
        k = 0
        for t in range(mask.shape[1]):
            if mask[b, t]:
                k += 1
                assert betas[b, t].item() == pytest.approx(_qi_beta(k)), (b, t)
            else:
                assert betas[b, t].item() == pytest.approx(0.1), (b, t)
    # A row whose response starts at column 0 matches the [T] schedule.
    torch.testing.assert_close(betas[2], constrained_sft_betas(11))


def test_betas_custom_schedule() -> None:
    mask = torch.tensor([[0, 1, 1, 1, 1]])
    betas = constrained_sft_betas_for_mask(
        mask, beta_first=1.0, beta_early=3.0, early_until=2, beta_rest=0.2
    )
    assert betas[0].tolist() == pytest.approx([0.2, 1.0, 3.0, 0.2, 0.2])


def test_betas_for_mask_rejects_empty_row() -> None:
    with pytest.raises(ValueError, match="row 1 has an empty response"):
        constrained_sft_betas_for_mask(torch.tensor([[0, 1], [0, 0]]))


@pytest.mark.parametrize("kwargs", [{"early_until": 0}, {"beta_rest": 0.0}, {"beta_first": -1.0}])
def test_betas_reject_bad_schedule(kwargs) -> None:
    with pytest.raises(ValueError):
        constrained_sft_betas(4, **kwargs)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call",
    [
        lambda p, r, m: sft_loss(p, m),
        lambda p, r, m: constrained_sft_loss(p, r, m, 0.1),
        lambda p, r, m: robust_refusal_loss(p, m),
        lambda p, r, m: retain_loss(p, m),
        lambda p, r, m: door_loss(p, m, torch.zeros(2), torch.zeros(2), p, m),
        lambda p, r, m: pa_loss(torch.zeros(2, 5, 3), torch.zeros(2, 5, 3), m),
    ],
)
def test_empty_response_rejected(call) -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="row 1 has an empty response"):
        call(_t(TOK_P), _t(TOK_REF), mask)


def test_shape_mismatch_names_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(2, 4\)"):
        constrained_sft_loss(_t(TOK_P), _t(TOK_REF)[:, :4], _mask(), 0.1)
    with pytest.raises(ValueError, match=r"\[B, T\].*\(5,\)"):
        sft_loss(_t(TOK_P), torch.ones(5))


def test_non_binary_mask_rejected() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        sft_loss(_t(TOK_P), torch.tensor([[0, 2, 1, 1, 1], [0, 1, 1, 0, 0]]))


@pytest.mark.parametrize("col", [0, 3])  # a prompt column and a response column
def test_nan_is_not_silently_masked(col: int) -> None:
    p = _t(TOK_P)
    p[0, col] = math.nan
    assert torch.isnan(sft_loss(p, _mask()))
    assert torch.isnan(constrained_sft_loss(p, _t(TOK_REF), _mask(), 0.1))


# ----------------------------------------------------------------------------- W-DOOR weights


def test_wdoor_weights_hand_and_inverse() -> None:
    pi_star = [[0.8, 0.3, 0.5]]
    pi_ref = [[0.4, 0.6, 0.5]]
    tau = 5.0
    star = _t([[math.log(v) for v in pi_star[0]]])
    ref = _t([[math.log(v) for v in pi_ref[0]]])
    w = wdoor_token_weights(star, ref, tau=tau)
    expected = [(a / b) ** (1 / tau) for a, b in zip(pi_star[0], pi_ref[0], strict=True)]
    assert w[0].tolist() == pytest.approx(expected, rel=1e-12)
    w_inv = wdoor_token_weights(star, ref, tau=tau, inverse=True)
    assert w_inv[0].tolist() == pytest.approx([1 / e for e in expected], rel=1e-12)


def test_wdoor_weights_are_constants() -> None:
    star = _t([[-0.1, -2.0]], grad=True)
    ref = _t([[-0.5, -1.0]], grad=True)
    w = wdoor_token_weights(star, ref, tau=5.0)
    assert not w.requires_grad


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf])
def test_wdoor_weights_reject_bad_tau(tau: float) -> None:
    with pytest.raises(ValueError, match="tau"):
        wdoor_token_weights(_t([[0.0]]), _t([[0.0]]), tau=tau)


def test_wdoor_weights_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\(1, 2\).*\(1, 3\)"):
        wdoor_token_weights(_t([[0.0, 0.0]]), _t([[0.0, 0.0, 0.0]]), tau=1.0)


# ----------------------------------------------------------------------------- DOOR


REF_LP = [[0.0, -0.5, -1.0, -0.2], [0.0, 0.0, -2.0, 0.0]]  # refusal log-probs
REF_MASK = [[0, 1, 1, 1], [0, 0, 1, 0]]
RET_LP = [[-0.3, -0.6, 0.0]]  # retain log-probs
RET_MASK = [[1, 1, 0]]
HARM_P, HARM_R = [-10.0, -20.0], [-12.0, -19.0]


def _masked_mean(values, mask) -> float:
    cells = [
        v
        for row_v, row_m in zip(values, mask, strict=True)
        for v, m in zip(row_v, row_m, strict=True)
        if m
    ]
    return sum(cells) / len(cells)


def _door_hand(beta: float, alpha: float, weights=None) -> float:
    w = weights or [[1.0] * 4, [1.0] * 4]
    refusal = _masked_mean(
        [
            [-wi * lp for wi, lp in zip(wr, lr, strict=True)]
            for wr, lr in zip(w, REF_LP, strict=True)
        ],
        REF_MASK,
    )
    npo = (
        sum(
            -(2 / beta) * _log_sigmoid(-beta * (p - r)) for p, r in zip(HARM_P, HARM_R, strict=True)
        )
        / 2
    )
    retain = _masked_mean([[-v for v in row] for row in RET_LP], RET_MASK)
    return alpha * (refusal + npo) + (1 - alpha) * retain


def _door_args(grad: bool = False):
    return (
        _t(REF_LP, grad),
        torch.tensor(REF_MASK),
        _t(HARM_P, grad),
        _t(HARM_R),
        _t(RET_LP, grad),
        torch.tensor(RET_MASK),
    )


@pytest.mark.parametrize("beta,alpha", [(0.5, 0.2), (0.1, 0.7), (1.0, 1.0), (0.5, 0.0)])
def test_door_matches_hand(beta: float, alpha: float) -> None:
    got = door_loss(*_door_args(), beta=beta, alpha=alpha).item()
    assert got == pytest.approx(_door_hand(beta, alpha), rel=1e-12)


def test_door_defaults_are_seed_values() -> None:
    assert door_loss(*_door_args()).item() == pytest.approx(_door_hand(0.5, 0.2), rel=1e-12)


def test_wdoor_matches_hand() -> None:
    weights = [[1.0, 1.5, 0.5, 2.0], [1.0, 1.0, 3.0, 1.0]]
    got = door_loss(*_door_args(), refusal_weights=_t(weights)).item()
    assert got == pytest.approx(_door_hand(0.5, 0.2, weights), rel=1e-12)


def test_door_sequence_sum_matches_hand() -> None:
    refusal = (
        sum(
            -lp
            for row_v, row_m in zip(REF_LP, REF_MASK, strict=True)
            for lp, m in zip(row_v, row_m, strict=True)
            if m
        )
        / 2
    )
    npo = (
        sum(-(2 / 0.5) * _log_sigmoid(-0.5 * (p - r)) for p, r in zip(HARM_P, HARM_R, strict=True))
        / 2
    )
    retain = 0.3 + 0.6
    expected = 0.2 * (refusal + npo) + 0.8 * retain
    got = door_loss(*_door_args(), reduction="sequence_sum").item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_door_is_sum_of_its_pieces() -> None:
    a = _door_args()
    total = door_loss(*a, beta=0.5, alpha=0.3)
    pieces = 0.3 * (
        robust_refusal_loss(a[0], a[1]) + npo_loss(a[2], a[3], beta=0.5)
    ) + 0.7 * retain_loss(a[4], a[5])
    assert total.item() == pytest.approx(pieces.item(), rel=1e-14)


def test_gradcheck_door() -> None:
    lp, m, hp, hr, rp, rm = _door_args(grad=True)
    weights = _t([[1.0, 1.5, 0.5, 2.0], [1.0, 1.0, 3.0, 1.0]])
    assert torch.autograd.gradcheck(
        lambda a, b, c: door_loss(a, m, b, hr, c, rm, refusal_weights=weights), (lp, hp, rp)
    )


def test_door_refusal_weights_get_no_gradient() -> None:
    weights = _t([[1.0, 1.5, 0.5, 2.0], [1.0, 1.0, 3.0, 1.0]], grad=True)
    args = _door_args(grad=True)
    door_loss(*args, refusal_weights=weights).backward()
    assert weights.grad is None
    assert args[0].grad is not None


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_door_rejects_bad_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        door_loss(*_door_args(), alpha=alpha)


# ----------------------------------------------------------------------------- W-DOOR, public code


def test_simnpo_matches_hand() -> None:
    p, n, beta, gamma = [-4.2, -10.0, -0.3], [7, 12, 2], 0.5, 1.0
    expected = sum(-(2 / beta) * _log_sigmoid(-beta * pi / ni - gamma)
                   for pi, ni in zip(p, n, strict=True)) / 3
    got = simnpo_loss(_t(p), torch.tensor(n), beta=beta, gamma=gamma)
    assert got.dtype == F64 and got.item() == pytest.approx(expected, rel=1e-12)
    # gamma = 0 and L = 1: NPO against a reference of log-prob 0
    assert simnpo_loss(_t(p), torch.ones(3), beta=beta, gamma=0.0).item() == pytest.approx(
        npo_loss(_t(p), _t([0.0] * 3), beta=beta).item(), rel=1e-12)


@pytest.mark.parametrize("reduction", ["sequence_sum", "token_mean"])
def test_wdoor_public_matches_hand(reduction: str) -> None:
    weights = [[1.0, 1.0, 2.0, 0.5, 1.0], [1.0, 3.0, 0.25, 1.0, 1.0]]
    harm, lengths, beta, gamma, alpha = [-6.0, -2.5], [3, 10], 0.5, 1.0, 0.2
    cells = _response_cells()
    per = 2 if reduction == "sequence_sum" else len(cells)  # rows or tokens
    refusal = sum(-weights[b][t] * TOK_P[b][t] for b, t in cells) / per
    unlearn = sum(-(2 / beta) * _log_sigmoid(-beta * h / n - gamma)
                  for h, n in zip(harm, lengths, strict=True)) / 2
    retain = sum(-TOK_REF[b][t] for b, t in cells) / per
    expected = alpha * (refusal + unlearn) + (1 - alpha) * retain
    got = wdoor_public_loss(_t(TOK_P), _mask(), _t(harm), torch.tensor(lengths), _t(TOK_REF),
                            _mask(), refusal_weights=_t(weights), beta=beta, gamma=gamma,
                            alpha=alpha, reduction=reduction)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def _public_wgdnpo(main, ref, dpo, labels, npo_seq, npo_len, util_seq, *, beta=0.5, alpha=0.2,
                   gamma=1.0, tau=1.0, adaptive="exp"):
    """github.com/wicai24/DOOR-Alignment utils/loss.py ``wgdnpo_loss`` (lines 160-226) written
    out on the log-probs its forwards give: ``get_log_probs`` is 0 where the label is -100."""
    main = main * labels  # [B, T] preferred_log_probs_main
    if adaptive == "sigmoid":
        adaptive_weights = 1 - torch.sigmoid(gamma * (dpo - ref))  # sigmoid_weights
    else:
        adaptive_weights = torch.exp((ref - dpo) / tau)  # exp_weights
    gd_loss_val = -(adaptive_weights * main).sum(dim=-1).mean()
    normalized_log_probs = npo_seq / npo_len
    npo_loss_val = -F.logsigmoid(-beta * normalized_log_probs - gamma)
    npo_loss_val = npo_loss_val.sum(dim=-1).mean()
    wgdnpo_loss_val = gd_loss_val + (npo_loss_val * 2 / beta)
    utility_loss = -util_seq.mean()
    return alpha * wgdnpo_loss_val + (1 - alpha) * utility_loss


@pytest.mark.parametrize("adaptive", ["exp", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wdoor_public_equals_the_public_code_row_by_row(adaptive: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    B, T = 4, 7
    mask = (torch.rand(B, T, generator=g) < 0.7).to(F64)
    mask[:, 0] = 1.0  # no empty response
    main, ref, dpo = (-3 * torch.rand(B, T, generator=g, dtype=F64) for _ in range(3))
    npo_seq = -20 * torch.rand(B, generator=g, dtype=F64)
    npo_len = torch.randint(5, 60, (B,), generator=g)
    util_tok = -2 * torch.rand(B, T, generator=g, dtype=F64) * mask
    gamma, tau = 1.0, 1.0  # the public code's (type 11: gamma; type 12: tau)
    weights = wdoor_token_weights(dpo, ref, tau=tau if adaptive == "exp" else 1 / gamma,
                                  inverse=True, kind=adaptive)
    ours = wdoor_public_loss(main * mask, mask, npo_seq, npo_len, util_tok, mask,
                             refusal_weights=weights, gamma=gamma)
    public_rows = [_public_wgdnpo(main[i:i + 1], ref[i:i + 1], dpo[i:i + 1], mask[i:i + 1],
                                  npo_seq[i:i + 1], npo_len[i:i + 1], util_tok[i:i + 1].sum(-1),
                                  gamma=gamma, tau=tau, adaptive=adaptive) for i in range(B)]
    assert ours.item() == pytest.approx(torch.stack(public_rows).mean().item(), rel=1e-12)
    # the one difference on a whole batch: its NPO term is summed over rows, ours averaged
    public = _public_wgdnpo(main, ref, dpo, mask, npo_seq, npo_len, util_tok.sum(-1),
                            gamma=gamma, tau=tau, adaptive=adaptive)
    npo = simnpo_loss(npo_seq, npo_len, gamma=gamma)
    assert public.item() == pytest.approx((ours + 0.2 * (B - 1) * npo).item(), rel=1e-12)


def test_public_weights_are_the_public_codes() -> None:
    g = torch.Generator().manual_seed(3)
    dpo, ref = (-3 * torch.rand(2, 5, generator=g, dtype=F64) for _ in range(2))
    assert torch.allclose(wdoor_token_weights(dpo, ref, tau=2.0, inverse=True),
                          torch.exp((ref - dpo) / 2.0))
    assert torch.allclose(wdoor_token_weights(dpo, ref, tau=1 / 3.0, inverse=True,
                                              kind="sigmoid"),
                          1 - torch.sigmoid(3.0 * (dpo - ref)))
    with pytest.raises(ValueError, match="kind must be"):
        wdoor_token_weights(dpo, ref, kind="linear")  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs,match", [({"beta": 0.0}, "beta"), ({"gamma": math.inf}, "gamma")])
def test_simnpo_rejects_bad_settings(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        simnpo_loss(_t([-1.0]), torch.tensor([2]), **kwargs)
    with pytest.raises(ValueError, match="lengths must be > 0"):
        simnpo_loss(_t([-1.0]), torch.tensor([0]))


def test_gradcheck_wdoor_public() -> None:
    p = _t(TOK_P, grad=True)
    h = _t([-6.0, -2.5], grad=True)
    r = _t(TOK_REF, grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c: wdoor_public_loss(a, _mask(), b, torch.tensor([3, 10]), c, _mask()),
        (p, h, r))


# ----------------------------------------------------------------------------- CSFT + PA


def _dist_logits(rows) -> torch.Tensor:
    """Logits whose softmax is the given distributions: [B, T, V]."""
    return torch.tensor([[[math.log(p) for p in dist] for dist in row] for row in rows], dtype=F64)


POL = [[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]]
REF = [[[0.2, 0.7, 0.1], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]]]
PA_MASK = [[1, 1, 0]]


def _kl(p, q) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def test_kl_adaptive_weights_hand() -> None:
    mu = kl_adaptive_weights(_dist_logits(POL), _dist_logits(REF))
    expected = [_kl(p, q) for p, q in zip(POL[0], REF[0], strict=True)]
    assert mu[0].tolist() == pytest.approx(expected, rel=1e-12)
    same = kl_adaptive_weights(_dist_logits(POL), _dist_logits(POL))
    assert same.abs().max().item() < 1e-12
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 6, 9, generator=gen), torch.randn(4, 6, 9, generator=gen)
    assert (kl_adaptive_weights(a, b) >= -1e-6).all()


def _pa_hand(mu_override=None) -> float:
    terms = []
    for t, m in enumerate(PA_MASK[0]):
        if not m:
            continue
        p, q = POL[0][t], REF[0][t]
        y_al = max(range(3), key=lambda v: q[v])
        y_th = max(range(3), key=lambda v: p[v])
        delta = math.log(p[y_al]) - math.log(p[y_th])
        mu = _kl(p, q) if mu_override is None else mu_override
        terms.append(-_log_sigmoid(mu * delta))
    return sum(terms) / len(terms)


def test_pa_loss_matches_hand() -> None:
    got = pa_loss(_dist_logits(POL), _dist_logits(REF), torch.tensor(PA_MASK), argmax="hard").item()
    assert got == pytest.approx(_pa_hand(), rel=1e-12)
    # Column 2 is masked out: changing it changes nothing.
    pol = _dist_logits(POL)
    pol[0, 2] = torch.tensor([5.0, -3.0, 0.0], dtype=F64)
    again = pa_loss(pol, _dist_logits(REF), torch.tensor(PA_MASK), argmax="hard").item()
    assert again == pytest.approx(got, rel=1e-14)


def test_pa_loss_constant_mu() -> None:
    got = pa_loss(_dist_logits(POL), _dist_logits(REF), torch.tensor(PA_MASK), mu=2.0,
                  argmax="hard").item()
    assert got == pytest.approx(_pa_hand(mu_override=2.0), rel=1e-12)
    mu_t = _t([[2.0, 2.0, 7.0]])
    got_t = pa_loss(_dist_logits(POL), _dist_logits(REF), torch.tensor(PA_MASK), mu=mu_t,
                    argmax="hard").item()
    assert got_t == pytest.approx(got, rel=1e-14)


def test_pa_loss_max_mu_clamps() -> None:
    got = pa_loss(_dist_logits(POL), _dist_logits(REF), torch.tensor(PA_MASK), max_mu=0.01,
                  argmax="hard").item()
    # Both KLs exceed 0.01, so every mu_t is clamped to 0.01.
    assert all(_kl(p, q) > 0.01 for p, q in zip(POL[0][:2], REF[0][:2], strict=True))
    assert got == pytest.approx(_pa_hand(mu_override=0.01), rel=1e-12)


def test_pa_loss_agreeing_models_is_log2_with_zero_gradient() -> None:
    pol = _dist_logits(POL).requires_grad_(True)
    ref = _dist_logits([[[0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]]])  # same argmaxes
    loss = pa_loss(pol, ref, torch.tensor([[1, 1, 1]]), argmax="hard")
    assert loss.item() == pytest.approx(math.log(2), rel=1e-12)
    loss.backward()
    assert pol.grad.abs().max().item() < 1e-12


def test_pa_loss_gradient_raises_aligned_token() -> None:
    pol = _dist_logits(POL).requires_grad_(True)
    pa_loss(pol, _dist_logits(REF), torch.tensor(PA_MASK), detach_mu=True).backward()
    # Position 0: y_al = 1, y_th = 0. Descent raises logit 1 and lowers logit 0.
    assert pol.grad[0, 0, 1] < 0 < pol.grad[0, 0, 0]


def test_pa_loss_detach_mu_changes_gradient_not_value() -> None:
    a = _dist_logits(POL).requires_grad_(True)
    b = _dist_logits(POL).requires_grad_(True)
    la = pa_loss(a, _dist_logits(REF), torch.tensor(PA_MASK))
    lb = pa_loss(b, _dist_logits(REF), torch.tensor(PA_MASK), detach_mu=True)
    assert la.item() == pytest.approx(lb.item(), rel=1e-14)
    la.backward()
    lb.backward()
    assert not torch.allclose(a.grad, b.grad)


def test_gradcheck_pa_loss() -> None:
    pol = _dist_logits(POL).requires_grad_(True)
    ref = _dist_logits(REF)
    assert torch.autograd.gradcheck(lambda x: pa_loss(x, ref, torch.tensor(PA_MASK)), (pol,))


def test_pa_loss_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\[B, T, V\].*\(1, 3\).*\(1, 2, 3\)"):
        pa_loss(_dist_logits(POL)[:, :2], _dist_logits(REF), torch.tensor(PA_MASK))


def test_pa_delta_schedule() -> None:
    assert pa_delta_schedule(0, 10) == pytest.approx(0.1)
    assert pa_delta_schedule(5, 10) == pytest.approx(0.2)
    assert pa_delta_schedule(10, 10) == pytest.approx(0.3)
    assert pa_delta_schedule(2.5, 5) == pytest.approx(0.2)
    values = [pa_delta_schedule(e, 6) for e in range(7)]
    assert values == sorted(values) and max(values) <= 0.3 + 1e-12
    with pytest.raises(ValueError, match="epoch"):
        pa_delta_schedule(11, 10)
    with pytest.raises(ValueError, match="max_epoch"):
        pa_delta_schedule(0, 0)


def test_csft_pa_total_is_csft_plus_delta_pa() -> None:
    pol, ref = _dist_logits(POL), _dist_logits(REF)
    labels = torch.tensor([[1, 1, 2]])
    tok_p = torch.log_softmax(pol, -1).gather(-1, labels[..., None]).squeeze(-1)
    tok_ref = torch.log_softmax(ref, -1).gather(-1, labels[..., None]).squeeze(-1)
    mask = torch.tensor(PA_MASK)
    betas = constrained_sft_betas_for_mask(mask, dtype=F64)
    delta = pa_delta_schedule(1, 3)
    total = csft_pa_loss(tok_p, tok_ref, mask, betas, pol, ref, delta, argmax="hard")
    csft = (
        sum(
            -(2 / _qi_beta(k + 1))
            * _log_sigmoid(_qi_beta(k + 1) * (math.log(POL[0][k][1]) - math.log(REF[0][k][1])))
            for k in range(2)
        )
        / 2
    )
    assert total.item() == pytest.approx(csft + delta * _pa_hand(), rel=1e-12)


def test_kl_adaptive_weights_ignore_tokens_impossible_in_both_models() -> None:
    # Vocabulary padding with -inf logits in both models: 0 * log(0/0) counts as 0.
    pol = torch.tensor([[[1.0, 0.0, -math.inf]]], dtype=F64, requires_grad=True)
    ref = torch.tensor([[[0.0, 1.0, -math.inf]]], dtype=F64)
    mu = kl_adaptive_weights(pol, ref)
    p = [math.e / (math.e + 1), 1 / (math.e + 1)]
    q = [1 / (math.e + 1), math.e / (math.e + 1)]
    assert mu.item() == pytest.approx(_kl(p, q), rel=1e-12)
    mu.sum().backward()
    assert torch.isfinite(pol.grad).all()


def test_pa_loss_rejects_non_broadcastable_mu() -> None:
    with pytest.raises(ValueError, match=r"mu of shape \(2,\)"):
        pa_loss(_dist_logits(POL), _dist_logits(REF), torch.tensor(PA_MASK), mu=_t([1.0, 2.0]))


def test_pa_soft_argmax_tends_to_hard_as_temperature_falls() -> None:
    pol, ref, mask = _dist_logits(POL), _dist_logits(REF), torch.tensor(PA_MASK)
    hard = pa_loss(pol, ref, mask, argmax="hard").item()
    gaps = [abs(pa_loss(pol, ref, mask, temperature=t).item() - hard) for t in (1.0, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-12


def test_pa_soft_argmax_is_the_default_and_differentiable() -> None:
    pol = _dist_logits(POL).requires_grad_(True)
    loss = pa_loss(pol, _dist_logits(REF), torch.tensor(PA_MASK))
    assert loss.item() != pa_loss(pol, _dist_logits(REF), torch.tensor(PA_MASK), argmax="hard").item()
    loss.backward()
    assert torch.isfinite(pol.grad).all() and pol.grad.abs().sum() > 0


def test_pa_terms_infinite_kl_is_clipped_never_nan() -> None:
    # The reference gives token 2 probability 0 where the policy puts mass: KL = inf.
    pol = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[0.0, 1.0, -math.inf], [2.0, 0.0, 0.0]])
    terms = pa_terms(pol, ref, max_mu=10.0)
    assert terms["clipped"].tolist() == [True, False]
    assert terms["mu"][0].item() == 10.0 and torch.isfinite(terms["loss"]).all()
    terms["loss"].sum().backward()
    assert torch.isfinite(pol.grad).all()
    unclamped = pa_terms(pol, ref)  # the floor alone keeps mu finite
    assert torch.isfinite(unclamped["mu"]).all() and unclamped["mu"][0].item() > 30


def test_pa_terms_rejects_bad_settings() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="argmax must be one of"):
        pa_terms(x, x, argmax="gumbel")
    with pytest.raises(ValueError, match="temperature"):
        pa_terms(x, x, temperature=0.0)
    with pytest.raises(ValueError, match=r"\[N, V\]"):
        pa_terms(x, torch.zeros(2, 4))
