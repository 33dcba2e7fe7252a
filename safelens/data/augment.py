"""Safety-recovery data augmentation (Qi et al., seed 003) and harmful-prefix splitting.

Qi et al. deepen a shallow safety alignment by training on *safety-recovery* examples: for a
harmful prompt ``x`` with a harmful (compliant) response ``h`` and a refusal ``r``, the first
``k`` tokens of ``h`` open the assistant turn and the model is trained to continue with ``r``::

    user: x          assistant: h_1 ... h_k  r_1 r_2 ... r_m <eos>
                                 `-- context --' `---- loss ----'

``k = 0`` with probability ``p_zero`` (½), otherwise ``k ~ Uniform{1, ..., min(C, |h|)}``
(C = 100), as in the seed ("P_k set to 0 with 50% prob and random [1, 100] with 50% prob")
and the public code (``randint(1, min(100, len(harmful)))`` per example). k is a function of
(seed, row, epoch): ``epochs=E`` returns E versions of the rows, one per epoch, each with
fresh k's (epoch 0's are those of ``epochs=1``). The harmful prefix
goes through :func:`safelens.models.chat.encode`'s ``prefixes=`` argument, so it sits
*outside* the response mask: the loss is on the refusal tokens only. These examples are mixed
with a utility ("retain") set of benign (prompt, helpful answer) pairs.

The same rows serve DOOR (robust refusal after ``x + h_<k`` plus NPO on the rest of ``h``):
each safety row also carries ``continuation``, the harmful response after its prefix.

Prefixes are cut at **token** boundaries of the model's tokenizer:
:func:`safelens.models.tokens.split_at_tokens` cuts the text where the k-th token ends (offset
mapping), so re-tokenizing the prefix gives back exactly those k tokens (checked; a tokenizer
without offsets falls back to decoding).

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ks = [sample_prefix_length(rng, n_tokens=60) for _ in range(2000)]
    >>> bool(0.45 < np.mean([k == 0 for k in ks]) < 0.55), max(ks) <= 60
    (True, True)
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from safelens.models.chat import prompt_ids, text_ids
from safelens.models.tokens import split_at_tokens, token_prefix  # re-export for one release

__all__ = [
    "PLACEHOLDER",
    "augment_rows",
    "sample_prefix_length",
    "split_at_tokens",
    "token_prefix",
]

#: Response text of an unused (row, column) slot: the trainer encodes every column of every
#: row, so a retain row gets this one-token stand-in where a safety row has its continuation.
PLACEHOLDER = "."


def sample_prefix_length(
    rng: np.random.Generator, n_tokens: int, max_prefix: int = 100, p_zero: float = 0.5
) -> int:
    """Draw Qi et al.'s prefix length: 0 w.p. ``p_zero``, else Uniform{1, ..., min(C, n)}.

    Args:
        rng: a numpy ``Generator``.
        n_tokens: tokens available in the harmful response (the cap).
        max_prefix: C (100 in the seed and both public codes).
        p_zero: probability of k = 0 (½ in the seed).

    Returns:
        k (0 when ``n_tokens < 1``).

    Raises:
        ValueError: ``max_prefix < 1`` or ``p_zero`` outside [0, 1].
    """
    if max_prefix < 1:
        raise ValueError(f"max_prefix must be >= 1, got {max_prefix!r}")
    if not 0.0 <= p_zero <= 1.0:
        raise ValueError(f"p_zero must be in [0, 1], got {p_zero!r}")
    cap = min(int(max_prefix), int(n_tokens))
    # Both draws are always made, so one row's cap never shifts another row's draw.
    zero = rng.random() < p_zero
    u = rng.random()
    if zero or cap < 1:
        return 0
    return 1 + int(u * cap)


def _seed_of(seed: int, row: dict[str, Any], epoch: int = 0) -> list[int]:
    """Per-row seed: the run seed, a hash of the row's id and prompt (order-independent) and,
    after epoch 0, the epoch (epoch 0 keeps the seed of a single draw)."""
    digest = hashlib.sha256(f"{row.get('id', '')}\x00{row['prompt']}".encode()).digest()
    return [int(seed), 4, int.from_bytes(digest[:8], "little")] + ([int(epoch)] if epoch else [])


def augment_rows(
    rows: Sequence[dict[str, Any]],
    tokenizer: Any,
    *,
    max_prefix: int = 100,
    p_zero: float = 0.5,
    seed: int = 0,
    harmful_field: str = "rejected",
    refusal_field: str = "chosen",
    max_length: int | None = None,
    min_response_tokens: int = 8,
    keep_continuation: int = 0,
    system_field: str = "system",
    epochs: int = 1,
) -> list[dict[str, Any]]:
    """Safety-recovery rows from harmful rows, retain rows from the others.

    Harmful rows (``harmful=True``) become *safety* rows: ``prefix`` = the first k tokens of
    ``row[harmful_field]`` (k drawn by :func:`sample_prefix_length` from a generator seeded
    by ``seed``, the row's id and prompt and the epoch, so a row's k does not depend on the
    row order),
    ``chosen`` = ``row[refusal_field]`` (the refusal the loss is on), ``continuation`` = the
    rest of the harmful response (DOOR's NPO target), ``prefix_tokens`` = k. Other rows
    become *retain* rows: ``prefix`` = ``""``, ``chosen`` unchanged (a helpful answer),
    ``continuation`` = :data:`PLACEHOLDER`. Every output row has ``part`` = ``"safety"`` or
    ``"retain"``.

    With ``epochs=E`` the result holds E versions of the rows, epoch-major (row i of epoch e
    at ``e * len(rows) + i``), each safety row with a k drawn afresh for its epoch; retain
    rows repeat unchanged. Epoch 0 is what ``epochs=1`` returns.

    Caps on k, in order: the harmful response's length minus ``keep_continuation`` tokens
    (DOOR keeps >= 1 token to unlearn), C = ``max_prefix``, and, with ``max_length``, room
    for ``min_response_tokens`` refusal tokens after the chat prompt and the prefix (rows
    where k had to shrink for this are counted in a warning).

    Examples:
        >>> from safelens.models.loading import _default_tokenizer_dir
        >>> from transformers import AutoTokenizer
        >>> tok = AutoTokenizer.from_pretrained(_default_tokenizer_dir())
        >>> rows = [{"id": "a", "prompt": "How do I do a bad thing?", "harmful": True,
        ...          "chosen": "I can't help with that.",
        ...          "rejected": "Sure, here is how. Step 1: do it. Step 2: do it again."},
        ...         {"id": "b", "prompt": "How do I boil an egg?", "harmful": False,
        ...          "chosen": "Boil water, add the egg, wait nine minutes.", "rejected": "No."}]
        >>> out = augment_rows(rows, tok, p_zero=0.0, seed=0)
        >>> [r["part"] for r in out], out[0]["prefix"] + out[0]["continuation"] == rows[0]["rejected"]
        (['safety', 'retain'], True)
        >>> two = augment_rows(rows, tok, p_zero=0.0, seed=0, epochs=2)
        >>> len(two), two[:2] == out, two[3] == out[1]  # epoch 0 as above; retain rows repeat
        (4, True, True)

    Args:
        rows: preference rows (``prompt``, ``harmful`` and the two fields named below).
        tokenizer: the model's tokenizer.
        max_prefix: C.
        p_zero: probability of k = 0.
        seed: sampling seed.
        harmful_field: column holding the harmful response (``rejected`` for preference rows,
            ``harmful_response`` for prompt rows).
        refusal_field: column holding the refusal (``chosen``; ``reference`` for prompt rows).
        max_length: the training ``max_length``, to keep room for the refusal (None = no cap).
        min_response_tokens: refusal tokens that must fit after the prefix.
        keep_continuation: harmful tokens that must remain after the prefix (0 or 1).
        system_field: row column with a per-row system prompt, if any (for the length cap).
        epochs: versions of the rows to return, one per epoch (>= 1).

    Returns:
        New rows (input rows are not mutated), in input order, ``epochs`` times.

    Raises:
        KeyError: a harmful row lacks ``harmful_field`` or ``refusal_field`` (names the row).
        ValueError: ``epochs`` is not an integer >= 1.
    """
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    out: list[list[dict[str, Any]]] = [[] for _ in range(epochs)]
    squeezed = 0
    for row in rows:
        if row.get("harmful") is not True:
            for version in out:
                version.append({**row, "part": "retain", "prefix": "", "prefix_tokens": 0,
                                "continuation": PLACEHOLDER})
            continue
        for field in (harmful_field, refusal_field):
            if not row.get(field):
                raise KeyError(f"harmful row {row.get('id', '?')!r} has no {field!r} text")
        harmful = row[harmful_field]
        n_tokens = len(text_ids(tokenizer, harmful)) - keep_continuation
        # room for min_response_tokens refusal tokens after the chat prompt and the prefix
        room = (max_length - len(prompt_ids(tokenizer, row["prompt"], row.get(system_field)))
                - min_response_tokens) if max_length is not None else None
        for epoch, version in enumerate(out):
            rng = np.random.default_rng(_seed_of(seed, row, epoch))
            k = sample_prefix_length(rng, n_tokens, max_prefix, p_zero)
            if room is not None and k > max(room, 0):
                squeezed += 1
                k = max(0, room)
            prefix, rest, k = split_at_tokens(tokenizer, harmful, k)
            version.append({**row, "part": "safety", "prefix": prefix, "prefix_tokens": k,
                            "chosen": row[refusal_field],
                            "continuation": rest if rest.strip() else PLACEHOLDER})
    if squeezed:
        warnings.warn(f"{squeezed} of {len(rows) * epochs} safety-recovery prefixes were shortened "
                      f"to leave {min_response_tokens} refusal tokens within "
                      f"max_length={max_length}", stacklevel=2)
    return [r for version in out for r in version]
