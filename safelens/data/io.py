"""JSONL reading and (atomic) writing, and access to the built-in data in ``data/``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from safelens.data.schema import DataValidationError, RowKind, _validate

BUILTIN_FILES: dict[str, tuple[str, ...]] = {
    "preferences": ("train", "validation", "test"),
    "prompts": ("validation", "test", "smoke", "independent"),
}
"""Built-in files: ``data/<name>/<split>.jsonl``."""


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
    if kind is None:
        return rows
    return _validate(rows, kind, source, max_chars, on_overlong, numbers=numbers)


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


def builtin_path() -> Path:
    """The repository's ``data/`` folder (it may not exist when safelens is installed alone).

    Equivalent to ``Path(safelens.__file__).parents[1] / "data"``.

    Examples:
        >>> builtin_path().name
        'data'
    """
    return Path(__file__).resolve().parents[2] / "data"


def load_builtin(name: str, split: str) -> list[dict[str, Any]]:
    """Load one of the built-in data files, ``data/<name>/<split>.jsonl``.

    If the file is absent (safelens installed without the repository), the same rows are
    regenerated in memory with the default seed: the generator is deterministic, so they are
    identical to the shipped files.

    Examples:
        >>> len(load_builtin("prompts", "smoke"))
        24

    Args:
        name: ``"preferences"`` (splits ``train``, ``validation``, ``test``) or ``"prompts"``
            (splits ``validation``, ``test``, ``smoke``, ``independent``).
        split: The split.

    Returns:
        Validated rows (preference rows for ``preferences``, prompt rows for ``prompts``).

    Raises:
        ValueError: If ``name`` or ``split`` is unknown.
    """
    if name not in BUILTIN_FILES:
        raise ValueError(f"unknown built-in data {name!r}; expected one of {list(BUILTIN_FILES)}")
    if split not in BUILTIN_FILES[name]:
        raise ValueError(
            f"unknown split {split!r} for built-in {name!r}; expected one of {list(BUILTIN_FILES[name])}"
        )
    kind: RowKind = "preference" if name == "preferences" else "prompt"
    path = builtin_path() / name / f"{split}.jsonl"
    if path.is_file():
        return read_jsonl(path, kind=kind)
    rows = _generated()[f"{name}/{split}"]
    return _validate(rows, kind, f"<generated {name}/{split}>", 8000, "truncate", numbers=None)


@lru_cache(maxsize=1)
def _generated() -> dict[str, list[dict[str, Any]]]:
    """All built-in files, generated in memory with the default seed (cached)."""
    from safelens.data.generate import generate

    return generate(seed=0)
