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
