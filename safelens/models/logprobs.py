"""Response log-probabilities — the quantity every preference loss reads.

Three things keep this cheap, all exact:

* **Response-only unembedding.** The full-vocabulary logits are ``[B, T, V]`` (V = 49152 for
  SmolLM2). The decoder's final hidden states are computed once, only the positions that
  *predict* response tokens are unembedded (``[N, V]``, N = response tokens), and each target
  token's log-prob is read with a fused cross-entropy in float32.
* **Length buckets.** Rows are sorted by length and run in a few forward passes, each padded
  only to its own longest row (:func:`length_buckets`), instead of one pass padded to the
  longest row of the batch. Causal attention with right padding makes a row's log-probs
  independent of its batch-mates, so the result is the same.
* **Start at a layer.** When the lower blocks are frozen, their output for a row never changes:
  :func:`hidden_at_layer` computes it once and ``response_logps(..., start=...)`` runs only
  the blocks from ``start.layer`` on (the trainer's frozen-prefix cache,
  :mod:`safelens.training.prefix`).

A ``TransformerBridge`` runs through its hook-free plain view
(:func:`safelens.models.plain.fast_module`) unless hooks are attached to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from safelens.models.chat import ChatBatch
from safelens.models.plain import fast_module

#: Fixed cost of one extra forward pass, in padded-token equivalents (a 135M model on 2 CPU
#: cores: about 40 ms of per-call overhead against about 0.6 ms per token).
BUCKET_OVERHEAD_TOKENS = 64


@dataclass
class LayerStart:
    """Hidden states entering block ``layer`` for every row of a batch.

    Attributes:
        layer: index of the first block to run (0 < layer <= n_layers).
        hidden: ``[B, T, d_model]`` residual stream entering that block (right-padded like the
            batch; values at padding positions are ignored).
    """

    layer: int
    hidden: torch.Tensor


def length_buckets(lengths: Sequence[int], overhead: int = BUCKET_OVERHEAD_TOKENS
                   ) -> list[list[int]]:
    """Split rows into forward passes that minimise padded tokens plus a per-pass overhead.

    Rows are sorted by length and cut into contiguous runs by dynamic programming over the
    cost ``Σ_runs (rows × longest row) + overhead × passes``.

    Args:
        lengths: real (unpadded) length of each row.
        overhead: cost of one more forward pass, in tokens.

    Returns:
        Row indices per pass (each list ordered by length).

    Examples:
        >>> length_buckets([10, 100, 12, 98], overhead=16)
        [[0, 2], [3, 1]]
        >>> length_buckets([10, 11, 12], overhead=16)
        [[0, 1, 2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    sorted_len = [lengths[i] for i in order]
    n = len(order)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * sorted_len[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs, j = [], n
    while j > 0:
        runs.append(order[cut[j]:j])
        j = cut[j]
    return runs[::-1]


def _decoder(hf: torch.nn.Module) -> torch.nn.Module:
    if not hasattr(hf, "get_decoder"):
        raise TypeError(f"{type(hf).__name__} has no get_decoder(); expected an HF causal LM")
    return hf.get_decoder()


@contextlib.contextmanager
def decoder_slice(decoder: torch.nn.Module, start: int = 0, stop: int | None = None,
                  final_norm: bool = True) -> Iterator[torch.nn.Module]:
    """Temporarily make ``decoder`` run only blocks ``[start, stop)`` (and its final norm).

    With ``start > 0`` the decoder's ``inputs_embeds`` is the residual stream entering block
    ``start``; with ``final_norm=False`` its ``last_hidden_state`` is the residual stream
    leaving block ``stop - 1``.
    """
    layers = decoder.layers
    norm = getattr(decoder, "norm", None)
    decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
    if not final_norm and norm is not None:
        decoder.norm = torch.nn.Identity()
    try:
        yield decoder
    finally:
        decoder.layers = layers
        if norm is not None:
            decoder.norm = norm


def n_layers(model: torch.nn.Module) -> int:
    """Number of decoder blocks of a bridge or HF causal LM."""
    return len(_decoder(fast_module(model)).layers)


def hidden_at_layer(model: torch.nn.Module, batch: ChatBatch, layer: int) -> torch.Tensor:
    """``[B, T, d_model]`` residual stream entering block ``layer`` (0 = the embeddings)."""
    hf = fast_module(model)
    decoder = _decoder(hf)
    if not 0 < layer <= len(decoder.layers):
        raise ValueError(f"layer must be in [1, {len(decoder.layers)}], got {layer}")
    with decoder_slice(decoder, 0, layer, final_norm=False):
        return decoder(input_ids=batch.input_ids,
                       attention_mask=batch.attention_mask).last_hidden_state


def _can_unembed_selectively(hf: torch.nn.Module) -> bool:
    # Models that post-process logits (softcapping, scaling) need the full forward.
    cfg = getattr(hf, "config", None)
    if cfg is None or getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return False
    return hasattr(hf, "get_decoder") and hf.get_output_embeddings() is not None


def next_token_logits(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    *,
    start: LayerStart | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> torch.Tensor:
    """Logits of the next token at selected positions, unembedding only those positions.

    The decoder runs once and only the selected final hidden states go through the LM head
    (``[N, V]``, not ``[b, T, V]``); models that post-process their logits (soft-capping,
    scaling) take the full forward.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> model = load_tiny_model()
        >>> ids = torch.tensor([[1, 5, 7, 0]])  # [b, T]
        >>> att = torch.tensor([[1, 1, 1, 0]])  # [b, T]
        >>> logits = next_token_logits(model, ids, att, att.bool())  # [3, V]
        >>> logits.shape[0], logits.dtype
        (3, torch.float32)

    Args:
        model: a ``TransformerBridge`` (its plain view runs, or the bridged module when hooks
            are attached) or an HF causal LM.
        input_ids: ``[b, T]`` (right-padded); moved to the model's device.
        attention_mask: ``[b, T]``.
        positions: ``[b, T]`` bool, True where the next-token distribution is wanted.
        start: run only the blocks from ``start.layer`` on, from ``start.hidden``
            ``[b, T, d_model]`` (requires a model without logit post-processing).
        dtype: dtype of the returned logits; ``None`` keeps the forward's (e.g. bfloat16
            under autocast).

    Returns:
        ``[N, V]`` logits, ``N = positions.sum()``, in row-major order of ``positions``.

    Raises:
        ValueError: ``start`` with a model that post-processes its logits.
    """
    hf = fast_module(model)
    device = next(hf.parameters()).device
    ids, att, pos = input_ids.to(device), attention_mask.to(device), positions.to(device)
    selective = _can_unembed_selectively(hf)
    if start is not None:
        if not selective:
            raise ValueError(
                f"{type(hf).__name__} post-processes its logits; cannot start at a layer")
        decoder = _decoder(hf)
        with decoder_slice(decoder, start.layer):
            hidden = decoder(inputs_embeds=start.hidden, attention_mask=att).last_hidden_state
        logits = hf.get_output_embeddings()(hidden[pos])  # [N, V]
    elif selective:
        hidden = _decoder(hf)(input_ids=ids, attention_mask=att).last_hidden_state  # [b, T, D]
        logits = hf.get_output_embeddings()(hidden[pos])  # [N, V]
    else:
        logits = hf(input_ids=ids, attention_mask=att).logits[pos]  # [N, V]
    return logits if dtype is None else logits.to(dtype)


def _token_logps(hf: torch.nn.Module, ids: torch.Tensor, att: torch.Tensor, resp: torch.Tensor,
                 start: LayerStart | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``([N] log-probs, [N, V] logits)`` of the response tokens of one padded chunk
    (row-major order; logits in the forward's dtype)."""
    predictors = torch.zeros_like(resp)
    predictors[:, :-1] = resp[:, 1:]  # [b, t]: position t-1 predicts token t
    targets = ids[resp]  # [N]
    logits = next_token_logits(hf, ids, att, predictors, start=start, dtype=None)  # [N, V]
    return -F.cross_entropy(logits.float(), targets, reduction="none"), logits  # [N], [N, V]


def response_logps(
    model: torch.nn.Module,
    batch: ChatBatch,
    average: bool = False,
    *,
    start: LayerStart | None = None,
    bucket: bool = True,
    return_logits: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Log-probabilities of the response tokens of each row.

    Args:
        model: a ``TransformerBridge`` (its plain view runs, or the bridged module when hooks
            are attached) or a plain HF causal LM.
        batch: a right-padded :class:`~safelens.models.chat.ChatBatch` on the model's device.
        average: return the mean instead of the sum over response tokens (length-normalised
            log-probs, as IPO uses).
        start: run only the blocks from ``start.layer`` on, from the given hidden states
            (requires a selectively unembeddable model: no logit softcapping or scaling).
        bucket: run rows in length buckets (:func:`length_buckets`); same values.
        return_logits: also return the full next-token logits at the response positions
            (token-level distribution losses such as seed 001's PA loss).

    Returns:
        ``(summed, per_token)``: ``summed`` is ``[B]`` float32; ``per_token`` is ``[B, T]`` with
        ``per_token[b, t] = log p(input_ids[b, t] | input_ids[b, :t])`` on response tokens and 0
        elsewhere (aligned with ``batch.response_mask``). With ``return_logits`` a third item,
        ``[N, V]`` logits of the N response tokens in row-major order (the order of
        ``per_token[batch.response_mask.bool()]``), in the forward's dtype.

    Raises:
        ValueError: a row has no response token, or a response starts at position 0.
    """
    hf = fast_module(model)
    ids, att, resp = batch.input_ids, batch.attention_mask, batch.response_mask.bool()
    n_resp = resp.sum(1)  # [B]
    if bool((n_resp == 0).any()):
        row = int((n_resp == 0).nonzero()[0])
        raise ValueError(f"row {row} has no response tokens")
    if bool(resp[:, 0].any()):
        raise ValueError("a response token at position 0 has no context to be predicted from")
    if start is not None and not _can_unembed_selectively(hf):
        raise ValueError(f"{type(hf).__name__} post-processes its logits; cannot start at a layer")
    B, T = ids.shape
    lengths = att.sum(1).tolist()
    runs = length_buckets(lengths) if bucket and B > 1 else [list(range(B))]
    per_token = torch.zeros((B, T), dtype=torch.float32, device=ids.device)  # [B, T]
    row_logits: list[torch.Tensor | None] = [None] * B
    for run in runs:
        index = torch.tensor(run, device=ids.device)
        width = max(lengths[i] for i in run)
        sub = (ids[index, :width], att[index, :width], resp[index, :width])  # [b, w] each
        sub_start = (None if start is None else
                     LayerStart(start.layer, start.hidden[index, :width]))  # [b, w, D]
        flat, logits = _token_logps(hf, *sub, sub_start)  # [N_b], [N_b, V]
        if return_logits:
            for i, part in zip(run, logits.split(n_resp[index].tolist()), strict=True):
                row_logits[i] = part
        chunk = torch.zeros(sub[0].shape, dtype=flat.dtype, device=ids.device).masked_scatter(
            sub[2], flat)  # [b, w]
        per_token = per_token.index_copy(0, index, F.pad(chunk, (0, T - width)))
    summed = per_token.sum(1)  # [B]
    if average:
        summed = summed / n_resp
    if return_logits:
        return summed, per_token, torch.cat(row_logits)  # type: ignore[arg-type]
    return summed, per_token
