"""Frozen-prefix cache: the output of the frozen lower blocks, computed once per training row.

When the embeddings and blocks ``0 .. L-1`` are frozen (the ``quick`` preset freezes blocks
0-14 of 30), the residual stream entering block ``L`` is a fixed function of a row's tokens.
The trainer computes it the first time it meets a (row, response column) — in the reference
pass when there is one, else at the row's first training step — and every later forward (later
epochs, every extra SAM pass) runs only blocks ``L ..``. Backward never entered the frozen blocks anyway (nothing there needs a
gradient), so this removes their forward cost: about half of the forward on the quick preset.

The cached value is exactly what the full forward computes (same kernels, same precision), so
losses are unchanged to floating-point rounding; ``tests/unit/test_engine.py`` checks it on
the tiny model. Rows whose encoding changes between passes (a batch builder that is not
deterministic) are recomputed on the fly, never served stale: every entry stores its token ids.

Memory: ``Σ tokens × d_model × 4`` bytes (float32), e.g. 320 pairs of ~110 tokens on SmolLM2
(d_model 576) take about 160 MB. ``max_gb`` bounds it; :meth:`FrozenPrefixCache.reserve` counts
the tokens before any forward pass and stops a run that would not fit, with the size it needs.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch

from safelens.errors import SafelensError
from safelens.models.logprobs import LayerStart, hidden_at_layer, n_layers, response_logps
from safelens.models.plain import fast_module
from safelens.training.batch import TrainBatch

logger = logging.getLogger(__name__)

_BLOCK = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def first_trained_layer(model: torch.nn.Module,
                        named_params: Sequence[tuple[str, torch.nn.Parameter]]) -> int | None:
    """Index of the lowest decoder block with a trainable parameter, or None for no cache.

    None when the input embeddings (or anything else below the first block) are trained, when
    block 0 is trained, or when the model's decoder has no ``layers`` list.
    """
    hf = fast_module(model)
    decoder = hf.get_decoder() if hasattr(hf, "get_decoder") else None
    if decoder is None or not hasattr(decoder, "layers"):
        return None
    embed = hf.get_input_embeddings()
    embed_ids = {id(p) for p in embed.parameters()} if embed is not None else set()
    blocks = []
    for name, param in named_params:
        if id(param) in embed_ids:
            return None
        match = _BLOCK.search(name)
        if match:
            blocks.append(int(match.group(1)))
    if not blocks or min(blocks) == 0:
        return None
    return min(blocks)


class FrozenPrefixCache:
    """Residual stream entering block ``layer`` for every (row, column) of the training set.

    Args:
        layer: the first trained block.
        max_gb: bound on the cache's memory (GiB).
    """

    def __init__(self, layer: int, max_gb: float = 4.0) -> None:
        self.layer = layer
        self.max_bytes = int(max_gb * 2**30)
        self.max_gb = max_gb
        self.entries: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.nbytes = 0
        self.misses = 0

    @classmethod
    def for_model(cls, model: torch.nn.Module,
                  named_params: Sequence[tuple[str, torch.nn.Parameter]],
                  max_gb: float = 4.0) -> FrozenPrefixCache | None:
        """A cache when the model's lower blocks are frozen, else None (logged)."""
        layer = first_trained_layer(model, named_params)
        if layer is None:
            logger.info("frozen-prefix cache off: the embeddings or block 0 are trained")
            return None
        if layer >= n_layers(model):
            return None
        return cls(layer, max_gb)

    # ------------------------------------------------------------------ fill / lookup
    def _store(self, batch: TrainBatch, hidden: torch.Tensor) -> None:
        att = batch.chat.attention_mask
        b = len(batch)
        for k, column in enumerate(batch.columns):
            for j, i in enumerate(batch.index.tolist()):
                r = k * b + j
                n = int(att[r].sum())
                ids = batch.chat.input_ids[r, :n].to("cpu", torch.int32)
                value = hidden[r, :n].detach().float().cpu().clone()  # [n, D]
                key = (column, i)
                if key in self.entries:
                    self.nbytes -= self.entries[key][1].nbytes
                self.entries[key] = (ids, value)
                self.nbytes += value.nbytes

    def reserve(self, rows: Sequence[dict[str, Any]],
                build: Callable[[Sequence[dict[str, Any]], torch.Tensor], TrainBatch],
                d_model: int, chunk: int = 64) -> int:
        """Check that every row's prefix fits ``max_gb`` before any work; returns the bytes.

        Encodes the rows (tokenization only) to count their tokens.

        Raises:
            SafelensError: the cache would exceed ``max_gb`` (the message gives the size).
        """
        tokens = 0
        for start in range(0, len(rows), chunk):
            part = build(rows[start:start + chunk], torch.arange(start, min(start + chunk,
                                                                            len(rows))))
            tokens += int(part.chat.attention_mask.sum())
        need = tokens * d_model * 4
        if need > self.max_bytes:
            raise SafelensError(
                f"the frozen-prefix cache needs {need / 2**30:.2f} GiB for {len(rows)} rows "
                f"({tokens} tokens x d_model {d_model} x 4 bytes), over prefix_cache_gb="
                f"{self.max_gb}; raise prefix_cache_gb or set prefix_cache=False "
                "(--no-prefix-cache)")
        return need

    def lookup(self, batch: TrainBatch, model: torch.nn.Module,
               autocast: contextlib.AbstractContextManager | None = None) -> LayerStart:
        """``LayerStart`` for ``batch`` (on its device); rows not cached are computed now."""
        chat = batch.chat
        ids, att = chat.input_ids, chat.attention_mask
        R_B, T = ids.shape
        b = len(batch)
        parts: list[torch.Tensor | None] = []
        for k, column in enumerate(batch.columns):
            for j, i in enumerate(batch.index.tolist()):
                r = k * b + j
                entry = self.entries.get((column, i))
                n = int(att[r].sum())
                if entry is None or entry[0].shape[0] != n or not torch.equal(
                        entry[0], ids[r, :n].to("cpu", torch.int32)):
                    parts.append(None)
                else:
                    parts.append(entry[1])
        if any(p is None for p in parts):
            # First visit of a row (or a changed encoding): compute the frozen blocks now, under
            # no_grad (they need no gradient), and keep the result for later visits.
            self.misses += sum(p is None for p in parts)
            with torch.no_grad(), autocast or contextlib.nullcontext():
                hidden = hidden_at_layer(model, chat, self.layer)  # [R*B, T, D]
            self._store(batch, hidden)
            return LayerStart(self.layer, hidden)
        d = parts[0].shape[-1]
        hidden = torch.zeros((R_B, T, d), dtype=torch.float32)  # [R*B, T, D]
        for r, part in enumerate(parts):
            hidden[r, : part.shape[0]] = part
        return LayerStart(self.layer, hidden.to(ids.device))

    def check(self, model: torch.nn.Module, batch: TrainBatch,
              autocast: contextlib.AbstractContextManager | None = None,
              tol: float = 1e-3) -> bool:
        """Whether starting at the cached layer reproduces the full forward on ``batch``.

        Guards architectures where feeding a mid-stack residual as ``inputs_embeds`` is not
        the identity (a decoder that rescales its input embeddings, say).
        """
        with torch.no_grad(), autocast or contextlib.nullcontext():
            full, _ = response_logps(model, batch.chat)
            cut, _ = response_logps(model, batch.chat, start=self.lookup(batch, model))
        err = float((full - cut).abs().max())
        scale = float(full.abs().max()) or 1.0
        if err > tol * scale:
            logger.warning("frozen-prefix cache off: starting at block %d changes the log-probs "
                           "by %.3g", self.layer, err)
            return False
        return True
