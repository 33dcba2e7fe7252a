"""The built-in files' layout: which files the generator writes and how many rows of each kind.

Shared by the sampler (:mod:`safelens.data.generator.build`) and the data card
(:mod:`safelens.data.generator.card`).

Examples:
    >>> FILES[0], FILES[-1]
    ('preferences/train', 'prompts/independent')
    >>> counts([{"k": "b"}, {"k": None}, {"k": "a"}, {"k": "b"}], lambda r: r["k"])
    {'a': 1, 'b': 2, None: 1}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]

KINDS: tuple[str, ...] = ("harmful", "benign", "lookalike")


@dataclass(frozen=True)
class FilePlan:
    """How many rows of each kind one output file gets, and from which material.

    Attributes:
        name: ``"<folder>/<split>"``, e.g. ``"preferences/train"``.
        row_kind: ``"preference"`` or ``"prompt"``.
        counts: Rows per kind (``harmful``, ``benign``, ``lookalike``).
        test_mix: If True, mix held-out material in (see ``HARMFUL_MIX``/``BENIGN_MIX`` in
            :mod:`safelens.data.generator.build`); otherwise in-distribution only.
        n_prefill: Harmful rows that also get a ``prefill`` (prompt files only).
        id_prefix: Row ids are ``f"{id_prefix}-{i:04d}"``.
    """

    name: str
    row_kind: str
    counts: tuple[int, int, int]
    test_mix: bool
    n_prefill: int = 0
    id_prefix: str = ""


PLAN: tuple[FilePlan, ...] = (
    FilePlan("preferences/train", "preference", (2000, 1000, 1000), False, id_prefix="pref-train"),
    FilePlan("preferences/validation", "preference", (150, 75, 75), False, id_prefix="pref-val"),
    FilePlan("prompts/validation", "prompt", (100, 50, 50), False, id_prefix="prompt-val"),
    FilePlan("preferences/test", "preference", (200, 100, 100), True, id_prefix="pref-test"),
    FilePlan("prompts/test", "prompt", (300, 150, 150), True, id_prefix="prompt-test"),
    FilePlan("prompts/smoke", "prompt", (12, 6, 6), True, n_prefill=2, id_prefix="prompt-smoke"),
)
"""The generated files, in generation order."""

FILES: tuple[str, ...] = tuple(p.name for p in PLAN) + ("prompts/independent",)
"""Every file :func:`safelens.data.generator.build.generate` returns, as
``"<folder>/<split>"``."""


def counts(rows: list[Row], key: Callable[[Row], Any]) -> dict[Any, int]:
    """Count rows by ``key(row)``, keys in sorted order (``None`` last)."""
    tally: dict[Any, int] = {}
    for row in rows:
        k = key(row)
        tally[k] = tally.get(k, 0) + 1
    return dict(sorted(tally.items(), key=lambda kv: (kv[0] is None, str(kv[0]))))
