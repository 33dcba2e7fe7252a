"""Hugging Face checkpoints behind judges and reward models, by Hub id or local directory.

The guards and classifiers of :mod:`safelens.eval.judges` and the reward/cost models of
:mod:`safelens.reward.hf` load their config, tokenizer and weights here, and tokenize the text
their templates render with :func:`encode_rendered`, which does not add a second BOS. A local
directory loads with ``local_files_only`` (no network). Policies go through
:func:`safelens.models.loading.load_model` instead (a TransformerBridge, not a plain HF module).

Examples:
    >>> tok = load_tokenizer("meta-llama/Llama-Guard-3-1B", padding_side="left",
    ...                      pad_with_eos=True)                             # doctest: +SKIP
    >>> model = load_pretrained("meta-llama/Llama-Guard-3-1B", "causal-lm")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from safelens.models.device import resolve_device

if TYPE_CHECKING:  # transformers' Auto classes are imported when something loads.
    from transformers import (
        BatchEncoding,
        PretrainedConfig,
        PreTrainedModel,
        PreTrainedTokenizerBase,
    )

Head = Literal["causal-lm", "sequence-classification"]


def pretrained_kwargs(model_id_or_path: str | os.PathLike, trust_remote_code: bool = False
                      ) -> dict[str, Any]:
    """Keyword arguments every ``from_pretrained`` call gets.

    Examples:
        >>> pretrained_kwargs(".")
        {'trust_remote_code': False, 'local_files_only': True}
        >>> pretrained_kwargs("org/some-guard", trust_remote_code=True)
        {'trust_remote_code': True}
    """
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if Path(model_id_or_path).is_dir():
        kwargs["local_files_only"] = True  # a local checkpoint never reaches the Hub
    return kwargs


def load_config(model_id_or_path: str | os.PathLike, trust_remote_code: bool = False
                ) -> PretrainedConfig:
    """The checkpoint's config (cheap: read before deciding what to load)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        str(model_id_or_path), **pretrained_kwargs(model_id_or_path, trust_remote_code))


def architectures(config: PretrainedConfig) -> list[str]:
    """The config's architecture names (``[]`` when it lists none)."""
    return list(getattr(config, "architectures", None) or [])


def load_tokenizer(
    model_id_or_path: str | os.PathLike,
    trust_remote_code: bool = False,
    padding_side: Literal["left", "right"] | None = None,
    pad_with_eos: bool = False,
) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer.

    Args:
        model_id_or_path: Hub id or local directory.
        trust_remote_code: passed to ``from_pretrained``.
        padding_side: set when given (``"left"`` for generation, which continues at the right).
        pad_with_eos: pad with the EOS token when the tokenizer has no pad token.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(model_id_or_path), **pretrained_kwargs(model_id_or_path, trust_remote_code))
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if pad_with_eos and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_pretrained(
    model_id_or_path: str | os.PathLike,
    head: Head,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
    **kwargs: Any,
) -> PreTrainedModel:
    """A causal LM or a sequence classifier, on ``device``, in eval mode.

    Args:
        model_id_or_path: Hub id or local directory.
        head: ``"causal-lm"`` (generative guards) or ``"sequence-classification"``
            (classifiers, reward and cost models).
        device: see :func:`safelens.models.device.resolve_device`.
        dtype: model dtype (``torch.bfloat16`` for 7B models on GPU); ``None`` = checkpoint's.
        trust_remote_code: passed to ``from_pretrained``.
        **kwargs: more ``from_pretrained`` arguments (``key_mapping``, ``num_labels``, ...).

    Raises:
        SafelensError: an unknown or unavailable ``device``.
        ValueError: an unknown ``head``.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    classes = {"causal-lm": AutoModelForCausalLM,
               "sequence-classification": AutoModelForSequenceClassification}
    if head not in classes:
        raise ValueError(f"load_pretrained: head must be one of {sorted(classes)}, got {head!r}")
    where = resolve_device(device)
    load_kw = pretrained_kwargs(model_id_or_path, trust_remote_code)
    if dtype is not None:
        load_kw["dtype"] = dtype
    model = classes[head].from_pretrained(str(model_id_or_path), **load_kw, **kwargs)
    return model.to(where).eval()


def opens_with_bos(tokenizer: Any, texts: Sequence[str]) -> bool:
    """Whether rendered ``texts`` already start with the tokenizer's BOS token.

    Chat templates usually write the BOS themselves; tokenizing such text with the special tokens
    on would give the model two.

    Examples:
        >>> from types import SimpleNamespace
        >>> opens_with_bos(SimpleNamespace(bos_token="<s>"), ["<s>[INST] hi"])
        True
        >>> opens_with_bos(SimpleNamespace(bos_token=None), ["<s>[INST] hi"])
        False
    """
    bos = getattr(tokenizer, "bos_token", None)
    return bool(bos and texts and texts[0].startswith(bos))


def encode_rendered(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
                    ) -> BatchEncoding:
    """Tokenize template-rendered texts, padded and truncated, without a second BOS.

    Returns:
        A ``BatchEncoding`` of ``[B, T]`` CPU tensors (``input_ids``, ``attention_mask``).
    """
    return tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        add_special_tokens=not opens_with_bos(tokenizer, texts),
        return_tensors="pt",
    )
