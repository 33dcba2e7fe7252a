"""Deep safety alignment (seed 003): ``augmented-sft``, ``constrained-sft``, ``door``, ``w-door``.

All four read preference rows. ``augmented-sft``, ``door`` and ``w-door`` turn them into
safety-recovery rows in ``prepare`` (:func:`safelens.data.augment.augment_rows`): a harmful
row becomes (prompt, first k tokens of its ``rejected`` answer as an assistant prefix outside
the loss, refusal ``chosen``), k = 0 w.p. ½ else Uniform{1..min(C, |h|)}; a benign or
look-alike row becomes a *retain* row (prompt, helpful ``chosen``). Loss formulas are those of
:mod:`safelens.losses`.

When k is drawn (``resample_prefix``)
    ``"epoch"`` (default): afresh for every epoch, k a function of (seed, epoch, row).
    ``prepare`` returns one version of the rows per epoch the run starts
    (``rows_per_epoch``, :class:`~safelens.training.methods.base.Method`) and the trainer
    takes epoch e's rows from version e, so every cached per-row quantity that depends on k
    (the reference log-probs of DOOR's NPO target and of the refusals, W-DOOR's pi*
    log-probs, the frozen-prefix cache) is computed for each version, rows repeated across
    versions (retain rows, k = 0) once; a resumed run rebuilds the same versions (they
    depend only on the seed, the rows and the run length, which a resume may not change)
    and finds its caches. Epoch 0 draws the k's of ``"once"``, so a one-epoch run is the
    same in both modes. ``"once"``: one k per row for the whole run.

    Sources. Qi et al.'s public code (github.com/Unispac/shallow-vs-deep-alignment,
    ``finetuning_buckets/trainer/trainer.py``) builds the recovery examples inside the
    training step: ``get_batch_loss_metrics`` calls ``gen_safety_augmentation_batch`` on
    every batch (lines 950-951), which draws the coin ``randint(0, 1)`` (line 1023) and
    k = ``randint(1, min(100, len(harmful_item)))`` (line 1026) from Python's global
    ``random`` for each example of the batch: **per batch**, i.e. each time an example is
    used. An example is used once per epoch, so a draw per (epoch, row) is the same scheme;
    what differs is the RNG (ours a function of (seed, epoch, row): reproducible and
    independent of the batch order and of the number of processes). The public DOOR code
    (github.com/wicai24/DOOR-Alignment) instead draws k **once**, when it writes its prefix
    data set (``utils/create_prefix_dataset.py`` lines 6-10: exactly 200 zeros and 200
    draws from Uniform{1..100}, shuffled, unseeded ``np.random``), and trains 10 epochs on
    that file (``train.py`` line 123): ``resample_prefix="once"`` is that pipeline.

``augmented-sft`` (Qi et al.)
    alpha * NLL(refusal | x, h_<=k) + (1 - alpha) * NLL(helpful | x') — no reference model.
``constrained-sft`` (Qi et al., Eqn 3)
    mean_t -(2/beta_t) log sigmoid(beta_t (log pi(y_t) - log pi_ref(y_t))) on ``chosen``,
    beta_1 = 0.5, beta_2..5 = 2, beta_t = 0.1 after (seed Table 4; the public code's
    ``first_token_bias_factor`` 5, ``bias_factor`` 20 times beta 0.1), reference = the model
    before fine-tuning (per-token log-probs cached by the trainer), 10 warmup steps by
    default (seed Table 9). For fine-tuning an aligned model on downstream or attack data.
``door`` (Zhao et al.)
    alpha * [NLL(refusal | x + h_<k) + NPO(h_>=k | x + h_<k; beta)] + (1 - alpha) * NLL(retain),
    beta = 0.5, alpha = 0.2 as the public code, whose ``sequence_sum`` reduction (sum over
    tokens, mean over rows) is the default here too: it sets the balance between the NLL
    terms and the sequence-level NPO term. The public code also prefixes the NPO target
    (its "bad" rows are prefix + remaining harmful text): NPO is on the harmful
    continuation after the same prefix, k capped so at least one harmful token remains.

    Where h comes from (``harmful_source``, also for ``w-door``). None (default): each
    harmful row's own ``rejected`` answer (the built-in data's compliant, non-operational
    answers). A model (path, HF id or run directory): its greedy answer to each harmful
    training prompt (and the row's system prompt), up to ``harmful_max_new_tokens`` tokens,
    replaces ``rejected`` before the prefixes are cut. This is the public pipeline (seed
    003, "Generation of Harmful Response": a copy of the target model fine-tuned on a small
    harmful set generates the harmful responses; the public repository ships only the
    resulting ``dataset/train/*-bad.jsonl``, not the generating script). Make the copy with
    the fine-tuning attack, e.g.
    ``safelens attack finetune --kind harmful --model BASE --out runs/harmful-copy``
    (:func:`safelens.attacks.finetune.run_finetune_attack`: SFT on ``data/attacks/harmful``),
    then ``safelens align --method door --model BASE --harmful-source runs/harmful-copy``.
    Generation is :func:`safelens.models.generation.generate` (the one evaluation uses);
    the answers are cached as ``REFERENCE_DIR/harmful-<key>.json`` keyed by the model's
    identity, the harmful rows' ids, prompts and system prompts and the decoding settings
    (:meth:`DOOR.generated_harmful`), so seeds and resumed runs reuse them.
``w-door``
    DOOR with each refusal token weighted, pi* a DPO-aligned model given by ``star_model``
    (a path or a ``safelens align`` run directory); its per-token log-probs of the refusals
    are computed before training (for every version of the rows) and cached like the
    reference's. Two variants (``variant``):

    ``"seed"`` (default; seed 003's slides): L = alpha [sum_t -beta_t log pi(y^s_t | x + h_<k,
    y^s_<t) + NPO(h_>=k; beta) against pi_ref] + (1 - alpha) retain, beta_t =
    (pi*(y_t) / pi_ref(y_t))^(1/tau), tau = 5 (its Table 1)
    (:func:`~safelens.losses.door_loss` with :func:`~safelens.losses.wdoor_token_weights`):
    ``door`` and ``w-door`` differ only in the weights.

    ``"public"``: what the public DOOR code (github.com/wicai24/DOOR-Alignment) runs as
    W-DOOR, ``train.py --type 12`` (its README: "DOOR and W-DOOR correspond to type 10 and
    12"), ``WDOORTrainer`` -> ``wgdnpo_loss`` in ``utils/loss.py`` (lines 170-226):
    L = alpha [sum_t -w_t log pi(y^s_t | ...) - (2/beta) log sigmoid(-beta log pi(h_>=k | x +
    h_<k) / L - gamma)] + (1 - alpha) retain (:func:`~safelens.losses.wdoor_public_loss`,
    its unlearning term :func:`~safelens.losses.simnpo_loss`): the NPO term is
    reference-free and length-normalised with a margin gamma = 1 (SimNPO's form), and the
    weights are ``exp_weights`` (lines 165-168), w_t = (pi_ref(y_t) / pi*(y_t))^(1/tau),
    the **inverse** of the seed's ratio, with tau = 1 (``train.py`` line 242). With
    ``variant="public"``, ``tau`` and ``inverse`` default to those (1, True); beta = 0.5,
    alpha = 0.2 and the ``sequence_sum`` reduction are the same in both. L is, as in the
    public code, the length of the whole encoded row (template, prompt, prefix and
    continuation: its ``attention_mask.sum(1)``, line 206); ``npo_length="response"``
    takes SimNPO's |h_>=k| instead. Two differences we keep: the public code sums its NPO
    term over the batch (``.sum(dim=-1)`` on a [B] tensor, line 211; 2 rows per device
    in ``train.py``) where we average over rows, and it needs the reference model only for
    the weights (so do we). Its other weighted trainer, ``WDOORSIGTrainer`` (``--type
    11``), uses ``sigmoid_weights`` 1 - sigmoid(gamma (log pi* - log pi_ref)) (lines
    160-163) with the same loss: ``--token-weights sigmoid`` (with the public inverse
    ratio and tau = 1 = 1/gamma).

Mixed batches: a micro-batch holds safety and retain rows in the data's proportion; each term
is the mean over its own rows, and a term whose rows are absent from a micro-batch is left
out (so with ``balance`` most batches hold both).

Rows may carry ``system`` (a per-row system prompt, e.g. the identity-shifting persona) and
``prefix`` (text opening the assistant turn, outside the loss); all methods here honour them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

import safelens.models
from safelens.data.augment import augment_rows
from safelens.data.jsonfile import cached_json, rows_key
from safelens.errors import SafelensError
from safelens.losses import (
    constrained_sft_betas_for_mask,
    constrained_sft_loss,
    door_loss,
    npo_loss,
    retain_loss,
    robust_refusal_loss,
    sft_loss,
    simnpo_loss,
    wdoor_public_loss,
    wdoor_token_weights,
)
from safelens.models.chat import encode_rows  # encode_rows: re-export too
from safelens.models.fingerprint import model_identity
from safelens.models.generation import GenerationConfig, generate
from safelens.models.loading import ModelNotFoundError, check_model_name
from safelens.training import reference as refmod
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig, _help
from safelens.training.methods.base import Method, TrainContext
from safelens.training.methods.sft import SFT
from safelens.training.registry import register_method

__all__ = [
    "DOOR",
    "WDOOR",
    "AugmentedSFT",
    "AugmentedSFTConfig",
    "ConstrainedSFT",
    "ConstrainedSFTConfig",
    "DOORConfig",
    "SystemAwareSFT",
    "WDOORConfig",
    "encode_rows",
]

Reduction = Literal["token_mean", "sequence_sum"]
REDUCTIONS = ("token_mean", "sequence_sum")


def _digest(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([row.get(f) for f in fields]).encode())
    return h.hexdigest()[:20]


class _RowAware(Method):
    """Shared ``build_batch``/``cache_key``: per-row ``prefix`` and ``system`` columns."""

    _extra_digest: str = ""

    def build_batch(self, rows: Sequence[dict[str, Any]], index: torch.Tensor,
                    tokenizer: Any) -> TrainBatch:
        chat = encode_rows(tokenizer, rows, self.columns, self.config.max_length)
        return TrainBatch(list(rows), index, tuple(self.columns), chat)

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        self._extra_digest = _digest(rows, ("prefix", "system"))
        return rows

    def cache_key(self) -> dict[str, Any]:
        # rows_digest hashes prompts and responses only; prefixes and system prompts change
        # the reference log-probs too.
        return {"prefix_system": self._extra_digest}


def _parts(batch: TrainBatch) -> torch.Tensor:
    """``[B]`` bool: True for safety rows, False for retain rows."""
    return torch.tensor([r.get("part") == "safety" for r in batch.rows],
                        device=batch.chat.input_ids.device)


def _check_reduction(cfg: TrainConfig) -> None:
    if cfg.reduction not in REDUCTIONS:  # type: ignore[attr-defined]
        raise ValueError(f"{type(cfg).__name__}.reduction must be one of {REDUCTIONS}, "
                         f"got {cfg.reduction!r}")  # type: ignore[attr-defined]


RESAMPLE_PREFIX = ("epoch", "once")


def _check_augmentation(cfg: Any) -> None:
    name = type(cfg).__name__
    if cfg.resample_prefix not in RESAMPLE_PREFIX:
        raise ValueError(f"{name}.resample_prefix must be one of {RESAMPLE_PREFIX}, "
                         f"got {cfg.resample_prefix!r}")
    if not (isinstance(cfg.max_prefix, int) and cfg.max_prefix >= 1):
        raise ValueError(f"{name}.max_prefix must be an integer >= 1, got {cfg.max_prefix!r}")
    if not 0.0 <= cfg.p_zero <= 1.0:
        raise ValueError(f"{name}.p_zero must be in [0, 1], got {cfg.p_zero!r}")
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ValueError(f"{name}.alpha must be in [0, 1], got {cfg.alpha!r}")
    if not (isinstance(cfg.min_response_tokens, int) and cfg.min_response_tokens >= 1):
        raise ValueError(f"{name}.min_response_tokens must be an integer >= 1, "
                         f"got {cfg.min_response_tokens!r}")


# ------------------------------------------------------------------------------ augmented SFT


@dataclass
class AugmentedSFTConfig(TrainConfig):
    """Safety-recovery augmented SFT (Qi et al.): refusals after harmful prefixes + retain NLL."""

    max_prefix: int = _help(100, "C: harmful-prefix length k ~ Uniform{1..min(C, |h|)} (seed: 100)")
    p_zero: float = _help(0.5, "probability of k = 0 (no harmful prefix; seed: 0.5)")
    alpha: float = _help(0.5, "weight of the safety-recovery NLL; 1 - alpha weighs the retain NLL")
    min_response_tokens: int = _help(
        8, "k is capped so that this many refusal tokens still fit in max_length")
    resample_prefix: Literal["epoch", "once"] = _help(
        "epoch", "k drawn afresh each epoch from (seed, epoch, row), as Qi et al.'s code redraws "
                 "it each time a row is used, or once per row for the whole run")
    reduction: Literal["token_mean", "sequence_sum"] = _help(
        "token_mean", "NLL per response token (Qi et al.'s code) or summed per row")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_augmentation(self)
        _check_reduction(self)


class AugmentedSFT(_RowAware):
    columns = ("chosen",)
    needs_reference = False
    keep_continuation = 0

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        cfg = self.config
        epochs = ctx.epochs_for(len(rows)) if cfg.resample_prefix == "epoch" else 1
        # one version of the rows per epoch, each with its own k's (the trainer's
        # rows_per_epoch contract); a one-epoch run is the same in both modes
        self.rows_per_epoch = len(rows) if epochs > 1 else None
        rows = augment_rows(rows, ctx.tokenizer, max_prefix=cfg.max_prefix, p_zero=cfg.p_zero,
                            seed=cfg.seed, max_length=cfg.max_length,
                            min_response_tokens=cfg.min_response_tokens,
                            keep_continuation=self.keep_continuation, epochs=epochs)
        if not any(r["part"] == "safety" for r in rows):
            raise ValueError(f"{self.name or type(self).__name__} found no harmful rows "
                             "(harmful=True) to build safety-recovery examples from")
        return super().prepare(rows, ctx)

    def compute_loss(self, policy: Logps, ref: Logps | None, batch: TrainBatch
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
        cfg = self.config
        safety = _parts(batch)  # [B]
        tok, mask = policy.tokens("chosen"), policy.token_mask("chosen")  # [B, T]
        terms, metrics = [], {}
        if safety.any():
            s = sft_loss(tok[safety], mask[safety], reduction=cfg.reduction)
            terms.append(cfg.alpha * s)
            metrics["loss/safety"] = s.detach()
        if (~safety).any():
            r = retain_loss(tok[~safety], mask[~safety], reduction=cfg.reduction)
            terms.append((1.0 - cfg.alpha) * r)
            metrics["loss/retain"] = r.detach()
        metrics["logps/chosen"] = policy["chosen"].detach().mean()
        return torch.stack(terms).sum(), metrics


# ------------------------------------------------------------------------------ constrained SFT


@dataclass
class ConstrainedSFTConfig(TrainConfig):
    """Constrained SFT (Qi et al., Eqn 3): token-wise -(2/beta_t) log sigmoid(beta_t log ratio)."""

    warmup_steps: int | None = _help(
        10, "warmup steps (seed Table 9: 10 warmup steps matter against attacks); None = ratio")
    beta_first: float = _help(0.5, "beta_1 of the first response token (seed: 0.5)")
    beta_early: float = _help(2.0, "beta_t for 2 <= t <= early_until (seed: 2)")
    early_until: int = _help(5, "last response position that gets beta_early (seed: 5)")
    beta_rest: float = _help(0.1, "beta_t after early_until (seed: 0.1)")
    reduction: Literal["token_mean", "sequence_sum"] = _help(
        "token_mean", "mean over response tokens, or the seed's sum per sequence")

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("beta_first", "beta_early", "beta_rest"):
            v = getattr(self, f)
            if not (isinstance(v, int | float) and v > 0 and math.isfinite(v)):
                raise ValueError(f"ConstrainedSFTConfig.{f} must be > 0, got {v!r}")
        if not (isinstance(self.early_until, int) and self.early_until >= 1):
            raise ValueError(f"ConstrainedSFTConfig.early_until must be an integer >= 1, "
                             f"got {self.early_until!r}")
        _check_reduction(self)


class ConstrainedSFT(_RowAware):
    columns = ("chosen",)
    needs_reference = True
    needs_token_logps = True

    def betas(self, mask: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` beta_t for a response mask (position 1 = first response token)."""
        cfg = self.config
        return constrained_sft_betas_for_mask(mask, cfg.beta_first, cfg.beta_early,
                                              cfg.early_until, cfg.beta_rest)

    def compute_loss(self, policy: Logps, ref: Logps | None, batch: TrainBatch
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
        assert ref is not None
        tok_p, tok_r = policy.tokens("chosen"), ref.tokens("chosen")  # [B, T]
        mask = policy.token_mask("chosen")  # [B, T]
        betas = self.betas(mask).to(tok_p.device)  # [B, T]
        loss = constrained_sft_loss(tok_p, tok_r, mask, betas, reduction=self.config.reduction)
        with torch.no_grad():
            m = mask.bool()
            early = m & (torch.cumsum(m.long(), -1) <= self.config.early_until)  # [B, T]
            ratio = tok_p - tok_r  # [B, T]
            metrics = {
                "logps/chosen": policy["chosen"].mean(),
                "nll": sft_loss(tok_p, mask),
                "log_ratio/early": ratio[early].mean(),
                "log_ratio/rest": ratio[m & ~early].mean() if (m & ~early).any() else 0.0,
            }
        return loss, metrics


# ------------------------------------------------------------------------------ DOOR / W-DOOR


@dataclass
class DOORConfig(TrainConfig):
    """DOOR: alpha [robust refusal NLL + NPO on harmful continuations] + (1 - alpha) retain NLL."""

    beta: float = _help(0.5, "NPO inverse temperature beta (public code: 0.5)")
    alpha: float = _help(0.2, "weight of the safety terms; 1 - alpha weighs retain (public: 0.2)")
    max_prefix: int = _help(100, "C: harmful-prefix length k ~ Uniform{1..min(C, |h| - 1)}")
    p_zero: float = _help(
        0.5, "probability of k = 0 (the public code's prefix data: half 0, half Uniform[1, 100])")
    min_response_tokens: int = _help(
        8, "k is capped so that this many refusal tokens still fit in max_length")
    resample_prefix: Literal["epoch", "once"] = _help(
        "epoch", "k drawn afresh each epoch from (seed, epoch, row), or once per row for the "
                 "whole run (the public DOOR code's fixed prefix data set)")
    reduction: Literal["token_mean", "sequence_sum"] = _help(
        "sequence_sum", "NLL terms summed per row (public code) or averaged per token")
    harmful_source: str | None = _help(
        None, "harmful answers h generated greedily by this model (a harmfully fine-tuned copy: "
              "safelens attack finetune --kind harmful --model BASE --out DIR, then DIR) for "
              "every harmful training prompt, cached in the reference folder; None = the "
              "rows' own 'rejected' answers")
    harmful_max_new_tokens: int = _help(
        128, "tokens generated per harmful answer with harmful_source (the built-in answers "
             "are 67-115 tokens)")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"{name}.beta must be > 0, got {self.beta!r}")
        _check_augmentation(self)
        _check_reduction(self)
        if self.harmful_source is not None:
            try:
                check_model_name(str(self.harmful_source),
                                 setting=f"{name}.harmful_source (--harmful-source)")
            except ModelNotFoundError as err:  # a setting, so a ValueError like the others
                raise SafelensError(str(err)) from None
        if not (isinstance(self.harmful_max_new_tokens, int) and self.harmful_max_new_tokens >= 1):
            raise ValueError(f"{name}.harmful_max_new_tokens must be an integer >= 1, "
                             f"got {self.harmful_max_new_tokens!r}")


#: W-DOOR variants and the token-weight settings each implies unless given.
WDOOR_VARIANTS = {"seed": {"tau": 5.0, "inverse": False}, "public": {"tau": 1.0, "inverse": True}}


@dataclass
class WDOORConfig(DOORConfig):
    """W-DOOR: DOOR with refusal tokens weighted by (pi*/pi_ref)^(1/tau), pi* a DPO model."""

    variant: Literal["seed", "public"] = _help(
        "seed", "seed: DOOR's NPO against the reference, weights (pi*/pi_ref)^(1/tau), tau 5; "
                "public: the public DOOR code's W-DOOR (wgdnpo_loss): reference-free "
                "length-normalised NPO with margin gamma, weights (pi_ref/pi*)^(1/tau), tau 1")
    star_model: str | None = _help(
        None, "pi*: a DPO-aligned model (path, HF id or safelens align run directory)")
    tau: float | None = _help(
        None, "temperature tau of the token weights; None: the variant's (seed Table 1: 5; "
              "public code: 1)")
    inverse: bool | None = _help(
        None, "weigh by the public code's inverse ratio pi_ref/pi* instead of the seed's "
              "pi*/pi_ref; None: the variant's (seed: no, public: yes)")
    token_weights: Literal["exp", "sigmoid"] = _help(
        "exp", "exp: ratio^(1/tau) (the seed's, and the public W-DOOR's); sigmoid: "
               "sigmoid(log ratio / tau), the public code's other weights (1 - sigmoid(gamma log "
               "pi*/pi_ref) = sigmoid with the inverse ratio and tau = 1/gamma)")
    gamma: float = _help(1.0, "public variant: margin gamma of the length-normalised NPO "
                              "(public code: 1.0)")
    npo_length: Literal["sequence", "response"] = _help(
        "sequence", "public variant: NPO normalised by the tokens of the whole encoded row "
                    "(template, prompt, prefix, continuation: the public code) or of the "
                    "harmful continuation only (SimNPO's |y|)")

    def __post_init__(self) -> None:
        if self.variant not in WDOOR_VARIANTS:
            raise ValueError(f"WDOORConfig.variant must be one of {tuple(WDOOR_VARIANTS)}, "
                             f"got {self.variant!r}")
        for f, value in WDOOR_VARIANTS[self.variant].items():  # the variant's, unless given
            if getattr(self, f) is None:
                setattr(self, f, value)
        super().__post_init__()
        if not (isinstance(self.tau, int | float) and self.tau > 0 and math.isfinite(self.tau)):
            raise ValueError(f"WDOORConfig.tau must be > 0, got {self.tau!r}")
        if self.token_weights not in ("exp", "sigmoid"):
            raise ValueError(f"WDOORConfig.token_weights must be one of ('exp', 'sigmoid'), "
                             f"got {self.token_weights!r}")
        if not (isinstance(self.gamma, int | float) and math.isfinite(self.gamma)):
            raise ValueError(f"WDOORConfig.gamma must be a finite number, got {self.gamma!r}")
        if self.npo_length not in ("sequence", "response"):
            raise ValueError(f"WDOORConfig.npo_length must be one of ('sequence', 'response'), "
                             f"got {self.npo_length!r}")


class DOOR(AugmentedSFT):
    columns = ("chosen", "continuation")
    needs_reference = True
    keep_continuation = 1

    def __init__(self, config: DOORConfig) -> None:
        super().__init__(config)
        #: the harmful model as an object (tests, notebooks); else ``config.harmful_source``
        #: is loaded when its answers are not cached yet.
        self.harmful_model: Any = None

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        if self.harmful_model is not None or self.config.harmful_source:
            rows = self.generated_harmful(rows, ctx)
        return super().prepare(rows, ctx)

    def generated_harmful(self, rows: list[dict[str, Any]], ctx: TrainContext
                          ) -> list[dict[str, Any]]:
        """``rows`` with every harmful row's ``rejected`` replaced by the harmful model's greedy
        answer to its prompt (and system prompt), as the public DOOR pipeline builds h.

        The answers are cached in ``ctx.cache_dir/harmful-<key>.json``
        (:func:`~safelens.data.jsonfile.cached_json`) under the key (model identity: the
        weights hash of a model object, the file stamps of a directory; the harmful rows'
        ids, prompts and system prompts; the decoding settings), so the model is loaded and
        run only when that key is new. An empty answer keeps the row's own ``rejected``
        (counted in a warning).
        """
        cfg = self.config
        source = self.harmful_model if self.harmful_model is not None else cfg.harmful_source
        harmful = [r for r in rows if r.get("harmful") is True]
        if not harmful:
            return rows
        decoding = GenerationConfig(max_new_tokens=cfg.harmful_max_new_tokens)
        key = {"model": model_identity(source),
               "prompts": rows_key(harmful, ("id", "prompt", "system")),
               "decoding": asdict(decoding)}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

        def compute() -> list[str]:
            model = source
            if not hasattr(model, "parameters"):
                hf = getattr(ctx.model, "original_model", ctx.model)
                # looked up on the package at call time, where tests substitute a model
                model = safelens.models.load_model(str(source),
                                                   device=next(hf.parameters()).device)
            answers = [""] * len(harmful)
            for system in dict.fromkeys(r.get("system") for r in harmful):  # per system prompt
                idx = [i for i, r in enumerate(harmful) if r.get("system") == system]
                out = generate(model, [harmful[i]["prompt"] for i in idx],
                               config=replace(decoding, system_prompt=system),
                               progress=cfg.progress)
                for i, text in zip(idx, out, strict=True):
                    answers[i] = text
            return answers

        with ctx.accelerator.main_process_first():
            answers = cached_json(Path(ctx.cache_dir) / f"harmful-{digest}.json", key, compute)
        empty = sum(not a.strip() for a in answers)
        if empty:
            warnings.warn(f"harmful_source {cfg.harmful_source or 'model'!r} gave {empty} of "
                          f"{len(answers)} empty answers; those rows keep their own 'rejected'",
                          stacklevel=2)
        generated = iter(answers)  # in the order of the harmful rows
        out = []
        for row in rows:
            text = next(generated) if row.get("harmful") is True else ""
            out.append({**row, "rejected": text} if text.strip() else row)
        return out

    def weights(self, ref: Logps, batch: TrainBatch, safety: torch.Tensor
                ) -> torch.Tensor | None:
        """``[B_s, T]`` refusal-token weights (None for DOOR)."""
        return None

    def unlearning(self, policy: Logps, ref: Logps, batch: TrainBatch, safety: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The unlearning term on the safety rows' harmful continuations, and its metrics:
        DOOR's NPO against the reference."""
        cfg = self.config
        harm_p, harm_r = policy["continuation"][safety], ref["continuation"][safety]  # [B_s]
        return npo_loss(harm_p, harm_r, beta=cfg.beta), {
            "logps/rejected": harm_p.detach().mean(),
            "rewards/rejected": (cfg.beta * (harm_p - harm_r)).detach().mean()}

    def total_loss(self, policy: Logps, ref: Logps, batch: TrainBatch, safety: torch.Tensor,
                   weights: torch.Tensor | None) -> torch.Tensor:
        """The library's total on a batch holding both parts:
        alpha (refusal + npo) + (1 - alpha) retain (:func:`~safelens.losses.door_loss`)."""
        cfg = self.config
        tok, mask = policy.tokens("chosen"), policy.token_mask("chosen")  # [B, T]
        return door_loss(tok[safety], mask[safety], policy["continuation"][safety],
                         ref["continuation"][safety], tok[~safety], mask[~safety],
                         beta=cfg.beta, alpha=cfg.alpha, refusal_weights=weights,
                         reduction=cfg.reduction)

    def compute_loss(self, policy: Logps, ref: Logps | None, batch: TrainBatch
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
        assert ref is not None
        cfg = self.config
        safety = _parts(batch)  # [B]
        tok, mask = policy.tokens("chosen"), policy.token_mask("chosen")  # [B, T]
        metrics: dict[str, Any] = {"logps/chosen": policy["chosen"].detach().mean()}
        has_safety, has_retain = bool(safety.any()), bool((~safety).any())
        w = self.weights(ref, batch, safety) if has_safety else None  # [B_s, T]
        if has_safety:
            refusal = robust_refusal_loss(tok[safety], mask[safety], weights=w,
                                          reduction=cfg.reduction)
            npo, extra = self.unlearning(policy, ref, batch, safety)
            metrics.update({"loss/refusal": refusal.detach(), "loss/npo": npo.detach(), **extra})
            if w is not None:
                metrics["weights/mean"] = w[mask[safety].bool()].mean().detach()
        if has_retain:
            retain = retain_loss(tok[~safety], mask[~safety], reduction=cfg.reduction)
            metrics["loss/retain"] = retain.detach()
        if has_safety and has_retain:
            loss = self.total_loss(policy, ref, batch, safety, w)
        elif has_safety:
            loss = cfg.alpha * (refusal + npo)
        else:
            loss = (1.0 - cfg.alpha) * retain
        return loss, metrics


class WDOOR(DOOR):
    needs_token_logps = True

    def __init__(self, config: WDOORConfig) -> None:
        super().__init__(config)
        #: pi* as a model object (tests, notebooks); else ``config.star_model`` is loaded.
        self.star_model: Any = None
        self.star = None

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        rows = super().prepare(rows, ctx)
        cfg = self.config
        star = self.star_model
        if star is None:
            if not cfg.star_model:
                raise ValueError("w-door needs pi*: pass --star-model (a DPO-aligned model: a "
                                 "path, HF id or safelens align run directory)")
            # looked up on the package at call time, where tests substitute a model
            star = safelens.models.load_model(cfg.star_model, device=ctx.accelerator.device)
        hf = getattr(ctx.model, "original_model", ctx.model)
        device = next(hf.parameters()).device
        star.to(device)
        autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                    if cfg.precision == "bf16" else contextlib.nullcontext())
        key = "star-" + refmod.reference_key(
            rows, self.columns, refmod.model_fingerprint(star), cfg.max_length, True,
            cfg.precision, self.cache_key())
        micro = cfg.ref_batch_size or max(1, cfg.batch_size // cfg.grad_accum_steps)
        with ctx.accelerator.main_process_first():
            self.star = refmod.load_or_compute(
                ctx.cache_dir, key,
                lambda: refmod.compute_reference(
                    star, rows, lambda chunk, index: self.build_batch(chunk, index, ctx.tokenizer),
                    self.columns, micro, True, device, autocast, progress=cfg.progress),
                self.columns, is_main=ctx.accelerator.is_main_process)
        if self.star_model is None:
            del star  # pi* is only needed for its cached log-probs
        return rows

    def weights(self, ref: Logps, batch: TrainBatch, safety: torch.Tensor) -> torch.Tensor:
        assert self.star is not None, "prepare() computes pi*'s log-probs first"
        star = self.star.lookup(batch, per_token=True)
        cfg = self.config
        return wdoor_token_weights(star.tokens("chosen")[safety], ref.tokens("chosen")[safety],
                                   tau=cfg.tau, inverse=cfg.inverse, kind=cfg.token_weights)

    def harmful_lengths(self, policy: Logps, batch: TrainBatch) -> torch.Tensor:
        """``[B]`` lengths that normalise the public variant's NPO (``npo_length``): every
        token of the encoded continuation row (the public code's attention-mask sum), or the
        continuation's own tokens."""
        if self.config.npo_length == "response":
            return policy.token_mask("continuation").sum(-1)
        k, b = batch.columns.index("continuation"), len(batch)
        return batch.chat.attention_mask[k * b:(k + 1) * b].sum(-1)

    def unlearning(self, policy: Logps, ref: Logps, batch: TrainBatch, safety: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.config.variant == "seed":
            return super().unlearning(policy, ref, batch, safety)
        cfg = self.config
        harm_p = policy["continuation"][safety]  # [B_s]
        lengths = self.harmful_lengths(policy, batch)[safety]  # [B_s]
        return simnpo_loss(harm_p, lengths, beta=cfg.beta, gamma=cfg.gamma), {
            "logps/rejected": harm_p.detach().mean()}

    def total_loss(self, policy: Logps, ref: Logps, batch: TrainBatch, safety: torch.Tensor,
                   weights: torch.Tensor | None) -> torch.Tensor:
        if self.config.variant == "seed":
            return super().total_loss(policy, ref, batch, safety, weights)
        cfg = self.config
        tok, mask = policy.tokens("chosen"), policy.token_mask("chosen")  # [B, T]
        return wdoor_public_loss(
            tok[safety], mask[safety], policy["continuation"][safety],
            self.harmful_lengths(policy, batch)[safety], tok[~safety], mask[~safety],
            refusal_weights=weights, beta=cfg.beta, gamma=cfg.gamma, alpha=cfg.alpha,
            reduction=cfg.reduction)


class SystemAwareSFT(_RowAware, SFT):
    """Plain SFT that honours per-row ``system`` and ``prefix`` (not registered).

    The fine-tuning attacks use it as the attacker's objective (identity shifting needs its
    persona system prompt); ``sft`` itself encodes rows without one.
    """

    columns = ("chosen",)
    needs_reference = False


register_method("augmented-sft", AugmentedSFTConfig, AugmentedSFT)
register_method("constrained-sft", ConstrainedSFTConfig, ConstrainedSFT)
register_method("door", DOORConfig, DOOR)
register_method("w-door", WDOORConfig, WDOOR)
