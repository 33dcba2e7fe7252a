"""Reference log-probs: computed once with the frozen initial model, cached on disk.

Before the first step the trainer runs the initial policy under ``torch.no_grad()`` over every
training row (the method's ``build_batch``, ``ref_batch_size`` pairs per forward) and stores,
per response column, the summed response log-prob, the number of response tokens and — for
token-level methods — every response token's log-prob (flat, with offsets). The reference
model therefore never sits in memory next to the policy.

The file ``CACHE/reference-<key>.safetensors`` is keyed by a hash of the rows' texts, the
model's weights fingerprint, ``max_length``, the columns, the method's ``cache_key()`` and
the precision. Sums and token counts are stored, so one file serves both summed (DPO) and
length-normalised (IPO: sum / count, exactly what ``response_logps(average=True)`` computes)
log-probs; per-token values are stored when a method asks for them (that is part of the key).
Token-distribution methods (seed 001's PA loss, ``needs_logits``) also get the reference's
next-token distribution at every response position: its top-k log-probs and token ids
(``logits_topk``; 0 = the whole vocabulary), bounded by ``logits_max_gb``. A lookup rebuilds a
dense ``[N, V]`` log-prob matrix, spreading the mass outside the top k uniformly over the
other V - k tokens (exact for k = V; the argmax, y_aligned of the PA loss, is always exact).
A second run on the same data and base model — or a resumed run — reads the file instead of
recomputing. Rows that repeat (a method with one version of its rows per epoch) are computed once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from safelens.errors import SafelensError

# re-exported for one release:
from safelens.models.fingerprint import checkpoint_fingerprint, model_fingerprint  # noqa: F401
from safelens.models.logprobs import response_logps
from safelens.training.batch import Logps, TrainBatch

#: Floor of the reference's tail mass (1 - top-k mass) before its log is taken.
TAIL_MASS_FLOOR = 1e-30

logger = logging.getLogger(__name__)


def rows_digest(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Hash of the prompt and response texts that the reference pass reads."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([row["prompt"], *[row[c] for c in columns]]).encode())
    return h.hexdigest()[:20]


class ReferenceCache:
    """Reference log-probs of every training row, looked up by row index.

    Attributes:
        columns: response columns.
        summed: ``{column: [N]}`` summed response log-probs.
        counts: ``{column: [N]}`` response-token counts.
        tokens: ``{column: [total tokens]}`` flat per-token log-probs, or empty.
        offsets: ``{column: [N + 1]}`` row boundaries in ``tokens``.
        path: the cache file; ``hit`` is True when it was read rather than computed.
    """

    def __init__(self, columns: Sequence[str], tensors: dict[str, torch.Tensor],
                 path: Path | None = None, hit: bool = False) -> None:
        self.columns = tuple(columns)
        self.summed = {c: tensors[f"{c}.summed"] for c in self.columns}
        self.counts = {c: tensors[f"{c}.count"] for c in self.columns}
        self.tokens = {c: tensors[f"{c}.tokens"] for c in self.columns if f"{c}.tokens" in tensors}
        self.offsets = {c: tensors[f"{c}.offsets"] for c in self.columns
                        if f"{c}.offsets" in tensors}
        self.topk_logp = {c: tensors[f"{c}.topk_logp"] for c in self.columns
                          if f"{c}.topk_logp" in tensors}  # {c: [total tokens, k]}
        self.topk_idx = {c: tensors[f"{c}.topk_idx"] for c in self.columns
                         if f"{c}.topk_idx" in tensors}  # {c: [total tokens, k]} int32
        self.vocab = {c: int(tensors[f"{c}.vocab"][0]) for c in self.columns
                      if f"{c}.vocab" in tensors}
        self.path, self.hit = path, hit

    def __len__(self) -> int:
        return len(next(iter(self.summed.values())))

    def dense_logps(self, column: str, rows: Sequence[int]) -> torch.Tensor:
        """``[N, V]`` reference log-probs at the response positions of ``rows`` (row-major):
        the cached top k, and the remaining mass spread evenly over the other V - k tokens."""
        if column not in self.topk_logp:
            raise ValueError("this reference cache holds no logits (was it written for a "
                             "method without needs_logits?)")
        off = self.offsets[column]
        top = torch.cat([self.topk_logp[column][off[i]:off[i + 1]] for i in rows])  # [N, k]
        idx = torch.cat([self.topk_idx[column][off[i]:off[i + 1]] for i in rows]).long()
        vocab, k = self.vocab[column], top.shape[1]
        tail = (1.0 - top.exp().sum(-1)).clamp(min=TAIL_MASS_FLOOR)  # [N]
        fill = (tail / max(vocab - k, 1)).log()  # [N]
        dense = fill[:, None].expand(len(top), vocab).contiguous()  # [N, V]
        return dense.scatter(1, idx, top)

    def lookup(self, batch: TrainBatch, average: bool = False, per_token: bool = False,
               logits: bool = False) -> Logps:
        """Reference :class:`Logps` for ``batch`` (rows ``batch.index``), on its device.

        With ``logits``, ``Logps.logits`` holds the dense ``[N, V]`` reference log-probs of
        every response position (:meth:`dense_logps`).

        Raises:
            ValueError: the batch's response lengths disagree with the cached ones (the cache
                belongs to another encoding).
        """
        idx = batch.index.cpu()
        device = batch.chat.input_ids.device
        mask = batch.chat.response_mask  # [R*B, T]
        n_resp = mask.sum(1).cpu()  # [R*B]
        counts = torch.cat([self.counts[c][idx] for c in batch.columns])  # [R*B]
        if not torch.equal(counts, n_resp):
            raise ValueError("reference cache mismatch: response lengths differ from the cached "
                             "ones (was the cache written with another max_length/encoding?)")
        summed = torch.cat([self.summed[c][idx] for c in batch.columns]).to(device)  # [R*B]
        if average:
            summed = summed / counts.to(device)
        tok = None
        if per_token:
            if not self.tokens:
                raise ValueError("this reference cache holds no per-token log-probs")
            flat = torch.cat([self.tokens[c][self.offsets[c][i]:self.offsets[c][i + 1]]
                              for c in batch.columns for i in idx.tolist()])
            tok = torch.zeros(mask.shape, dtype=flat.dtype, device=device)  # [R*B, T]
            tok = tok.masked_scatter(mask.bool(), flat.to(device))
        dense = None
        if logits:
            dense = torch.cat([self.dense_logps(c, idx.tolist()) for c in batch.columns])
            dense = dense.to(device)  # [N, V]
        return Logps(batch.columns, summed, tok, mask, dense)


@torch.no_grad()
def compute_reference(
    model: torch.nn.Module,
    rows: Sequence[dict[str, Any]],
    build_batch: Callable[[Sequence[dict[str, Any]], torch.Tensor], TrainBatch],
    columns: Sequence[str],
    batch_size: int,
    per_token: bool,
    device: torch.device,
    autocast: contextlib.AbstractContextManager | None = None,
    progress: bool = True,
    prefix: Any = None,
    logits_topk: int | None = None,
    logits_max_gb: float = 2.0,
) -> dict[str, torch.Tensor]:
    """Summed log-probs, counts (and per-token values) of every row under ``model``.

    Rows equal to an earlier row are computed once (a method with one version of its rows
    per epoch repeats most of them).

    ``prefix`` (a :class:`~safelens.training.prefix.FrozenPrefixCache`) lets each forward
    start at the first trained block from the cached output of the frozen ones.
    ``logits_topk`` (None: no logits; 0: the whole vocabulary) stores the top-k next-token
    log-probs and ids of every response position (implies per-token values); the store may
    not exceed ``logits_max_gb`` GiB (checked after the first batch, then as it grows).

    Raises:
        SafelensError: the logits store would exceed ``logits_max_gb``.
    """
    per_token = per_token or logits_topk is not None
    was_training = model.training
    model.eval()
    n = len(rows)
    sums = {c: torch.zeros(n) for c in columns}
    counts = {c: torch.zeros(n, dtype=torch.long) for c in columns}
    toks: dict[str, list] = {c: [None] * n for c in columns}
    tops: dict[str, list] = {c: [None] * n for c in columns}
    idxs: dict[str, list] = {c: [None] * n for c in columns}
    vocab, stored, seen = 0, 0, 0
    # A row equal to an earlier one (the same row in several epochs' versions) is encoded
    # identically (build_batch is a function of the row): computed once, copied after.
    first: dict[str, int] = {}
    copy_of = {i: first.setdefault(json.dumps(row, sort_keys=True, default=str), i)
               for i, row in enumerate(rows)}
    todo = [i for i in range(n) if copy_of[i] == i]
    # Similar lengths share a batch (less padding); results go back to each row's index.
    order = sorted(todo, key=lambda i: sum(len(rows[i][c]) for c in columns)
                   + len(rows[i]["prompt"]))
    bar = tqdm(total=len(todo), desc="reference log-probs", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        picked = order[start:start + batch_size]
        index = torch.tensor(picked, dtype=torch.long)
        batch = build_batch([rows[i] for i in picked], index)
        chat = batch.chat.to(device)
        batch.chat = chat
        start = prefix.lookup(batch, model, autocast) if prefix is not None else None
        with autocast or contextlib.nullcontext():
            out_lp = response_logps(model, chat, start=start,
                                    return_logits=logits_topk is not None)
        summed, tok = out_lp[0], out_lp[1]  # [R*B], [R*B, T]
        b = len(picked)
        mask = chat.response_mask.bool()
        if logits_topk is not None:
            logp_all = torch.log_softmax(out_lp[2].float(), dim=-1)  # [N, V]
            vocab = logp_all.shape[-1]
            k = vocab if logits_topk == 0 else min(logits_topk, vocab)
            top, top_idx = logp_all.topk(k, dim=-1)  # [N, k] each
            row_parts = list(zip(top.cpu().split(mask.sum(1).tolist()),
                                 top_idx.to(torch.int32).cpu().split(mask.sum(1).tolist()),
                                 strict=True))
            stored += top.numel() * 8
            seen += b
            projected = stored * n / seen  # copies are stored too
            if projected > logits_max_gb * 2**30:
                raise SafelensError(
                    f"reference logits: top-{k} of {vocab} for {n} rows need about "
                    f"{projected / 2**30:.1f} GiB, above logits_max_gb={logits_max_gb}; "
                    f"lower ref_topk or raise ref_logits_max_gb")
        for k_col, c in enumerate(batch.columns):
            part = slice(k_col * b, (k_col + 1) * b)
            sums[c][index] = summed[part].float().cpu()
            counts[c][index] = mask[part].sum(1).cpu()
            if per_token:
                for j, i in enumerate(picked):
                    toks[c][i] = tok[part][j][mask[part][j]].float().cpu()
            if logits_topk is not None:
                for j, i in enumerate(picked):
                    tops[c][i], idxs[c][i] = row_parts[k_col * b + j]
        bar.update(b)
    bar.close()
    model.train(was_training)
    for i, j in copy_of.items():
        if i != j:
            for c in columns:
                sums[c][i], counts[c][i] = sums[c][j], counts[c][j]
                toks[c][i], tops[c][i], idxs[c][i] = toks[c][j], tops[c][j], idxs[c][j]
    out: dict[str, torch.Tensor] = {}
    for c in columns:
        out[f"{c}.summed"] = sums[c].contiguous()
        out[f"{c}.count"] = counts[c].contiguous()
        if per_token:
            out[f"{c}.tokens"] = torch.cat(toks[c]).contiguous()
            out[f"{c}.offsets"] = torch.cat(
                [torch.zeros(1, dtype=torch.long), out[f"{c}.count"].cumsum(0)]).contiguous()
        if logits_topk is not None:
            out[f"{c}.topk_logp"] = torch.cat(tops[c]).contiguous()
            out[f"{c}.topk_idx"] = torch.cat(idxs[c]).contiguous()
            out[f"{c}.vocab"] = torch.tensor([vocab], dtype=torch.long)
    return out


def reference_key(rows: Sequence[dict[str, Any]], columns: Sequence[str], fingerprint: str,
                  max_length: int, per_token: bool, precision: str,
                  extra: dict[str, Any]) -> str:
    """The cache key (hex) of a reference pass."""
    parts = {"rows": rows_digest(rows, columns), "model": fingerprint, "max_length": max_length,
             "columns": list(columns), "per_token": per_token, "precision": precision,
             "extra": extra}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_or_compute(
    cache_dir: str | Path,
    key: str,
    compute: Callable[[], dict[str, torch.Tensor]],
    columns: Sequence[str],
    is_main: bool = True,
) -> ReferenceCache:
    """Read ``cache_dir/reference-<key>.safetensors``, or compute and write it (main process)."""
    path = Path(cache_dir) / f"reference-{key}.safetensors"
    if path.is_file():
        logger.info("reference log-probs: cache hit %s", path)
        return ReferenceCache(columns, load_file(str(path)), path, hit=True)
    tensors = compute()
    if is_main:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"key": key})
        tmp.replace(path)
    # Round-trip through the stored representation so a fresh and a resumed run see the same bits.
    return ReferenceCache(columns, {k: v.clone() for k, v in tensors.items()}, path, hit=False)
