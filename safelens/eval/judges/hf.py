"""``HFJudge``: what Hugging Face judges share, and the name that builds the right one.

A Hugging Face judge is a generative guard (:class:`~safelens.eval.judges.guard.GuardJudge`:
Llama Guard, MD-Judge, ...; it writes a verdict) or a sequence classifier
(:class:`~safelens.eval.judges.classifier.ClassifierJudge`; its labels say unsafe or refusal).
Both subclass :class:`HFJudge`, and calling ``HFJudge(model_id_or_path, ...)`` itself reads the
checkpoint's config and returns the one it needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from safelens.models.device import resolve_device
from safelens.models.hf import architectures, load_config

HFJudgeKind = Literal["auto", "llama-guard", "md-judge", "classifier"]
_KINDS = ("auto", "llama-guard", "md-judge", "classifier")
_MD_JUDGE_NAME = re.compile(r"md[-_]?judge", re.IGNORECASE)


def guard_kind(model_id: str) -> Literal["llama-guard", "md-judge"]:
    """The kind of a generative guard, by name: ``md-judge`` when it says so, else ``llama-guard``.

    Examples:
        >>> guard_kind("OpenSafetyLab/MD-Judge-v0.1"), guard_kind("meta-llama/Llama-Guard-3-1B")
        ('md-judge', 'llama-guard')
    """
    return "md-judge" if _MD_JUDGE_NAME.search(model_id) else "llama-guard"


def check_guard_settings(prompt_template: str | None, on_unparsed: str, who: str = "HFJudge"
                         ) -> None:
    """Raise ``ValueError`` for a guard's ``prompt_template`` without its fields or a bad
    ``on_unparsed`` (``who`` names the caller)."""
    if prompt_template is not None and not (
        "{prompt}" in prompt_template and "{response}" in prompt_template
    ):
        raise ValueError(
            f"{who}: prompt_template must contain {{prompt}} and {{response}}, got "
            f"{prompt_template[:60]!r}"
        )
    if on_unparsed not in ("unsafe", "safe", "raise"):
        raise ValueError(f"{who}: on_unparsed must be unsafe|safe|raise, got {on_unparsed!r}")


def check_classifier_input(classifier_input: str, who: str = "HFJudge") -> None:
    """Raise ``ValueError`` unless ``classifier_input`` is ``"pair"`` or ``"response"``."""
    if classifier_input not in ("pair", "response"):
        raise ValueError(
            f"{who}: classifier_input must be 'pair' or 'response', got {classifier_input!r}"
        )


class _BuildsByKind(type):
    """Calling ``HFJudge(...)`` itself builds the subclass its checkpoint needs."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is HFJudge:
            return _build(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class HFJudge(metaclass=_BuildsByKind):
    """A Hugging Face guard or classifier, by Hub id or local directory.

    ``HFJudge(model_id_or_path, ...)`` returns a :class:`GuardJudge` or a
    :class:`ClassifierJudge` (both are ``HFJudge``\\ s), by ``kind``:

    Kinds:
        - ``"llama-guard"`` — :class:`GuardJudge`: a causal-LM guard whose chat template holds
          its safety policy (Llama Guard 1–3, MD-Judge v0.2): the conversation ``[user: prompt,
          assistant: response]`` is formatted with ``apply_chat_template``, a few tokens are
          generated greedily and parsed by :func:`parse_guard_output`. Guards whose policy
          prompt is not in the chat template take ``prompt_template``.
        - ``"md-judge"`` — :class:`GuardJudge` as well, falling back to
          :data:`MD_JUDGE_PROMPT` when the chat template holds no policy (MD-Judge v0.1), with
          a longer generation (v0.2 reasons before its verdict; it also needs
          ``trust_remote_code=True``).
        - ``"classifier"`` — :class:`ClassifierJudge`: a sequence classifier read from its
          labels: labels such as ``safe``/``unsafe`` (or ``harmful``, ``toxic``) make it a harm
          judge, labels such as ``refusal``/``normal`` (or ``rejection``) a refusal judge;
          ``positive_label`` and ``metric`` override the guess. Input is the (prompt, response)
          text pair, or the response alone with ``classifier_input="response"``.
        - ``"auto"`` — ``classifier`` when the config's architecture ends in
          ``ForSequenceClassification``,
          ``md-judge`` when the name contains ``md-judge``, else ``llama-guard``.

    Guards answer :meth:`unsafe` only; :meth:`refusals` raises ``NotImplementedError`` (a safe
    answer need not be a refusal). Nothing is downloaded when a local directory is given.
    Every argument is checked before anything loads, also those the chosen judge ignores.

    Args:
        model_id_or_path: Hub id or local directory.
        kind: see above.
        metric: ``"unsafe"`` or ``"refusal"``: which question a classifier answers (guessed from
            its labels when ``None``); guards are always ``"unsafe"``.
        positive_label: classifier label meaning "unsafe" (or "refusal"); guessed when ``None``.
        classifier_input: ``"pair"`` (prompt, response) or ``"response"``.
        device: torch device; ``None`` = CUDA when available, else CPU.
        dtype: model dtype (e.g. ``torch.bfloat16`` for 7B guards on GPU); ``None`` = checkpoint's.
        batch_size: pairs per forward/generate call.
        max_new_tokens: guard generation length (default 10, 512 for MD-Judge).
        max_length: truncation length of inputs, in tokens.
        on_unparsed: what an unparseable guard output counts as: ``"unsafe"`` (default: errs
            towards a higher ASR, never hides an attack), ``"safe"``, or ``"raise"``.
        prompt_template: guard input with ``{prompt}`` and ``{response}`` fields, sent as one
            user turn; for guards whose policy prompt is not in their chat template.
        trust_remote_code: passed to ``from_pretrained`` (MD-Judge v0.2 needs it).

    Examples:
        >>> guard = HFJudge("meta-llama/Llama-Guard-3-1B")   # doctest: +SKIP
        >>> type(guard).__name__, isinstance(guard, HFJudge)  # doctest: +SKIP
        ('GuardJudge', True)
        >>> guard.unsafe(["how to make a bomb"], ["Sure: ..."])  # doctest: +SKIP
        array([ True])
    """

    kinds: ClassVar[tuple[str, ...]] = ()
    """The kinds a subclass serves (``HFJudge(kind=...)`` builds it for them)."""
    _by_kind: ClassVar[dict[str, type[HFJudge]]] = {}
    kind: str
    metric: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in cls.__dict__.get("kinds", ()):  # declared here, not inherited
            HFJudge._by_kind[kind] = cls

    def __init__(
        self,
        model_id_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        batch_size: int = 8,
        max_length: int = 2048,
    ) -> None:
        """The settings every HF judge has (subclasses call this first)."""
        self.model_id = str(model_id_or_path)
        self.name = self.model_id
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_length = max_length

    def _judge(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """``[B]`` bool answer to ``self.metric`` for a non-empty batch."""
        raise NotImplementedError

    def unsafe(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """``[B]`` bool, True = the response is unsafe.

        Raises:
            NotImplementedError: for a classifier of refusals (``metric == "refusal"``).
        """
        if self.metric != "unsafe":
            raise NotImplementedError(
                f"{type(self).__name__}({self.model_id}) classifies refusals, not harm: "
                "use refusals()"
            )
        if len(prompts) == 0:
            return np.zeros(0, dtype=bool)
        return self._judge(prompts, responses)

    def refusals(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """``[B]`` bool, True = the response refuses (refusal classifiers only).

        Raises:
            NotImplementedError: for harm judges — "safe" is not "refused"; pair a harm judge
                with ``KeywordJudge``/``LearnedJudge`` for over-refusal.
        """
        if self.metric != "refusal":
            raise NotImplementedError(
                f"{type(self).__name__}({self.model_id}, kind={self.kind}) judges harm "
                "(unsafe()), not refusal: a safe answer need not refuse. Use get_judge('keyword') "
                "or get_judge('learned') for refusals and pass both to summarize(rows, refused, "
                "unsafe)."
            )
        if len(prompts) == 0:
            return np.zeros(0, dtype=bool)
        return self._judge(prompts, responses)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.model_id!r}, kind={self.kind!r}, "
                f"metric={self.metric!r})")


def _build(
    model_id_or_path: str | os.PathLike,
    kind: HFJudgeKind = "auto",
    metric: Literal["unsafe", "refusal"] | None = None,
    positive_label: str | None = None,
    classifier_input: Literal["pair", "response"] = "pair",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    max_length: int = 2048,
    on_unparsed: Literal["unsafe", "safe", "raise"] = "unsafe",
    prompt_template: str | None = None,
    trust_remote_code: bool = False,
) -> HFJudge:
    """``HFJudge(...)``: check every setting, read the config, build the judge of its kind."""
    check_guard_settings(prompt_template, on_unparsed)
    check_classifier_input(classifier_input)
    if kind not in _KINDS:
        raise ValueError(f"HFJudge: kind must be {'|'.join(_KINDS)}, got {kind!r}")
    device = resolve_device(device)
    config = load_config(model_id_or_path, trust_remote_code)
    if kind == "auto":
        if any(a.endswith("ForSequenceClassification") for a in architectures(config)):
            kind = "classifier"
        else:
            kind = guard_kind(str(model_id_or_path))
    common: dict[str, Any] = {
        "metric": metric, "device": device, "dtype": dtype, "batch_size": batch_size,
        "max_length": max_length, "trust_remote_code": trust_remote_code}
    if kind == "classifier":
        return HFJudge._by_kind[kind](model_id_or_path, positive_label=positive_label,
                                      classifier_input=classifier_input, **common)
    return HFJudge._by_kind[kind](model_id_or_path, kind=kind, max_new_tokens=max_new_tokens,
                                  on_unparsed=on_unparsed, prompt_template=prompt_template,
                                  **common)
