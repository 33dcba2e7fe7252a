"""Text cut at token boundaries of a model's tokenizer: the first ``k`` tokens as text.

Safety-recovery augmentation and prefilling attacks need a harmful response's first ``k``
tokens as *text* that re-tokenizes to exactly those ``k`` tokens (:func:`split_at_tokens`:
the cut is where the k-th token ends, read from the offset mapping). Evaluation cuts reference
answers to a generation budget by decoding the first ``k`` token ids instead
(:func:`token_prefix` with ``mode="decode"``).

Examples:
    >>> from safelens.models.loading import _default_tokenizer_dir
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained(_default_tokenizer_dir())
    >>> token_prefix(tok, "Sure, here is how to do it.", 3)
    'Sure, here'
"""

from __future__ import annotations

from typing import Any, Literal

from safelens.models.chat import text_ids

__all__ = ["split_at_tokens", "token_prefix"]


def split_at_tokens(tokenizer: Any, text: str, k: int) -> tuple[str, str, int]:
    """Split ``text`` after its first ``k`` tokens: ``(prefix, rest, k_actual)``.

    The cut is where the k-th token ends in ``text`` (so ``prefix + rest == text``); the
    token that follows keeps its leading space in ``rest``, as the tokenizer had it. If
    re-tokenizing the prefix does not give back k tokens (a cut inside a multi-byte
    character, or a slow tokenizer without offsets), the prefix is ``decode(ids[:k])`` and
    ``rest`` the decoded remainder; ``k_actual`` is the re-tokenized prefix length.

    Examples:
        >>> from safelens.models.loading import _default_tokenizer_dir
        >>> from transformers import AutoTokenizer
        >>> tok = AutoTokenizer.from_pretrained(_default_tokenizer_dir())
        >>> prefix, rest, k = split_at_tokens(tok, "Sure, here is how to do it.", 3)
        >>> prefix, rest, k
        ('Sure, here', ' is how to do it.', 3)

    Args:
        tokenizer: the model's tokenizer.
        text: the text to split (a harmful response).
        k: number of tokens in the prefix (0 gives ``("", text, 0)``).

    Returns:
        ``(prefix, rest, k_actual)``; ``k_actual < k`` when the text has fewer tokens.

    Raises:
        ValueError: ``k < 0``.
    """
    if int(k) != k or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    if k == 0:
        return "", text, 0
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                        split_special_tokens=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    except (NotImplementedError, TypeError, ValueError):
        ids, offsets = text_ids(tokenizer, text), None
    k = min(int(k), len(ids))
    if offsets is not None:
        cut = int(offsets[k - 1][1])
        prefix, rest = text[:cut], text[cut:]
        if text_ids(tokenizer, prefix) == ids[:k]:
            return prefix, rest, k
    prefix = tokenizer.decode(ids[:k], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    rest = tokenizer.decode(ids[k:], skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return prefix, rest, len(text_ids(tokenizer, prefix))


def token_prefix(tokenizer: Any, text: str, k: int,
                 mode: Literal["split", "decode"] = "split") -> str:
    """The first ``k`` tokens of ``text`` as text.

    Two readings of "the first k tokens", which agree on ordinary text:

    * ``"split"`` (default): the prefix of :func:`split_at_tokens` — a prefix of ``text``
      itself that re-tokenizes to those k tokens; a control-token string such as
      ``<|im_end|>`` in ``text`` counts as text.
    * ``"decode"``: ``decode(ids[:k])`` of ``text``'s ids, control-token strings read as
      control tokens and dropped, with the tokenizer's own clean-up of spaces (how
      evaluation cuts reference answers to the generation budget). It can differ from
      ``"split"`` on control-token strings, a cut inside a multi-byte character and
      tokenizers whose decoding is not the inverse of their encoding (e.g. SentencePiece's
      leading space).

    Examples:
        >>> from safelens.models.loading import _default_tokenizer_dir
        >>> from transformers import AutoTokenizer
        >>> tok = AutoTokenizer.from_pretrained(_default_tokenizer_dir())
        >>> token_prefix(tok, "Boil water, then add the egg.", 4, mode="decode")
        'Boil water,'
        >>> text = "Stop.<|im_end|> Hi"
        >>> token_prefix(tok, text, 9), token_prefix(tok, text, 9, mode="decode")
        ('Stop.<|im_end|> Hi', 'Stop. Hi')

    Args:
        tokenizer: the model's tokenizer.
        text: the text to cut.
        k: number of tokens kept (the whole text when it has fewer).
        mode: ``"split"`` or ``"decode"`` (see above).

    Returns:
        The prefix, as text.

    Raises:
        ValueError: ``k < 0`` or an unknown ``mode``.
    """
    if mode == "split":
        return split_at_tokens(tokenizer, text, k)[0]
    if mode != "decode":
        raise ValueError(f"mode must be 'split' or 'decode', got {mode!r}")
    if int(k) != k or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return str(tokenizer.decode(ids[:int(k)], skip_special_tokens=True))
