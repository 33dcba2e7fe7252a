"""``sft``: supervised fine-tuning on the ``chosen`` responses (no reference model).

Logs ``loss`` and ``logps/chosen`` only: without a reference there are no implicit rewards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from safelens.errors import SafelensError
from safelens.losses import sft_loss
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig, _help
from safelens.training.methods.base import Method
from safelens.training.registry import register_method


@dataclass
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on the ``chosen`` responses (no reference model)."""

    reduction: Literal["token_mean", "sequence_sum"] = _help(
        "token_mean", "token_mean: NLL per response token; sequence_sum: -log pi(y|x) per row")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reduction not in ("token_mean", "sequence_sum"):
            raise SafelensError(f"SFTConfig.reduction must be 'token_mean' or 'sequence_sum', "
                             f"got {self.reduction!r}")


class SFT(Method):
    columns = ("chosen",)
    needs_reference = False

    def compute_loss(
        self, policy: Logps, ref: Logps | None, batch: TrainBatch
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        loss = sft_loss(policy.tokens("chosen"), policy.token_mask("chosen"),
                        reduction=self.config.reduction)
        return loss, {"logps/chosen": policy["chosen"].detach().mean()}


register_method("sft", SFTConfig, SFT)
