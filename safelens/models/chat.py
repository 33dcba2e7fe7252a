"""Chat formatting: (prompt, response) pairs → token ids with a response mask.

Every loss in safelens reads log-probs of *response* tokens under the model's own chat template.
A pair is encoded as::

    chat_template([user: prompt], add_generation_prompt=True)  +  response  +  end-of-turn

The prompt part and the response part are tokenized separately (the template's generation prompt
ends in a newline, so no token straddles the boundary); the end-of-turn token (the tokenizer's
EOS, ``<|im_end|>`` for SmolLM2) closes the response so the model also learns to stop.
Rows are right-padded for training; generation inputs (:func:`encode_prompts`) are left-padded.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import PreTrainedTokenizerBase

from safelens.errors import SafelensError

DEFAULT_MAX_LENGTH = 512


@dataclass
class ChatBatch:
    """A right-padded batch of chat-formatted (prompt, response) pairs.

    Attributes:
        input_ids: ``[B, T]`` token ids (padding = the tokenizer's pad id).
        attention_mask: ``[B, T]`` 1 on real tokens, 0 on padding.
        response_mask: ``[B, T]`` 1 where the token belongs to the response (loss positions).
        truncated: ``[B]`` bool, True where the response was cut to fit ``max_length``.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    truncated: torch.Tensor

    def to(self, device: torch.device | str) -> ChatBatch:
        """Move every tensor to ``device``."""
        return ChatBatch(*(t.to(device) for t in (
            self.input_ids, self.attention_mask, self.response_mask, self.truncated)))

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, index: slice | torch.Tensor) -> ChatBatch:
        """Rows ``index`` of the batch, trimmed to their longest row."""
        ids, att = self.input_ids[index], self.attention_mask[index]
        width = int(att.sum(1).max()) if len(ids) else 0
        return ChatBatch(ids[:, :width], att[:, :width], self.response_mask[index][:, :width],
                         self.truncated[index])


def text_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of ``text`` as plain text: a ``<|im_end|>`` in it is text, not a control token.

    Examples:
        >>> from transformers import AutoTokenizer                        # doctest: +SKIP
        >>> tok = AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")  # doctest: +SKIP
        >>> tok.eos_token_id in text_ids(tok, "<|im_end|>")                # doctest: +SKIP
        False
    """
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def _special_strings(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The strings the tokenizer turns into special (control) tokens, longest first."""
    found = set(tokenizer.all_special_tokens)
    for token in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(token, "special", False):
            found.add(str(token))
    return sorted((t for t in found if t), key=len, reverse=True)


_HOLDER = "\ue000safelens-message-{}\ue001"  # private-use code points: never in real text


def chat_template_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]],
                      add_generation_prompt: bool = True) -> list[int]:
    """``apply_chat_template`` ids where message contents are encoded as text.

    The template's own control tokens (``<|im_start|>``, ``<|im_end|>``) stay; a control-token
    string inside a message (``"<|im_end|>\\n<|im_start|>system ..."``) is encoded as the
    characters it is made of, so user text cannot forge a turn. For text without such strings
    the ids equal ``apply_chat_template(..., tokenize=True)``.

    Raises:
        SafelensError: a message holds a control-token string and the template rewrites
            message text (so the text cannot be located in the rendered prompt).
    """
    specials = _special_strings(tokenizer)
    contents = [m["content"] for m in messages]
    rendered = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    if not any(s in c for c in contents for s in specials):
        # Nothing to forge: the template's own tokenization, unchanged.
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    holders = [_HOLDER.format(i) for i in range(len(messages))]
    skeleton = tokenizer.apply_chat_template(
        [{**m, "content": h} for m, h in zip(messages, holders, strict=True)],
        add_generation_prompt=add_generation_prompt, tokenize=False)
    pattern = re.compile("(" + "|".join(re.escape(h) for h in holders) + ")")
    parts = pattern.split(skeleton)
    filled = "".join(contents[holders.index(p)] if p in holders else p for p in parts)
    if filled != rendered or any(skeleton.count(h) != 1 for h in holders):
        raise SafelensError(
            "a message contains a control-token string (one of "
            f"{[s for s in specials if any(s in c for c in contents)][:3]}) and this tokenizer's "
            "chat template rewrites message text, so it cannot be encoded as plain text; "
            "expected text without control tokens")
    special_re = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")
    # (is_special, text) pieces; message contents are always text, template text is split at
    # the template's own control tokens, and neighbouring text pieces are tokenized together
    # (as the tokenizer itself would: added tokens split the string first).
    pieces: list[tuple[bool, str]] = []
    for part in parts:
        if part in holders:
            pieces.append((False, contents[holders.index(part)]))
            continue
        for chunk in special_re.split(part):
            if chunk:
                pieces.append((chunk in specials, chunk))
    ids: list[int] = []
    text = ""
    for is_special, chunk in pieces:
        if not is_special:
            text += chunk
            continue
        if text:
            ids += text_ids(tokenizer, text)
            text = ""
        ids.append(tokenizer.convert_tokens_to_ids(chunk))
    if text:
        ids += text_ids(tokenizer, text)
    return ids


def prompt_ids(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    system_prompt: str | None = None,
    prefill: str | None = None,
) -> list[int]:
    """Token ids of a user turn followed by the opening of the assistant turn.

    User, system and prefill text is encoded as text (:func:`chat_template_ids`): a
    control-token string in it does not become a control token.

    Args:
        tokenizer: a tokenizer with a chat template.
        prompt: the user message.
        system_prompt: an optional system message (else the template's default, if any).
        prefill: text placed at the start of the assistant turn (a prefilling attack); the
            model continues from it.
    """
    messages = [{"role": "user", "content": prompt}]
    if system_prompt is not None:
        messages.insert(0, {"role": "system", "content": system_prompt})
    if tokenizer.chat_template is None:
        # Base models: a plain "User:/Assistant:" layout keeps the API uniform.
        text = (f"{system_prompt}\n\n" if system_prompt else "") + f"User: {prompt}\nAssistant:"
        ids = tokenizer(text, add_special_tokens=True, split_special_tokens=True)["input_ids"]
    else:
        ids = chat_template_ids(tokenizer, messages, add_generation_prompt=True)
    if prefill:
        ids += text_ids(tokenizer, prefill)
    return ids


def response_ids(tokenizer: PreTrainedTokenizerBase, response: str, close: bool = True) -> list[int]:
    """Token ids of a response (as text), closed by the end-of-turn (EOS) token when ``close``."""
    ids = text_ids(tokenizer, response)
    if close and tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def encode(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    max_length: int = DEFAULT_MAX_LENGTH,
    system_prompt: str | None = None,
    prefixes: Sequence[str] | None = None,
    on_overlong: Literal["truncate", "error"] = "truncate",
    close: bool = True,
) -> ChatBatch:
    """Encode (prompt, response) pairs into a right-padded :class:`ChatBatch`.

    Args:
        tokenizer: tokenizer with a chat template (``.pad_token_id`` set).
        prompts: ``B`` user messages.
        responses: ``B`` assistant responses (non-empty).
        max_length: maximum tokens per row (prompt + response).
        system_prompt: optional system message for every row.
        prefixes: optional ``B`` texts that open the assistant turn *before* the response and are
            not part of the response mask (a harmful prefix followed by a recovery refusal, for
            safety-recovery augmentation; empty string for none).
        on_overlong: ``"truncate"`` cuts the end of the response (with a warning counting the
            rows) — the prompt is never cut; ``"error"`` raises.
        close: append the end-of-turn token to each response.

    Returns:
        ChatBatch with ``input_ids``, ``attention_mask``, ``response_mask`` of shape ``[B, T]``.

    Raises:
        ValueError: mismatched lengths, an empty response, a prompt that alone exceeds
            ``max_length``, or an over-long row with ``on_overlong="error"``.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    if prefixes is not None and len(prefixes) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(prefixes)} prefixes")
    if not prompts:
        raise ValueError("cannot encode an empty list of pairs")
    rows, masks, truncated = [], [], []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=False)):
        if not isinstance(response, str) or not response.strip():
            raise ValueError(f"pair {i}: the response is empty; every pair needs response tokens")
        head = prompt_ids(tokenizer, prompt, system_prompt, prefill=prefixes[i] if prefixes else None)
        tail = response_ids(tokenizer, response, close=close)
        room = max_length - len(head)
        if room < 1:
            raise ValueError(
                f"pair {i}: the prompt alone is {len(head)} tokens, over max_length={max_length}")
        cut = len(tail) > room
        if cut and on_overlong == "error":
            raise ValueError(f"pair {i}: {len(head) + len(tail)} tokens, over max_length={max_length}")
        tail = tail[:room]
        rows.append(head + tail)
        masks.append([0] * len(head) + [1] * len(tail))
        truncated.append(cut)
    if any(truncated):
        warnings.warn(
            f"{sum(truncated)} of {len(rows)} responses were truncated to max_length={max_length}",
            stacklevel=2,
        )
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)  # [B, T]
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T]
    response_mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T]
    for b, (row, mask) in enumerate(zip(rows, masks, strict=False)):
        input_ids[b, : len(row)] = torch.tensor(row)
        attention_mask[b, : len(row)] = 1
        response_mask[b, : len(row)] = torch.tensor(mask)
    return ChatBatch(input_ids, attention_mask, response_mask, torch.tensor(truncated))


def concat_columns(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> tuple[list, list]:
    """``(prompts, responses)`` with ``len(columns) * len(rows)`` entries, column-major.

    Examples:
        >>> concat_columns([{"prompt": "p", "chosen": "c", "rejected": "r"}],
        ...                ("chosen", "rejected"))
        (['p', 'p'], ['c', 'r'])

    Raises:
        KeyError: a row lacks one of ``columns`` (names the row's id and the column).
    """
    prompts, responses = [], []
    for col in columns:
        for row in rows:
            if col not in row:
                raise KeyError(f"row {row.get('id', '?')!r} has no {col!r} response")
            prompts.append(row["prompt"])
            responses.append(row[col])
    return prompts, responses


def encode_rows(
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    max_length: int,
    prefix_field: str = "prefix",
    system_field: str = "system",
) -> ChatBatch:
    """Encode every column of every row (column-major), honouring per-row prefix and system.

    Row ``b`` of column ``c`` is ``chat[c * B + b]``, as
    :class:`safelens.training.batch.TrainBatch` expects. The ``prefix`` opens the assistant
    turn in every column (outside the response mask); rows with different ``system`` prompts
    are encoded per group and padded together.

    Args:
        tokenizer: tokenizer with a chat template.
        rows: ``B`` rows with ``prompt`` and every one of ``columns``.
        columns: the response columns (e.g. ``("chosen", "rejected")``), ``R`` of them.
        max_length: maximum tokens per encoded pair.
        prefix_field: row key of the text opening the assistant turn (missing or empty: none).
        system_field: row key of the row's system prompt (missing or None: the default).

    Returns:
        ChatBatch of ``R * B`` rows, ``[R*B, T]`` each, right-padded.
    """
    prompts, responses = concat_columns(rows, columns)
    prefixes = [r.get(prefix_field) or "" for r in rows] * len(columns)
    systems = [r.get(system_field) for r in rows] * len(columns)
    groups: dict[str | None, list[int]] = {}
    for i, system in enumerate(systems):
        groups.setdefault(system, []).append(i)
    if len(groups) == 1:
        return encode(tokenizer, prompts, responses, max_length=max_length,
                      system_prompt=systems[0], prefixes=prefixes)
    parts = []
    for system, idx in groups.items():
        part = encode(tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx],
                      max_length=max_length, system_prompt=system,
                      prefixes=[prefixes[i] for i in idx])
        parts.append((idx, part))
    n, width = len(prompts), max(p.input_ids.shape[1] for _, p in parts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((n, width), pad, dtype=torch.long)  # [R*B, T]
    att = torch.zeros((n, width), dtype=torch.long)  # [R*B, T]
    resp = torch.zeros((n, width), dtype=torch.long)  # [R*B, T]
    trunc = torch.zeros(n, dtype=torch.bool)  # [R*B]
    for idx, part in parts:
        w = part.input_ids.shape[1]
        index = torch.tensor(idx)
        ids[index, :w] = part.input_ids
        att[index, :w] = part.attention_mask
        resp[index, :w] = part.response_mask
        trunc[index] = part.truncated
    return ChatBatch(ids, att, resp, trunc)


@dataclass
class PromptBatch:
    """Left-padded generation inputs: ``input_ids`` and ``attention_mask`` are ``[B, T]``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    prefills: Sequence[str | None] | None = None,
    system_prompt: str | None = None,
    max_prompt_length: int | None = None,
) -> PromptBatch:
    """Left-pad chat-formatted prompts (with optional assistant prefills) for generation.

    Raises:
        ValueError: a prompt longer than ``max_prompt_length`` tokens.
    """
    if prefills is not None and len(prefills) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(prefills)} prefills")
    rows = [
        prompt_ids(tokenizer, p, system_prompt, prefill=prefills[i] if prefills else None)
        for i, p in enumerate(prompts)
    ]
    if max_prompt_length is not None:
        for i, row in enumerate(rows):
            if len(row) > max_prompt_length:
                raise ValueError(
                    f"prompt {i} is {len(row)} tokens, over max_prompt_length={max_prompt_length}")
    return left_pad(rows, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)


def left_pad(rows: Sequence[Sequence[int] | torch.Tensor], pad: int) -> PromptBatch:
    """Left-pad token-id rows into a :class:`PromptBatch` (``[B, T]`` each)."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)  # [B, T]
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, T]
    for b, row in enumerate(rows):
        input_ids[b, width - len(row):] = torch.as_tensor(row, dtype=torch.long)
        attention_mask[b, width - len(row):] = 1
    return PromptBatch(input_ids, attention_mask)
