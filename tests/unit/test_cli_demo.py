"""`safelens demo` wiring on the tiny model: align, evaluate both, compare (seconds, no RM)."""

from __future__ import annotations

import json

import torch

from safelens.cli.main import main
from safelens.models import load_tiny_model, save_model


class LengthScorer:
    """A stand-in reward model: longer responses score higher (the real one takes a minute)."""

    def score(self, prompts, responses):
        return torch.tensor([float(len(r)) for r in responses])


def test_demo_aligns_then_compares_and_resumes(tmp_path, monkeypatch, capsys):
    """Defaults: the demo method in the standard preset; on the tiny model its targets are
    missed, and the run finishes and says so (issue 15, "Bad input")."""
    import safelens.reward
    from safelens.cli.main import DEMO_METHOD

    monkeypatch.setattr(safelens.reward, "win_rate_reward_model", LengthScorer)
    base = save_model(load_tiny_model(seed=0), tmp_path / "tiny")
    argv = ["demo", "--model", str(base), "--out", str(tmp_path / "demo"), "--limit", "6",
            "--sets", "test,smoke", "--agreement-judges", "keyword,keyword-benchmark",
            "--max-new-tokens", "4", "--max-steps", "2",
            "--max-train-rows", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    run = tmp_path / "demo" / f"{DEMO_METHOD}-standard"
    assert (run / "model" / "model.safetensors").is_file()
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").open()] == [1, 2]
    for name in ("vanilla", DEMO_METHOD):
        for stem in (name, f"{name}.smoke"):
            rows = [json.loads(line) for line in (tmp_path / "demo" / f"{stem}.jsonl").open()]
            assert len(rows) == 6 and all("response" in r and "refused" in r for r in rows)
            assert all("degenerate" in r and set(r["refused_by"]) >= {"keyword", "keyword-benchmark"}
                       for r in rows)
        summary = json.loads((tmp_path / "demo" / f"{name}.summary.json").read_text())
        assert 0.0 <= summary["asr"]["value"] <= 1.0
        assert 0.0 <= summary["win_rate"]["value"] <= 1.0
    report = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert set(report["sets"]) == {"test", "smoke"}
    assert set(report["sets"]["test"]) == {"vanilla", f"{DEMO_METHOD} (standard)"}
    assert report["train_seconds"] > 0 and isinstance(report["targets_missed"], list)
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert "vanilla" in header and f"{DEMO_METHOD} (standard)" in header
    assert "win rate vs reference (RM)" in out and "ASR (keyword-benchmark)" in out
    assert "degenerate (all rows)" in out
    assert "preset 'standard' targets on the test split: NOT reached" in out

    # a second call reuses the finished run instead of training again
    assert main(argv) == 0
    assert f"reusing the finished run {run}" in capsys.readouterr().out


def test_demo_rejects_an_unknown_set_before_loading_anything(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--sets", "test,harmbnch"]) == 2
    err = capsys.readouterr().err
    assert "--sets 'test,harmbnch'" in err and "do-not-answer" in err
    assert not (tmp_path / "d").exists()
