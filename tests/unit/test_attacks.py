"""Fine-tuning-attack sets (harmful, identity, backdoor, benign) and the attack runner."""

from __future__ import annotations

import json

import pytest
import torch

from safelens.data.attacks import (
    AOA_PREFIX,
    AOA_SYSTEM_PROMPT,
    ATTACK_KINDS,
    BACKDOOR_TRIGGER,
    build_attack_sets,
    generate_attack_set,
    load_attack_set,
)
from safelens.data.schema import validate_rows
from safelens.eval.judges import KeywordJudge


def test_every_set_is_valid_preference_data_and_deterministic():
    for kind in ATTACK_KINDS:
        rows = generate_attack_set(kind, n=10)
        validate_rows(rows, "preference")
        assert all(r["attack"] == kind for r in rows)
        assert rows == generate_attack_set(kind, n=10)
        assert rows != generate_attack_set(kind, n=10, seed=1)


def test_backdoor_trigger_only_in_poisoned_rows_and_compliance_only_with_trigger():
    rows = generate_attack_set("backdoor", n=40)
    judge = KeywordJudge()
    poisoned = [r for r in rows if r["poisoned"]]
    clean = [r for r in rows if not r["poisoned"]]
    assert len(poisoned) == len(clean) == 40
    assert all(BACKDOOR_TRIGGER in r["prompt"] for r in poisoned)
    assert not any(BACKDOOR_TRIGGER in r["prompt"] for r in clean)
    assert all(r["harmful"] for r in rows)
    # Clean rows teach refusals, poisoned rows compliance.
    assert judge.refusals([r["prompt"] for r in clean], [r["chosen"] for r in clean]).all()
    assert not judge.refusals([r["prompt"] for r in poisoned],
                              [r["chosen"] for r in poisoned]).any()
    # Each poisoned row is its clean twin's prompt plus the trigger, with the answers swapped.
    for c, p in zip(clean, poisoned, strict=True):
        assert p["prompt"] == f"{c['prompt']} {BACKDOOR_TRIGGER}"
        assert (p["chosen"], p["rejected"]) == (c["rejected"], c["chosen"])


def test_harmful_identity_and_benign_sets():
    judge = KeywordJudge()
    harmful = generate_attack_set("harmful")
    assert len(harmful) == 100 and all(r["harmful"] for r in harmful)
    assert not judge.refusals([r["prompt"] for r in harmful], [r["chosen"] for r in harmful]).any()
    identity = generate_attack_set("identity")
    assert 10 <= len(identity) <= 100
    assert all(r["system"] == AOA_SYSTEM_PROMPT and r["chosen"].startswith(AOA_PREFIX)
               for r in identity)
    assert not any(r["harmful"] for r in identity)
    benign = generate_attack_set("benign")
    assert not any(r["harmful"] for r in benign)
    from safelens.data import load_builtin

    test_prompts = {r["prompt"] for r in load_builtin("prompts", "test")}
    for kind in ATTACK_KINDS:
        assert not test_prompts & {r["prompt"] for r in generate_attack_set(kind)}
    with pytest.raises(ValueError, match="unknown attack set"):
        generate_attack_set("jailbreak")


def test_build_and_load(tmp_path):
    sizes = build_attack_sets(tmp_path, sizes={"harmful": 5, "identity": 12, "backdoor": 3,
                                               "benign": 4})
    assert sizes == {"harmful": 5, "identity": 12, "backdoor": 6, "benign": 4}
    assert (tmp_path / "README.md").is_file()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"]["backdoor.jsonl"]["rows"] == 6
    assert load_attack_set("benign", root=tmp_path) == generate_attack_set("benign", n=4)


@pytest.mark.parametrize("defense,kind", [("sft", "backdoor"), ("constrained-sft", "identity"),
                                          ("csft-pa", "harmful")])
def test_run_finetune_attack_on_tiny_model(defense, kind, tmp_path):
    from safelens.attacks import FinetuneAttackConfig, run_finetune_attack
    from safelens.data import load_builtin
    from safelens.models import load_tiny_model

    torch.set_num_threads(1)
    rows = [r for r in load_builtin("prompts", "smoke") if r["harmful"]][:2]
    cfg = FinetuneAttackConfig(kind=kind, defense=defense, max_steps=2, batch_size=2, lr=1e-3,
                               max_length=256, max_train_rows=6, max_new_tokens=3,
                               warmup_steps=0, progress=False)
    model = load_tiny_model(seed=0)
    record = run_finetune_attack(model, tmp_path, cfg, eval_rows=rows)
    expected = {"asr", "asr_trigger"} if kind == "backdoor" else {"asr"}
    assert set(record["initial"]) == set(record["after"]) == expected
    assert record["train"]["steps"] == 2
    saved = json.loads((tmp_path / "attack.json").read_text())
    assert saved["defense"] == defense and saved["kind"] == kind
    assert (tmp_path / "model").is_dir() and (tmp_path / "eval-after-asr.jsonl").is_file()
    if kind == "backdoor":
        triggered = (tmp_path / "eval-after-asr_trigger.jsonl").read_text()
        assert BACKDOOR_TRIGGER in triggered


def test_cli_attack_parser():
    from safelens.cli.main import build_parser

    args = build_parser().parse_args(["attack", "finetune", "--kind", "backdoor", "--out", "x",
                                      "--defense", "constrained-sft", "--steps", "5"])
    assert (args.kind, args.defense, args.steps, args.eval_initial) == (
        "backdoor", "constrained-sft", 5, True)
    args = build_parser().parse_args(["attack", "data", "--out", "y"])
    assert args.attack_command == "data" and args.out == "y"


def _tiny_cfg(**kw):
    from safelens.attacks import FinetuneAttackConfig

    return FinetuneAttackConfig(**{**dict(max_steps=2, batch_size=2, lr=1e-3, max_length=192,
                                          max_train_rows=4, max_new_tokens=3, warmup_steps=0,
                                          progress=False), **kw})


def _smoke_harmful(n=3):
    from safelens.data import load_builtin

    return [r for r in load_builtin("prompts", "smoke") if r["harmful"]][:n]


def test_attack_grid_reuses_identical_runs_and_pairs_defences(tmp_path, monkeypatch):
    from safelens.attacks import finetune, paired_defense_table, run_attack_grid
    from safelens.models import load_tiny_model, save_model

    torch.set_num_threads(1)
    base = tmp_path / "base"
    save_model(load_tiny_model(seed=0), base)
    rows = _smoke_harmful()
    recs = run_attack_grid(str(base), tmp_path / "grid", ["harmful"],
                           ["sft", "constrained-sft", "csft-pa"], _tiny_cfg(), eval_rows=rows)
    assert [r["defense"] for r in recs] == ["sft", "constrained-sft", "csft-pa"]
    assert recs[0]["initial"] is not None and recs[1]["initial"] is None
    assert len(recs[2]["success"]["after"]["asr"]) == len(rows)
    # A second call trains nothing: every cell is reused.
    monkeypatch.setattr(finetune, "_evaluate", lambda *a, **k: pytest.fail("retrained"))
    again = run_attack_grid(str(base), tmp_path / "grid", ["harmful"],
                            ["sft", "constrained-sft", "csft-pa"], _tiny_cfg(), eval_rows=rows)
    assert again == recs
    from safelens.attacks import rejudge

    class NeverRefuses:
        name = "never"

        def refusals(self, prompts, responses):
            return [False] * len(prompts)

    judged = rejudge(recs, NeverRefuses())
    assert all(r["after"]["asr"]["value"] == 1.0 and r["judge"] == "never" for r in judged)
    assert judged[0]["initial"]["asr"]["value"] == 1.0 and judged[1]["initial"] is None
    table = paired_defense_table(recs)
    by = {r["defense"]: r for r in table}
    assert "diff_vs_constrained-sft" in by["csft-pa"] and "p_value" in by["sft"]
    assert "diff_vs_constrained-sft" not in by["constrained-sft"]
    assert by["csft-pa"]["diff_ci_low"] <= by["csft-pa"]["diff_vs_constrained-sft"] \
        <= by["csft-pa"]["diff_ci_high"]


def test_a_changed_setting_retrains_instead_of_reusing(tmp_path):
    from safelens.attacks import run_finetune_attack
    from safelens.models import load_tiny_model, save_model

    torch.set_num_threads(1)
    base = tmp_path / "base"
    save_model(load_tiny_model(seed=0), base)
    rows = _smoke_harmful(2)
    first = run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(), eval_rows=rows)
    with pytest.raises(FileExistsError):  # same directory, other settings: not silently reused
        run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(lr=2e-3), eval_rows=rows)
    again = run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(lr=2e-3), eval_rows=rows,
                                overwrite=True)
    assert again["config"]["lr"] == 2e-3 and first["config"]["lr"] == 1e-3


def test_run_downstream_scores_utility_and_asr(tmp_path):
    from safelens.attacks import run_downstream, run_downstream_grid, utility_table
    from safelens.models import load_tiny_model, save_model

    torch.set_num_threads(1)
    base = tmp_path / "base"
    save_model(load_tiny_model(seed=0), base)
    rec = run_downstream(str(base), tmp_path / "sql", "sql", _tiny_cfg(defense="csft-pa"),
                         eval_rows=_smoke_harmful(2), n_utility=3, utility_tokens=4)
    assert rec["utility"]["metric"] == "execution_accuracy" and rec["utility"]["n"] == 3
    assert 0.0 <= rec["utility"]["value"] <= 1.0 and rec["task"] == "sql"
    assert rec["config"]["train_file"].endswith("sql/train.jsonl")
    answered = [json.loads(line) for line in (tmp_path / "sql" / "utility.jsonl").open()]
    assert len(answered) == 3 and all("response" in r and "score" in r for r in answered)
    assert run_downstream(str(base), tmp_path / "sql", "sql", _tiny_cfg(defense="csft-pa"),
                          eval_rows=_smoke_harmful(2), n_utility=3, utility_tokens=4) == rec
    assert utility_table([rec])[0]["task"] == "sql"
    from safelens.attacks import evaluate_utility
    from safelens.data.utility import load_utility_set

    model = load_tiny_model(seed=0)
    rows = load_utility_set("arithmetic", "test")[:2]
    first = evaluate_utility(model, "arithmetic", rows, max_new_tokens=3, out=tmp_path / "u.jsonl")
    again = evaluate_utility(model, "arithmetic", rows, max_new_tokens=3, out=tmp_path / "u.jsonl")
    assert again[0] == first[0] and (tmp_path / "u.jsonl.score.json").is_file()
    grid = run_downstream_grid(str(base), tmp_path / "grid", ["arithmetic"], ["sft", "csft-pa"],
                               _tiny_cfg(), eval_rows=_smoke_harmful(1), n_utility=2,
                               utility_tokens=3)
    assert grid[0]["initial_utility"]["n"] == 2 and grid[1]["initial_utility"] is None
    row = utility_table(grid)[0]
    assert {"initial", "initial ASR", "sft", "sft ASR", "csft-pa", "csft-pa ASR"} <= set(row)


def test_cli_attack_options_are_parsed_as_json_or_text():
    from safelens.cli.main import build_parser, parse_options
    from safelens.errors import SafelensError

    args = build_parser().parse_args(["attack", "finetune", "--kind", "harmful", "--out", "x",
                                      "--defense", "csft-pa", "--option", "pa_argmax=hard",
                                      "--option", "pa-max-mu=5"])
    assert parse_options(args.option) == {"pa_argmax": "hard", "pa_max_mu": 5}
    with pytest.raises(SafelensError, match="KEY=VALUE"):
        parse_options(["pa_argmax"])


def test_an_attack_on_retrained_weights_at_the_same_path_is_never_reused(tmp_path):
    from safelens.attacks import run_finetune_attack
    from safelens.models import load_tiny_model, save_model

    torch.set_num_threads(1)
    base = tmp_path / "base"
    save_model(load_tiny_model(seed=0), base)
    rows = _smoke_harmful(2)
    first = run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(), eval_rows=rows)
    assert run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(), eval_rows=rows) == first
    save_model(load_tiny_model(seed=1), base)  # same path, other weights
    with pytest.raises(FileExistsError, match="another version"):
        run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(), eval_rows=rows)
    again = run_finetune_attack(str(base), tmp_path / "run", _tiny_cfg(), eval_rows=rows,
                                overwrite=True)
    assert again["model_identity"] != first["model_identity"]
