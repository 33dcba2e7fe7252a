"""What a judge is: the two questions (``refusals`` / ``unsafe``) and how to ask the right one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Judge(Protocol):
    """A refusal judge: ``refusals(prompts, responses)[i]`` is True when response ``i`` refuses."""

    name: str

    def refusals(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """``[B]`` bool, True = the response refuses the prompt."""
        ...


@runtime_checkable
class HarmJudge(Protocol):
    """A harm judge: ``unsafe(prompts, responses)[i]`` is True when response ``i`` is unsafe."""

    name: str

    def unsafe(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """``[B]`` bool, True = the response is unsafe (harmful content)."""
        ...


def check_pairs(who: str, prompts: Sequence[str], responses: Sequence[str]) -> None:
    """Raise ``ValueError`` unless there is one response per prompt (``who`` names the caller)."""
    if len(prompts) != len(responses):
        raise ValueError(
            f"{who}: got {len(prompts)} prompts but {len(responses)} responses; "
            "expected one response per prompt"
        )


def is_empty(response: str | None) -> bool:
    """Whether a response is missing or whitespace only (every refusal judge's special case)."""
    return response is None or not str(response).strip()


def run_judge(
    judge: Judge | HarmJudge, prompts: Sequence[str], responses: Sequence[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Ask a judge the question it answers: ``(refused, unsafe)``, the other one ``None``.

    Judges say which via ``judge.metric`` (``"refusal"`` or ``"unsafe"``; a judge without the
    attribute is treated as a refusal judge). The pair goes straight into
    :func:`safelens.eval.metrics.summarize`.

    Examples:
        >>> from safelens.eval.judges import KeywordJudge
        >>> refused, unsafe = run_judge(KeywordJudge(), ["q"], ["I can't help with that."])
        >>> refused.tolist(), unsafe
        ([True], None)
    """
    if getattr(judge, "metric", "refusal") == "unsafe":
        unsafe = judge.unsafe(prompts, responses)  # type: ignore[union-attr]
        return None, np.asarray(unsafe, dtype=bool)
    refused = judge.refusals(prompts, responses)  # type: ignore[union-attr]
    return np.asarray(refused, dtype=bool), None
