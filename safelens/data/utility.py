"""Offline utility tasks (seed 001, Table 4): utility after fine-tuning, measured on small
templated analogues of SAMSum, sql-create-context and GSM8K.

Each set is a list of **preference rows** (so ``safelens align --train FILE`` reads it) in
which ``chosen`` is the target answer (also in ``reference``) and ``rejected`` an unneeded
refusal; ``harmful`` is false, ``kind`` ``"benign"``, ``category`` the task, ``domain``
``"utility"``. Extra columns per task:

=================  ====================================================  ==========================
task               prompt                                                extra columns
=================  ====================================================  ==========================
``summarization``  "Summarize this dialogue in one sentence:" + a chat    ``dialogue``
``sql``            a ``CREATE TABLE`` + a question, "Reply with only      ``context``, ``inserts``,
                   the SQL."                                              ``gold_sql``
``arithmetic``     a word problem, "end with 'The answer is N.'"          ``answer`` (int), ``steps``
=================  ====================================================  ==========================

The text comes from :mod:`safelens.data.generator.utility` (seeded; train and test draw from
disjoint name/table pools, so they never share a prompt). Scoring: :mod:`safelens.eval.utility`.
Files: ``data/utility/<task>/{train,test}.jsonl`` plus ``README.md`` and ``manifest.json``,
written by :func:`build_utility_sets` (``safelens data utility``).

Examples:
    >>> rows = generate_utility_set("sql", "train", n=2)
    >>> [(r["category"], r["chosen"] == r["gold_sql"] == r["reference"]) for r in rows]
    [('sql', True), ('sql', True)]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safelens.data.builtin import builtin_path
from safelens.data.generator.utility import REFUSALS, SPLITS, TASKS, utility_examples
from safelens.data.io import read_jsonl, write_jsonl
from safelens.errors import SafelensError

__all__ = [
    "DEFAULT_SIZES",
    "UTILITY_SPLITS",
    "UTILITY_TASKS",
    "build_utility_sets",
    "generate_utility_set",
    "load_utility_set",
    "utility_path",
]

UTILITY_TASKS: tuple[str, ...] = TASKS
"""The utility tasks: ``("summarization", "sql", "arithmetic")``."""

UTILITY_SPLITS: tuple[str, ...] = SPLITS
"""The splits of every task: ``("train", "test")``."""

DEFAULT_SIZES: dict[str, int] = {"train": 200, "test": 100}
"""Rows per split (each task): 200 to fine-tune on, 100 to score."""

_TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "summarization": ("dialogue",),
    "sql": ("context", "inserts", "gold_sql"),
    "arithmetic": ("answer", "steps"),
}


def _check(task: str, split: str) -> None:
    if task not in UTILITY_TASKS:
        raise SafelensError(f"unknown utility task {task!r}; expected one of {UTILITY_TASKS}")
    if split not in UTILITY_SPLITS:
        raise SafelensError(f"unknown utility split {split!r}; expected one of {UTILITY_SPLITS}")


def generate_utility_set(task: str, split: str, n: int | None = None,
                         seed: int = 0) -> list[dict[str, Any]]:
    """Generate one task's split in memory (deterministic for a seed).

    Examples:
        >>> row = generate_utility_set("arithmetic", "test", n=1)[0]
        >>> row["id"], row["kind"], row["domain"], row["chosen"].endswith(f"{row['answer']}.")
        ('utility-arithmetic-test-001', 'benign', 'utility', True)

    Args:
        task: one of :data:`UTILITY_TASKS`.
        split: ``"train"`` or ``"test"``.
        n: rows (default :data:`DEFAULT_SIZES` of the split).
        seed: generator seed.

    Returns:
        Preference rows (see the module docstring).

    Raises:
        SafelensError: unknown task or split, or ``n < 1``.
    """
    _check(task, split)
    n = DEFAULT_SIZES[split] if n is None else n
    rows: list[dict[str, Any]] = []
    for i, example in enumerate(utility_examples(task, split, n, seed), start=1):
        rows.append({
            "id": f"utility-{task}-{split}-{i:03d}", "prompt": example["prompt"],
            "chosen": example["target"], "rejected": REFUSALS[(i - 1) % len(REFUSALS)],
            "harmful": False, "kind": "benign", "category": task, "domain": "utility",
            "template": example["template"], "reference": example["target"],
            **{field: example[field] for field in _TASK_FIELDS[task]},
        })
    return rows


def utility_path(task: str, split: str, root: str | Path | None = None) -> Path:
    """``data/utility/<task>/<split>.jsonl``, or ``<root>/<task>/<split>.jsonl``.

    Examples:
        >>> utility_path("sql", "test", root="out").as_posix()
        'out/sql/test.jsonl'
    """
    _check(task, split)
    folder = Path(root) if root is not None else builtin_path() / "utility"
    return folder / task / f"{split}.jsonl"


def load_utility_set(task: str, split: str, root: str | Path | None = None) -> list[dict[str, Any]]:
    """A utility split from ``data/utility/<task>/<split>.jsonl``, or generated (seed 0, default
    size) if the file is absent.

    Examples:
        >>> rows = load_utility_set("summarization", "test")
        >>> len(rows), rows[0]["category"]
        (100, 'summarization')

    Raises:
        SafelensError: unknown task or split, or a file that breaks the preference schema.
    """
    path = utility_path(task, split, root)
    if path.is_file():
        return read_jsonl(path, kind="preference")
    return generate_utility_set(task, split)


def _card(sets: dict[str, dict[str, list[dict[str, Any]]]], seed: int) -> str:
    sizes = {task: {split: len(rows) for split, rows in splits.items()}
             for task, splits in sets.items()}
    lines = [
        "# Utility tasks — data card",
        "",
        "Offline analogues of the three downstream tasks on which seed 001 (Table 4) measures "
        "utility after fine-tuning. Written by `safelens data utility` "
        f"(`safelens.data.utility.build_utility_sets`, seed {seed}) from the templates in "
        "`safelens/data/generator/utility.py`; nothing is downloaded and no text is copied from "
        "the real data sets. Sized so that a 135M chat model (SmolLM2-135M-Instruct) can be "
        "fine-tuned on the train split on CPU and scored on the test split; every target is "
        "short (well under 60 tokens), so generation with `max_new_tokens=64` suffices.",
        "",
        "| task | analogue of | train | test | input | target | score (`safelens.eval.utility`) |",
        "|---|---|---|---|---|---|---|",
        f"| `summarization` | SAMSum (dialogue summarisation) | {sizes['summarization']['train']} "
        f"| {sizes['summarization']['test']} | a 4-6 turn chat between 2-3 people about plans, "
        "errands, work, travel, gifts, lost items, pets, classes | one-sentence summary | "
        "ROUGE-1/2/L F1 (`rouge-score`, stemming); `value` = ROUGE-L F1 / 100, bootstrap CI |",
        f"| `sql` | sql-create-context (text-to-SQL) | {sizes['sql']['train']} "
        f"| {sizes['sql']['test']} | a `CREATE TABLE` (3-5 typed columns, 7 domains) and a "
        "question | one single-table `SELECT` (WHERE, COUNT, MAX, MIN, AVG, ORDER BY ... LIMIT, "
        "some with two conditions) | execution match on an in-memory SQLite database built from "
        "the row's `context` + `inserts`; Wilson CI |",
        f"| `arithmetic` | GSM8K (grade-school word problems) | {sizes['arithmetic']['train']} "
        f"| {sizes['arithmetic']['test']} | a word problem with 1-3 integer operations "
        "(+, -, *, / with integer results) | worked steps ending in `The answer is N.` | exact "
        "match of the final number (`The answer is N`, else the last number); Wilson CI |",
        "",
        "## Rows",
        "",
        "Preference rows (`id`, `prompt`, `chosen` = the target, `rejected` = an unneeded "
        "refusal, `harmful: false`, `kind: benign`, `category` = the task, `domain: utility`, "
        "`template` = the scenario / question type, `reference` = the target), plus per task: "
        "`dialogue` (summarization); `context` (the CREATE TABLE, also in the prompt), "
        "`inserts` (5-12 INSERT statements) and `gold_sql` (sql); `answer` (int) and `steps` "
        "(the worked operations, `a op b = c.`) (arithmetic).",
        "",
        "## How it was generated",
        "",
        "- Summaries: 10 dialogue scenarios, each turn and the summary drawn from 2-3 "
        "phrasings, so a summary is not a copy of a dialogue line; the summary states only "
        "facts said in the dialogue.",
        "- SQL: a table from one of 7 domains (employees, products, students, books, cities, "
        "flights, teams) with a random subset of its columns and 5-12 rows (numbers distinct "
        "within a column, so `ORDER BY ... LIMIT` has one answer; at least two categories per "
        "text column); the question is one of 11 types. Thresholds are values from the table, so "
        "`>=` for `>` answers differently, and every gold query returns a non-empty result.",
        "- Arithmetic: 12 problem types (1-3 operations); divisions are exact.",
        "- Train and test never share a prompt: people's names (summaries, word problems) and "
        "table names (SQL) come from disjoint pools per split; prompts are unique within a "
        "split.",
        "",
        "## Limitations",
        "",
        "- Templated: a handful of scenarios and question types, far narrower than SAMSum, "
        "sql-create-context or GSM8K; scores here are not comparable with published numbers on "
        "the real data sets, only between models scored on these files.",
        "- Fine-tuning on the train split teaches the templates; test differs by names, tables "
        "and numbers, not by kind of problem.",
        "- ROUGE rewards word overlap; a correct paraphrase can score lower than a wrong summary "
        "that reuses the reference's words.",
        "- SQL execution match compares results, not queries: a wrong query that happens to give "
        "the same result on the 5-12 rows counts as correct.",
        "",
    ]
    return "\n".join(lines)


def build_utility_sets(out_dir: str | Path | None = None, seed: int = 0,
                       sizes: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
    """Write every task's train and test split, a data card and a manifest to ``out_dir``
    (default ``data/utility``).

    Args:
        out_dir: output folder (``<out_dir>/<task>/<split>.jsonl``).
        seed: generator seed.
        sizes: rows per split, e.g. ``{"train": 200, "test": 100}`` (the default).

    Returns:
        Rows per task and split.

    Raises:
        SafelensError: an unknown split in ``sizes``, or a train prompt that is also a test prompt.
    """
    out = Path(out_dir) if out_dir is not None else builtin_path() / "utility"
    unknown = sorted(set(sizes or {}) - set(UTILITY_SPLITS))
    if unknown:
        raise SafelensError(f"utility sizes: unknown split(s) {unknown}; expected keys from "
                            f"{UTILITY_SPLITS}")
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    sets = {task: {split: generate_utility_set(task, split, sizes[split], seed)
                   for split in UTILITY_SPLITS} for task in UTILITY_TASKS}
    for task, splits in sets.items():
        shared = {r["prompt"] for r in splits["train"]} & {r["prompt"] for r in splits["test"]}
        if shared:
            raise SafelensError(f"utility task {task!r}: {len(shared)} prompt(s) in both train "
                                "and test; expected disjoint splits")
    manifest: dict[str, Any] = {"seed": seed, "generator": "safelens.data.utility.build_utility_sets",
                                "sizes": sizes, "files": {}}
    for task, splits in sets.items():
        for split, rows in splits.items():
            path = write_jsonl(out / task / f"{split}.jsonl", rows, kind="preference")
            manifest["files"][f"{task}/{split}.jsonl"] = {
                "rows": len(rows), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (out / "README.md").write_text(_card(sets, seed), encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {task: {split: len(rows) for split, rows in splits.items()}
            for task, splits in sets.items()}
