"""Sequence-level losses (safelens.losses.preference) against hand-computed values.

Expected values are computed with ``math`` on plain floats, never with the torch expression
under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from safelens.losses import (
    SEQUENCE_LOSSES,
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

# Three pairs. h = (pc - rc) - (pr - rr) = [1.5, -1.5, -1.0].
PC = [-1.0, -4.0, -2.5]
PR = [-3.0, -2.0, -2.5]
RC = [-1.5, -3.0, -2.0]
RR = [-2.0, -2.5, -3.0]
H = [(pc - rc) - (pr - rr) for pc, pr, rc, rr in zip(PC, PR, RC, RR, strict=True)]


def _t(values: list[float], grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


def _inputs(grad: bool = False) -> tuple[torch.Tensor, ...]:
    return _t(PC, grad), _t(PR, grad), _t(RC, grad), _t(RR, grad)


def _log_sigmoid(x: float) -> float:
    # log(1 / (1 + e^-x)), written two ways so both signs are exact in float.
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_hand_margins() -> None:
    assert H == [1.5, -1.5, -1.0]
    assert preference_logits(*_inputs()).tolist() == H


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_matches_hand(beta: float) -> None:
    expected = _mean([-_log_sigmoid(beta * h) for h in H])
    assert dpo_loss(*_inputs(), beta=beta).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_ipo_matches_hand(beta: float) -> None:
    expected = _mean([(h - 1 / (2 * beta)) ** 2 for h in H])
    assert ipo_loss(*_inputs(), beta=beta).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta,eps", [(0.1, 0.1), (1.0, 0.25), (2.0, 0.5)])
def test_cdpo_matches_hand(beta: float, eps: float) -> None:
    expected = _mean(
        [-(1 - eps) * _log_sigmoid(beta * h) - eps * _log_sigmoid(-beta * h) for h in H]
    )
    assert cdpo_loss(*_inputs(), beta=beta, eps=eps).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta,eps", [(0.1, 0.1), (1.0, 0.25), (2.0, 0.45)])
def test_rdpo_matches_hand(beta: float, eps: float) -> None:
    expected = _mean(
        [
            (-(1 - eps) * _log_sigmoid(beta * h) + eps * _log_sigmoid(-beta * h)) / (1 - 2 * eps)
            for h in H
        ]
    )
    assert rdpo_loss(*_inputs(), beta=beta, eps=eps).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta_prime", [0.25, 1.0, 10.0])
def test_drdpo_matches_hand(beta_prime: float) -> None:
    beta = 0.7
    losses = [-_log_sigmoid(beta * h) for h in H]
    expected = -beta_prime * math.log(_mean([math.exp(-lo / beta_prime) for lo in losses]))
    got = drdpo_loss(*_inputs(), beta=beta, beta_prime=beta_prime).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_npo_matches_hand() -> None:
    p, r = [-5.0, -1.0, -3.0], [-4.0, -2.0, -3.0]
    beta = 0.5
    expected = _mean(
        [-(2 / beta) * _log_sigmoid(-beta * (a - b)) for a, b in zip(p, r, strict=True)]
    )
    assert npo_loss(_t(p), _t(r), beta=beta).item() == pytest.approx(expected, rel=1e-12)
    # Second form of the seed: (2 / beta) log(1 + (pi / pi_ref)^beta).
    alt = _mean(
        [(2 / beta) * math.log1p(math.exp(beta * (a - b))) for a, b in zip(p, r, strict=True)]
    )
    assert expected == pytest.approx(alt, rel=1e-12)


@pytest.mark.parametrize("beta,beta_r", [(0.1, 1.0), (1.0, 0.1), (0.5, 10.0)])
def test_reward_level_matches_hand(beta: float, beta_r: float) -> None:
    rew_c, rew_r = [0.3, -1.0, 2.0], [0.1, 0.5, 2.0]
    expected = []
    for h, a, b in zip(H, rew_c, rew_r, strict=True):
        t = 1 / (1 + math.exp(-beta_r * (a - b)))
        p = 1 / (1 + math.exp(-beta * h))
        expected.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    got = reward_level_loss(*_inputs(), _t(rew_c), _t(rew_r), beta=beta, beta_r=beta_r).item()
    assert got == pytest.approx(_mean(expected), rel=1e-10)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (dpo_loss, {"beta": 0.3}),
        (ipo_loss, {"beta": 0.3}),
        (cdpo_loss, {"beta": 0.3, "eps": 0.2}),
        (rdpo_loss, {"beta": 0.3, "eps": 0.2}),
        (drdpo_loss, {"beta": 0.3, "beta_prime": 0.5}),
        (drdpo_loss, {"beta": 0.3, "beta_prime": math.inf}),
    ],
)
def test_gradcheck_sequence_losses(fn, kwargs) -> None:
    inputs = _inputs(grad=True)
    assert torch.autograd.gradcheck(lambda *x: fn(*x, **kwargs), inputs)


def test_gradcheck_npo() -> None:
    p, r = _t([-5.0, -1.0, -3.0], True), _t([-4.0, -2.0, -3.0], True)
    assert torch.autograd.gradcheck(lambda a, b: npo_loss(a, b, beta=0.5), (p, r))


def test_gradcheck_reward_level_policy_inputs() -> None:
    rew_c, rew_r = _t([0.3, -1.0, 2.0]), _t([0.1, 0.5, 2.0])
    assert torch.autograd.gradcheck(
        lambda *x: reward_level_loss(*x, rew_c, rew_r, beta=0.4, beta_r=2.0), _inputs(grad=True)
    )


def test_dpo_gradient_direction() -> None:
    pc, pr, rc, rr = _inputs(grad=True)
    dpo_loss(pc, pr, rc, rr, beta=0.1).backward()
    # Descent raises the chosen log-prob and lowers the rejected one.
    assert (pc.grad < 0).all() and (pr.grad > 0).all()


def test_npo_gradient_pushes_logprob_down() -> None:
    p = _t([-5.0, -1.0], grad=True)
    npo_loss(p, _t([-4.0, -2.0]), beta=0.5).backward()
    assert (p.grad > 0).all()


def test_reward_targets_are_constants() -> None:
    rew_c = _t([0.3, -1.0, 2.0], grad=True)
    rew_r = _t([0.1, 0.5, 2.0], grad=True)
    pc, pr, rc, rr = _inputs(grad=True)
    reward_level_loss(pc, pr, rc, rr, rew_c, rew_r, beta=0.4, beta_r=2.0).backward()
    assert rew_c.grad is None and rew_r.grad is None
    assert pc.grad is not None


# ----------------------------------------------------------------------------- edge cases


def test_eps_zero_is_dpo() -> None:
    dpo = dpo_loss(*_inputs(), beta=0.3)
    assert cdpo_loss(*_inputs(), beta=0.3, eps=0.0).item() == pytest.approx(dpo.item(), rel=1e-14)
    assert rdpo_loss(*_inputs(), beta=0.3, eps=0.0).item() == pytest.approx(dpo.item(), rel=1e-14)


def test_cdpo_half_is_symmetric() -> None:
    # At eps = 0.5 the label carries no information: loss(h) = loss(-h).
    a = cdpo_loss(*_inputs(), beta=0.3, eps=0.5)
    pc, pr, rc, rr = _inputs()
    b = cdpo_loss(pr, pc, rr, rc, beta=0.3, eps=0.5)
    assert a.item() == pytest.approx(b.item(), rel=1e-14)


@pytest.mark.parametrize("eps", [0.5, 0.7, -0.1, math.nan])
def test_rdpo_rejects_eps_at_or_above_half(eps: float) -> None:
    with pytest.raises(ValueError, match=r"eps .* \[0, 0.5\)"):
        rdpo_loss(*_inputs(), beta=0.1, eps=eps)


def test_rdpo_near_half_is_finite_and_large() -> None:
    loss = rdpo_loss(*_inputs(), beta=0.1, eps=0.499)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("eps", [0.6, -0.01])
def test_cdpo_rejects_eps_outside_range(eps: float) -> None:
    with pytest.raises(ValueError, match="eps"):
        cdpo_loss(*_inputs(), beta=0.1, eps=eps)


def test_drdpo_inf_is_exactly_the_mean() -> None:
    dpo = dpo_loss(*_inputs(), beta=0.3)
    dr = drdpo_loss(*_inputs(), beta=0.3, beta_prime=math.inf)
    assert torch.equal(dr, dpo)


def test_drdpo_large_beta_prime_tends_to_mean() -> None:
    dpo = dpo_loss(*_inputs(), beta=0.3).item()
    assert drdpo_loss(*_inputs(), beta=0.3, beta_prime=1e6).item() == pytest.approx(dpo, rel=1e-6)


def test_drdpo_small_beta_prime_tends_to_min_and_is_below_mean() -> None:
    losses = [-_log_sigmoid(0.3 * h) for h in H]
    small = drdpo_loss(*_inputs(), beta=0.3, beta_prime=1e-3).item()
    assert small == pytest.approx(min(losses), abs=1e-2)
    for bp in (0.1, 1.0, 10.0):  # Jensen: soft-min never exceeds the mean
        assert drdpo_loss(*_inputs(), beta=0.3, beta_prime=bp).item() <= _mean(losses) + 1e-12


@pytest.mark.parametrize("beta_prime", [0.0, -1.0, math.nan])
def test_drdpo_rejects_non_positive_beta_prime(beta_prime: float) -> None:
    with pytest.raises(ValueError, match="beta_prime"):
        drdpo_loss(*_inputs(), beta=0.1, beta_prime=beta_prime)


@pytest.mark.parametrize("beta_prime", [1e-3, 1.0, math.inf])
def test_drdpo_stable_for_huge_losses(beta_prime: float) -> None:
    # h = -1e4 on one pair: l = 1e4 * beta, exp(-l / beta') underflows without logsumexp.
    pc = torch.tensor([-1e4, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    z = torch.zeros(3, dtype=torch.float64)
    loss = drdpo_loss(pc, z, z, z, beta=1.0, beta_prime=beta_prime)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pc.grad).all()
    # One pair alone: Dr.DPO reduces to that pair's loss, l = -log sigmoid(-1e4) = 1e4.
    one = torch.tensor([-1e4], dtype=torch.float32)
    zero = torch.zeros(1)
    single = drdpo_loss(one, zero, zero, zero, beta=1.0, beta_prime=beta_prime)
    assert single.item() == pytest.approx(1e4, rel=1e-6)


def test_dpo_stable_for_huge_margins() -> None:
    pc = torch.tensor([-1e4, 1e4], requires_grad=True)
    z = torch.zeros(2)
    loss = dpo_loss(pc, z, z, z, beta=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(1e4 / 2, rel=1e-6)
    assert torch.isfinite(pc.grad).all()


def test_ipo_minimised_at_target_margin() -> None:
    beta = 0.25
    pc = torch.tensor([1 / (2 * beta)])
    z = torch.zeros(1)
    assert ipo_loss(pc, z, z, z, beta=beta).item() == 0.0


def test_reward_level_huge_beta_r_gives_hard_labels() -> None:
    rew_c, rew_r = [1.0, -1.0, 0.3], [0.0, 0.0, 0.1]  # targets 1, 0, 1
    beta = 0.5
    expected = []
    for h, t in zip(H, [1.0, 0.0, 1.0], strict=True):
        p = 1 / (1 + math.exp(-beta * h))
        expected.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    got = reward_level_loss(*_inputs(), _t(rew_c), _t(rew_r), beta=beta, beta_r=1e4).item()
    assert got == pytest.approx(_mean(expected), rel=1e-9)


def test_reward_level_hard_positive_labels_equal_dpo() -> None:
    ones = _t([1.0, 1.0, 1.0])
    zeros = _t([0.0, 0.0, 0.0])
    got = reward_level_loss(*_inputs(), ones, zeros, beta=0.3, beta_r=1e4)
    assert got.item() == pytest.approx(dpo_loss(*_inputs(), beta=0.3).item(), rel=1e-9)


def test_reward_level_beta_r_zero_gives_half_targets() -> None:
    beta = 0.5
    expected = _mean([-0.5 * (_log_sigmoid(beta * h) + _log_sigmoid(-beta * h)) for h in H])
    got = reward_level_loss(*_inputs(), _t([5.0, -5.0, 0.0]), _t([0.0] * 3), beta=beta, beta_r=0.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta_r", [0.0, 0.1, 1.0, 10.0])
def test_reward_soft_targets_match_hand_and_are_detached(beta_r: float) -> None:
    margins = [-2.0, -0.1, 0.0, 0.3, 5.0]
    d = _t(margins).requires_grad_(True)
    got = reward_soft_targets(d, beta_r)
    assert not got.requires_grad and got.shape == d.shape
    for g, m in zip(got.tolist(), margins, strict=True):
        assert g == pytest.approx(1 / (1 + math.exp(-beta_r * m)), rel=1e-12)
    with pytest.raises(ValueError, match="beta_r"):
        reward_soft_targets(d, -1.0)
    with pytest.raises(TypeError, match="reward_margins"):
        reward_soft_targets([0.0], 1.0)  # type: ignore[arg-type]


def test_reward_level_literal_eq10_with_unit_beta_and_no_reference() -> None:
    # Seed 000 Eq. 10: p = sigmoid(s(y_w) - s(y_l)) with s the log-likelihood.
    s_w, s_l = [-2.0, -1.0], [-3.0, -0.5]
    rc_, rr_ = [0.2, 0.0], [0.0, 0.4]
    z = _t([0.0, 0.0])
    expected = []
    for a, b, ra, rb in zip(s_w, s_l, rc_, rr_, strict=True):
        p = 1 / (1 + math.exp(-(a - b)))
        t = 1 / (1 + math.exp(-2.0 * (ra - rb)))
        expected.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    got = reward_level_loss(_t(s_w), _t(s_l), z, z, _t(rc_), _t(rr_), beta=1.0, beta_r=2.0)
    assert got.item() == pytest.approx(_mean(expected), rel=1e-12)


# ----------------------------------------------------------------------------- validation


def test_shape_mismatch_names_shapes() -> None:
    pc, pr, rc, _ = _inputs()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        dpo_loss(pc, pr, rc, torch.zeros(2, dtype=torch.float64), beta=0.1)


def test_two_dim_input_rejected() -> None:
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"must be \[B\].*\(2, 3\)"):
        dpo_loss(z, z, z, z, beta=0.1)


def test_empty_batch_rejected() -> None:
    z = torch.zeros(0)
    with pytest.raises(ValueError, match="empty batch"):
        dpo_loss(z, z, z, z, beta=0.1)


@pytest.mark.parametrize("beta", [0.0, -0.1, math.inf, math.nan])
def test_bad_beta_rejected(beta: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(*_inputs(), beta=beta)


def test_reward_level_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="reward_chosen"):
        reward_level_loss(*_inputs(), _t([1.0]), _t([0.0, 0.0, 0.0]), beta=0.1, beta_r=1.0)


def test_npo_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        npo_loss(_t([1.0, 2.0, 3.0]), _t([1.0, 2.0]), beta=0.5)


@pytest.mark.parametrize("name", sorted(SEQUENCE_LOSSES))
def test_nan_is_not_hidden(name: str) -> None:
    pc, pr, rc, rr = _inputs()
    pc = pc.clone()
    pc[1] = math.nan
    kwargs = {"eps": 0.1} if name in ("cdpo", "rdpo") else {}
    assert torch.isnan(SEQUENCE_LOSSES[name](pc, pr, rc, rr, beta=0.1, **kwargs))


def test_sequence_losses_registry() -> None:
    assert set(SEQUENCE_LOSSES) == {"dpo", "ipo", "cdpo", "rdpo", "drdpo"}
    assert SEQUENCE_LOSSES["dpo"] is dpo_loss
    extra = {"cdpo": {"eps": 0.1}, "rdpo": {"eps": 0.1}, "drdpo": {"beta_prime": 1.0}}
    for name, fn in SEQUENCE_LOSSES.items():
        out = fn(*_inputs(), beta=0.1, **extra.get(name, {}))
        assert out.shape == () and torch.isfinite(out)
