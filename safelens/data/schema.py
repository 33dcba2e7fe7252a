"""Row schemas and validation for safelens data.

Two row kinds flow through the project (see ``safelens/AGENTS.md``):

* **preference rows** (TRL/Hub schema plus metadata)::

    {"id", "prompt", "chosen", "rejected", "harmful", "kind", "category", "domain", "template"}

* **prompt rows** (evaluation sets)::

    {"prompt", "id"?, "harmful"?, "kind"?, "category"?, "domain"?,
     "reference"?, "harmful_response"?, "prefill"?}

  Only ``prompt`` is required, so any list of prompts can be evaluated. A missing ``id``
  becomes ``"row-<n>"``; ``kind`` is derived from ``harmful`` (``harmful``/``benign``) and
  ``harmful`` from ``kind``; a row with neither is unlabelled (responses and judge verdicts,
  no ASR). The built-in prompt sets carry every column.

Any other key is metadata and passes through untouched (``act``, ``heldout``, ``flipped``, ...).

Over-long text policy: a text field longer than ``max_chars`` characters is, by default,
**truncated** to ``max_chars`` with a :class:`UserWarning` naming the row and the field. We
truncate rather than fail because public sets (HH-RLHF transcripts in particular) contain a few
very long rows; dropping them would silently change sizes and refusing them would block a whole
data set, while the models downstream truncate to a few hundred tokens anyway. Pass
``on_overlong="error"`` to get a :class:`DataValidationError` instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from safelens.errors import SafelensError

RowKind = Literal["preference", "prompt"]
"""Which schema a list of rows follows."""

ROW_KINDS: tuple[str, ...] = ("preference", "prompt")
"""Accepted values of the ``kind`` argument of :func:`validate_rows`."""

PROMPT_KINDS: tuple[str, ...] = ("harmful", "benign", "lookalike")
"""Accepted values of a row's ``kind`` field."""

HELDOUT_VALUES: tuple[str | None, ...] = ("template", "category", "act", None)
"""Accepted values of the optional ``heldout`` field (built-in test rows)."""

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "preference": (
        "id",
        "prompt",
        "chosen",
        "rejected",
        "harmful",
        "kind",
        "category",
        "domain",
        "template",
    ),
    "prompt": ("prompt",),
}
"""Columns every row of each schema must have."""

TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "preference": ("prompt", "chosen", "rejected"),
    "prompt": ("prompt",),
}
"""Required text columns: non-empty strings, subject to the ``max_chars`` policy."""

OPTIONAL_TEXT_COLUMNS: tuple[str, ...] = ("reference", "harmful_response", "prefill", "target")
"""Optional text columns: when present and not ``None`` they must be non-empty strings."""

LABEL_COLUMNS: tuple[str, ...] = ("id", "category", "domain", "template")
"""Short string columns: non-empty strings (``template`` only when present on prompt rows)."""


class DataValidationError(SafelensError):
    """A data row (or file) does not follow the safelens schema.

    The message names the row, the source and what was expected, e.g.
    ``"row 17 of train.jsonl: 'chosen' is empty"``.
    """


def _label(number: int, source: str) -> str:
    return f"row {number} of {source}"


def validate_rows(
    rows: Iterable[Mapping[str, Any]],
    kind: RowKind,
    source: str = "<rows>",
    max_chars: int = 8000,
    on_overlong: Literal["truncate", "error"] = "truncate",
) -> list[dict[str, Any]]:
    """Check rows against the preference or prompt schema and return clean copies.

    Checks, in order, for each row: it is a mapping; required columns are present (prompt rows
    need only ``prompt``; see the module docstring for the defaults filled in); text
    columns are non-empty strings; ``harmful`` is a ``bool``; ``kind`` is one of
    ``harmful|benign|lookalike`` and agrees with ``harmful`` (``harmful`` is True exactly when
    ``kind == "harmful"``); ``id``/``category``/``domain``/``template`` are non-empty strings;
    optional text columns (``reference``, ``harmful_response``, ``prefill``, ``target``) are
    non-empty strings or ``None``; ``heldout`` is one of ``template|category|act|None``; ids are
    unique across the rows.

    Text longer than ``max_chars`` characters is truncated to ``max_chars`` with a
    ``UserWarning`` naming the row and field (``on_overlong="truncate"``, the default: public
    sets hold a few very long rows and the models truncate anyway), or raises
    (``on_overlong="error"``). Extra keys pass through untouched. The input is never mutated.

    Rows are numbered from 1 (the line number, for a JSONL file without blank lines).

    Examples:
        >>> rows = [{"id": "a", "prompt": "Hi", "harmful": False, "kind": "benign",
        ...          "category": "chat", "domain": "direct"}]
        >>> validate_rows(rows, "prompt")[0]["prompt"]
        'Hi'
        >>> validate_rows([{**rows[0], "prompt": ""}], "prompt", source="x.jsonl")
        Traceback (most recent call last):
        ...
        safelens.data.schema.DataValidationError: row 1 of x.jsonl: 'prompt' is empty; expected a non-empty string

    Args:
        rows: The rows (any iterable of mappings).
        kind: ``"preference"`` or ``"prompt"``: which schema to check.
        source: Name used in error messages (a file name, or ``"<rows>"``).
        max_chars: Longest accepted text field, in characters.
        on_overlong: ``"truncate"`` (warn and cut) or ``"error"``.

    Returns:
        A new list of new dicts (shallow copies, over-long text truncated).

    Raises:
        DataValidationError: On the first row that breaks the schema.
        ValueError: If ``kind``, ``max_chars`` or ``on_overlong`` is invalid.
    """
    return _validate(rows, kind, source, max_chars, on_overlong, numbers=None)


def _validate(
    rows: Iterable[Mapping[str, Any]],
    kind: str,
    source: str,
    max_chars: int,
    on_overlong: str,
    numbers: Sequence[int] | None,
) -> list[dict[str, Any]]:
    """:func:`validate_rows` with explicit row numbers (line numbers, for files)."""
    if kind not in ROW_KINDS:
        raise ValueError(f"kind must be one of {ROW_KINDS}, got {kind!r}")
    if on_overlong not in ("truncate", "error"):
        raise ValueError(f"on_overlong must be 'truncate' or 'error', got {on_overlong!r}")
    if not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive int, got {max_chars!r}")

    required = REQUIRED_COLUMNS[kind]
    text_columns = TEXT_COLUMNS[kind]
    seen_ids: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        number = numbers[index] if numbers is not None else index + 1
        where = _label(number, source)
        if not isinstance(row, Mapping):
            raise DataValidationError(
                f"{where}: expected a JSON object (mapping), got {type(row).__name__}"
            )
        missing = [c for c in required if c not in row]
        if missing:
            raise DataValidationError(
                f"{where}: missing required column(s) {missing}; a {kind} row needs {list(required)}"
            )
        clean = dict(row)

        for column in text_columns:
            clean[column] = _check_text(clean[column], column, where, max_chars, on_overlong)
        for column in OPTIONAL_TEXT_COLUMNS:
            if clean.get(column) is not None:
                clean[column] = _check_text(clean[column], column, where, max_chars, on_overlong)

        labelled = True
        if kind == "prompt":
            clean.setdefault("id", f"row-{number}")
            labelled = "harmful" in clean or "kind" in clean  # unlabelled: evaluated, not scored
            if labelled and "kind" not in clean:
                clean["kind"] = "harmful" if clean["harmful"] is True else "benign"
            elif labelled:
                clean.setdefault("harmful", clean["kind"] == "harmful")
        if labelled:
            _check_harm_label(clean, where)
        for column in NUMERIC_COLUMNS:
            if column in clean:
                _check_number(clean[column], column, where)
        _check_labels(clean, where)
        out.append(_check_id(clean, where, number, seen_ids))
    return out


NUMERIC_COLUMNS: tuple[str, ...] = ("reward_chosen", "reward_rejected")
"""Optional numeric columns (reward-model scores): finite numbers when present."""


def _check_number(value: Any, column: str, where: str) -> None:
    """A finite int/float (not a bool, not NaN/inf)."""
    import math

    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataValidationError(
            f"{where}: '{column}' must be a finite number, got {type(value).__name__} {value!r:.60}"
        )


def _check_harm_label(clean: dict[str, Any], where: str) -> None:
    """``harmful`` is a bool, ``kind`` a known kind, and the two agree."""
    harmful = clean["harmful"]
    if not isinstance(harmful, bool):
        raise DataValidationError(
            f"{where}: 'harmful' must be a bool (true/false), got {type(harmful).__name__} "
            f"{harmful!r}"
        )
    row_kind = clean["kind"]
    if row_kind not in PROMPT_KINDS:
        raise DataValidationError(
            f"{where}: unknown 'kind' {row_kind!r}; expected one of {list(PROMPT_KINDS)}"
        )
    if harmful != (row_kind == "harmful"):
        raise DataValidationError(
            f"{where}: 'harmful' is {harmful} but 'kind' is {row_kind!r}; expected "
            "harmful=true exactly when kind='harmful'"
        )


def _check_labels(clean: dict[str, Any], where: str) -> None:
    """Short label columns, when present, are non-empty strings; ``heldout`` is known."""
    for column in LABEL_COLUMNS:
        if column not in clean:
            continue  # required ones were checked already; the rest are optional
        value = clean[column]
        if not isinstance(value, str):
            raise DataValidationError(
                f"{where}: '{column}' must be a string, got {type(value).__name__} {value!r}"
            )
        if not value.strip():
            raise DataValidationError(f"{where}: '{column}' is empty; expected a non-empty string")
    heldout = clean.get("heldout")
    if heldout not in HELDOUT_VALUES:
        raise DataValidationError(
            f"{where}: unknown 'heldout' {heldout!r}; expected one of {list(HELDOUT_VALUES)}"
        )


def _check_id(
    clean: dict[str, Any], where: str, number: int, seen_ids: dict[str, int]
) -> dict[str, Any]:
    """Record ``clean["id"]``; raise on a duplicate. Returns ``clean``."""
    row_id = clean["id"]
    if row_id in seen_ids:
        raise DataValidationError(
            f"{where}: duplicate id {row_id!r} (first used by row {seen_ids[row_id]}); "
            "ids must be unique"
        )
    seen_ids[row_id] = number
    return clean


def _check_text(value: Any, column: str, where: str, max_chars: int, on_overlong: str) -> str:
    """Return ``value`` if it is acceptable text, truncated when over-long; raise otherwise."""
    if not isinstance(value, str):
        raise DataValidationError(
            f"{where}: '{column}' must be a string, got {type(value).__name__} {value!r:.60}"
        )
    if not value.strip():
        raise DataValidationError(f"{where}: '{column}' is empty; expected a non-empty string")
    if len(value) > max_chars:
        message = f"{where}: '{column}' has {len(value)} characters, more than max_chars={max_chars}"
        if on_overlong == "error":
            raise DataValidationError(message)
        warnings.warn(f"{message}; truncated to {max_chars}", UserWarning, stacklevel=4)
        return value[:max_chars]
    return value
