"""``reward-level``: the reward-level loss of ShaPO-R (seed 000, Eq. 9-11) without the SAM step.

Each pair needs reward-model scores ``R_c``, ``R_r``; they are computed ONCE per dataset in
:meth:`RewardLevel.prepare` (:func:`safelens.reward.score_pairs`) and cached next to the
reference log-probs, keyed by the rows and the scorer. Where they come from, first match wins:

1. ``method.reward_scorer`` — any object with ``score(prompts, responses) -> [B]`` (a
   :class:`~safelens.reward.RewardModel`, an :class:`~safelens.reward.HFRewardModel`, ...) or
   a plain callable with that signature; ``Trainer(reward_model=...)`` sets it;
2. ``config.reward_model`` — a directory written by ``RewardModel.save``;
3. row columns ``reward_chosen`` / ``reward_rejected`` when every row has them;
4. the default, :func:`safelens.reward.default_reward_model`: a Bradley–Terry MiniLM reward
   model trained on the CLEAN built-in ``preferences/train`` split (so label flips in the
   policy's training rows do not leak into the targets, as the seed's external beaver model
   does not see them), cached under the safelens cache directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from safelens.errors import SafelensError
from safelens.losses import reward_level_loss, reward_soft_targets
from safelens.reward import RewardModel, default_reward_model, score_pairs
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import _help
from safelens.training.methods.base import Method, TrainContext, preference_metrics
from safelens.training.methods.preference import DPOConfig, add_rpo_nll
from safelens.training.registry import register_method

logger = logging.getLogger(__name__)

# ``default_reward_model`` lives in safelens.reward; imported here for callers of its old home.
__all__ = ["RewardLevel", "RewardLevelConfig", "default_reward_model"]


@dataclass
class RewardLevelConfig(DPOConfig):
    """Reward-level loss (ShaPO-R without the subspace SAM): BCE against sigmoid(beta_r dR)."""

    beta_r: float = _help(10.0, "sharpness beta_r of the reward-model soft targets (seed: 10)")
    reward_model: str | None = _help(
        None, "directory of a saved safelens RewardModel; None = row columns "
              "reward_chosen/reward_rejected if present, else the default reward model")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.beta_r >= 0 and math.isfinite(self.beta_r)):
            raise SafelensError(f"RewardLevelConfig.beta_r must be finite and >= 0, "
                             f"got {self.beta_r!r}")


class RewardLevel(Method):
    columns = ("chosen", "rejected")
    needs_reference = True

    def __init__(self, config: RewardLevelConfig) -> None:
        super().__init__(config)
        self.reward_scorer: Any = None

    def _scorer(self) -> tuple[Any, str]:
        if self.reward_scorer is not None:
            return self.reward_scorer, f"object:{type(self.reward_scorer).__name__}:" \
                                       f"{getattr(self.reward_scorer, 'name', '')}"
        if self.config.reward_model is not None:
            path = Path(self.config.reward_model)
            stamp = (path / "reward_model.safetensors")
            ident = f"dir:{path.resolve()}:{stamp.stat().st_mtime_ns if stamp.exists() else 0}"
            return RewardModel.load(path), ident
        return None, "default-seed0"

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        has_cols = all("reward_chosen" in r and "reward_rejected" in r for r in rows)
        if has_cols and self.reward_scorer is None and self.config.reward_model is None:
            return rows
        scorer, ident = self._scorer()
        key = hashlib.sha256(json.dumps(
            [ident, [(r["prompt"], r["chosen"], r["rejected"]) for r in rows]]).encode()
        ).hexdigest()[:16]
        path = Path(ctx.cache_dir) / f"rewards-{key}.safetensors"
        if path.is_file():
            scores = load_file(str(path))
            logger.info("reward scores: cache hit %s", path)
        else:
            if scorer is None:
                scorer = default_reward_model()
            r_chosen, r_rejected = score_pairs(scorer, rows)  # [N], [N]
            scores = {"reward_chosen": r_chosen, "reward_rejected": r_rejected}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file(scores, str(tmp), metadata={"scorer": ident})
            tmp.replace(path)
        out = []
        for i, row in enumerate(rows):
            out.append({**row, "reward_chosen": float(scores["reward_chosen"][i]),
                        "reward_rejected": float(scores["reward_rejected"][i])})
        return out

    def compute_loss(
        self, policy: Logps, ref: Logps | None, batch: TrainBatch
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        assert ref is not None
        pc, pr, rc, rr = policy["chosen"], policy["rejected"], ref["chosen"], ref["rejected"]
        r_c, r_r = batch.column("reward_chosen"), batch.column("reward_rejected")
        loss = reward_level_loss(pc, pr, rc, rr, r_c, r_r, self.config.beta, self.config.beta_r)
        metrics = preference_metrics(pc, pr, rc, rr, self.config.beta)
        metrics["targets/mean"] = reward_soft_targets(r_c - r_r, self.config.beta_r).mean()
        return add_rpo_nll(loss, metrics, policy, self.config.rpo_alpha)


register_method("reward-level", RewardLevelConfig, RewardLevel)
