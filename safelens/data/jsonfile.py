"""Strict JSON for summaries and records: no bare ``NaN`` / ``Infinity`` in a saved file.

Python's ``json`` writes ``float("nan")`` as the bare token ``NaN``, which is not JSON: ``jq``,
JavaScript and most other readers reject the file. Every summary safelens saves goes through
:func:`strict_json`, which writes a non-finite number as ``null`` (a rate over no items), and
numpy scalars and arrays as plain numbers and lists.

Examples:
    >>> import math
    >>> strict_json({"value": math.nan, "n": 0, "ci": (0.1, float("inf"))})
    {'value': None, 'n': 0, 'ci': [0.1, None]}
    >>> dumps_json({"asr": {"value": float("nan")}})
    '{"asr": {"value": null}}'
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def strict_json(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Non-finite floats become ``None``; numpy scalars/arrays, tuples and sets become numbers and
    lists; paths become strings; mapping keys become strings. Anything else JSON cannot encode
    raises ``TypeError`` naming its type.
    """
    if obj is None or isinstance(obj, (bool, str, int)) and not isinstance(obj, np.generic):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return strict_json(obj.item())
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and callable(obj.item):  # a 0-d torch tensor, without torch here
        return strict_json(obj.item())
    raise TypeError(f"strict_json: cannot encode a {type(obj).__name__} as JSON")


def dumps_json(obj: Any, indent: int | None = None) -> str:
    """``json.dumps`` of :func:`strict_json` (``allow_nan=False``, UTF-8 text kept)."""
    return json.dumps(strict_json(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (a trailing newline) to ``path``; parents are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_json(obj, indent=indent) + "\n", encoding="utf-8")
    return path


def rows_key(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """SHA-256 (hex) of the given fields of every row, in order: the rows part of a cache key
    or a provenance record (a row without a field hashes it as ``null``).

    Examples:
        >>> rows_key([{"id": "a", "prompt": "p"}], ("id", "prompt")) == rows_key(
        ...     [{"id": "a", "prompt": "p", "other": 1}], ("id", "prompt"))
        True
    """
    payload = json.dumps([[r.get(f) for f in fields] for r in rows], ensure_ascii=False,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_json(path: str | os.PathLike[str] | None, key: Any, compute: Callable[[], Any],
                reuse: bool = True) -> Any:
    """The result saved at ``path`` for ``key``, or ``compute()`` saved there now.

    The one result cache of safelens' runners (prefilling curves, perturbation and matrix
    cells): the file holds ``{"key": key, "value": value}`` in strict JSON. A file saved under
    another key (another model's weights, other prompts or settings) is never reused: it is
    moved aside to ``PATH.stale``, announced on stderr, and the result is computed again.

    Args:
        path: the JSON file; ``None`` computes without caching.
        key: what produced the result (JSON-able: fingerprints, settings, a rows hash).
        compute: makes the result (JSON-able) when there is nothing to reuse.
        reuse: ``False`` always computes (and overwrites the file).

    Returns:
        The value, as read back from strict JSON (non-finite numbers are ``None``).

    Examples:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "r.json"
        >>> cached_json(p, {"k": 1}, lambda: [1.5, float("nan")])
        [1.5, None]
        >>> cached_json(p, {"k": 1}, lambda: 1 / 0)   # reused: compute is not called
        [1.5, None]
    """
    if path is None:
        return strict_json(compute())
    path = Path(path)
    key = strict_json(key)
    if reuse and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            saved = None
        if isinstance(saved, dict) and saved.get("key") == key and "value" in saved:
            return saved["value"]
        stale = Path(str(path) + ".stale")
        path.replace(stale)
        print(f"safelens: not reusing {path}: it was made with other settings or another model; "
              f"computing again (old file kept as {stale.name})", file=sys.stderr)
    value = strict_json(compute())
    write_json(path, {"key": key, "value": value}, indent=1)
    return value
