"""scripts/tune_preset.py on a tiny model: one results row per variant with validation ASR,
over-refusal and (``--prefill-k``) prefill ASR per k; a bad variant is refused in one line."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tune(load_script):
    return load_script("scripts/tune_preset.py")


def test_tune_preset_row_with_prefill_asr(tune, tiny_model_dir, tmp_path, capsys):
    variant = {"max_steps": 1, "max_train_rows": 4, "batch_size": 2, "max_length": 64,
               "freeze": "embed_tokens", "warmup_steps": 0}
    results = tmp_path / "tuning.jsonl"
    argv = ["--method", "door", "--base", str(tiny_model_dir), "--seed", "3",
            "--prefill-k", "0", "5", "--max-new-tokens", "2", "--variant", json.dumps(variant),
            "--results", str(results), "--runs", str(tmp_path / "runs"), "--threads", "1"]
    assert tune.main(argv) == 0
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert row["method"] == "door" and row["split"] == "validation"
    assert row["config"]["model"] == str(tiny_model_dir) and row["config"]["seed"] == 3
    assert row["overrides"] == {**variant, "model": str(tiny_model_dir), "seed": 3}
    assert set(row["prefill_asr"]) == {"0", "5"}
    assert all(r["n"] == 100 for r in row["prefill_asr"].values())  # the 100 harmful rows
    assert row["asr"]["n"] == 100 and row["over_refusal"]["n"] == 100
    assert "prefill k=5" in capsys.readouterr().out

    # the same variant again reuses the run and the cached prefill result: a second row, same rates
    assert tune.main(argv) == 0
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 2 and rows[1]["train_seconds"] is None
    assert rows[1]["prefill_asr"] == rows[0]["prefill_asr"]


def test_tune_preset_rejects_a_variant_that_is_not_an_object(tune, tmp_path):
    with pytest.raises(SystemExit, match="expected a JSON object"):
        tune.main(["--variant", "[1, 2]", "--results", str(tmp_path / "r.jsonl")])
    assert not (tmp_path / "r.jsonl").exists()


def _row(method, lr, asr, over, note="grid", beta=None):
    overrides = {"max_steps": 200, "lr": lr, "seed": 0, **({"beta": beta} if beta else {})}
    return {"method": method, "preset": "quick", "overrides": overrides, "config": {"lr": lr},
            "asr": {"value": asr}, "over_refusal": {"value": over}, "note": note}


def test_select_settings_follows_the_rule(tune):
    """Lowest ASR + over-refusal wins; within 2 points the preset's lr (7e-5) wins; only the
    searched settings come back (IPO: lr and beta)."""
    rows = [_row("dpo", 3.5e-5, 0.05, 0.10), _row("dpo", 7e-5, 0.06, 0.05),
            _row("dpo", 1.4e-4, 0.04, 0.06),                      # best 0.10; 7e-5 at 0.11
            _row("ipo", 7e-5, 0.10, 0.10, beta=0.5), _row("ipo", 1.4e-4, 0.02, 0.03, beta=1.0),
            _row("ipo", 7e-5, 0.08, 0.10, beta=1.0),
            _row("sft", 3.5e-5, 0.02, 0.04), _row("sft", 7e-5, 0.03, 0.04)]  # SFT's preset: 2e-5
    assert tune.select_settings(rows) == {"dpo": {"lr": 7e-5},
                                          "ipo": {"beta": 1.0, "lr": 1.4e-4},
                                          "sft": {"lr": 7e-5}}
    assert tune.select_settings(rows, tolerance=0.0)["dpo"] == {"lr": 1.4e-4}


def test_select_reads_the_results_file_by_note(tune, tmp_path, capsys):
    results = tmp_path / "tuning.jsonl"
    rows = [_row("dpo", 3.5e-5, 0.0, 0.01), _row("dpo", 7e-5, 0.2, 0.2),
            _row("dpo", 3.5e-5, 0.5, 0.5, note="other")]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = results.read_text()
    assert tune.main(["--select", "--results", str(results), "--select-note", "grid"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1]) == {"dpo": {"lr": 3.5e-5}} and len(out) == 3
    assert results.read_text() == before  # read, never written
    with pytest.raises(SystemExit, match="no rows whose note contains 'nothing'"):
        tune.main(["--select", "--results", str(results), "--select-note", "nothing"])
    with pytest.raises(SystemExit, match="no such tuning results file"):
        tune.main(["--select", "--results", str(tmp_path / "missing.jsonl")])


def _deep_row(method, lr, asr, over, prefill, **extra):
    row = _row(method, lr, asr, over, note="lr grid, 1 epoch")
    row["overrides"].update(extra)
    row["prefill_asr"] = {"10": {"value": prefill}}
    return row


def test_select_on_prefill_adds_it_to_the_score_and_never_returns_the_star_model(tune):
    """Deep alignment (issue 22) is selected on ASR + over-refusal + prefill ASR at k; W-DOOR's
    variant is a searched setting, its pi* (``star_model``) is the power run's own."""
    star = {"star_model": "runs/shapo-gap/dpo-seed0"}
    rows = [_deep_row("door", 3.5e-5, 0.01, 0.01, 0.30), _deep_row("door", 7e-5, 0.05, 0.01, 0.18),
            _deep_row("door", 1.4e-4, 0.08, 0.03, 0.05),         # best only with prefill
            _deep_row("w-door", 7e-5, 0.02, 0.02, 0.20, variant="seed", **star),
            _deep_row("w-door", 7e-5, 0.03, 0.02, 0.08, variant="public", **star)]
    assert tune.select_settings(rows) == {"door": {"lr": 3.5e-5},
                                          "w-door": {"lr": 7e-5, "variant": "seed"}}
    assert tune.select_settings(rows, prefill_k=10) == {
        "door": {"lr": 1.4e-4}, "w-door": {"lr": 7e-5, "variant": "public"}}
    with pytest.raises(ValueError, match="no prefill ASR at k = 5"):
        tune.select_settings(rows, prefill_k=5)
    # a row trained where "auto" meant fp32 is no part of a bf16 search
    mixed = [{**row, "precision_resolved": "bf16"} for row in rows]
    mixed[0]["precision_resolved"] = "fp32"
    with pytest.raises(ValueError, match=r"trained in \['bf16', 'fp32'\] precision"):
        tune.select_settings(mixed, prefill_k=10)


def test_select_on_prefill_from_the_command_line(tune, tmp_path, capsys):
    results = tmp_path / "tuning.jsonl"
    rows = [_deep_row("door", 7e-5, 0.05, 0.01, 0.18), _deep_row("door", 1.4e-4, 0.08, 0.03, 0.05)]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["--select", "--results", str(results), "--prefill-k"]
    assert tune.main([*args, "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1]) == {"door": {"lr": 1.4e-4}} and "prefill k=10" in out[0]
    assert out[0].endswith("sum  16.0")  # the rule's score: 8 + 3 + 5 points
    with pytest.raises(SystemExit, match="one k to select on"):
        tune.main([*args, "5", "10"])
    with pytest.raises(SystemExit, match="no prefill ASR at k = 5"):
        tune.main([*args, "5"])
