"""Offline utility tasks (seed 001, Table 4): generator, files, scorers. No model loads."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time

import pytest

from safelens.cli.main import main
from safelens.data.schema import validate_rows
from safelens.data.utility import (
    DEFAULT_SIZES,
    UTILITY_SPLITS,
    UTILITY_TASKS,
    build_utility_sets,
    generate_utility_set,
    load_utility_set,
    utility_path,
)
from safelens.errors import SafelensError
from safelens.eval.judges import KeywordJudge
from safelens.eval.utility import (
    arithmetic_exact,
    extract_final_number,
    extract_sql,
    rouge,
    score_utility,
    sql_execution_match,
)

ALL = {(task, split): generate_utility_set(task, split) for task in UTILITY_TASKS
       for split in UTILITY_SPLITS}


# --- generator and files -----------------------------------------------------------------------


def test_same_seed_same_rows_and_another_seed_other_rows():
    for task in UTILITY_TASKS:
        assert generate_utility_set(task, "train", 20) == ALL[task, "train"][:20]
        assert generate_utility_set(task, "train", 20, seed=1) != ALL[task, "train"][:20]


def test_default_sizes_unique_prompts_and_disjoint_splits():
    for task in UTILITY_TASKS:
        train, test = ALL[task, "train"], ALL[task, "test"]
        assert (len(train), len(test)) == (DEFAULT_SIZES["train"], DEFAULT_SIZES["test"])
        for rows in (train, test):
            assert len({r["prompt"] for r in rows}) == len(rows)
        assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
        # also for another seed (disjoint pools, not luck)
        other = generate_utility_set(task, "test", 100, seed=7)
        assert not {r["prompt"] for r in train} & {r["prompt"] for r in other}


def test_rows_are_valid_preference_rows_with_task_fields():
    judge = KeywordJudge()
    extra = {"summarization": {"dialogue"}, "sql": {"context", "inserts", "gold_sql"},
             "arithmetic": {"answer", "steps"}}
    for (task, _split), rows in ALL.items():
        validate_rows(rows, kind="preference")
        for row in rows:
            assert extra[task] <= set(row)
            assert (row["harmful"], row["kind"], row["category"], row["domain"]) == (
                False, "benign", task, "utility")
            assert row["chosen"] == row["reference"]
            assert len(row["chosen"]) < 200 and len(row["chosen"].split()) < 40  # << 60 tokens
        assert judge.refusals([r["prompt"] for r in rows], [r["rejected"] for r in rows]).all()
        assert not judge.refusals([r["prompt"] for r in rows], [r["chosen"] for r in rows]).any()


def test_prompts_are_complete_instructions():
    for split in UTILITY_SPLITS:
        for row in ALL["summarization", split]:
            instruction, dialogue = row["prompt"].split("\n\n", 1)
            assert dialogue == row["dialogue"] and "sentence" in instruction
            assert 4 <= len(row["dialogue"].splitlines()) <= 6
        for row in ALL["sql", split]:
            assert row["context"] in row["prompt"] and row["prompt"].endswith("only the SQL.")
            assert 5 <= len(row["inserts"]) <= 12
            assert 3 <= row["context"].count(",") + 1 <= 5
        for row in ALL["arithmetic", split]:
            assert "The answer is N." in row["prompt"]


def test_summaries_come_from_the_dialogue():
    for row in ALL["summarization", "test"]:
        speakers = {line.split(":")[0] for line in row["dialogue"].splitlines()}
        named = {w.strip(",;.'s") for w in row["chosen"].split()} & speakers
        assert named, row["chosen"]  # the summary names who is talking
        numbers = re.findall(r"\d+", row["chosen"])
        assert all(n in row["dialogue"] for n in numbers)
        assert row["chosen"] not in row["dialogue"]  # not a copied line


def test_shipped_files_match_the_generator_and_the_manifest():
    manifest = json.loads((utility_path("sql", "test").parents[1] / "manifest.json").read_text())
    for task in UTILITY_TASKS:
        for split in UTILITY_SPLITS:
            path = utility_path(task, split)
            assert load_utility_set(task, split) == ALL[task, split]
            entry = manifest["files"][f"{task}/{split}.jsonl"]
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["rows"] == len(ALL[task, split])


def test_load_regenerates_when_the_file_is_absent(tmp_path):
    assert load_utility_set("arithmetic", "test", root=tmp_path) == ALL["arithmetic", "test"]


def test_build_and_cli_write_files_card_and_manifest(tmp_path):
    sizes = build_utility_sets(tmp_path / "a", sizes={"train": 10, "test": 5})
    assert sizes == {task: {"train": 10, "test": 5} for task in UTILITY_TASKS}
    card = (tmp_path / "a" / "README.md").read_text()
    for word in ("SAMSum", "sql-create-context", "GSM8K", "Limitations", "ROUGE"):
        assert word in card
    assert main(["data", "utility", "--out", str(tmp_path / "b"), "--seed", "3"]) == 0
    rows = load_utility_set("sql", "train", root=tmp_path / "b")
    assert rows == generate_utility_set("sql", "train", seed=3)


def test_bad_task_split_or_size_is_one_line_error():
    with pytest.raises(SafelensError, match="unknown utility task 'qa'; expected one of"):
        generate_utility_set("qa", "train")
    with pytest.raises(SafelensError, match="unknown utility split 'dev'"):
        generate_utility_set("sql", "dev")
    with pytest.raises(SafelensError, match="n must be an integer >= 1, got 0"):
        generate_utility_set("sql", "train", 0)
    with pytest.raises(SafelensError, match=r"unknown split\(s\) \['dev'\]"):
        build_utility_sets("/nonexistent-never-written", sizes={"dev": 3})


# --- sql ---------------------------------------------------------------------------------------


def _sql_results(row, sql):
    import sqlite3

    conn = sqlite3.connect(":memory:")
    for statement in (row["context"], *row["inserts"]):
        conn.execute(statement)
    return conn.execute(sql).fetchall()


def test_every_gold_query_executes_non_empty_and_matches_itself():
    for split in UTILITY_SPLITS:
        for row in ALL["sql", split]:
            result = _sql_results(row, row["gold_sql"])
            assert result and result[0][0] not in (None, 0), row["id"]
            assert sql_execution_match(row["gold_sql"], row), row["id"]


def test_plausible_wrong_queries_score_false():
    mutations = {
        "sql-count_gt": lambda q: q.replace(" > ", " >= "),
        "sql-list_lt": lambda q: q.replace(" < ", " <= "),
        "sql-max": lambda q: q.replace("MAX(", "MIN("),
        "sql-top1": lambda q: q.replace(" DESC ", " ASC "),
        "sql-list_cat": lambda q: q.split(" WHERE ")[0],
        "sql-count_cat": lambda q: q.split(" WHERE ")[0],
    }
    checked = 0
    for row in ALL["sql", "train"] + ALL["sql", "test"]:
        if row["template"] in mutations:
            wrong = mutations[row["template"]](row["gold_sql"])
            assert wrong != row["gold_sql"]
            assert not sql_execution_match(wrong, row), (row["id"], wrong)
            checked += 1
    assert checked > 50
    row = next(r for r in ALL["sql", "test"] if r["template"] == "sql-lookup")
    other = re.sub(r"= '([^']+)'", "= 'Nobody'", row["gold_sql"])
    assert not sql_execution_match(other, row)


def test_order_matters_only_with_order_by():
    row = next(r for r in ALL["sql", "test"] if r["template"] == "sql-list_cat")
    assert sql_execution_match(row["gold_sql"] + " ORDER BY 1 DESC", row)  # no ORDER BY in gold
    checked = 0
    for row in (r for r in ALL["sql", "test"] if r["template"] == "sql-topk"):
        reordered = f"SELECT * FROM ({row['gold_sql']}) ORDER BY 1"
        gold, other = _sql_results(row, row["gold_sql"]), _sql_results(row, reordered)
        if other != gold:  # same rows, another order
            assert sorted(other) == sorted(gold) and not sql_execution_match(reordered, row)
            checked += 1
    assert checked


def test_bad_and_hostile_queries_score_false_without_raising(tmp_path):
    row = ALL["sql", "test"][0]
    table = row["context"].split()[2]
    target = tmp_path / "x.db"
    hostile = [
        "", "I'm sorry, but I can't help with that.", "SELEC name FROM", "SELECT nope FROM t0",
        f"DROP TABLE {table}", f"DELETE FROM {table}", f"INSERT INTO {table} DEFAULT VALUES",
        f"ATTACH DATABASE '{target}' AS x", f"attach '{target}' as y",
        "SELECT load_extension('/tmp/evil')", "PRAGMA table_info(t)",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        "SELECT length(zeroblob(2000000000))",
        None,
    ]
    start = time.monotonic()
    for query in hostile:
        assert sql_execution_match(query, row) is False, query
    assert time.monotonic() - start < 20  # the runaway query was cut off
    assert not target.exists()  # nothing touched the filesystem
    assert sql_execution_match(row["gold_sql"], row)  # the row's data were not changed


def test_extract_sql_from_responses():
    assert extract_sql("```sql\nSELECT a\nFROM t\nWHERE b = 1;\n```") == "SELECT a\nFROM t\nWHERE b = 1"
    assert extract_sql("Here you go:\n```\nSELECT 1\n```\nDone.") == "SELECT 1"
    assert extract_sql("SQL: SELECT 2; -- comment") == "SELECT 2"
    assert extract_sql("SELECT 3\n\nThis query returns three.") == "SELECT 3"
    assert extract_sql("  select 4  ") == "select 4"
    row = ALL["sql", "test"][1]
    assert sql_execution_match(f"Sure!\n```sql\n{row['gold_sql']};\n```\nIt filters rows.", row)


def test_sql_row_without_fields_or_broken_gold_is_an_error():
    with pytest.raises(SafelensError, match="missing 'inserts'"):
        sql_execution_match("SELECT 1", {"id": "r1", "context": "CREATE TABLE t (a INT)",
                                         "gold_sql": "SELECT a FROM t"})
    with pytest.raises(SafelensError, match="row r2: the gold query"):
        sql_execution_match("SELECT 1", {"id": "r2", "context": "CREATE TABLE t (a INT)",
                                         "inserts": [], "gold_sql": "SELECT b FROM t"})


# --- arithmetic --------------------------------------------------------------------------------

_STEP = re.compile(r"^(\d+) ([-+*/]) (\d+) = (\d+)\.$")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a / b}


def test_arithmetic_answers_follow_from_the_problem_numbers():
    for split in UTILITY_SPLITS:
        for row in ALL["arithmetic", split]:
            problem_numbers = {int(n) for n in re.findall(r"\d+", row["prompt"].split("\n\n", 1)[1])}
            known, result = set(problem_numbers), None
            assert 1 <= len(row["steps"]) <= 3
            for step in row["steps"]:
                a, op, b, c = _STEP.match(step).groups()
                a, b, c = int(a), int(b), int(c)
                assert a in known and b in known, (row["id"], step)
                assert _OPS[op](a, b) == c, (row["id"], step)
                known.add(c)
                result = c
            assert result == row["answer"] and isinstance(row["answer"], int)
            assert row["chosen"] == " ".join(row["steps"]) + f" The answer is {row['answer']}."
            assert row["chosen"].count("The answer is") == 1


def test_extract_final_number_cases():
    assert extract_final_number("2 + 3 = 5. The answer is 5.") == 5
    assert extract_final_number("The answer is 4. Wait, the answer is 6.") == 6
    assert extract_final_number("The answer is: $1,234.") == 1234
    assert extract_final_number("the answer is -3") == -3
    assert extract_final_number("She ends up with 12 apples, then 15") == 15
    assert extract_final_number("about 2.5 hours") == 2.5
    assert extract_final_number("no numbers here") is None
    assert extract_final_number("") is None
    assert arithmetic_exact("The answer is 42.", 42)
    assert arithmetic_exact("42.0", 42)
    assert not arithmetic_exact("The answer is 41.", 42)
    assert not arithmetic_exact("I'm sorry, but I can't help with that.", 42)


# --- summarization and score_utility -----------------------------------------------------------


def test_rouge_identical_is_100_and_unrelated_is_low():
    refs = [r["reference"] for r in ALL["summarization", "test"][:5]]
    same = rouge(refs, refs)
    assert all(math.isclose(same[t], 100.0) for t in ("rouge1", "rouge2", "rougeL"))
    assert same["per_row"]["rougeL"] == pytest.approx([100.0] * 5)
    unrelated = rouge(["The quarterly revenue of the mining company grew sharply."] * 5, refs)
    assert unrelated["rougeL"] < 20 and unrelated["rouge2"] < 5
    with pytest.raises(SafelensError, match="2 predictions for 1 references"):
        rouge(["a", "b"], ["a"])


def test_score_utility_fields_ranges_and_cis():
    for task in UTILITY_TASKS:
        rows = ALL[task, "test"][:20]
        perfect = score_utility(task, rows, [r["chosen"] for r in rows])
        refusals = score_utility(task, rows, [r["rejected"] for r in rows])
        for s in (perfect, refusals):
            assert {"task", "metric", "value", "ci_low", "ci_high", "n", "per_row"} <= set(s)
            assert 0.0 <= s["ci_low"] <= s["value"] <= s["ci_high"] <= 1.0
            assert s["n"] == len(s["per_row"]) == 20
            json.dumps(s, allow_nan=False)
        assert perfect["value"] == pytest.approx(1.0)
        assert refusals["value"] < 0.2
    s = score_utility("summarization", ALL["summarization", "test"][:3], ["x", "y", "z"])
    assert {"rouge1", "rouge2", "rougeL"} <= set(s) and s["metric"] == "rougeL_f1"
    acc = score_utility("sql", ALL["sql", "test"][:10], [r["gold_sql"] for r in ALL["sql", "test"][:10]])
    assert acc["ci_low"] < 1.0 == acc["ci_high"]  # Wilson: never zero-width at 100%


def test_score_utility_bad_input_is_one_line_error():
    rows = ALL["arithmetic", "test"][:3]
    with pytest.raises(SafelensError, match="unknown utility task 'qa'; expected one of"):
        score_utility("qa", rows, ["1", "2", "3"])
    with pytest.raises(SafelensError, match="2 responses for 3 rows; expected one response per row"):
        score_utility("arithmetic", rows, ["1", "2"])
    with pytest.raises(SafelensError, match="response 1 is NoneType; expected a string"):
        score_utility("arithmetic", rows, ["1", None, "3"])
    with pytest.raises(SafelensError, match="has no 'gold_sql'; expected a sql utility row"):
        score_utility("sql", rows, ["1", "2", "3"])
    with pytest.raises(SafelensError, match="no rows"):
        score_utility("sql", [], [])
