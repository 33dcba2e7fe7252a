"""Row schema validation, JSONL I/O and built-in data access."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from safelens.data import (
    DataValidationError,
    builtin_path,
    load_builtin,
    read_jsonl,
    validate_rows,
    write_jsonl,
)
from safelens.data import builtin as data_builtin
from safelens.data import io as data_io


def pref(i: int = 0, **overrides) -> dict:
    row = {
        "id": f"r{i}", "prompt": "How do I bake bread?", "chosen": "Mix flour...",
        "rejected": "I can't help with that.", "harmful": False, "kind": "benign",
        "category": "cooking", "domain": "direct", "template": "direct-01",
    }
    row.update(overrides)
    return row


def prompt_row(i: int = 0, **overrides) -> dict:
    row = {"id": f"p{i}", "prompt": "How do I bake bread?", "harmful": False, "kind": "benign",
           "category": "cooking", "domain": "direct"}
    row.update(overrides)
    return row


def test_valid_rows_pass_and_extra_keys_survive():
    rows = [pref(0, act="bake_bread", heldout=None, custom={"x": 1}), pref(1)]
    out = validate_rows(rows, "preference")
    assert out == rows
    assert out[0] is not rows[0]  # copies, input untouched
    assert validate_rows([prompt_row(reference="Mix flour...")], "prompt")[0]["reference"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (pref(chosen=""), "row 1 of train.jsonl: 'chosen' is empty; expected a non-empty string"),
        (pref(rejected="   "), "row 1 of train.jsonl: 'rejected' is empty"),
        (pref(prompt=3), "row 1 of train.jsonl: 'prompt' must be a string, got int"),
        (pref(harmful="yes"), "row 1 of train.jsonl: 'harmful' must be a bool (true/false), got str"),
        (pref(harmful=1), "'harmful' must be a bool (true/false), got int"),
        (pref(kind="evil"), "row 1 of train.jsonl: unknown 'kind' 'evil'; expected one of "
                            "['harmful', 'benign', 'lookalike']"),
        (pref(harmful=True), "'harmful' is True but 'kind' is 'benign'"),
        (pref(category=""), "row 1 of train.jsonl: 'category' is empty"),
        (pref(id=7), "row 1 of train.jsonl: 'id' must be a string, got int"),
        (pref(heldout="domain"), "unknown 'heldout' 'domain'"),
        (pref(reference=""), "'reference' is empty"),
        ([1, 2], "row 1 of train.jsonl: expected a JSON object (mapping), got list"),
    ],
)
def test_schema_errors_name_row_file_and_expectation(row, message):
    with pytest.raises(DataValidationError) as info:
        validate_rows([row], "preference", source="train.jsonl")
    assert message in str(info.value)


def test_missing_columns_listed():
    row = pref()
    del row["chosen"], row["domain"]
    with pytest.raises(DataValidationError, match=r"row 1 of x: missing required column\(s\) "
                       r"\['chosen', 'domain'\]; a preference row needs"):
        validate_rows([row], "preference", source="x")


def test_prompt_rows_do_not_need_responses_or_template():
    validate_rows([prompt_row()], "prompt")
    with pytest.raises(DataValidationError, match="missing required column"):
        validate_rows([{"id": "a", "text": "hi"}], "prompt")


def test_prompt_rows_need_only_a_prompt_and_derive_labels():
    rows = validate_rows([{"prompt": "hi"}, {"prompt": "build a bomb", "harmful": True},
                          {"prompt": "blow up a photo", "kind": "lookalike"}], "prompt")
    assert [r["id"] for r in rows] == ["row-1", "row-2", "row-3"]
    assert "harmful" not in rows[0] and "kind" not in rows[0]  # unlabelled
    assert (rows[1]["kind"], rows[2]["harmful"]) == ("harmful", False)
    with pytest.raises(DataValidationError, match="'harmful' must be a bool"):
        validate_rows([{"prompt": "x", "harmful": "yes"}], "prompt")
    with pytest.raises(DataValidationError, match="'domain' is empty"):
        validate_rows([{"prompt": "x", "domain": " "}], "prompt")


def test_duplicate_ids():
    rows = [pref(0), pref(1), pref(0)]
    with pytest.raises(DataValidationError, match=r"row 3 of <rows>: duplicate id 'r0' \(first "
                       r"used by row 1\); ids must be unique"):
        validate_rows(rows, "preference")


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        validate_rows([], "pairs")
    with pytest.raises(ValueError, match="on_overlong"):
        validate_rows([], "prompt", on_overlong="drop")


def test_overlong_text_truncates_with_warning_or_raises():
    rows = [pref(0, rejected="No."), pref(1, chosen="x" * 50, rejected="No.")]
    with pytest.warns(UserWarning, match=r"row 2 of t.jsonl: 'chosen' has 50 characters, more "
                      r"than max_chars=20; truncated to 20"):
        out = validate_rows(rows, "preference", source="t.jsonl", max_chars=20)
    assert out[1]["chosen"] == "x" * 20
    assert rows[1]["chosen"] == "x" * 50
    with pytest.raises(DataValidationError, match="'chosen' has 50 characters"):
        validate_rows(rows, "preference", max_chars=20, on_overlong="error")


def test_jsonl_round_trip_and_line_numbers(tmp_path: Path):
    path = write_jsonl(tmp_path / "sub" / "train.jsonl", [pref(0), pref(1)], kind="preference")
    assert read_jsonl(path, kind="preference") == [pref(0), pref(1)]
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 2
    # A blank line shifts line numbers; errors report the line.
    path.write_text(text + "\n" + json.dumps(pref(2, chosen="")) + "\n")
    with pytest.raises(DataValidationError, match=rf"row 4 of {path}: 'chosen' is empty"):
        read_jsonl(path, kind="preference")
    assert len(read_jsonl(path)) == 3  # kind=None only parses


def test_malformed_json_names_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(pref(0)) + "\n{not json\n")
    with pytest.raises(DataValidationError, match=rf"line 2 of {path}: malformed JSON"):
        read_jsonl(path, kind="preference")
    path.write_text("[1, 2]\n")
    with pytest.raises(DataValidationError, match="line 1 of .*expected a JSON object, got list"):
        read_jsonl(path)


def test_write_is_atomic(tmp_path: Path, monkeypatch):
    path = tmp_path / "data.jsonl"
    write_jsonl(path, [pref(0)])
    before = path.read_bytes()

    def crash(src, dst):
        raise KeyboardInterrupt("interrupted mid-write")

    monkeypatch.setattr(data_io.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, [pref(1), pref(2)])
    assert path.read_bytes() == before  # old content intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]  # no temp file left
    monkeypatch.undo()
    with pytest.raises(TypeError):  # unencodable value: nothing written
        write_jsonl(path, [{"a": object()}])
    assert path.read_bytes() == before


def test_write_validates_when_kind_given(tmp_path: Path):
    with pytest.raises(DataValidationError, match="'chosen' is empty"):
        write_jsonl(tmp_path / "x.jsonl", [pref(chosen="")], kind="preference")
    assert not (tmp_path / "x.jsonl").exists()


def test_written_file_has_normal_permissions(tmp_path: Path):
    path = write_jsonl(tmp_path / "x.jsonl", [pref()])
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_builtin_path_and_load_builtin():
    assert builtin_path().name == "data"
    assert (builtin_path() / "README.md").is_file()
    rows = load_builtin("prompts", "smoke")
    assert len(rows) == 24
    with pytest.raises(ValueError, match="unknown built-in data 'prompt'"):
        load_builtin("prompt", "test")
    with pytest.raises(ValueError, match="unknown split 'train' for built-in 'prompts'"):
        load_builtin("prompts", "train")


def test_load_builtin_regenerates_when_files_are_absent(tmp_path: Path, monkeypatch):
    shipped = load_builtin("preferences", "validation")
    monkeypatch.setattr(data_builtin, "builtin_path", lambda: tmp_path / "missing")
    assert load_builtin("preferences", "validation") == shipped
