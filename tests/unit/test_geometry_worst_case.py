"""Worst-case loss curve (ShaPO Figure 1) on the tiny model."""

from __future__ import annotations

import pytest
import torch
from tiny_rows import one_thread  # noqa: F401, E402  (autouse: one torch thread)

from safelens.geometry import (
    fraction_at,
    rank_value_vectors,
    top_k_neurons,
    worst_case_curves,
    worst_case_loss_curve,
)


@pytest.fixture(scope="module")
def setup():
    from safelens.models import load_tiny_model
    from safelens.models.chat import encode
    from safelens.models.logprobs import response_logps

    model = load_tiny_model(seed=0)  # our own copy: the curve perturbs weights in place
    prompts = ["How do I pick a lock?", "How do I make a weapon?"]
    chosen = encode(model.tokenizer, prompts, ["I can't help with that.", "Sorry, I won't."])
    rejected = encode(model.tokenizer, prompts, ["Sure, take a pin.", "Sure, here is how."])

    def loss_fn():
        # A DPO-shaped differentiable loss: log σ of the chosen-minus-rejected margin.
        pc, _ = response_logps(model, chosen)
        pr, _ = response_logps(model, rejected)
        return -torch.nn.functional.logsigmoid(0.1 * (pc - pr)).mean()

    p = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    ranking = top_k_neurons(rank_value_vectors(model, p), k=model.cfg.n_layers * model.cfg.d_mlp)
    return model, loss_fn, ranking


def _snapshot(model):
    return [t.detach().clone() for t in model.original_model.state_dict().values()]


def test_curve_restores_bit_exactly_and_is_first_order_consistent(setup):
    model, loss_fn, ranking = setup
    before = _snapshot(model)
    ks = [0, 1, 4, 16, 64, len(ranking)]
    curve = worst_case_loss_curve(loss_fn, model, ranking, ks, rho=1e-2)
    after = _snapshot(model)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))

    first = curve["first_order"]
    assert torch.all(first[1:] >= first[:-1])  # ‖g_S‖ grows with S (nested prefixes)
    assert first[0] == 0 and curve["delta_loss"][0] == 0
    # Small ρ: the measured increase is positive and close to ρ‖g_S‖.
    assert torch.all(curve["delta_loss"][1:] > 0)
    assert torch.allclose(curve["delta_loss"][1:], first[1:], rtol=0.1)
    # The last K covers every value vector, so it is the normaliser itself.
    assert curve["cumulative_fraction"][-1] == pytest.approx(1.0, rel=1e-9)
    assert curve["first_order_fraction"][-1] == pytest.approx(1.0, rel=1e-9)
    assert torch.all(curve["first_order_fraction"] <= 1 + 1e-9)
    n = model.cfg.n_layers * model.cfg.d_mlp
    assert curve["n_neurons"] == n
    assert torch.allclose(curve["fraction_of_neurons"], torch.tensor(ks, dtype=torch.float64) / n)


def test_top_vs_random_share_one_gradient(setup):
    model, loss_fn, ranking = setup
    before = _snapshot(model)
    ks = [1, 8, 32]
    out = worst_case_curves(loss_fn, model, ranking, ks, rho=1e-2, n_random=2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(model), strict=True))
    assert len(out["random"]) == 2
    top = worst_case_loss_curve(loss_fn, model, ranking, ks, rho=1e-2)
    assert torch.allclose(out["top"]["delta_loss"], top["delta_loss"])
    assert out["random_mean"]["cumulative_fraction"].shape == (3,)
    # Seeded: the same call gives the same random curves.
    again = worst_case_curves(loss_fn, model, ranking, ks, rho=1e-2, n_random=2, seed=0)
    assert torch.equal(again["random"][1]["delta_loss"], out["random"][1]["delta_loss"])


def test_fraction_at_interpolates():
    curve = {
        "fraction_of_neurons": torch.tensor([0.0025, 0.005, 0.01]),
        "cumulative_fraction": torch.tensor([0.6, 0.85, 0.95]),
    }
    assert fraction_at(curve, 0.005) == pytest.approx(0.85)
    assert fraction_at(curve, 0.00125) == pytest.approx(0.3)  # through (0, 0)
    assert fraction_at(curve, 0.5) == pytest.approx(0.95)  # held beyond the last K
    assert fraction_at(curve, 0.005) > 0.8  # the ShaPO Figure-1 check


def test_bad_inputs(setup):
    model, loss_fn, ranking = setup
    with pytest.raises(ValueError, match="outside"):
        worst_case_loss_curve(loss_fn, model, ranking[:3], [4], rho=1e-2)
    with pytest.raises(ValueError, match="rho"):
        worst_case_loss_curve(loss_fn, model, ranking, [1], rho=0.0)


def test_additive_share_is_below_the_joint_share_on_the_oracle_ranking():
    from safelens.geometry.report import additive_share, first_order_share

    g = torch.rand(4, 50, generator=torch.Generator().manual_seed(0)) ** 4  # heavy-tailed
    flat = torch.argsort(g.reshape(-1), descending=True)
    oracle = torch.stack([flat // 50, flat % 50], dim=1)
    ks = [1, 2, 10, 100, 200]
    add, joint = additive_share(g, oracle, ks), first_order_share(g, oracle, ks)
    assert torch.all(add <= joint + 1e-12) and add[-1] == pytest.approx(1.0)
    assert torch.all(add[1:] >= add[:-1])  # cumulative
