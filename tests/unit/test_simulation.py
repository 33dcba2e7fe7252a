"""Toy simulations of seed 001 (safelens.simulation): models, task, metrics, experiments.

Expected metric values are computed by hand on plain floats. Experiments run in their quick
configuration (about a second per seed on one thread).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from safelens.losses import pa_delta_schedule
from safelens.simulation import (
    Pre1Config,
    Pre2Config,
    alignment_metrics,
    argmax_agreement,
    cached_run_many,
    cosine_similarity,
    data_token_prob_difference,
    distribution_overlap,
    kl_divergence,
    kl_similarity,
    make_source,
    n_parameters,
    paired_difference,
    pearson_correlation,
    pre1_policy,
    pre1_reference,
    pre2_policy,
    pre2_reference,
    probability_alignment,
    run_many,
    run_pre1,
    run_pre2,
    sample_sequences,
    source_next_token_probs,
    t_interval,
    token_prob_difference,
)

torch.set_num_threads(1)


# --------------------------------------------------------------------------- models


def test_pre1_reference_has_about_twice_the_policy_parameters():
    ratio = n_parameters(pre1_reference()) / n_parameters(pre1_policy())
    assert ratio == pytest.approx(2.11, abs=0.01)  # 62 896 / 29 744
    assert 1.8 < ratio < 2.3  # "about twice as many parameters" (seed 001, §5.1)


def test_pre2_reference_is_deeper_and_wider_than_the_policy():
    pol, ref = pre2_policy(), pre2_reference()
    assert pol.lstm.num_layers == 2 and ref.lstm.num_layers == 3
    widths = [m.out_features for m in pol.fc if isinstance(m, torch.nn.Linear)]
    assert widths == [64, 64]  # width-preserving
    widths = [m.out_features for m in ref.fc if isinstance(m, torch.nn.Linear)]
    assert widths == [128, 256]  # dimension-expanding


@pytest.mark.parametrize("factory", [pre1_policy, pre1_reference, pre2_policy, pre2_reference])
def test_models_give_next_token_logits(factory):
    torch.manual_seed(0)
    m = factory(vocab=11, d_embed=4, d_hidden=8)
    ids = torch.randint(0, 11, (3, 7))
    assert m(ids).shape == (3, 7, 11)
    # causal: logits at t do not depend on tokens after t
    ids2 = ids.clone()
    ids2[:, 5:] = (ids2[:, 5:] + 1) % 11
    assert torch.allclose(m(ids)[:, :5], m(ids2)[:, :5])


def test_model_rejects_ids_that_are_not_batch_by_time():
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        pre1_policy()(torch.zeros(5, dtype=torch.long))


# --------------------------------------------------------------------------- task


def test_source_is_seeded_and_its_conditionals_are_distributions():
    a, b = make_source(seed=3), make_source(seed=3)
    assert torch.equal(a.emit, b.emit) and torch.equal(a.trans, b.trans)
    assert not torch.equal(a.emit, make_source(seed=4).emit)
    ids = sample_sequences(a, 5, 6, torch.Generator().manual_seed(0))
    p = source_next_token_probs(a, ids)  # [5, 6, V]
    assert torch.allclose(p.sum(-1), torch.ones(5, 6, dtype=p.dtype))
    assert torch.allclose(p[:, 0], (a.init @ a.emit).expand(5, -1))  # first token
    # every sampled token had positive probability under the exact conditional
    assert bool((p.gather(-1, ids[:, 1:].unsqueeze(-1)) > 0).all())


# --------------------------------------------------------------------------- metrics


def test_identical_distributions_are_perfectly_aligned():
    q = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]], dtype=torch.float64)
    assert kl_divergence(q, q).item() == pytest.approx(0.0, abs=1e-12)
    assert cosine_similarity(q, q).item() == pytest.approx(1.0)
    assert pearson_correlation(q, q).item() == pytest.approx(1.0)
    assert distribution_overlap(q, q).item() == pytest.approx(1.0)
    assert kl_similarity(q, q).item() == pytest.approx(1.0)
    assert token_prob_difference(q, q).item() == 0.0
    assert probability_alignment(q, q).item() == 0.0
    assert argmax_agreement(q, q).item() == 1.0


def test_metrics_match_hand_computations():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.25, 0.5, 0.25], [0.2, 0.6, 0.2]], dtype=torch.float64)
    kl = [0.5 * math.log(2) + 0.5 * math.log(1), 0.3 * math.log(0.5) + 0.5 * math.log(2.5)]
    assert kl_divergence(p, q).item() == pytest.approx(sum(kl) / 2)
    assert kl_similarity(p, q).item() == pytest.approx((math.exp(-kl[0]) + math.exp(-kl[1])) / 2)
    assert token_prob_difference(p, q).item() == pytest.approx((0.5 + 0.6) / 6)
    assert distribution_overlap(p, q).item() == pytest.approx((0.75 + 0.7) / 2)
    # y* = argmax q = 1 in both rows: |0.5 - 0.5|, |0.3 - 0.6|
    assert probability_alignment(p, q).item() == pytest.approx(0.15)
    # data tokens 0 and 2: |0.5 - 0.25|, |0.5 - 0.2|
    assert data_token_prob_difference(p, q, torch.tensor([0, 2])).item() == pytest.approx(0.275)
    cos = [(0.125 + 0.25) / (math.sqrt(0.5) * math.sqrt(0.375)),
           (0.04 + 0.18 + 0.1) / (math.sqrt(0.38) * math.sqrt(0.44))]
    assert cosine_similarity(p, q).item() == pytest.approx(sum(cos) / 2)

    def r(a, b):
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
        return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))

    expected = (r([0.5, 0.5, 0.0], [0.25, 0.5, 0.25]) + r([0.2, 0.3, 0.5], [0.2, 0.6, 0.2])) / 2
    assert pearson_correlation(p, q).item() == pytest.approx(expected)
    assert argmax_agreement(p, q).item() == 0.0  # row 0: tie -> index 0 vs 1; row 1: 2 vs 1
    # total variation = 1 - overlap (the relation the module docstring states)
    assert (0.5 * (p - q).abs().sum(-1)).mean().item() == pytest.approx(
        1 - distribution_overlap(p, q).item())


def test_alignment_metrics_reads_logits_of_any_leading_shape():
    torch.manual_seed(0)
    pl, rl = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    m = alignment_metrics(pl, rl, torch.randint(0, 5, (2, 3)))
    p, q = torch.softmax(pl.double().reshape(6, 5), -1), torch.softmax(rl.double().reshape(6, 5), -1)
    assert m["kl_divergence"] == pytest.approx(kl_divergence(p, q).item())
    assert set(m) >= {"kl_divergence", "token_prob_difference", "cosine_similarity",
                      "pearson_correlation", "distribution_overlap", "kl_similarity",
                      "probability_alignment", "data_token_prob_difference"}
    with pytest.raises(ValueError, match=r"\[N, V\]"):
        kl_divergence(torch.ones(3), torch.ones(3))


# --------------------------------------------------------------------------- statistics


def test_t_interval_and_paired_difference_by_hand():
    from scipy import stats

    r = t_interval([1.0, 2.0, 4.0])
    sd = math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert (r["value"], r["ci_low"], r["ci_high"]) == pytest.approx((7 / 3, 7 / 3 - half,
                                                                     7 / 3 + half))
    d = paired_difference([1.0, 2.0, 4.0], [0.0, 1.5, 3.0])  # differences -1, -0.5, -1
    assert d["value"] == pytest.approx(-2.5 / 3)
    assert d["p_value"] == pytest.approx(stats.ttest_1samp([-1, -0.5, -1], 0).pvalue)
    same = paired_difference([1.0, 2.0], [1.0, 2.0])
    assert same["p_value"] is None and same["value"] == 0.0  # undefined, not NaN
    assert t_interval([3.0])["ci_low"] is None


# --------------------------------------------------------------------------- experiments


@pytest.fixture(scope="module")
def quick_pre1():
    return run_pre1(Pre1Config(quick=True), seed=0)


@pytest.fixture(scope="module")
def quick_pre2():
    return run_pre2(Pre2Config(quick=True), seed=0)


def _strip(run):
    return {k: v for k, v in run.items() if k != "seconds"}


def test_quick_runs_return_finite_metrics_for_both_groups(quick_pre1, quick_pre2):
    for run, groups in ((quick_pre1, ["CE", "CE+PA"]), (quick_pre2, ["CSFT", "CSFT+PA"])):
        assert run["groups"] == groups
        for g in groups:
            final = run["results"][g]["final"]
            assert len(final) >= 8 and all(math.isfinite(v) for v in final.values())
            curves = run["results"][g]["curves"]
            assert all(len(c) == run["config"]["epochs"] + 1 for c in curves.values())
        # same initialisation: the two groups start from identical metrics
        c1, c2 = (run["results"][g]["curves"] for g in groups)
        assert c1["kl_divergence"][0] == c2["kl_divergence"][0]
        # training moved the policy, and PA moved it somewhere else
        assert c1["heldout_nll"][-1] < c1["heldout_nll"][0]
        assert c1["kl_divergence"][-1] != c2["kl_divergence"][-1]


def test_same_seed_gives_identical_results(quick_pre1):
    again = run_pre1(Pre1Config(quick=True), seed=0)
    assert _strip(again) == _strip(quick_pre1)
    other = run_pre1(Pre1Config(quick=True), seed=1)
    assert other["results"]["CE"]["final"] != quick_pre1["results"]["CE"]["final"]


def test_delta_follows_pa_delta_schedule_per_epoch(quick_pre1, quick_pre2):
    for run, g in ((quick_pre1, "CE+PA"), (quick_pre2, "CSFT+PA")):
        e = run["config"]["epochs"]
        assert run["results"][g]["delta"] == [pa_delta_schedule(i, e) for i in range(e)]
        assert run["results"][g]["delta"][0] == pytest.approx(0.1)
    assert quick_pre1["results"]["CE"]["delta"] is None  # no PA term, no delta


def test_mu_clamp_is_counted():
    cfg = Pre1Config(quick=True)
    cfg.epochs, cfg.max_mu = 1, 1e-3
    mu = run_pre1(cfg, seed=0)["results"]["CE+PA"]["mu"]
    assert mu["positions"] == cfg.n_train * cfg.seq_len
    assert 0 < mu["clipped"] <= mu["positions"]


def test_run_many_and_its_cache(tmp_path):
    cfg = Pre1Config(quick=True)
    cfg.epochs = 2
    path = tmp_path / "pre1.json"
    res = cached_run_many(path, run_pre1, cfg, [0, 1])
    assert res["cached"] is False and path.exists()
    s = res["summary"]["kl_divergence"]
    a = [r["final"]["CE"]["kl_divergence"] for r in res["per_seed"]]
    b = [r["final"]["CE+PA"]["kl_divergence"] for r in res["per_seed"]]
    assert s["CE"]["value"] == pytest.approx(sum(a) / 2)
    assert s["diff"]["value"] == pytest.approx((b[0] - a[0] + b[1] - a[1]) / 2)
    assert len(res["curves"]["kl_divergence"]["CE+PA"]["value"]) == 3
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert cached_run_many(path, run_pre1, cfg, [0, 1])["cached"] is True
    cfg.lr = 1e-3  # another config: recomputed
    assert cached_run_many(path, run_pre1, cfg, [0, 1])["cached"] is False
    direct = run_many(run_pre1, cfg, [0, 1])
    assert direct["summary"]["kl_divergence"] == json.loads(path.read_text())["summary"][
        "kl_divergence"]


def test_simulation_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from safelens.viz import plot_curves, plot_metric_bars, plot_paired_differences

    cfg = Pre2Config(quick=True)
    cfg.epochs = 2
    res = run_many(run_pre2, cfg, [0, 1])
    fig = plot_metric_bars(res, ["kl_divergence", "cosine_similarity"],
                           reported={"kl_divergence": [1.0, 0.5]})
    assert len(fig.axes) == 2 and "nats" in fig.axes[0].get_ylabel()
    assert len(plot_curves(res, ["kl_divergence"]).axes) == 1
    plot_paired_differences(res, ["kl_divergence", "cosine_similarity"]).savefig(tmp_path / "d.png")
    with pytest.raises(ValueError, match="not in the result"):
        plot_metric_bars(res, ["accuracy"])
