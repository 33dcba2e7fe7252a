"""The built-in reward models: ShaPO-R's scorer and the win-rate judge see disjoint rows."""

from __future__ import annotations

import pytest

import safelens.reward.default as default
from safelens.data import load_builtin
from safelens.errors import SafelensError


def test_reward_split_halves_are_disjoint_and_cover_the_train_split():
    train = load_builtin("preferences", "train")
    shapo = {r["id"] for r in default.reward_split(train, "shapo")}
    judge = {r["id"] for r in default.reward_split(train, "judge")}
    assert not shapo & judge
    assert shapo | judge == {r["id"] for r in train}
    for half in (shapo, judge):  # each half keeps the file's mix of kinds (within 5 points)
        harmful = sum(r["harmful"] for r in train if r["id"] in half) / len(half)
        assert abs(harmful - sum(r["harmful"] for r in train) / len(train)) < 0.05


def test_reward_split_rejects_an_unknown_role():
    with pytest.raises(SafelensError, match="role 'oracle'"):
        default.reward_split([], "oracle")


def test_default_and_win_rate_models_train_on_disjoint_rows_and_cache_by_data(tmp_path, monkeypatch):
    seen: dict[str, list[str]] = {}

    class Fake:
        def __init__(self, ids):
            self.ids = ids

        def save(self, path):
            path.mkdir(parents=True)
            (path / "reward_config.json").write_text("{}")

    def fake_train(rows, config, val_rows=None):
        model = Fake([r["id"] for r in rows])
        return model, {}

    monkeypatch.setenv("SAFELENS_CACHE", str(tmp_path))
    monkeypatch.setattr(default, "train_reward_model", fake_train)
    monkeypatch.setattr(default.RewardModel, "load", classmethod(lambda cls, path: path))
    shapo = default.default_reward_model()
    judge = default.win_rate_reward_model()
    assert isinstance(shapo, Fake) and isinstance(judge, Fake)
    assert not set(shapo.ids) & set(judge.ids)
    seen = sorted(p.name for p in (tmp_path / "reward").iterdir())
    assert [name.split("-")[0] for name in seen] == ["judge", "shapo"]
    assert all(name.split("-")[1] == "seed0" and len(name.split("-")[2]) == 12 for name in seen)
    assert default.default_reward_model() == tmp_path / "reward" / seen[1]  # cached: loaded
