"""The built-in reward models: ShaPO-R's scorer and the win-rate judge, on disjoint halves.

ShaPO-R's soft targets and the win rate that compares methods must not come from the same
model: a method trained towards a reward model's preferences would then be graded by that very
model. The built-in train split is therefore cut into two disjoint halves by row position
(:func:`reward_split`):

* ``"shapo"`` (even positions) trains :func:`default_reward_model`, ShaPO-R's default scorer;
* ``"judge"`` (odd positions) trains :func:`win_rate_reward_model`, the win-rate judge of
  ``safelens demo`` and the notebooks.

Both are MiniLM Bradley–Terry models (:class:`~safelens.reward.RewardConfig` defaults), trained
once and cached under ``$SAFELENS_CACHE/reward/<role>-seed<seed>-<data sha>``; the cache key
holds the train file's hash, so regenerated data never reuses a model trained on other rows.
Scoring ShaPO-R's own policy with ``default_reward_model`` is an *oracle* row, to be labelled
as such.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any, Literal

from safelens.data import load_builtin
from safelens.errors import SafelensError
from safelens.models.loading import cache_dir
from safelens.reward.model import RewardConfig, RewardModel, train_reward_model

logger = logging.getLogger(__name__)

__all__ = ["REWARD_ROLES", "default_reward_model", "reward_split", "win_rate_reward_model"]

Role = Literal["shapo", "judge"]
REWARD_ROLES: tuple[str, ...] = ("shapo", "judge")
"""The two disjoint halves of the built-in train split (see the module docstring)."""


def reward_split(rows: Sequence[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The half of ``rows`` that trains the reward model of ``role``.

    ``"shapo"`` takes the rows at even positions, ``"judge"`` those at odd positions, so the two
    halves are disjoint, together cover ``rows``, and keep the file's mix of kinds (the built-in
    files are shuffled).

    Examples:
        >>> rows = [{"id": str(i)} for i in range(5)]
        >>> [r["id"] for r in reward_split(rows, "shapo")], [r["id"] for r in reward_split(rows, "judge")]
        (['0', '2', '4'], ['1', '3'])

    Raises:
        SafelensError: unknown ``role``.
    """
    if role not in REWARD_ROLES:
        raise SafelensError(f"reward model role {role!r}: expected one of {list(REWARD_ROLES)}")
    start = REWARD_ROLES.index(role)
    return list(rows[start::2])


def _builtin_reward_model(role: Role, seed: int) -> RewardModel:
    """Train (once) or load the built-in reward model of ``role``."""
    train = load_builtin("preferences", "train")
    digest = hashlib.sha256(json.dumps([r["id"] for r in train] + [r["chosen"] for r in train])
                            .encode()).hexdigest()[:12]
    path = cache_dir() / "reward" / f"{role}-seed{seed}-{digest}"
    if (path / "reward_config.json").is_file():
        return RewardModel.load(path)
    logger.info("training the built-in %s reward model (once) into %s", role, path)
    model, _ = train_reward_model(
        reward_split(train, role),
        RewardConfig(seed=seed),
        val_rows=load_builtin("preferences", "validation"),
    )
    model.save(path)
    return model


def default_reward_model(seed: int = 0) -> RewardModel:
    """ShaPO-R's default scorer: MiniLM Bradley–Terry on the ``"shapo"`` half of the train split.

    ShaPO-R's (``reward-level``, ``shapo-r``) soft targets come from it when no other scorer is
    given. Trained once (about a minute on 2 CPU cores) and cached; see the module docstring.
    Do not use it to judge methods (that is :func:`win_rate_reward_model`), except as an
    oracle row.

    Returns:
        A :class:`~safelens.reward.RewardModel`.
    """
    return _builtin_reward_model("shapo", seed)


def win_rate_reward_model(seed: int = 0) -> RewardModel:
    """The win-rate judge: MiniLM Bradley–Terry on the ``"judge"`` half of the train split.

    Disjoint from the rows of :func:`default_reward_model`, so ShaPO-R is not graded by the
    model whose preferences it was trained towards.

    Returns:
        A :class:`~safelens.reward.RewardModel`.
    """
    return _builtin_reward_model("judge", seed)
