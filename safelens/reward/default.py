"""The default reward model of ShaPO-R: MiniLM Bradley–Terry on the clean built-in train split."""

from __future__ import annotations

import logging

from safelens.reward.model import RewardConfig, RewardModel, train_reward_model

logger = logging.getLogger(__name__)

__all__ = ["default_reward_model"]


def default_reward_model(seed: int = 0) -> RewardModel:
    """The default reward model: MiniLM Bradley–Terry head on the clean built-in train split.

    ShaPO-R's (``reward-level``, ``shapo-r``) soft targets come from it when no other scorer is
    given. Trained once (about a minute on 2 CPU cores, :class:`~safelens.reward.RewardConfig`
    defaults) and cached under ``$SAFELENS_CACHE/reward/default-seed{seed}``.

    Returns:
        A :class:`~safelens.reward.RewardModel`.
    """
    from safelens.data import load_builtin
    from safelens.models.loading import cache_dir

    path = cache_dir() / "reward" / f"default-seed{seed}"
    if (path / "reward_config.json").is_file():
        return RewardModel.load(path)
    logger.info("training the default reward model (once) into %s", path)
    model, _ = train_reward_model(
        load_builtin("preferences", "train"),
        RewardConfig(seed=seed),
        val_rows=load_builtin("preferences", "validation"),
    )
    model.save(path)
    return model
