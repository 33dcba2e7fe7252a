"""Reward models.

- :class:`RewardModel` / :class:`RewardConfig` / :func:`train_reward_model` — Bradley–Terry reward
  model on frozen MiniLM features (``model.py``).
- :func:`default_reward_model` — ShaPO-R's default scorer, and :func:`win_rate_reward_model` —
  the win-rate judge: that model trained once on two disjoint halves of the clean built-in train
  split (:func:`reward_split`) and cached (``default.py``).
- :func:`score_pairs` / :func:`margin_summary` / :func:`harm_groups` — reward margins
  ``Δr = R(x, y_w) − R(x, y_l)`` of preference rows and the statistics of ``Δr`` and of the
  ShaPO-R soft targets ``σ(β_r Δr)`` (ShaPO Figure 5; ``margins.py``).
- :class:`HFRewardModel` — Hugging Face reward/cost-model adapter (``hf.py``); ``negate=True``
  turns a cost model such as beaver-7b-v1.0-cost into a reward, as ShaPO-R does.

The win rate moved to :mod:`safelens.eval.metrics` (statistics) and
:func:`safelens.eval.runner.reward_win_rate`; ``win_rate``, ``win_rate_ci``, ``win_outcomes`` and
``reward_win_rate`` are still found here for one release (``win_rate.py``).

``HFRewardModel`` imports transformers only when constructed.
"""

import importlib
import warnings
from typing import Any

from safelens.reward.default import default_reward_model, reward_split, win_rate_reward_model
from safelens.reward.hf import BEAVER_TEMPLATE, HFRewardModel
from safelens.reward.margins import FIG5_BETA_RS, harm_groups, margin_summary, score_pairs
from safelens.reward.model import (
    RewardConfig,
    RewardModel,
    RewardScorer,
    bradley_terry_loss,
    pairwise_accuracy,
    train_reward_model,
)

_MOVED = {"win_outcomes": "safelens.eval.metrics", "win_rate": "safelens.eval.metrics",
          "win_rate_ci": "safelens.eval.metrics", "reward_win_rate": "safelens.eval.runner"}


def __getattr__(name: str) -> Any:
    """The moved win-rate names, found here for one release (resolved on use: eval/ imports
    reward/, not the other way round)."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"safelens.reward.{name} moved to {_MOVED[name]}.{name}; the old path goes "
                  "in the next release", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_MOVED[name]), name)


__all__ = [
    "BEAVER_TEMPLATE",
    "FIG5_BETA_RS",
    "HFRewardModel",
    "RewardConfig",
    "RewardModel",
    "RewardScorer",
    "bradley_terry_loss",
    "default_reward_model",
    "harm_groups",
    "margin_summary",
    "pairwise_accuracy",
    "reward_split",
    "score_pairs",
    "train_reward_model",
    "win_rate_reward_model",
]
