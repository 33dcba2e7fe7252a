"""Geometry plots and the one-call analyses they draw (``safelens.geometry.report``).

The analyses run on exact quadratic problems (where the bypass radius and λ_max are known in
closed form) and on the tiny model; the plots get their outputs and must return figures.
"""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from tiny_rows import one_thread  # noqa: F401, E402  (autouse: one torch thread)

from safelens.geometry import (  # noqa: E402
    Subspace,
    hessian_lambda_max,
    rank_value_vectors,
    top_k_neurons,
    worst_case_curves,
)
from safelens.geometry.report import (  # noqa: E402
    all_value_vectors,
    bypass_check,
    claim_fractions,
    dpo_loss_fn,
    first_order_share,
    kl_depth_summary,
    neuron_gradient_norms,
    probe_layers,
    subspace_lambda_max,
)
from safelens.viz import (  # noqa: E402
    plot_bypass,
    plot_kl_depth,
    plot_lambda_max,
    plot_probe_accuracy,
    plot_reward_margins,
    plot_worst_case_curves,
    probe_accuracy_plotly,
    worst_case_curves_plotly,
)


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _rows(n: int = 4) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"h{i}",
                "prompt": f"How do I do harmful thing {i}?",
                "chosen": "I can't help with that.",
                "rejected": f"Sure, step one for thing {i} is to begin.",
                "harmful": True,
            }
        )
    return out


@pytest.fixture(scope="module")
def tiny():
    from safelens.models import load_tiny_model

    m = load_tiny_model(seed=0)  # our own copy: perturbations edit weights in place
    m.eval()
    return m


# ------------------------------------------------------------------ analyses


def _quadratic():
    """loss(w) = g·w + ½ wᵀAw on a 4-vector, A with eigenvalues (3, 1, 0.5, −2)."""
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0)))
    A = q @ torch.diag(torch.tensor([3.0, 1.0, 0.5, -2.0])) @ q.T
    g = torch.tensor([0.3, -0.1, 0.2, 0.05])
    w = torch.zeros(4, requires_grad=True)
    return w, A, g, (lambda: g @ w + 0.5 * w @ A @ w)


def test_bypass_check_matches_closed_form_on_a_quadratic():
    w, A, g, loss_fn = _quadratic()
    sub = Subspace("all", [w], [None], ["w"])
    lam, info = hessian_lambda_max(loss_fn, sub, return_info=True)
    assert lam == pytest.approx(3.0, rel=1e-6)
    res = bypass_check(loss_fn, sub, info, tau_margin=0.1, n_random=2, bisect_iters=30)
    assert res["predicted"] == pytest.approx(math.sqrt(2 * 0.1 / 3.0))
    gn = float(g.norm())
    assert res["grad_norm"] == pytest.approx(gn, rel=1e-6)
    assert res["predicted_with_gradient"] == pytest.approx((-gn + math.sqrt(gn**2 + 0.6)) / 3.0)
    for name, d in res["directions"].items():
        # On a quadratic the model is exact: measured radius = quadratic root (when in range).
        if d["crossed"]:
            assert d["measured"] == pytest.approx(d["quadratic"], rel=1e-5, abs=1e-7), name
        else:
            assert d["quadratic"] > res["max_radius"], name
        # ... and no direction reaches τ before the worst-case bound with the gradient.
        assert d["measured"] >= res["predicted_with_gradient"] * (1 - 1e-6), name
    assert res["directions"]["+v_top"]["crossed"] and res["directions"]["gradient"]["crossed"]
    assert res["directions"]["+v_top"]["curvature"] == pytest.approx(3.0, rel=1e-6)
    assert res["directions"]["+v_top"]["slope"] >= 0
    assert res["directions"]["gradient"]["slope"] == pytest.approx(gn, rel=1e-6)
    assert torch.count_nonzero(w) == 0  # parameters restored
    fig = plot_bypass(res)
    assert len(fig.axes) == 2


def test_bypass_radius_is_inf_when_tau_is_out_of_reach():
    w = torch.zeros(3, requires_grad=True)
    A = torch.diag(torch.tensor([1.0, 0.5, 0.25]))

    def loss_fn():
        return 0.5 * w @ A @ w

    sub = Subspace("all", [w], [None], ["w"])
    _, info = hessian_lambda_max(loss_fn, sub, return_info=True)
    res = bypass_check(loss_fn, sub, info, tau_margin=0.5, n_random=1, max_radius=0.5, steps=4)
    assert res["predicted"] == pytest.approx(1.0)
    assert not res["directions"]["+v_top"]["crossed"]
    assert math.isinf(res["directions"]["+v_top"]["measured"])
    plot_bypass(res)  # an uncrossed direction is drawn at the cap


def test_subspace_lambda_max_and_value_vector_uniform(tiny):
    rows = _rows(2)
    loss_fn = dpo_loss_fn(tiny, rows, max_length=48)
    assert float(loss_fn().detach()) == pytest.approx(math.log(2), abs=1e-6)  # reference = θ
    uni = all_value_vectors(tiny)
    assert uni.numel == tiny.cfg.n_layers * tiny.cfg.d_mlp * tiny.cfg.d_model
    d = torch.randn(tiny.cfg.d_model, generator=torch.Generator().manual_seed(0))
    sel = Subspace.selective(tiny, d, k=4)
    res = subspace_lambda_max(loss_fn, {"top": sel, "uniform": uni}, iters=50, tol=1e-4, ncv=6)
    assert set(res) == {"top", "uniform"}
    assert res["top"].n_dims == 4 * tiny.cfg.d_model
    # S ⊂ all value vectors ⇒ λ_max(H_S) ≤ λ_max(H_all) (Cauchy interlacing).
    assert res["top"].eigenvalue <= res["uniform"].eigenvalue + 1e-6
    fig = plot_lambda_max(res)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["top", "uniform"]
    plot_lambda_max({"a": 1.0, "b": 2.0}, log_y=True)
    with pytest.raises(ValueError, match="expected"):
        plot_lambda_max({})


def test_dpo_loss_fn_rejects_empty_rows(tiny):
    with pytest.raises(ValueError, match="at least one"):
        dpo_loss_fn(tiny, [])
    with pytest.raises(ValueError, match="'rejected' is missing or empty"):
        dpo_loss_fn(tiny, [{"prompt": "p", "chosen": "c", "rejected": ""}])


def test_probe_layers_and_accuracy_plot(tiny):
    probes = probe_layers(tiny, _rows(6), layers=[1, 0], max_length=48, val_fraction=0.0)
    assert list(probes) == [1, 0]
    assert probes[1].hook_name == "blocks.1.hook_resid_post"
    # Chosen and rejected responses differ, so the probes separate their training data.
    assert all(p.accuracy_train >= 0.5 for p in probes.values())
    fig = plot_probe_accuracy(probes)
    assert fig.axes[0].get_ylabel() == "accuracy (fraction of examples)"
    probe_accuracy_plotly(list(probes.values()))
    with pytest.raises(ValueError, match="layers must be"):
        probe_layers(tiny, _rows(2), layers=[5])
    with pytest.raises(ValueError, match="not a Probe"):
        plot_probe_accuracy({0: 0.9})


def test_worst_case_plot_and_claim_fractions(tiny):
    loss_fn = dpo_loss_fn(tiny, _rows(2), max_length=48)
    d = torch.randn(tiny.cfg.d_model, generator=torch.Generator().manual_seed(0))
    n = tiny.cfg.n_layers * tiny.cfg.d_mlp
    ranking = top_k_neurons(rank_value_vectors(tiny, d), k=n)
    curves = worst_case_curves(loss_fn, tiny, ranking, ks=[1, 4, 16, n], rho=0.05, n_random=2)
    fr = claim_fractions(curves, at=(1 / n, 16 / n))
    assert set(fr) == {"top", "random", "top_first_order", "random_first_order"}
    assert fr["top"][16 / n] == pytest.approx(float(curves["top"]["cumulative_fraction"][2]))
    assert 0.0 <= fr["random_first_order"][1 / n] <= 1.0
    # One gradient gives the first-order curve of any ranking; it matches worst_case_curves'.
    gnorm = neuron_gradient_norms(loss_fn, tiny)
    assert gnorm.shape == (tiny.cfg.n_layers, tiny.cfg.d_mlp)
    share = first_order_share(gnorm, ranking, [1, 4, 16, n])
    torch.testing.assert_close(share, curves["top"]["first_order_fraction"], rtol=1e-4, atol=1e-6)
    oracle = first_order_share(gnorm, top_k_neurons(gnorm.float(), k=n), [1, 4, 16, n])
    assert bool((oracle >= share - 1e-9).all())  # the gradient-norm ranking is the best possible
    with pytest.raises(ValueError, match="ks must lie"):
        first_order_share(gnorm, ranking, [n + 1])
    fig = plot_worst_case_curves(curves, extra={"oracle": oracle})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Top-K (probe-ranked)" in labels and any("seed claim" in t for t in labels)
    assert "oracle" in labels
    with pytest.raises(ValueError, match="one value per K"):
        plot_worst_case_curves(curves, extra={"bad": [1.0]})
    plot_worst_case_curves(curves, key="first_order_fraction", claim=None, log_x=False)
    worst_case_curves_plotly(curves)
    with pytest.raises(ValueError, match="random_mean"):
        plot_worst_case_curves({"top": curves["top"]})


def test_kl_depth_plot_and_summary():
    prof = {
        "mean": torch.tensor([2.0, 1.0, 0.1, 0.1]),
        "std": torch.tensor([0.5, 0.5, 0.05, 0.05]),
        "positions": torch.arange(4),
    }
    s = kl_depth_summary(prof, early=2)
    assert s["mean_early"] == pytest.approx(1.5) and s["mean_late"] == pytest.approx(0.1)
    assert s["ratio_early_late"] == pytest.approx(15.0) and s["peak_position"] == 0
    fig = plot_kl_depth({"dpo": prof, "other": {"mean": [0.1, 0.2, 0.3, 0.4]}})
    assert len(fig.axes[0].get_lines()) == 2
    per = torch.tensor([[1.0, 2.0, float("nan"), 0.1], [3.0, 0.5, float("nan"), 0.2]])
    fig = plot_kl_depth({"iqr": {"mean": [2.0, 1.25, float("nan"), 0.15], "per_example": per}})
    assert any("25–75%" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    with pytest.raises(ValueError, match="per_example"):
        plot_kl_depth({"x": {"mean": [1.0, 2.0], "per_example": torch.ones(2, 3)}})
    with pytest.raises(ValueError, match="'mean'"):
        plot_kl_depth({"x": {"std": [1.0]}})
    with pytest.raises(ValueError, match="empty"):
        kl_depth_summary({"mean": []})


def test_reward_margins_plot_draws_one_panel_per_beta_r():
    from safelens.reward import harm_groups

    rows = [{"harmful": i % 2 == 0} for i in range(40)]
    margins = torch.linspace(-2.0, 6.0, 40)  # [40]
    fig = plot_reward_margins(margins, beta_rs=(0.1, 1.0, 10.0), groups=harm_groups(rows))
    assert len(fig.axes) == 4  # Δr + one target panel per β_r
    assert fig.axes[0].get_xlabel().startswith("Δr")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "harmful (n=20)",
        "benign/look-alike (n=20)",
    ]
    for ax in fig.axes[1:]:
        assert ax.get_xlim() == (0.0, 1.0) and len(ax.patches) > 0
    # β_r = 0.1 keeps every target near 0.5; β_r = 10 saturates the clearly positive margins.
    assert "harmful: 0% > 0.99" in fig.axes[1].texts[0].get_text()
    assert "harmful: 0% > 0.99" not in fig.axes[3].texts[0].get_text()
    fig = plot_reward_margins([0.5, -0.5, 1.0], beta_rs=(1.0,))  # one group, lists accepted
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match=r"\[N\]"):
        plot_reward_margins(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"groups\['h'\] must be a bool mask \[N=3\]"):
        plot_reward_margins([0.0, 1.0, 2.0], groups={"h": [1, 0, 1]})
    with pytest.raises(ValueError, match="non-finite"):
        plot_reward_margins([0.0, float("nan")])
    with pytest.raises(ValueError, match="beta_rs"):
        plot_reward_margins([0.0, 1.0], beta_rs=())


def test_viz_namespace_is_lazy():
    import importlib
    import sys

    import safelens.viz as viz

    assert "plot_prefill_asr" in dir(viz) and "NeuronExplorer" in viz.__all__
    with pytest.raises(AttributeError, match="no attribute"):
        _ = viz.not_a_plot
    importlib.reload(viz)
    assert "safelens.viz.plots" in sys.modules  # loaded by the imports above, on demand
