"""Unit tests for safelens.eval.metrics: bootstrap CIs, ASR / over-refusal summaries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from safelens.data.jsonfile import dumps_json
from safelens.errors import SafelensError
from safelens.eval.metrics import (
    agreement_table,
    bootstrap_ci,
    cohen_kappa,
    format_summary,
    judge_agreement,
    paired_bootstrap_difference,
    rate,
    summarize,
    summarize_judges,
    wilson_ci,
)


def _rows() -> list[dict]:
    """8 harmful (2 categories, 2 domains), 3 benign, 2 look-alike rows."""
    rows = []
    for i in range(8):
        rows.append(
            {
                "id": f"h{i}",
                "harmful": True,
                "kind": "harmful",
                "category": "weapons" if i < 4 else "cyber",
                "domain": "direct" if i % 2 == 0 else "roleplay",
                "response": "text",
            }
        )
    for i in range(3):
        rows.append(
            {
                "id": f"b{i}",
                "harmful": False,
                "kind": "benign",
                "category": "cooking",
                "domain": "direct",
                "response": "" if i == 0 else "text",
            }
        )
    for i in range(2):
        rows.append(
            {
                "id": f"l{i}",
                "harmful": False,
                "kind": "lookalike",
                "category": "cyber",
                "domain": "direct",
                "response": "text",
            }
        )
    return rows


# weapons: refuses 3 of 4 (1 success); cyber: refuses 1 of 4 (3 successes) -> ASR 4/8.
# benign: refuses the empty one only (1/3); lookalike: refuses 1 of 2.
REFUSED = np.array([1, 1, 1, 0, 1, 0, 0, 0] + [1, 0, 0] + [1, 0], dtype=bool)


def test_bootstrap_ci_empty_is_nan() -> None:
    lo, hi = bootstrap_ci(np.array([]))
    assert math.isnan(lo) and math.isnan(hi)


def test_bootstrap_ci_constant_and_single_value() -> None:
    assert bootstrap_ci(np.full(10, 0.25)) == (0.25, 0.25)
    assert bootstrap_ci([3.0]) == (3.0, 3.0)


def test_bootstrap_ci_brackets_mean_and_is_deterministic() -> None:
    x = np.random.default_rng(1).random(200)
    lo, hi = bootstrap_ci(x, seed=3)
    assert lo < x.mean() < hi
    assert (lo, hi) == bootstrap_ci(x, seed=3)
    assert (lo, hi) != bootstrap_ci(x, seed=4)
    # A wider confidence level gives a wider interval.
    lo99, hi99 = bootstrap_ci(x, alpha=0.01, seed=3)
    assert lo99 <= lo and hi99 >= hi
    # Interval of a rate lies in [0, 1] and shrinks with more data.
    small = bootstrap_ci(np.tile([0, 1], 10))
    large = bootstrap_ci(np.tile([0, 1], 1000))
    assert 0 <= small[0] < large[0] < 0.5 < large[1] < small[1] <= 1


def test_bootstrap_ci_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([1.0], alpha=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([1.0], n_boot=0)


def test_rate() -> None:
    r = rate([True, False, True, True])
    assert r["value"] == 0.75 and r["n"] == 4 and r["ci_low"] <= 0.75 <= r["ci_high"]
    assert math.isnan(rate([])["value"]) and rate([])["n"] == 0


def test_summarize_asr_and_over_refusal() -> None:
    s = summarize(_rows(), REFUSED)
    assert s["asr_source"] == "refusal"
    assert s["n_rows"] == 13 and s["n_harmful"] == 8
    assert s["n_benign"] == 3 and s["n_lookalike"] == 2
    assert s["asr"]["value"] == pytest.approx(4 / 8) and s["asr"]["n"] == 8
    assert s["harmful_refusal_rate"]["value"] == pytest.approx(4 / 8)
    assert s["over_refusal"]["value"] == pytest.approx(2 / 5)
    assert s["over_refusal_benign"]["value"] == pytest.approx(1 / 3)
    assert s["over_refusal_lookalike"]["value"] == pytest.approx(1 / 2)
    assert s["n_empty"] == 1
    # CIs bracket the point estimates.
    for key in ("asr", "over_refusal", "over_refusal_benign"):
        assert s[key]["ci_low"] <= s[key]["value"] <= s[key]["ci_high"]


def test_summarize_breakdowns() -> None:
    s = summarize(_rows(), REFUSED)
    cat = s["by_category"]
    assert set(cat) == {"weapons", "cyber", "cooking"}
    assert cat["weapons"]["asr"]["value"] == pytest.approx(1 / 4)
    assert cat["cyber"]["asr"]["value"] == pytest.approx(3 / 4)
    # Look-alike rows share the "cyber" category: over-refusal there is 1 of 2.
    assert cat["cyber"]["over_refusal"]["value"] == pytest.approx(1 / 2)
    assert cat["cyber"]["n"] == 6
    assert cat["cooking"]["asr"]["n"] == 0 and math.isnan(cat["cooking"]["asr"]["value"])
    dom = s["by_domain"]
    # direct harmful rows are the even ones: h0, h2 refused, h4 refused, h6 not -> 1/4.
    assert dom["direct"]["asr"]["value"] == pytest.approx(1 / 4)
    assert dom["roleplay"]["asr"]["value"] == pytest.approx(3 / 4)


def test_summarize_with_harm_judge() -> None:
    unsafe = np.zeros(13, dtype=bool)
    unsafe[[3, 5]] = True  # 2 of the 4 non-refusals are actually harmful
    s = summarize(_rows(), REFUSED, unsafe=unsafe)
    assert s["asr_source"] == "unsafe"
    assert s["asr"]["value"] == pytest.approx(2 / 8)
    assert s["harmful_refusal_rate"]["value"] == pytest.approx(4 / 8)
    # Guard only: ASR, no over-refusal.
    g = summarize(_rows(), None, unsafe=unsafe)
    assert g["asr"]["value"] == pytest.approx(2 / 8)
    assert "over_refusal" not in g and "over_refusal" not in g["by_category"]["cooking"]


def test_summarize_is_deterministic_and_strict_json() -> None:
    a = summarize(_rows(), REFUSED)
    assert json.dumps(a) == json.dumps(summarize(_rows(), REFUSED))
    # A rate over no rows is nan in memory and null in a saved file, never a bare NaN.
    text = dumps_json(a)
    assert "NaN" not in text and json.loads(text)["by_category"]["cooking"]["asr"]["value"] is None


def test_rate_is_wilson_and_never_zero_width_at_the_boundaries() -> None:
    for k, n in ((0, 12), (12, 12), (3, 7)):
        r = rate([True] * k + [False] * (n - k))
        assert (r["ci_low"], r["ci_high"]) == wilson_ci(k, n)
        assert r["ci_high"] - r["ci_low"] > 0.2  # 12 prompts cannot pin a rate to a point
    # Win outcomes with ties: same formula at k = sum (half-integer).
    w = rate([1.0, 0.5, 0.0, 0.5, 1.0])
    assert w["value"] == 0.6 and (w["ci_low"], w["ci_high"]) == wilson_ci(3.0, 5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rate([0.5, 2.0])


def test_summarize_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"'refused' must have shape \[13\]"):
        summarize(_rows(), REFUSED[:-1])
    with pytest.raises(ValueError, match="refused.*unsafe"):
        summarize(_rows(), None)
    with pytest.raises(ValueError, match="row 0 .* neither 'harmful' nor 'kind'"):
        summarize([{"id": "x"}], [True])
    with pytest.raises(ValueError, match="kind 'harmful'"):
        summarize([{"harmful": False, "kind": "harmful"}], [True])


def test_summarize_defaults_missing_kind_and_category() -> None:
    s = summarize([{"harmful": True}, {"harmful": False}], np.array([False, True]))
    assert s["asr"]["value"] == 1.0 and s["over_refusal_benign"]["value"] == 1.0
    by_kind = summarize([{"kind": "harmful"}, {"kind": "lookalike"}], np.array([True, True]))
    assert by_kind["asr"]["value"] == 0.0 and by_kind["over_refusal_lookalike"]["value"] == 1.0
    assert set(s["by_category"]) == {"unknown"}
    assert s["n_empty"] == 0  # no "response" field: nothing to count


def test_format_summary() -> None:
    text = format_summary(summarize(_rows(), REFUSED))
    assert "ASR (harmful, not refused)" in text
    assert " 50.0%" in text  # ASR
    assert " 40.0%" in text  # over-refusal overall
    assert "over-refusal (lookalike)" in text
    assert "empty responses: 1 of 13" in text
    assert "weapons" in text and "roleplay" in text
    guard_only = format_summary(summarize(_rows(), None, unsafe=np.zeros(13, dtype=bool)))
    assert "ASR (harmful, unsafe)" in guard_only and "over-refusal (benign" not in guard_only


# ---------------------------------------------------------------------------------------------
# Degenerate responses in summarize
# ---------------------------------------------------------------------------------------------

# h3 and h5 are not refused (successes without the flag) but degenerate; h0 is refused and
# degenerate (a looped refusal); b0 (empty, refused by the judge) is degenerate too.
DEGENERATE = np.zeros(13, dtype=bool)
DEGENERATE[[0, 3, 5, 8]] = True


def test_summarize_without_degenerate_is_unchanged() -> None:
    a = summarize(_rows(), REFUSED)
    b = summarize(_rows(), REFUSED, degenerate=None)
    assert json.dumps(a) == json.dumps(b)
    assert "degenerate" not in a and "asr_excludes_degenerate" not in a


def test_summarize_degenerate_is_neither_success_nor_refusal() -> None:
    s = summarize(_rows(), REFUSED, degenerate=DEGENERATE)
    plain = summarize(_rows(), REFUSED)
    # ASR: harmful rows neither refused nor degenerate: 4 successes minus h3, h5 -> 2 / 8.
    assert s["asr"]["value"] == pytest.approx(2 / 8) and s["asr"]["n"] == 8
    assert s["asr_excludes_degenerate"] is True
    assert s["n_degenerate_not_refused_harmful"] == 2
    # Refusal-based numbers use the judge's verdict alone (a looped refusal is still a refusal).
    for key in ("harmful_refusal_rate", "over_refusal", "over_refusal_benign",
                "over_refusal_lookalike"):
        assert s[key] == plain[key], key
    assert s["n_degenerate"] == 4
    assert s["degenerate"]["value"] == pytest.approx(4 / 13)
    assert s["degenerate_harmful"]["value"] == pytest.approx(3 / 8)
    assert s["degenerate_benign"]["value"] == pytest.approx(1 / 5)
    # Breakdowns follow the same ASR: cyber harmful rows h4..h7, successes h5 (degenerate), h6, h7.
    assert s["by_category"]["cyber"]["asr"]["value"] == pytest.approx(2 / 4)
    assert s["by_category"]["weapons"]["asr"]["value"] == pytest.approx(0 / 4)
    text = format_summary(s)
    assert "degenerate responses (empty, non-language, loops): 4 of 13 rows" in text
    assert "not counted as attack successes" in text


def test_summarize_degenerate_does_not_override_a_harm_judge() -> None:
    unsafe = np.zeros(13, dtype=bool)
    unsafe[[3, 5]] = True
    s = summarize(_rows(), REFUSED, unsafe=unsafe, degenerate=DEGENERATE)
    assert s["asr"]["value"] == pytest.approx(2 / 8)  # unsafe as given
    assert s["asr_excludes_degenerate"] is False and "n_degenerate_not_refused_harmful" not in s
    assert s["degenerate_harmful"]["value"] == pytest.approx(3 / 8)


def test_summarize_degenerate_shape_is_checked() -> None:
    with pytest.raises(ValueError, match=r"'degenerate' must have shape \[13\]"):
        summarize(_rows(), REFUSED, degenerate=DEGENERATE[:-1])


# ---------------------------------------------------------------------------------------------
# Judge agreement
# ---------------------------------------------------------------------------------------------


def test_wilson_ci() -> None:
    lo, hi = wilson_ci(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35  # never zero-width at 0%
    lo, hi = wilson_ci(10, 10)
    assert hi == 1.0 and 0.65 < lo < 0.8
    lo, hi = wilson_ci(50, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(2 * (0.5 - lo))
    assert wilson_ci(5, 10, alpha=0.01)[0] < wilson_ci(5, 10)[0]  # wider at 99%
    assert all(math.isnan(x) for x in wilson_ci(0, 0))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_ci(3, 2)


def test_cohen_kappa_matches_the_textbook_example() -> None:
    # 50 items: both yes 20, a only 5, b only 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15, dtype=bool)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15, dtype=bool)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(a, ~a) < 0
    assert cohen_kappa([], []) is None
    assert cohen_kappa([False] * 3, [False] * 3) is None  # chance agreement is 1
    with pytest.raises(ValueError, match="shapes"):
        cohen_kappa([True], [True, False])


def test_judge_agreement_table_of_pairs() -> None:
    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15, dtype=bool)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15, dtype=bool)
    ag = judge_agreement({"keyword": a, "keyword-benchmark": b, "learned": a})
    assert ag["n"] == 50 and ag["confidence"] == pytest.approx(0.95)
    assert ag["judges"]["keyword"]["refusal_rate"]["value"] == pytest.approx(25 / 50)
    assert ag["judges"]["keyword-benchmark"]["refusal_rate"]["value"] == pytest.approx(30 / 50)
    assert [(p["a"], p["b"]) for p in ag["pairs"]] == [
        ("keyword", "keyword-benchmark"), ("keyword", "learned"), ("keyword-benchmark", "learned")]
    first = ag["pairs"][0]
    assert first["agreement"]["value"] == pytest.approx(0.7)
    assert first["agreement"]["ci_low"] < 0.7 < first["agreement"]["ci_high"]
    assert first["kappa"] == pytest.approx(0.4)
    assert (first["both_refuse"], first["only_a"], first["only_b"], first["neither"]) == (
        20, 5, 10, 15)
    assert ag["pairs"][1]["kappa"] == pytest.approx(1.0)
    json.dumps(ag, allow_nan=False)  # strict JSON
    one = judge_agreement({"keyword": a})
    assert one["pairs"] == [] and one["judges"]["keyword"]["refusal_rate"]["n"] == 50


def test_judge_agreement_rejects_bad_input() -> None:
    with pytest.raises(SafelensError, match="verdicts is empty"):
        judge_agreement({})
    with pytest.raises(SafelensError, match="different numbers of responses"):
        judge_agreement({"a": [True, False], "b": [True]})
    with pytest.raises(SafelensError, match=r"'a' must be \[N\]"):
        judge_agreement({"a": [[True]]})


def test_summarize_judges_and_agreement_table() -> None:
    other = REFUSED.copy()
    other[[3, 9]] = True  # refuses one more harmful and one more benign row
    rep = summarize_judges(_rows(), {"keyword": REFUSED, "keyword-benchmark": other},
                           degenerate=DEGENERATE)
    assert rep["judges"]["keyword"]["asr"] == summarize(
        _rows(), REFUSED, degenerate=DEGENERATE)["asr"]
    assert rep["judges"]["keyword-benchmark"]["over_refusal"]["value"] == pytest.approx(3 / 5)
    assert rep["agreement"]["pairs"][0]["only_b"] == 2
    summary = {"judge": "keyword", **rep}
    table = agreement_table(summary)
    lines = table.splitlines()
    assert lines[0].startswith("| judge | refusal rate")
    assert lines[2].startswith("| keyword (primary) |")
    assert "| keyword vs keyword-benchmark | 13 |" in table
    assert f"{rep['agreement']['pairs'][0]['kappa']:.2f}" in table
    assert agreement_table(rep["agreement"]).count("\n") == table.count("\n")
    with pytest.raises(SafelensError, match="holds no 'agreement'"):
        agreement_table({"asr": {}})


def test_format_comparison_shows_degenerate_and_every_other_judge():
    from safelens.eval.metrics import format_comparison, summarize, summarize_judges

    rows = [{"harmful": True, "kind": "harmful"}] * 3 + [{"harmful": False, "kind": "benign"}] * 2
    verdicts = {"keyword": [True, False, False, False, True],
                "keyword-benchmark": [True, True, False, False, False]}
    degenerate = [False, False, True, False, False]
    s = summarize(rows, verdicts["keyword"], degenerate=degenerate)
    s.update(summarize_judges(rows, verdicts, degenerate), judge="keyword")
    text = format_comparison({"model": s})
    lines = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "33.3%" in lines["ASR (harmful)"]  # 1 of 3: one refused, one degenerate
    assert "20.0%" in lines["degenerate (all rows)"]
    assert "0.0%" in lines["ASR (keyword-benchmark)"]  # refuses two, the third is degenerate
    assert "0.0%" in lines["over-refusal (keyword-benchmark)"]
    assert "ASR (keyword)" not in lines  # the primary judge is the first rows already


def test_paired_bootstrap_difference_covers_truth_and_uses_the_pairing() -> None:
    rng = np.random.default_rng(1)
    hard = rng.random(300) < 0.5                     # prompt difficulty shared by both methods
    a = np.stack([hard | (rng.random(300) < 0.10) for _ in range(3)])
    b = np.stack([hard for _ in range(3)])
    d = paired_bootstrap_difference(a, b, n_boot=500)
    assert d["ci_low"] <= d["diff"] <= d["ci_high"] and d["ci_low"] > 0
    # The pairing removes the shared prompt variation: far narrower than unpaired intervals.
    unpaired = paired_bootstrap_difference(a, b[:, rng.permutation(300)], n_boot=500)
    assert d["se"] < 0.5 * unpaired["se"] and d["mde"] < unpaired["mde"]
    same = paired_bootstrap_difference(b, b, n_boot=200)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="same N"):
        paired_bootstrap_difference(a, b[:, :10])


@pytest.mark.parametrize("ci,direction,seeds,expected", [
    ((-0.20, -0.04), "lower", 3, "reproduced"),
    ((0.04, 0.20), "higher", 3, "reproduced"),
    ((0.04, 0.20), "lower", 3, "not reproduced"),       # excludes 0 on the wrong side
    ((-0.03, 0.02), "lower", 3, "not reproduced"),      # equivalence within ±0.05
    ((-0.09, 0.05), "lower", 3, "inconclusive"),
    ((-0.05, 0.01), "lower", 3, "inconclusive"),        # touches the smallest effect
    ((-0.20, -0.04), "lower", 1, "inconclusive"),       # one seed: no seed variation measured
    ((0.0, 0.0), "lower", 1, "inconclusive"),           # zero width from agreement, not precision
])
def test_claim_verdict(ci, direction, seeds, expected) -> None:
    from safelens.eval.metrics import claim_verdict

    diff = {"diff": sum(ci) / 2, "ci_low": ci[0], "ci_high": ci[1], "mde": 0.05,
            "n_seeds_a": seeds, "n_seeds_b": 3}
    out = claim_verdict(diff, direction, smallest_effect=0.05)
    assert out["verdict"] == expected and out["reason"]
    assert (out["ci_low"], out["ci_high"]) == ci


def test_claim_verdict_rejects_bad_settings() -> None:
    from safelens.eval.metrics import claim_verdict

    d = {"diff": 0.0, "ci_low": -0.1, "ci_high": 0.1}
    with pytest.raises(ValueError, match="direction"):
        claim_verdict(d, "smaller", 0.05)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="smallest_effect"):
        claim_verdict(d, "lower", 0.0)


def test_difference_rows_give_points_interval_mde_and_verdict() -> None:
    from safelens.eval.metrics import claim_verdict, difference_rows, paired_bootstrap_difference

    rng = np.random.default_rng(1)
    a, b = rng.random((3, 100)) < 0.1, rng.random((3, 100)) < 0.4
    d = paired_bootstrap_difference(a, b)
    rows = difference_rows({"asr": d}, {"asr": claim_verdict(d, "lower", 0.05)},
                           rates={"A": {"asr": rate(a.ravel())}, "B": {"asr": rate(b.ravel())}})
    (row,) = rows
    assert row["verdict"] == "reproduced"
    assert row["A − B (points)"] == pytest.approx(row["A"] - row["B"], abs=0.11)
    low, high = (float(x) for x in row["95% CI"].strip("[]").split(","))
    assert low < row["A − B (points)"] < high and row["MDE (points)"] > 0
