"""Validation of decoding settings and prompt lengths (kept apart from ``generation.py``).

:func:`check_generation_config` rejects settings ``GenerationConfig`` would accept but
``transformers`` would misuse or ignore (``top_p = 5``, a NaN temperature);
:func:`check_prompt_lengths` reports an over-long prompt by its row id before generation sorts
the prompts by length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safelens.errors import SafelensError, check_number
from safelens.models.chat import prompt_ids


def check_generation_config(cfg: Any) -> None:
    """Raise :class:`SafelensError` for out-of-range decoding settings (names the setting).

    Examples:
        >>> from safelens.eval.generation import GenerationConfig
        >>> check_generation_config(GenerationConfig(top_p=5.0))
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: GenerationConfig.top_p (--top-p) must be a number in (0, 1], got 5.0
    """
    for name, kw in (("max_new_tokens", {"low": 1, "integer": True}),
                     ("batch_size", {"low": 1, "integer": True}),
                     ("temperature", {"low": 0, "low_open": True}),
                     ("top_p", {"low": 0, "high": 1, "low_open": True}),
                     ("seed", {"low": 0, "integer": True}),
                     ("max_prompt_length", {"low": 1, "integer": True})):
        check_number(getattr(cfg, name), f"GenerationConfig.{name} (--{name.replace('_', '-')})",
                     **kw)


def check_prompt_lengths(tokenizer: Any, rows: Sequence[dict], max_prompt_length: int,
                         system_prompt: str | None = None, source: str | None = None) -> None:
    """Raise naming the row (id and position) whose chat-formatted prompt is too long."""
    for number, row in enumerate(rows, start=1):
        n = len(prompt_ids(tokenizer, row["prompt"], system_prompt, prefill=row.get("prefill")))
        if n > max_prompt_length:
            where = f"row {number}" + (f" of {source}" if source else "")
            raise SafelensError(
                f"{where} (id {row.get('id', '?')!r}): the prompt is {n} tokens, over "
                f"max_prompt_length={max_prompt_length}; expected a shorter prompt")
