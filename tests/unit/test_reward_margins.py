"""Reward margins and soft-target statistics (safelens.reward.margins): no model loads.

Scorers are plain callables whose scores are known, so margins and statistics are checked
against values computed by hand with ``math``.
"""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from safelens.reward import (
    default_reward_model,
    harm_groups,
    margin_summary,
    pairwise_accuracy,
    score_pairs,
)

ROWS = [
    {"id": "a", "prompt": "p0", "chosen": "good", "rejected": "bad", "harmful": True},
    {"id": "b", "prompt": "p1", "chosen": "fine", "rejected": "worse", "harmful": False},
    {"id": "c", "prompt": "p2", "chosen": "meh", "rejected": "ok", "harmful": True},
]
SCORES = {"good": 2.0, "bad": -1.0, "fine": 0.5, "worse": 0.25, "meh": 0.0, "ok": 1.0}


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def score(self, prompts, responses):
        self.calls += 1
        assert len(prompts) == len(responses)
        return torch.tensor([SCORES[r] for r in responses])


def test_score_pairs_one_call_in_row_order() -> None:
    scorer = _Counting()
    rc, rr = score_pairs(scorer, ROWS)
    assert scorer.calls == 1
    assert rc.tolist() == [2.0, 0.5, 0.0] and rr.tolist() == [-1.0, 0.25, 1.0]
    # A bare callable works too; an empty set gives empty tensors.
    rc2, _ = score_pairs(lambda p, r: [SCORES[x] for x in r], ROWS)
    assert torch.equal(rc, rc2)
    assert score_pairs(scorer, [])[0].shape == (0,)
    assert pairwise_accuracy(scorer, ROWS) == pytest.approx(2 / 3)


def test_score_pairs_errors() -> None:
    with pytest.raises(ValueError, match="row 0 .*'rejected'"):
        score_pairs(_Counting(), [{"prompt": "p", "chosen": "good"}])
    with pytest.raises(ValueError, match="returned 1 scores for 6"):
        score_pairs(lambda p, r: [0.0], ROWS)
    with pytest.raises(TypeError, match="reward scorer"):
        score_pairs(42, ROWS)


def test_harm_groups_split_rows() -> None:
    g = harm_groups(ROWS)
    assert g["harmful"].tolist() == [True, False, True]
    assert g["benign/look-alike"].tolist() == [False, True, False]
    with pytest.raises(ValueError, match="row 0 .*'harmful'"):
        harm_groups([{"id": "x"}])


def test_margin_summary_matches_hand() -> None:
    margins = [3.0, 0.25, -1.0, 0.5]
    groups = {"h": torch.tensor([True, False, True, False]), "empty": torch.zeros(4, dtype=bool)}
    s = margin_summary(torch.tensor(margins), beta_rs=(0.1, 1.0, 10.0), groups=groups)
    assert list(s) == ["all", "h", "empty"]
    a = s["all"]
    assert a["n"] == 4 and a["mean"] == pytest.approx(statistics.mean(margins))
    # torch's median of an even count is the lower middle value.
    assert a["median"] == pytest.approx(0.25)
    assert a["std"] == pytest.approx(statistics.stdev(margins))
    assert a["frac_positive"] == pytest.approx(0.75)
    for b in (0.1, 1.0, 10.0):
        t = [1 / (1 + math.exp(-b * m)) for m in margins]
        assert a[f"mean_target (β_r={b:g})"] == pytest.approx(statistics.mean(t))
        assert a[f"frac_target>0.99 (β_r={b:g})"] == pytest.approx(
            sum(x > 0.99 for x in t) / len(t)
        )
    assert a["frac_target>0.99 (β_r=10)"] == pytest.approx(0.5)  # σ(10·0.5) = 0.9933
    assert s["h"]["n"] == 2 and s["h"]["frac_positive"] == pytest.approx(0.5)
    assert s["empty"]["n"] == 0 and math.isnan(s["empty"]["mean"])


def test_margin_summary_errors() -> None:
    with pytest.raises(ValueError, match=r"\[N\]"):
        margin_summary(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="non-finite"):
        margin_summary(torch.tensor([0.0, math.inf]))
    with pytest.raises(ValueError, match=r"groups\['g'\] must be a bool mask \[N=2\]"):
        margin_summary(torch.zeros(2), groups={"g": torch.ones(3, dtype=torch.bool)})


def test_default_reward_model_keeps_its_old_import_path() -> None:
    from safelens.training.methods.reward_level import default_reward_model as old

    assert old is default_reward_model
