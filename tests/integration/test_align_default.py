"""`safelens align` end to end on the real default model (slow: loads SmolLM2-135M)."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.slow


def test_align_dpo_quick_two_steps_then_load(tmp_path):
    from safelens.cli.main import main
    from safelens.models import load_model
    from safelens.models.loading import hf_state_dict

    out = tmp_path / "dpo-quick"
    argv = ["align", "--method", "dpo", "--preset", "quick", "--max-steps", "2",
            "--out", str(out), "--no-progress", "--max-train-rows", "16",
            "--batch-size", "2"]  # 2-row batches: the same checks, 63 s -> 30 s on the AVX2 CPU
    assert main(argv) == 0
    for name in ("model/model.safetensors", "model/tokenizer.json", "log.jsonl", "config.json",
                 "checkpoint/trainer_state.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert (config["method"], config["preset"], config["max_steps"]) == ("dpo", "quick", 2)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    # policy == reference at the first step: the DPO term is log 2; quick adds RPO's NLL on top
    assert abs(log[0]["pref_loss"] - 0.693147) < 1e-3
    assert abs(log[0]["loss"] - (log[0]["pref_loss"] + log[0]["nll_loss"])) < 1e-4
    assert all(k in log[0] for k in ("rewards/margins", "rewards/accuracies", "logps/chosen"))

    aligned = load_model(str(out), device="cpu")
    base = load_model(device="cpu")
    a, b = hf_state_dict(aligned.original_model), hf_state_dict(base.original_model)
    assert a.keys() == b.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed and "model.embed_tokens.weight" not in changed  # quick freezes embeddings
