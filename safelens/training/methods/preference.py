"""The DPO family: ``dpo``, ``ipo``, ``cdpo``, ``rdpo``, ``drdpo``.

All five read summed response log-probs of chosen and rejected under the policy and the
frozen reference and differ only in the loss of :mod:`safelens.losses`.

IPO is trained on **length-normalised** log-probs (the mean log-prob per response token, as
IPO's authors and TRL do): its target margin 1/(2 beta) is on the scale of one token, and with
raw sums it would be dwarfed by the lengths of the responses. Its logged ``logps/*`` and
``rewards/*`` are therefore per-token quantities.

``rpo_alpha > 0`` (every method here) adds ``rpo_alpha`` times the mean per-token NLL of the
chosen responses (RPO, Pang et al. 2024; TRL's ``rpo_alpha``): the pairwise loss alone can be
lowered by pushing the rejected responses down without raising the chosen ones, which on
small models shows up as *unlearning refusals* rather than learning them (see presets.py).

Dr.DPO's loss is a DRO over the batch, not a mean over pairs: with gradient accumulation or
several processes it is taken over each micro-batch (as in the seed, where every global batch
is two micro-batches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from safelens.errors import SafelensError
from safelens.losses import cdpo_loss, dpo_loss, drdpo_loss, ipo_loss, rdpo_loss, sft_loss
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig, _help
from safelens.training.methods.base import Method, preference_metrics
from safelens.training.registry import register_method


@dataclass
class DPOConfig(TrainConfig):
    """DPO (seed 000, Eq. 8): mean -log sigmoid(beta h)."""

    beta: float = _help(0.1, "inverse temperature beta of the implicit reward beta (pi - ref)")
    rpo_alpha: float = _help(
        0.0, "weight of an NLL term on the chosen response (RPO, TRL's rpo_alpha); 0 = off")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise SafelensError(f"{type(self).__name__}.beta must be > 0, got {self.beta!r}")
        if not (self.rpo_alpha >= 0 and math.isfinite(self.rpo_alpha)):
            raise SafelensError(f"{type(self).__name__}.rpo_alpha must be >= 0, "
                             f"got {self.rpo_alpha!r}")


@dataclass
class IPOConfig(DPOConfig):
    """IPO: mean (h - 1/(2 beta))^2 on LENGTH-NORMALISED log-probs (mean per response token)."""


@dataclass
class CDPOConfig(DPOConfig):
    """Conservative DPO: DPO with label smoothing eps."""

    eps: float = _help(0.1, "assumed label-flip rate eps in [0, 0.5]")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.eps <= 0.5:
            raise SafelensError(f"CDPOConfig.eps must be in [0, 0.5], got {self.eps!r}")


@dataclass
class RDPOConfig(DPOConfig):
    """Robust DPO: unbiased DPO under a known label-flip rate eps."""

    eps: float = _help(0.1, "known label-flip rate eps in [0, 0.5)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.eps < 0.5:
            raise SafelensError(f"RDPOConfig.eps must be in [0, 0.5), got {self.eps!r}")


@dataclass
class DrDPOConfig(DPOConfig):
    """Dr.DPO: -beta' log mean exp(-l / beta') over each micro-batch."""

    beta_prime: float = _help(1.0, "DRO temperature beta' > 0 (inf = plain DPO)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.beta_prime > 0:
            raise SafelensError(f"DrDPOConfig.beta_prime must be > 0, got {self.beta_prime!r}")


def add_rpo_nll(loss: torch.Tensor, metrics: dict[str, Any], policy: Logps,
                rpo_alpha: float) -> tuple[torch.Tensor, dict[str, Any]]:
    """``loss + rpo_alpha · NLL(chosen)`` (RPO; TRL's ``rpo_alpha``), with ``pref_loss`` and
    ``nll_loss`` logged; ``loss`` unchanged at ``rpo_alpha == 0``. Every method whose config
    has ``rpo_alpha`` (the DPO family, reward-level, ShaPO-T/-R) ends its loss here."""
    if rpo_alpha > 0:
        nll = sft_loss(policy.tokens("chosen"), policy.token_mask("chosen"))
        metrics["pref_loss"] = loss.detach()
        metrics["nll_loss"] = nll.detach()
        loss = loss + rpo_alpha * nll
    return loss, metrics


class DPO(Method):
    """DPO: ``dpo_loss(pc, pr, rc, rr, beta)``."""

    columns = ("chosen", "rejected")
    needs_reference = True

    def loss(self, pc, pr, rc, rr) -> torch.Tensor:
        return dpo_loss(pc, pr, rc, rr, self.config.beta)

    def compute_loss(
        self, policy: Logps, ref: Logps | None, batch: TrainBatch
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        assert ref is not None
        pc, pr, rc, rr = policy["chosen"], policy["rejected"], ref["chosen"], ref["rejected"]
        loss = self.loss(pc, pr, rc, rr)
        metrics = preference_metrics(pc, pr, rc, rr, self.config.beta)
        return add_rpo_nll(loss, metrics, policy, self.config.rpo_alpha)


class IPO(DPO):
    """IPO on length-normalised log-probs (see the module docstring)."""

    average_logps = True

    def loss(self, pc, pr, rc, rr) -> torch.Tensor:
        return ipo_loss(pc, pr, rc, rr, self.config.beta)


class CDPO(DPO):
    def loss(self, pc, pr, rc, rr) -> torch.Tensor:
        return cdpo_loss(pc, pr, rc, rr, self.config.beta, eps=self.config.eps)


class RDPO(DPO):
    def loss(self, pc, pr, rc, rr) -> torch.Tensor:
        return rdpo_loss(pc, pr, rc, rr, self.config.beta, eps=self.config.eps)


class DrDPO(DPO):
    def loss(self, pc, pr, rc, rr) -> torch.Tensor:
        return drdpo_loss(pc, pr, rc, rr, self.config.beta, beta_prime=self.config.beta_prime)


register_method("dpo", DPOConfig, DPO)
register_method("ipo", IPOConfig, IPO)
register_method("cdpo", CDPOConfig, CDPO)
register_method("rdpo", RDPOConfig, RDPO)
register_method("drdpo", DrDPOConfig, DrDPO)
