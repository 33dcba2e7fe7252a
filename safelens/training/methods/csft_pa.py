"""CSFT + PA (seed 001): constrained SFT plus a token-level preference-alignment loss.

    L = L_CSFT + delta_epoch * L_PA                                              (Eq. 1)

* L_CSFT: Qi et al.'s token-wise constrained SFT on ``chosen``
  (:func:`~safelens.losses.constrained_sft_loss`, the same betas and 10 warmup steps as
  ``constrained-sft``; its gradient is seed 001's Eq. 2 with detached weights w_t).
* L_PA: at each response position, -log sigmoid(mu_t (log pi(y_aligned) - log pi(y_theta)))
  with mu_t = KL(pi_theta || pi_aligned) of the two next-token distributions
  (:func:`~safelens.losses.pa_terms`, Eq. 3-6). Defaults are the seed appendix's reading:
  softened argmax (temperature 0.1) and gradients through mu_t; ``--pa-argmax hard`` and
  ``--pa-detach-mu`` give the other readings. mu_t is clamped at ``pa_max_mu`` (the seed
  assumes mu_t <= K); the share of clamped positions is logged as ``pa/mu_clipped``.
* delta_epoch = 0.1 + 0.2 * epoch / max_epoch (Eq. 7, :func:`~safelens.losses.pa_delta_schedule`).
  **Fractional epochs.** With ``pa_delta_per="epoch"`` (default, the seed's reading) delta is
  held constant within an epoch: epoch = the 0-based index of the current epoch
  (floor of the fractional epochs done), max_epoch = the run's length in epochs rounded up,
  so a 4-epoch run uses 0.1, 0.15, 0.2, 0.25 and a run shorter than one epoch uses 0.1.
  ``"step"`` uses the fractional epoch itself, rising linearly from 0.1 towards 0.3.

pi_aligned is the model before fine-tuning (the aligned model an attack or a downstream task
starts from) or, with ``aligned_model``, another model with the same tokenizer. Its next-token
distributions are computed once before training and cached with the reference log-probs: the
top ``ref_topk`` log-probs per position (the rest of the mass spread evenly over the other
tokens; 0 keeps all V), within ``ref_logits_max_gb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

import safelens.models
from safelens.errors import SafelensError
from safelens.losses import PA_ARGMAX, constrained_sft_loss, pa_delta_schedule, pa_terms, sft_loss
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import _help
from safelens.training.methods.base import TrainContext
from safelens.training.methods.deep import ConstrainedSFT, ConstrainedSFTConfig
from safelens.training.registry import register_method

__all__ = ["CSFTPA", "CSFTPAConfig", "check_same_tokenizer", "pa_delta_at"]

PA_DELTA_PER = ("epoch", "step")


@dataclass
class CSFTPAConfig(ConstrainedSFTConfig):
    """CSFT + PA (seed 001): constrained SFT + delta_epoch * token-level preference alignment."""

    pa_delta_start: float = _help(0.1, "delta_epoch at epoch 0 (seed Eq. 7: 0.1)")
    pa_delta_span: float = _help(0.2, "rise of delta_epoch over the run (seed Eq. 7: 0.2)")
    pa_delta_per: Literal["epoch", "step"] = _help(
        "epoch", "delta constant within each epoch (seed) or updated every step")
    pa_argmax: Literal["soft", "hard"] = _help(
        "soft", "argmax tokens of Eq. 5: softened (seed appendix) or hard")
    pa_temperature: float = _help(0.1, "temperature of the softened argmax")
    pa_detach_mu: bool = _help(
        False, "treat mu_t = KL(pi || pi_aligned) as a constant (seed: gradients flow through it)")
    pa_max_mu: float = _help(10.0, "clamp mu_t at this many nats (logged as pa/mu_clipped)")
    ref_topk: int = _help(
        256, "reference next-token log-probs cached per response position (0 = whole vocabulary)")
    ref_logits_max_gb: float = _help(2.0, "memory bound (GiB) of the cached reference logits")
    aligned_model: str | None = _help(
        None, "pi_aligned: a model path / run directory with the same tokenizer; "
              "None = the model before fine-tuning")

    def __post_init__(self) -> None:
        super().__post_init__()

        def bad(name: str, expected: str) -> SafelensError:
            return SafelensError(f"CSFTPAConfig.{name} must be {expected}, "
                                 f"got {getattr(self, name)!r}")

        for name in ("pa_delta_start", "pa_delta_span"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise bad(name, "a finite number >= 0")
        if self.pa_delta_per not in PA_DELTA_PER:
            raise bad("pa_delta_per", f"one of {PA_DELTA_PER}")
        if self.pa_argmax not in PA_ARGMAX:
            raise bad("pa_argmax", f"one of {PA_ARGMAX}")
        for name in ("pa_temperature", "pa_max_mu", "ref_logits_max_gb"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise bad(name, "a finite number > 0")
        if not (isinstance(self.ref_topk, int) and self.ref_topk >= 0):
            raise bad("ref_topk", "an integer >= 0")


def pa_delta_at(epoch: float, max_epoch: float, per: str = "epoch", start: float = 0.1,
                span: float = 0.2) -> float:
    """delta_epoch of a step that begins after ``epoch`` (fractional) of ``max_epoch`` epochs.

    Examples:
        >>> [round(pa_delta_at(e, 4.0), 3) for e in (0.0, 0.5, 1.0, 3.9)]
        [0.1, 0.1, 0.15, 0.25]
        >>> round(pa_delta_at(0.5, 4.0, per="step"), 3)
        0.125
        >>> pa_delta_at(0.3, 0.6)  # a run shorter than one epoch
        0.1
    """
    if per == "step":
        return pa_delta_schedule(min(epoch, max_epoch), max_epoch, start=start, span=span)
    n_epochs = max(1, math.ceil(max_epoch - 1e-9))
    return pa_delta_schedule(min(math.floor(epoch + 1e-9), n_epochs - 1), n_epochs,
                             start=start, span=span)


def check_same_tokenizer(policy_tok: Any, aligned_tok: Any, policy_vocab: int,
                         aligned_vocab: int, name: str) -> None:
    """Raise unless two models share a tokenizer and an output vocabulary.

    Raises:
        SafelensError: one line naming ``name`` and the first difference.
    """
    if policy_vocab != aligned_vocab:
        raise SafelensError(f"aligned_model {name!r} has an output vocabulary of {aligned_vocab} "
                            f"tokens, the model being fine-tuned {policy_vocab}; PA compares "
                            f"next-token distributions, so both need the same tokenizer")
    if policy_tok.get_vocab() != aligned_tok.get_vocab():
        raise SafelensError(f"aligned_model {name!r} has a different tokenizer (its token ids "
                            f"differ from the fine-tuned model's); PA needs the same tokenizer")


class CSFTPA(ConstrainedSFT):
    """CSFT + PA: ``constrained-sft``'s loss plus delta_epoch * L_PA (see the module docstring)."""

    needs_logits = True
    config: CSFTPAConfig

    def reference_topk(self) -> int:
        return self.config.ref_topk

    def reference_logits_max_gb(self) -> float:
        return self.config.ref_logits_max_gb

    def cache_key(self) -> dict[str, Any]:
        return {**super().cache_key(), "ref_topk": self.config.ref_topk,
                "aligned_model": self.config.aligned_model}

    def reference_model(self, ctx: TrainContext) -> Any:
        name = self.config.aligned_model
        if name is None:
            return ctx.model
        # looked up on the package at call time, where tests substitute a model
        aligned = safelens.models.load_model(name, device=next(ctx.model.parameters()).device)
        check_same_tokenizer(
            ctx.tokenizer, aligned.tokenizer,
            int(ctx.model.original_model.get_output_embeddings().weight.shape[0]),
            int(aligned.original_model.get_output_embeddings().weight.shape[0]), name)
        return aligned

    def delta(self, batch: TrainBatch) -> float:
        """delta_epoch of this batch's step (0.1 when the trainer gave no progress)."""
        cfg = self.config
        if "epoch" not in batch.extras:
            return cfg.pa_delta_start
        return pa_delta_at(batch.extras["epoch"], batch.extras["max_epoch"], cfg.pa_delta_per,
                           cfg.pa_delta_start, cfg.pa_delta_span)

    def compute_loss(self, policy: Logps, ref: Logps | None, batch: TrainBatch
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
        assert ref is not None
        cfg = self.config
        tok_p, tok_r = policy.tokens("chosen"), ref.tokens("chosen")  # [B, T]
        mask = policy.token_mask("chosen")  # [B, T]
        betas = self.betas(mask).to(tok_p.device)  # [B, T]
        csft = constrained_sft_loss(tok_p, tok_r, mask, betas, reduction=cfg.reduction)
        terms = pa_terms(policy.token_logits("chosen"), ref.token_logits("chosen"),  # [N, V]
                         detach_mu=cfg.pa_detach_mu, max_mu=cfg.pa_max_mu,
                         argmax=cfg.pa_argmax, temperature=cfg.pa_temperature)
        pa = terms["loss"].mean()
        delta = self.delta(batch)
        with torch.no_grad():
            metrics = {
                "logps/chosen": policy["chosen"].mean(),
                "nll": sft_loss(tok_p, mask),
                "csft": csft.detach(),
                "pa": pa.detach(),
                "pa/delta": delta,
                "pa/mu": terms["mu"].mean(),
                "pa/mu_clipped": terms["clipped"].float().mean(),
                "pa/disagree": terms["disagree"].float().mean(),
            }
        return csft + delta * pa, metrics


register_method("csft-pa", CSFTPAConfig, CSFTPA)
