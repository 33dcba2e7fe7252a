"""Standard preference data (TRL's formats, 🤗 datasets) as safelens preference rows.

Training accepts, besides our own JSONL (:mod:`safelens.data.schema`):

* **TRL standard** rows ``{"prompt": str, "chosen": str, "rejected": str}``;
* **TRL conversational** rows, ``prompt`` / ``chosen`` / ``rejected`` as lists of
  ``{"role", "content"}`` messages, with an explicit prompt (``prompt`` = ``[system?, user]``,
  ``chosen`` and ``rejected`` = ``[assistant]``) or an implicit one (no ``prompt``; ``chosen``
  and ``rejected`` hold the whole conversation ``[system?, user, assistant]`` and share all but
  the last message). Single-turn conversations become single-turn rows (a system message goes
  to the row's ``system`` column, which the chat template puts first); a multi-turn or
  malformed conversation raises a :class:`~safelens.data.schema.DataValidationError` naming
  the row;
* files in those formats: ``.jsonl`` (read line by line, errors name the line), ``.json``,
  ``.csv`` and ``.parquet`` (read with ``datasets.load_dataset``; rows numbered from 1);
* a ``datasets.Dataset`` (:func:`dataset_rows`) and a data-set name
  (:func:`load_preference_dataset`): a public loader's name (``pku-saferlhf``, ``hh-rlhf``:
  :func:`safelens.data.public.load_public`), a local file or folder, or a Hub id read by
  ``datasets.load_dataset`` — from the local cache only when ``HF_HUB_OFFLINE=1``.

Metadata columns are optional; a missing (or ``None``) one gets these defaults:

========== ==========================================================================
column     default
========== ==========================================================================
id         ``<name>-<row number>`` (``name``: the file's stem or the data set's name)
harmful    ``harmful`` argument (default ``False``; ``True`` for a refusal-only set),
           or ``kind == "harmful"`` when ``kind`` is given
kind       ``"harmful"`` if ``harmful`` else ``"benign"``
category   ``"unspecified"``
domain     the file's stem or the data set's name
template   the same as ``domain``
========== ==========================================================================

A row whose ``harmful`` and ``kind`` were both defaulted gets ``labelled: False``, so a study
can tell an assumed label from a real one. Any other column passes through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from safelens.data.io import read_jsonl_numbered
from safelens.data.public import PUBLIC_LOADERS, _builder, load_public, load_table
from safelens.data.schema import REQUIRED_COLUMNS, DataValidationError, _validate
from safelens.errors import SafelensError

Row = dict[str, Any]

PREFERENCE_LOADERS: tuple[str, ...] = ("pku-saferlhf", "hh-rlhf")
"""Public loaders (:data:`safelens.data.PUBLIC_LOADERS`) whose rows are preference pairs."""

ROLES: tuple[str, ...] = ("system", "user", "assistant")
"""Message roles of TRL's conversational format."""


def _messages(value: Any, column: str, where: str) -> list[tuple[str, str]]:
    """``[(role, content)]`` of a conversational column; raises on anything malformed."""
    if isinstance(value, str):
        return [("user" if column == "prompt" else "assistant", value)]
    if not isinstance(value, list) or not value:
        raise DataValidationError(
            f"{where}: '{column}' must be text or a non-empty list of {{'role', 'content'}} "
            f"messages, got {type(value).__name__} {value!r:.60}")
    out = []
    for i, message in enumerate(value, start=1):
        ok = (isinstance(message, Mapping) and message.get("role") in ROLES
              and isinstance(message.get("content"), str))
        if not ok:
            raise DataValidationError(
                f"{where}: '{column}' message {i} is not a {{'role', 'content'}} message with "
                f"role in {list(ROLES)} and text content, got {message!r:.80}")
        out.append((message["role"], message["content"]))
    return out


def _turns(messages: Sequence[tuple[str, str]]) -> str:
    return ", ".join(role for role, _ in messages)


def _single_prompt(messages: list[tuple[str, str]], column: str, where: str) -> tuple[str, str]:
    """``(system, user)`` of a prompt ``[system?, user]``; raises on a multi-turn one."""
    roles = [role for role, _ in messages]
    if roles not in (["user"], ["system", "user"]):
        raise DataValidationError(
            f"{where}: '{column}' holds a multi-turn or malformed prompt ({_turns(messages)}); "
            "safelens trains single-turn rows: expected [system?, user] then one assistant "
            "message")
    return (messages[0][1] if roles[0] == "system" else ""), messages[-1][1]


def _single_answer(messages: list[tuple[str, str]], column: str, where: str) -> str:
    if [role for role, _ in messages] != ["assistant"]:
        raise DataValidationError(
            f"{where}: '{column}' must be one assistant message, got {_turns(messages)}; "
            "safelens trains single-turn rows")
    return messages[0][1]


def _from_conversation(row: Row, where: str) -> Row:
    """A TRL conversational row (explicit or implicit prompt) as a single-turn text row."""
    out = dict(row)
    if row.get("prompt") is None:  # implicit prompt: the conversations share all but the answer
        chosen = _messages(row.get("chosen"), "chosen", where)
        rejected = _messages(row.get("rejected"), "rejected", where)
        if chosen[:-1] != rejected[:-1]:
            raise DataValidationError(
                f"{where}: 'chosen' and 'rejected' differ before their last message; expected "
                "the same prompt messages followed by one assistant message each")
        system, user = _single_prompt(chosen[:-1], "chosen", where)
        answers = _single_answer(chosen[-1:], "chosen", where), \
            _single_answer(rejected[-1:], "rejected", where)
    else:
        system, user = _single_prompt(_messages(row["prompt"], "prompt", where), "prompt", where)
        answers = tuple(_single_answer(_messages(row.get(c), c, where), c, where)
                        for c in ("chosen", "rejected"))
    out["prompt"], out["chosen"], out["rejected"] = user, *answers
    if system:
        out["system"] = system
    return out


def _as_bool(value: Any) -> Any:
    """``"true"``/``"false"``/``1``/``0`` (CSV cells) as bools; anything else unchanged."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def _with_defaults(row: Row, name: str, number: int, harmful: bool, none_is_missing: bool
                   ) -> Row:
    """``row`` with every missing metadata column filled (module docstring).

    ``None`` counts as missing only in tables read by ``datasets`` (``none_is_missing``), which
    fill a column some rows lack with ``None``; in JSONL an explicit ``null`` stays an error.
    """
    out = {k: v for k, v in row.items()
           if not (none_is_missing and v is None and k in REQUIRED_COLUMNS["preference"])}
    if "harmful" in out:
        out["harmful"] = _as_bool(out["harmful"])
    if "harmful" not in out and "kind" not in out:
        out["labelled"] = False
    if "harmful" not in out:
        out["harmful"] = out["kind"] == "harmful" if "kind" in out else harmful
    if "kind" not in out:
        out["kind"] = "harmful" if out["harmful"] is True else "benign"
    out.setdefault("id", f"{name}-{number}")
    out.setdefault("category", "unspecified")
    out.setdefault("domain", name)
    out.setdefault("template", out["domain"])
    return out


def preference_rows(
    records: Iterable[Mapping[str, Any]],
    source: str,
    *,
    name: str,
    harmful: bool = False,
    numbers: Sequence[int] | None = None,
    max_chars: int = 8000,
    none_is_missing: bool = False,
) -> list[Row]:
    """Rows in our format, TRL's standard or TRL's conversational format, as validated rows.

    Examples:
        >>> rows = preference_rows([{"prompt": [{"role": "user", "content": "Hi"}],
        ...                          "chosen": [{"role": "assistant", "content": "Hello!"}],
        ...                          "rejected": [{"role": "assistant", "content": "Go away."}]}],
        ...                        "x.jsonl", name="x")
        >>> {k: rows[0][k] for k in ("id", "prompt", "chosen", "kind", "domain")}
        {'id': 'x-1', 'prompt': 'Hi', 'chosen': 'Hello!', 'kind': 'benign', 'domain': 'x'}

    Args:
        records: Raw rows (dicts).
        source: Where they come from, for error messages (a file, a data set's name).
        name: The ``id`` prefix and default ``domain`` (a file's stem, a data set's name).
        harmful: The harm label of rows with neither ``harmful`` nor ``kind``.
        numbers: Row numbers for messages (a JSONL file's line numbers); default 1, 2, ...
        max_chars: See :func:`safelens.data.validate_rows`.
        none_is_missing: Treat ``None`` metadata as missing (tables read by ``datasets``, whose
            rows all have every column); otherwise ``null`` is an error, as in our JSONL.

    Returns:
        Validated preference rows.

    Raises:
        DataValidationError: naming the row: a malformed or multi-turn conversation, a missing
            or empty ``prompt`` / ``chosen`` / ``rejected``, a bad label, a duplicate id.
    """
    records = list(records)
    numbers = list(numbers) if numbers is not None else list(range(1, len(records) + 1))
    rows = []
    for number, raw in zip(numbers, records, strict=True):
        where = f"row {number} of {source}"
        if not isinstance(raw, Mapping):
            raise DataValidationError(f"{where}: expected a JSON object (mapping), got "
                                      f"{type(raw).__name__}")
        row = dict(raw)
        if any(isinstance(row.get(c), list) for c in ("prompt", "chosen", "rejected")):
            row = _from_conversation(row, where)
        rows.append(_with_defaults(row, name, number, harmful, none_is_missing))
    return _validate(rows, "preference", source, max_chars, "truncate", numbers=numbers)


def _stem(path: Path) -> str:
    """``data/train.jsonl.gz`` -> ``train``."""
    return path.name.split(".", 1)[0] or path.name


def read_preference_file(path: str | os.PathLike[str], *, harmful: bool = False,
                         max_chars: int = 8000, cache_dir: str | None = None) -> list[Row]:
    """Preference rows from a file in our format or TRL's (``.jsonl``, ``.json``, ``.csv``,
    ``.parquet``; any other name is read as JSONL; ``cache_dir``: the ``datasets`` cache used
    for the last three).

    Examples:
        >>> import json, tempfile
        >>> f = Path(tempfile.mkdtemp()) / "pairs.jsonl"
        >>> _ = f.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello", "rejected": "No"}))
        >>> read_preference_file(f)[0]["id"]
        'pairs-1'

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataValidationError: a directory, a line or row that breaks the format (named).
    """
    path = Path(path)
    builder = _builder(path)
    if builder is None or path.suffix.lower() == ".jsonl":
        records, numbers = read_jsonl_numbered(path)
    else:
        if path.is_dir():
            raise DataValidationError(f"{path} is a directory; expected a .jsonl, .json, .csv "
                                      "or .parquet file")
        if not path.exists():
            raise FileNotFoundError(2, "no such file", str(path))
        return preference_rows(load_table(path, cache_dir=cache_dir), str(path),
                               name=_stem(path), harmful=harmful, max_chars=max_chars,
                               none_is_missing=True)
    return preference_rows(records, str(path), name=_stem(path), harmful=harmful,
                           numbers=numbers, max_chars=max_chars)


def dataset_rows(dataset: Any, *, name: str | None = None, harmful: bool = False) -> list[Row]:
    """Preference rows from a 🤗 ``datasets.Dataset`` in our format or TRL's.

    Args:
        dataset: A ``datasets.Dataset`` (one split; pass ``dataset_dict["train"]``).
        name: The ``id`` prefix and default ``domain``; default the data set's own name
            (``dataset.info.dataset_name``), else ``"dataset"``.
        harmful: The harm label of rows without one (see :func:`preference_rows`).

    Raises:
        SafelensError: a ``DatasetDict`` or anything without rows.
        DataValidationError: a row that breaks the format (named by its number).
    """
    if not hasattr(dataset, "to_list"):
        kind = type(dataset).__name__
        hint = " (a DatasetDict: pass one split, e.g. ds['train'])" if hasattr(dataset, "keys") \
            else ""
        raise SafelensError(f"expected a datasets.Dataset of preference rows, got {kind}{hint}")
    info = getattr(dataset, "info", None)
    name = name or getattr(info, "dataset_name", None) or "dataset"
    return preference_rows(dataset.to_list(), f"dataset {name}", name=name, harmful=harmful,
                           none_is_missing=True)


def is_native(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every row already has our preference columns with text prompt/chosen/rejected."""
    required = REQUIRED_COLUMNS["preference"]
    return all(isinstance(r, Mapping) and all(c in r for c in required)
               and all(isinstance(r[c], str) for c in ("prompt", "chosen", "rejected"))
               for r in rows)


def as_preference_rows(rows: Any, source: str = "rows passed to Trainer", *,
                       harmful: bool = False) -> list[Row]:
    """Rows for the Python API: a ``datasets.Dataset`` or a list in any accepted format.

    Rows already in our format are returned as they are (not revalidated, as before); others
    are converted and validated (:func:`preference_rows`, ``name="rows"``).

    Examples:
        >>> as_preference_rows([{"prompt": "Hi", "chosen": "Hello", "rejected": "No"}])[0]["id"]
        'rows-1'
    """
    if hasattr(rows, "to_list") and hasattr(rows, "column_names"):
        return dataset_rows(rows, harmful=harmful)
    rows = list(rows)
    if is_native(rows):
        return rows
    return preference_rows(rows, source, name="rows", harmful=harmful)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_preference_dataset(name: str, split: str = "train", *, path: str | None = None,
                            harmful: bool = False, cache_dir: str | None = None) -> list[Row]:
    """Preference rows of a data set by name, without the network.

    Args:
        name: A public loader (``pku-saferlhf``, ``hh-rlhf``; ``path`` is then its local copy,
            default its Hub id), a local file or folder, or a Hub id read by
            ``datasets.load_dataset`` (offline: only from the local cache).
        split: The split (a single local file is its own split).
        path: Where to read ``name`` from instead (a local file or folder).
        harmful: The harm label of rows without one (see :func:`preference_rows`).
        cache_dir: The ``datasets`` cache folder.

    Raises:
        SafelensError: one line naming the data set: a prompt-only public set, a Hub id that is
            not in the offline cache, a split it lacks.
        DataValidationError: a row that breaks the format.
    """
    if name in PUBLIC_LOADERS:
        if name not in PREFERENCE_LOADERS:
            raise SafelensError(f"dataset {name!r} holds prompts only (no chosen/rejected); "
                                f"expected a preference data set: {', '.join(PREFERENCE_LOADERS)}"
                                ", a TRL-format file or a Hub id")
        kwargs = {"cache_dir": cache_dir} if cache_dir else {}
        try:
            return load_public(name, path, split, **kwargs)
        except ConnectionError as err:
            raise SafelensError(f"dataset {name!r} (split {split!r}) is not in the offline "
                                "Hugging Face cache; expected a cached copy or a local copy "
                                f"via --dataset-path ({_first_line(err)})") from None
    where = os.fspath(path) if path is not None else name
    label = Path(where).name.split(".", 1)[0] if Path(where).expanduser().exists() \
        else name.rsplit("/", 1)[-1]
    if Path(where).expanduser().is_file():  # a file is its own split, read as --train-file
        return read_preference_file(Path(where).expanduser(), harmful=harmful,
                                    cache_dir=cache_dir)
    if Path(where).expanduser().exists():
        records = load_table(where, split, cache_dir=cache_dir)
        return preference_rows(records, f"{where} [{split}]", name=label, harmful=harmful,
                               none_is_missing=True)
    if path is not None:
        raise FileNotFoundError(2, "no such file or folder (--dataset-path)", where)
    import datasets  # heavy; needed only for a Hub id

    try:
        table = datasets.load_dataset(name, split=split, cache_dir=cache_dir)
    except Exception as err:  # datasets raises many types; all mean "not loadable here"
        text = _first_line(err)
        if "split" in text.lower() and "unknown" in text.lower():
            raise SafelensError(f"dataset {name!r} has no split {split!r}; expected one of its "
                                f"splits (--split) ({text})") from None
        offline = os.environ.get("HF_HUB_OFFLINE", "0")
        raise SafelensError(f"dataset {name!r} (split {split!r}) is not in the offline Hugging "
                            f"Face cache (HF_HUB_OFFLINE={offline}) nor a local path; expected "
                            "a cached Hub data set, a local file or folder, or one of "
                            f"{', '.join(PREFERENCE_LOADERS)} ({type(err).__name__}: {text})"
                            ) from None
    return preference_rows(table.to_list(), f"dataset {name} [{split}]", name=label,
                           harmful=harmful, none_is_missing=True)
