"""The built-in data in ``data/``: where it is, and its files read by name and split.

When safelens is installed without the repository's ``data/`` folder, :func:`load_builtin`
regenerates the same rows in memory (:func:`safelens.data.generator.build.generate`, seeded and
deterministic).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from safelens.data.generator.build import generate
from safelens.data.io import read_jsonl
from safelens.data.schema import RowKind, _validate

__all__ = ["BUILTIN_FILES", "builtin_path", "load_builtin"]

BUILTIN_FILES: dict[str, tuple[str, ...]] = {
    "preferences": ("train", "validation", "test"),
    "prompts": ("validation", "test", "smoke", "independent"),
}
"""Built-in files: ``data/<name>/<split>.jsonl``."""


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
    return generate(seed=0)
