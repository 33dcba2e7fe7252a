"""Scorers of the utility tasks (seed 001, Table 4): ROUGE for summaries, execution match for
SQL, exact final-number match for arithmetic, and :func:`score_utility`, one entry point that
returns the project's rate type (``value, ci_low, ci_high, n``).

All functions are pure (SQL runs in a throw-away in-memory SQLite database). The rows are
those of :mod:`safelens.data.utility`.

Examples:
    >>> extract_final_number("4 * 9 = 36. The answer is 36.")
    36
    >>> arithmetic_exact("So she has 1,200 left.", 1200)
    True
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from safelens.errors import SafelensError
from safelens.eval.metrics import bootstrap_ci, wilson_ci

__all__ = [
    "METRICS",
    "SQL_MAX_STEPS",
    "arithmetic_exact",
    "extract_final_number",
    "extract_sql",
    "rouge",
    "score_utility",
    "sql_execution_match",
]

METRICS: dict[str, str] = {"summarization": "rougeL_f1", "sql": "execution_accuracy",
                           "arithmetic": "exact_match"}
"""The headline metric of each task (``score_utility(...)["metric"]``)."""

SQL_MAX_STEPS: int = 200_000
"""SQLite virtual-machine steps after which a query is aborted (a runaway query scores False)."""

_ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")


# ---------------------------------------------------------------------------------------------
# summarization
# ---------------------------------------------------------------------------------------------


def _check_pairs(predictions: Sequence[Any], references: Sequence[Any], what: str) -> None:
    if len(predictions) != len(references):
        raise SafelensError(f"{what}: {len(predictions)} predictions for {len(references)} "
                            "references; expected one prediction per reference")
    if not references:
        raise SafelensError(f"{what}: no references; expected at least one pair")
    for name, texts in (("predictions", predictions), ("references", references)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise SafelensError(f"{what}: {name}[{i}] is {type(text).__name__}; expected a "
                                    "string")


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (``rouge-score``, Porter stemming), scaled to 0-100.

    Examples:
        >>> rouge(["Anna meets Tom at 7 pm."], ["Anna meets Tom at 7 pm."])["rougeL"]
        100.0
        >>> rouge(["the cat sat"], ["dogs bark loudly"])["rouge1"]
        0.0

    Args:
        predictions: ``[N]`` generated summaries.
        references: ``[N]`` reference summaries.

    Returns:
        ``{"rouge1", "rouge2", "rougeL"}`` (means over rows) and ``"per_row"``:
        ``{"rouge1": [N], "rouge2": [N], "rougeL": [N]}``, all on a 0-100 scale.

    Raises:
        SafelensError: lengths differ, no rows, a non-string entry, or ``rouge-score`` is not
            installed.
    """
    _check_pairs(predictions, references, "rouge")
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise SafelensError("rouge: the package rouge-score is not installed; expected it for "
                            "summarization scores (pip install 'safelens[utility]')") from None
    scorer = rouge_scorer.RougeScorer(list(_ROUGE_TYPES), use_stemmer=True)
    per_row: dict[str, list[float]] = {t: [] for t in _ROUGE_TYPES}
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # (target, prediction)
        for t in _ROUGE_TYPES:
            per_row[t].append(100.0 * scores[t].fmeasure)
    out: dict[str, Any] = {t: sum(v) / len(v) for t, v in per_row.items()}
    out["per_row"] = per_row
    return out


# ---------------------------------------------------------------------------------------------
# sql
# ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:sql|sqlite)?[ \t]*\n?(.*?)(?:```|$)", re.IGNORECASE | re.DOTALL)
_LEADING_LABEL = re.compile(r"^\s*(?:sql(?:\s+query)?|query|answer)\s*:\s*", re.IGNORECASE)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_FORBIDDEN = re.compile(r"\b(?:attach|detach|pragma|vacuum)\b", re.IGNORECASE)


def extract_sql(response: str) -> str:
    """The SQL statement in a model's response.

    Takes the first fenced code block if there is one, drops a leading ``SQL:`` / ``Query:`` /
    ``Answer:`` label, and keeps the text up to the first ``;`` or blank line.

    Examples:
        >>> extract_sql("```sql\\nSELECT name FROM t;\\n```\\nThis lists the names.")
        'SELECT name FROM t'
        >>> extract_sql("SQL: SELECT 1\\n\\nExplanation: ...")
        'SELECT 1'
    """
    text = response or ""
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    text = _LEADING_LABEL.sub("", text.strip())
    text = re.split(r";|\n\s*\n", text, maxsplit=1)[0]
    return text.strip()


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    """Allow reading queries only: SELECT, column reads, functions (not load_extension), CTEs."""
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
        return sqlite3.SQLITE_DENY
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


_ALLOWED_ACTIONS: frozenset[int] = frozenset(
    code for code in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                      getattr(sqlite3, "SQLITE_RECURSIVE", 33))
)


def _normalise(value: Any) -> Any:
    """Floats rounded (AVG may differ in the last bits between equivalent queries)."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    return value


def _run(conn: sqlite3.Connection, sql: str, max_rows: int = 10_000) -> list[tuple[Any, ...]]:
    rows = conn.execute(sql).fetchmany(max_rows + 1)
    if len(rows) > max_rows:
        raise sqlite3.OperationalError(f"more than {max_rows} result rows")
    return [tuple(_normalise(v) for v in row) for row in rows]


def _database(row: Mapping[str, Any]) -> sqlite3.Connection:
    """An in-memory database holding the row's table and its INSERTed rows."""
    conn = sqlite3.connect(":memory:")
    for statement in (row["context"], *row["inserts"]):
        conn.execute(statement)
    return conn


def _guard(conn: sqlite3.Connection, max_steps: int) -> None:
    """Read-only access, a step budget and a size limit for untrusted queries."""
    steps = [0]

    def progress() -> int:
        steps[0] += 1
        return 1 if steps[0] * 1000 > max_steps else 0  # non-zero aborts the query

    conn.set_progress_handler(progress, 1000)
    conn.set_authorizer(_authorize)
    setlimit = getattr(conn, "setlimit", None)  # Python >= 3.11
    if setlimit is not None:
        setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)  # no giant blobs (randomblob, zeroblob)


def _sql_row_fields(row: Mapping[str, Any], where: str) -> None:
    for field in ("context", "inserts", "gold_sql"):
        if field not in row:
            raise SafelensError(f"{where}: missing {field!r}; expected an sql utility row "
                                "(context, inserts, gold_sql)")


def sql_execution_match(pred_sql: str, row: Mapping[str, Any],
                        max_steps: int = SQL_MAX_STEPS) -> bool:
    """Whether the predicted query returns what the gold query returns on the row's data.

    The database is built in memory from ``row["context"]`` (CREATE TABLE) and
    ``row["inserts"]``; the predicted SQL (extracted with :func:`extract_sql`) may only read
    (an authorizer denies writes, DROP, ATTACH, PRAGMA, ...), is aborted after ``max_steps``
    virtual-machine steps, and any error makes it wrong: this function never raises for a bad
    prediction. Results are compared as multisets of rows, in order only when the gold query has
    ``ORDER BY``; column names are ignored.

    Examples:
        >>> row = {"context": "CREATE TABLE t (name TEXT, age INTEGER)",
        ...        "inserts": ["INSERT INTO t VALUES ('Ann', 30)", "INSERT INTO t VALUES ('Bo', 40)"],
        ...        "gold_sql": "SELECT name FROM t WHERE age > 30"}
        >>> sql_execution_match("```sql\\nSELECT name FROM t WHERE age >= 40;\\n```", row)
        True
        >>> sql_execution_match("SELECT name FROM t WHERE age >= 30", row)
        False
        >>> sql_execution_match("DROP TABLE t", row)
        False

    Raises:
        SafelensError: the row lacks ``context``/``inserts``/``gold_sql`` or its gold query fails
            (a data error, not a model error).
    """
    _sql_row_fields(row, f"row {row.get('id', '?')}")
    try:
        conn = _database(row)
        gold = _run(conn, row["gold_sql"])
    except sqlite3.Error as err:
        raise SafelensError(f"row {row.get('id', '?')}: the gold query or the table fails in "
                            f"SQLite ({err}); expected an executable sql utility row") from None
    try:
        sql = extract_sql(pred_sql if isinstance(pred_sql, str) else "")
        if not sql or _FORBIDDEN.search(sql):
            return False
        _guard(conn, max_steps)
        predicted = _run(conn, sql)
    except Exception:  # noqa: BLE001 - any failure of an untrusted query is a wrong answer
        return False
    finally:
        conn.close()
    if _ORDER_BY.search(row["gold_sql"]):
        return predicted == gold
    return Counter(predicted) == Counter(gold)


# ---------------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------------

_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_ANSWER_IS = re.compile(rf"answer\s+is\s*:?\s*\$?\s*({_NUMBER})", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)


def _parse_number(text: str) -> int | float:
    text = text.replace(",", "")
    return float(text) if "." in text else int(text)


def extract_final_number(text: str) -> int | float | None:
    """The final answer of a worked solution: the number after the last "The answer is", else
    the last number in the text, else ``None``.

    Examples:
        >>> extract_final_number("3 + 4 = 7. The answer is 7.")
        7
        >>> extract_final_number("The answer is $1,250. (I first got 1,000.)")
        1250
        >>> extract_final_number("Each friend gets 2.5 apples")
        2.5
        >>> extract_final_number("I'm sorry, I can't help.") is None
        True
    """
    if not isinstance(text, str):
        return None
    matches = _ANSWER_IS.findall(text)
    if matches:
        return _parse_number(matches[-1])
    numbers = _ANY_NUMBER.findall(text)
    return _parse_number(numbers[-1]) if numbers else None


def arithmetic_exact(response: str, answer: int | float) -> bool:
    """Whether the response's final number (:func:`extract_final_number`) equals ``answer``.

    Examples:
        >>> arithmetic_exact("12 - 5 = 7. The answer is 7.", 7)
        True
        >>> arithmetic_exact("The answer is 7.0", 7), arithmetic_exact("The answer is 8.", 7)
        (True, False)
    """
    value = extract_final_number(response)
    return value is not None and math.isclose(value, answer, rel_tol=0.0, abs_tol=1e-9)


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def _rate(values: Sequence[float], proportion: bool) -> tuple[float, float, float]:
    mean = sum(values) / len(values)
    if proportion:
        low, high = wilson_ci(int(sum(values)), len(values))
    else:
        low, high = bootstrap_ci(values)
    return float(mean), float(low), float(high)


def score_utility(task: str, rows: Sequence[Mapping[str, Any]],
                  responses: Sequence[str]) -> dict[str, Any]:
    """Score one utility task's responses against its rows.

    Examples:
        >>> from safelens.data.utility import generate_utility_set
        >>> rows = generate_utility_set("arithmetic", "test", n=4)
        >>> s = score_utility("arithmetic", rows, [r["chosen"] for r in rows[:3]] + ["no idea"])
        >>> s["metric"], s["value"], s["n"], s["per_row"]
        ('exact_match', 0.75, 4, [True, True, True, False])

    Args:
        task: ``"summarization"``, ``"sql"`` or ``"arithmetic"``.
        rows: ``[N]`` rows of that task (:func:`safelens.data.utility.load_utility_set`).
        responses: ``[N]`` model responses, in the rows' order.

    Returns:
        ``{"task", "metric", "value", "ci_low", "ci_high", "n", "per_row"}``: ``value`` is the
        accuracy in [0, 1] (sql: execution match, arithmetic: exact match, Wilson 95% interval)
        or the mean ROUGE-L F1 / 100 (summarization, percentile-bootstrap interval, with
        ``rouge1``/``rouge2``/``rougeL`` means on the 0-100 scale added). ``per_row`` holds the
        bools or the ROUGE-L F1 / 100 of each row.

    Raises:
        SafelensError: an unknown task, ``rows`` and ``responses`` of different lengths, no
            rows, a non-string response, or a row without the task's fields.
    """
    if task not in METRICS:
        raise SafelensError(f"unknown utility task {task!r}; expected one of {tuple(METRICS)}")
    if len(rows) != len(responses):
        raise SafelensError(f"score_utility({task!r}): {len(responses)} responses for {len(rows)} "
                            "rows; expected one response per row")
    if not rows:
        raise SafelensError(f"score_utility({task!r}): no rows; expected at least one")
    for i, response in enumerate(responses):
        if not isinstance(response, str):
            raise SafelensError(f"score_utility({task!r}): response {i} is "
                                f"{type(response).__name__}; expected a string")
    needed = {"summarization": "reference", "sql": "gold_sql", "arithmetic": "answer"}[task]
    for i, row in enumerate(rows):
        if needed not in row:
            raise SafelensError(f"score_utility({task!r}): row {i} ({row.get('id', '?')}) has no "
                                f"{needed!r}; expected a {task} utility row")
    out: dict[str, Any] = {"task": task, "metric": METRICS[task]}
    per_row: list[Any]
    if task == "summarization":
        scores = rouge(list(responses), [row["reference"] for row in rows])
        per_row = [v / 100.0 for v in scores["per_row"]["rougeL"]]
        value, low, high = _rate(per_row, proportion=False)
        out.update({t: scores[t] for t in _ROUGE_TYPES})
    else:
        if task == "sql":
            per_row = [sql_execution_match(r, row) for r, row in zip(responses, rows, strict=True)]
        else:
            per_row = [arithmetic_exact(r, row["answer"])
                       for r, row in zip(responses, rows, strict=True)]
        value, low, high = _rate([float(v) for v in per_row], proportion=True)
    out.update({"value": value, "ci_low": low, "ci_high": high, "n": len(rows),
                "per_row": per_row})
    return out
