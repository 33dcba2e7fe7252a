"""``npo``: negative preference optimisation on the harmful ``rejected`` responses.

With ``only_harmful`` (the default) only rows with ``harmful=True`` are trained on: their
``rejected`` answer is the compliant one to unlearn (for a benign row ``rejected`` is an
unneeded refusal, which must not be unlearned... nor reinforced). ``sft_weight > 0`` adds an
NLL term on the ``chosen`` refusal of the same rows (DOOR's robust-refusal term without the
harmful prefix).

Logged ``rewards/rejected`` is ``beta * (pi - ref)`` of the unlearned responses (it goes
negative as they are unlearned).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from safelens.errors import SafelensError
from safelens.losses import npo_loss, sft_loss
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig, _help
from safelens.training.methods.base import Method, TrainContext
from safelens.training.registry import register_method


@dataclass
class NPOConfig(TrainConfig):
    """NPO: unlearn the ``rejected`` (harmful, compliant) responses relative to the reference."""

    beta: float = _help(0.5, "NPO inverse temperature beta (DOOR uses 0.5)")
    only_harmful: bool = _help(
        True, "unlearn only rows with harmful=True (their rejected answer complies)")
    sft_weight: float = _help(
        0.0, "weight of an NLL term on the chosen response (0 = pure NPO)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise SafelensError(f"NPOConfig.beta must be > 0, got {self.beta!r}")
        if self.sft_weight < 0:
            raise SafelensError(f"NPOConfig.sft_weight must be >= 0, got {self.sft_weight!r}")


class NPO(Method):
    needs_reference = True

    def __init__(self, config: NPOConfig) -> None:
        super().__init__(config)
        # The refusal is forwarded only when the SFT term uses it.
        self.columns = ("rejected", "chosen") if config.sft_weight > 0 else ("rejected",)

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        if not self.config.only_harmful:
            return rows
        kept = [r for r in rows if r.get("harmful") is True]
        if not kept:
            raise ValueError("npo with only_harmful=True found no rows with harmful=True; "
                             "pass --no-only-harmful or rows with a 'harmful' flag")
        return kept

    def compute_loss(
        self, policy: Logps, ref: Logps | None, batch: TrainBatch
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        assert ref is not None
        p, r = policy["rejected"], ref["rejected"]
        loss = npo_loss(p, r, self.config.beta)
        metrics: dict[str, Any] = {
            "npo_loss": loss.detach(),
            "logps/rejected": p.detach().mean(),
            "rewards/rejected": (self.config.beta * (p - r)).detach().mean(),
        }
        if self.config.sft_weight > 0:
            nll = sft_loss(policy.tokens("chosen"), policy.token_mask("chosen"))
            loss = loss + self.config.sft_weight * nll
            metrics["sft_loss"] = nll.detach()
            metrics["logps/chosen"] = policy["chosen"].detach().mean()
        return loss, metrics


register_method("npo", NPOConfig, NPO)
