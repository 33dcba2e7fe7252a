"""Per-token KL depth profile between an aligned model and its base (Qi et al., seed 003, Fig. 1).

For (prompt ``x``, harmful response ``y``) pairs the profile at response position ``k`` is

    D_KL( π_aligned(· | x, y_<k) ‖ π_base(· | x, y_<k) ),   k = 0, 1, ..., K−1,

averaged over the pairs whose response has more than ``k`` tokens. "Shallow" alignment shows up
as KL concentrated in the first few tokens. Memory: the next-token distributions are needed only
at the ``K`` positions that predict response tokens, so each model's decoder runs once per
chunk of ``chunk_size`` rows (inputs trimmed to the last needed position — causal attention makes
the tail irrelevant) and only those positions are unembedded (``[N, V]``, not ``[b, T, V]``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from safelens.models.chat import ChatBatch
from safelens.models.logprobs import next_token_logits  # re-export for one release

__all__ = ["kl_depth_profile", "next_token_logits"]


def kl_depth_profile(
    aligned: nn.Module,
    base: nn.Module,
    batch: ChatBatch,
    max_positions: int = 64,
    chunk_size: int = 4,
) -> dict[str, Tensor]:
    """Per-response-position KL(π_aligned ‖ π_base) over (prompt, harmful response) pairs.

    Qi et al. (seed 003), Figure 1: ``KL(π_aligned(·|x, y_<k) ‖ π_base(·|x, y_<k))`` at each
    response token position ``k``. Position ``k`` is the ``k``-th response token of a row (by
    ``batch.response_mask``); its distribution is read at the preceding input position. Rows
    contribute only to positions their response reaches.

    Args:
        aligned: the aligned model (``TransformerBridge`` or HF causal LM).
        base: the base model, same tokenizer.
        batch: right-padded :class:`~safelens.models.chat.ChatBatch` ``[B, T]`` of prompts with
            harmful responses.
        max_positions: number of response positions profiled (``K`` is this, capped at the
            longest response in the batch).
        chunk_size: rows whose activations and ``[N, V]`` logits live at once.

    Returns:
        dict with ``mean`` ``[K]``, ``std`` ``[K]`` (population std; ``nan`` where
        ``count == 0``), ``count`` ``[K]`` (rows reaching position ``k``), ``per_example``
        ``[B, K]`` (``nan`` beyond a row's response) and ``positions`` ``[K]``; float64 on CPU.

    Examples:
        >>> batch = encode(tok, prompts, harmful_responses)  # doctest: +SKIP
        >>> prof = kl_depth_profile(aligned, base, batch, max_positions=32)  # doctest: +SKIP
        >>> prof["mean"][:5]  # shallow alignment: large here, small later  # doctest: +SKIP

    Raises:
        ValueError: on a response token at position 0 (nothing predicts it) or mismatched vocabularies.
    """
    if max_positions < 1 or chunk_size < 1:
        raise ValueError(
            f"max_positions and chunk_size must be >= 1, got {max_positions}, {chunk_size}"
        )
    resp = batch.response_mask.bool().cpu()  # [B, T]
    if bool(resp[:, 0].any()):
        raise ValueError("a response token at position 0 has no context to be predicted from")
    n_rows = resp.shape[0]
    lengths = resp.sum(1)  # [B]
    k_max = int(min(max_positions, int(lengths.max()) if n_rows else 0))
    per_example = torch.full((n_rows, k_max), float("nan"), dtype=torch.float64)
    if k_max == 0:
        empty = torch.zeros(0, dtype=torch.float64)
        return {
            "mean": empty,
            "std": empty,
            "count": empty.long(),
            "per_example": per_example,
            "positions": empty.long(),
        }
    # rank[b, t] = index k of response token t within its row (−1 off the response).
    rank = torch.where(resp, resp.long().cumsum(1) - 1, torch.full_like(resp, -1, dtype=torch.long))
    want = resp & (rank < k_max)  # [B, T] response tokens profiled
    predictors = torch.zeros_like(want)
    predictors[:, :-1] = want[:, 1:]  # position t−1 predicts token t
    ids, att = batch.input_ids.cpu(), batch.attention_mask.cpu()
    with torch.no_grad():
        for start in range(0, n_rows, chunk_size):
            rows = slice(start, min(start + chunk_size, n_rows))
            pred = predictors[rows]  # [b, T]
            if not bool(pred.any()):
                continue
            # Causal LM: positions after the last predictor do not change it, so drop them.
            width = int(pred.any(0).nonzero().max()) + 1
            sub_ids, sub_att, sub_pred = ids[rows, :width], att[rows, :width], pred[:, :width]
            logp_a = F.log_softmax(
                next_token_logits(aligned, sub_ids, sub_att, sub_pred), -1
            )  # [N, V]
            logp_b = F.log_softmax(
                next_token_logits(base, sub_ids, sub_att, sub_pred), -1
            )  # [N, V]
            if logp_a.shape != logp_b.shape:
                raise ValueError(
                    f"aligned and base disagree on vocabulary: {logp_a.shape[-1]} vs {logp_b.shape[-1]}"
                )
            # KL(p_a ‖ p_b) = Σ_v p_a (log p_a − log p_b); kl_div takes (input=log p_b, target=log p_a).
            kl = F.kl_div(logp_b.to(logp_a.device), logp_a, log_target=True, reduction="none").sum(
                -1
            )
            kl = kl.double().cpu().clamp_min(0.0)  # [N]; clamp float round-off below zero
            b_idx, t_idx = sub_pred.nonzero(as_tuple=True)  # row-major, matches logits order
            k_idx = rank[rows][b_idx, t_idx + 1]
            per_example[b_idx + start, k_idx] = kl
            del logp_a, logp_b
    valid = ~per_example.isnan()  # [B, K]
    count = valid.sum(0)  # [K]
    filled = torch.where(valid, per_example, torch.zeros_like(per_example))
    mean = filled.sum(0) / count.clamp_min(1)
    var = torch.where(valid, (per_example - mean) ** 2, torch.zeros_like(per_example)).sum(
        0
    ) / count.clamp_min(1)
    nan = torch.full_like(mean, float("nan"))
    return {
        "mean": torch.where(count > 0, mean, nan),
        "std": torch.where(count > 0, var.sqrt(), nan),
        "count": count,
        "per_example": per_example,
        "positions": torch.arange(k_max),
    }
