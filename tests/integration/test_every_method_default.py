"""Every registered training method takes a step on the real default model through the CLI."""

from __future__ import annotations

import json

import pytest

from safelens.training import available_methods

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_reward_model(tmp_path_factory):
    """A MiniLM reward model trained on 32 built-in pairs (the default one takes ~1.5 min)."""
    from safelens.data import load_builtin
    from safelens.reward import RewardConfig, train_reward_model

    model, _ = train_reward_model(load_builtin("preferences", "train")[:32],
                                  RewardConfig(epochs=5, seed=0))
    return str(model.save(tmp_path_factory.mktemp("rm")))


@pytest.mark.parametrize("method", available_methods())
def test_method_trains_one_step_on_the_default_model(method, tmp_path, small_reward_model):
    from safelens.cli.main import main

    out = tmp_path / method
    # 2-row batches: the same code path at half the CPU time (these 16 tests: 537 s -> 253 s on
    # a 2-core AVX2 CPU; zo-refine, whose step 1 is a layer probe of 1 + 2 x 15 forwards, 99 -> 32)
    small = ["--max-steps", "1", "--max-train-rows", "8", "--batch-size", "2", "--no-progress"]
    argv = ["align", "--method", method, "--preset", "quick", "--out", str(out), *small]
    if method == "zo-refine":  # refines a finished first-order run; presets are for those
        source = tmp_path / "sft-source"
        assert main(["align", "--method", "sft", "--preset", "quick", "--out", str(source),
                     *small]) == 0
        argv = ["align", "--method", "zo-refine", "--from", str(source), "--out", str(out),
                "--max-steps", "1", "--no-progress"]
    if method in ("reward-level", "shapo-r"):
        argv += ["--reward-model", small_reward_model]
    if method == "w-door":
        argv += ["--star-model", "smollm2-135m-instruct"]  # pi* = the base model: a smoke test
    assert main(argv) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1]
    assert all(v == v for k, v in log[0].items() if isinstance(v, float))  # no NaN logged
    assert (out / "model" / "model.safetensors").is_file()
