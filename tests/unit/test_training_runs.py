"""train_or_reuse (reuse a finished run, retrain on changed settings, resume an interrupted one)
and the `domains` training-row filter, on the tiny model saved to disk."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from tiny_rows import make_rows, one_thread, params_of  # noqa: F401  (autouse fixture)

from safelens.data import write_jsonl
from safelens.models import load_model, load_tiny_model, save_model
from safelens.training import Trainer, make_method
from safelens.training.data import select_domains
from safelens.training.runs import config_changes, run_is_finished, train_or_reuse

FAST = dict(batch_size=4, max_steps=3, lr=1e-3, max_length=64, progress=False, warmup_steps=0)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(tiny base model directory, training JSONL) shared by the module's runs."""
    root = tmp_path_factory.mktemp("runs")
    save_model(load_tiny_model(seed=0), root / "base")
    rows = make_rows(8, rewards=False)
    for i, row in enumerate(rows):
        row["domain"] = "direct" if i < 4 else "roleplay"
    write_jsonl(root / "train.jsonl", rows)
    return {"model": str(root / "base"), "train_file": str(root / "train.jsonl")}


def test_second_call_reuses_the_finished_run(base, tmp_path):
    first = train_or_reuse(tmp_path / "dpo", "dpo", preset=None, **base, **FAST)
    assert not first.reused and first.wall_s > 0 and len(first.history) == 3
    assert run_is_finished(tmp_path / "dpo")
    assert not list((tmp_path / "dpo" / "checkpoint").glob("optimizer.*"))  # dropped when done
    weights = params_of(load_model(str(first.model_dir), device="cpu"))
    again = train_or_reuse(tmp_path / "dpo", "dpo", preset=None, **base, **{**FAST,
                                                                             "progress": True})
    assert again.reused and again.wall_s == 0.0  # progress is a run-only setting
    assert again.history == first.history and again.fingerprint == first.fingerprint
    reloaded = params_of(load_model(str(again.model_dir), device="cpu"))
    assert all(torch.equal(weights[k], reloaded[k]) for k in weights)


def test_changed_settings_retrain(base, tmp_path):
    train_or_reuse(tmp_path / "run", "dpo", preset=None, **base, **FAST)
    other = train_or_reuse(tmp_path / "run", "dpo", preset=None, **base, **{**FAST, "lr": 5e-4})
    assert not other.reused and other.config["lr"] == 5e-4
    assert other.fingerprint != train_or_reuse(tmp_path / "x", "dpo", preset=None, **base,
                                               **FAST).fingerprint
    method = train_or_reuse(tmp_path / "run", "ipo", preset=None, **base, **FAST)
    assert not method.reused and method.config["method"] == "ipo"


def test_changed_training_rows_retrain(base, tmp_path):
    """Same settings, other rows (regenerated data, an edited train_file): trained again."""
    rows = make_rows(8, rewards=False)
    write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = {**base, **FAST, "train_file": str(tmp_path / "train.jsonl")}
    first = train_or_reuse(tmp_path / "run", "dpo", preset=None, **cfg)
    assert len(first.config["train_data_sha256"]) == 16
    assert train_or_reuse(tmp_path / "run", "dpo", preset=None, **cfg).reused
    rows[0]["chosen"] = rows[0]["chosen"] + " (edited)"
    write_jsonl(tmp_path / "train.jsonl", rows)
    again = train_or_reuse(tmp_path / "run", "dpo", preset=None, **cfg)
    assert not again.reused
    assert again.config["train_data_sha256"] != first.config["train_data_sha256"]
    # a run that predates the record is not trusted either
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["train_data_sha256"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    assert not train_or_reuse(tmp_path / "run", "dpo", preset=None, **cfg).reused


def test_an_interrupted_run_is_resumed(base, tmp_path, interrupt_after):
    cfg = {**base, **FAST, "max_steps": 4, "save_every": 2}

    with pytest.raises(KeyboardInterrupt):
        Trainer(make_method("dpo", **cfg), tmp_path / "run", callbacks=[interrupt_after(2)]).train()
    before = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[0])
    assert not run_is_finished(tmp_path / "run")
    rec = train_or_reuse(tmp_path / "run", "dpo", preset=None, **cfg)
    assert not rec.reused and [r["step"] for r in rec.history] == [1, 2, 3, 4]
    assert rec.history[0] == before  # steps 1-2 come from the checkpointed run, not a rerun


def test_drop_optimizer_state_refuses_an_unfinished_run(tmp_path):
    from safelens.training.runs import drop_optimizer_state

    with pytest.raises(ValueError, match="not a finished run"):
        drop_optimizer_state(tmp_path)


def test_config_changes_ignores_run_only_settings():
    assert config_changes({"lr": 1.0, "device": "cpu", "beta": 0.1},
                          {"lr": 1.0, "device": None, "beta": 0.2}) == ["beta"]


def test_domains_keep_only_those_training_rows(base, tmp_path):
    rec = train_or_reuse(tmp_path / "direct", "sft", preset=None, domains="direct", **base,
                         **{**FAST, "max_steps": 1})
    assert rec.config["n_train_rows"] == 4 and rec.config["domains"] == "direct"
    rows = make_rows(4, rewards=False)
    assert select_domains(rows, None) == rows
    with pytest.raises(ValueError, match=r"keeps no training row; the rows' domains are \['direct'\]"):
        select_domains(rows, "roleplay")


def test_aligned_baseline_trains_sft_in_the_standard_preset_once(base, tmp_path, monkeypatch):
    from safelens.training import aligned_baseline

    monkeypatch.setenv("SAFELENS_CACHE", str(tmp_path / "cache"))
    smoke = {**FAST, "max_steps": 1, "train_file": base["train_file"], "max_train_rows": 4}
    with pytest.warns(UserWarning, match="overriding preset 'standard'"):
        first = aligned_baseline(model=base["model"], **smoke)
    assert first.config["method"] == "sft" and first.config["preset"] == "standard"
    assert first.run_dir.parent == tmp_path / "cache" / "baselines"
    assert first.run_dir.name.startswith("sft-standard-")  # not the default model: hashed name
    with pytest.warns(UserWarning):
        assert aligned_baseline(model=base["model"], **smoke).reused


def test_aligned_baseline_says_when_it_would_train_in_fp32(tmp_path, monkeypatch):
    """Where precision='auto' resolves to fp32 (no native bf16 matmul), training the default
    baseline is slower and yields another model than the README's; it says so before training."""
    from safelens.training import runs

    trained = []
    monkeypatch.setattr(runs, "train_or_reuse", lambda *a, **kw: trained.append(a) or "record")
    monkeypatch.setenv("SAFELENS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAFELENS_BF16", "0")
    with pytest.warns(UserWarning, match="aligned_baseline: training in fp32"):
        assert runs.aligned_baseline() == "record"
    monkeypatch.setenv("SAFELENS_BF16", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runs.aligned_baseline() == "record"
    assert len(trained) == 2


def test_balance_that_cannot_apply_says_so():
    from safelens.training.data import subsample

    rows = [{"id": i, "harmful": i % 2 == 0} for i in range(10)]
    with pytest.warns(UserWarning, match="harmful share is 0.50, not harmful_fraction=0.3"):
        assert len(subsample(rows, 10, seed=0, balance=True, harmful_fraction=0.3)) == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        subsample(rows, 10, seed=0, balance=True, harmful_fraction=0.5)  # nothing to say
