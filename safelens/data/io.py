"""JSONL reading (validated against a row schema) and atomic writing."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from safelens.data.schema import DataValidationError, RowKind, _validate


def read_jsonl(
    path: str | os.PathLike[str],
    kind: RowKind | None = None,
    *,
    max_chars: int = 8000,
    on_overlong: Literal["truncate", "error"] = "truncate",
) -> list[dict[str, Any]]:
    """Read a JSONL file (one JSON object per line), validated against a row schema.

    Blank lines are skipped; error messages number rows by their line in the file.

    Examples:
        >>> from safelens.data.builtin import builtin_path
        >>> rows = read_jsonl(builtin_path() / "prompts" / "smoke.jsonl", kind="prompt")
        >>> sorted({r["kind"] for r in rows})
        ['benign', 'harmful', 'lookalike']

    Args:
        path: The ``.jsonl`` file.
        kind: ``"preference"`` or ``"prompt"`` to validate (see
            :func:`safelens.data.validate_rows`); ``None`` only parses (e.g. evaluation output).
        max_chars: Longest accepted text field (characters); see ``on_overlong``.
        on_overlong: ``"truncate"`` (warn and cut, the default) or ``"error"``.

    Returns:
        The rows, as dicts.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        DataValidationError: On a malformed JSON line or (with ``kind``) a row that breaks the
            schema; the message names the line and the file.
    """
    rows, numbers = read_jsonl_numbered(path)
    if kind is None:
        return rows
    return _validate(rows, kind, str(path), max_chars, on_overlong, numbers=numbers)


def read_jsonl_numbered(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[int]]:
    """``(rows, line numbers)`` of a JSONL file, parsed but not validated (blank lines skipped).

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "x.jsonl"
        >>> _ = f.write_text('{"a": 1}\\n\\n{"a": 2}\\n')
        >>> read_jsonl_numbered(f)
        ([{'a': 1}, {'a': 2}], [1, 3])

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        DataValidationError: A directory, invalid UTF-8, malformed JSON or a line that is not
            a JSON object (the message names the line and the file).
    """
    path = Path(path)
    source = str(path)
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    if path.is_dir():
        raise DataValidationError(f"{source} is a directory; expected a JSONL file")
    if not path.exists():
        raise FileNotFoundError(2, "no such file", source)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataValidationError(
                    f"line {number} of {source}: invalid UTF-8 (byte {raw[error.start]:#04x} at "
                    f"column {error.start + 1}); expected UTF-8 text"
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataValidationError(
                    f"line {number} of {source}: malformed JSON ({error.msg} at column "
                    f"{error.colno}); expected one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise DataValidationError(
                    f"line {number} of {source}: expected a JSON object, got "
                    f"{type(row).__name__}"
                )
            rows.append(row)
            numbers.append(number)
    return rows, numbers


def read_jsonl_prefix(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of an append-only JSONL file up to its first line that does not parse.

    For files written while a job runs (training logs, resumable evaluations): a torn last line
    from an interrupted write ends the list instead of raising. A missing file gives ``[]``.
    No schema validation (see :func:`read_jsonl` for data files).
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    if not path.is_file():
        return records
    with path.open() as handle:
        for line in handle:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


def write_jsonl(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    kind: RowKind | None = None,
) -> Path:
    """Write rows to a JSONL file atomically.

    The rows go to a temporary file in the same folder, which is flushed, synced and then
    renamed over ``path`` (``os.replace``), so an interrupted write leaves the old file (or no
    file) in place, never a truncated one. Output is deterministic: keys keep their order, text
    is written as UTF-8 (``ensure_ascii=False``), one object per ``\\n``-terminated line.

    Examples:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "x.jsonl"
        >>> _ = write_jsonl(out, [{"a": 1}, {"a": 2}])
        >>> out.read_text()
        '{"a": 1}\\n{"a": 2}\\n'

    Args:
        path: Destination file; parent folders are created.
        rows: The rows to write.
        kind: If given, validate the rows first (``"preference"`` or ``"prompt"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        DataValidationError: If ``kind`` is given and a row breaks the schema.
        TypeError: If a row holds a value JSON cannot encode (nothing is written).
    """
    path = Path(path)
    rows = list(rows)
    if kind is not None:
        rows = _validate(rows, kind, str(path), max_chars=10**9, on_overlong="error", numbers=None)
    payload = "".join(json.dumps(dict(row), ensure_ascii=False) + "\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="\n", dir=path.parent, prefix=f".{path.name}.",
        suffix=".tmp", delete=False,
    )
    try:
        with handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _file_mode(path))  # mkstemp files are 0600; match a normal file
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path


def _file_mode(path: Path) -> int:
    """Permissions for a rewritten file: the old file's, or the default under the umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
