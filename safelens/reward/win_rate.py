"""Moved (re-exported here for one release): the win-rate statistics live in
:mod:`safelens.eval.metrics` (``win_outcomes``, ``win_rate``, ``win_rate_ci``,
``win_rate_summary``) and :func:`safelens.eval.runner.reward_win_rate` scores responses with a
reward model. ``reward/`` sits below ``eval/``, so these names are resolved on first use, not
imported here.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

MOVED = {"win_outcomes": "safelens.eval.metrics", "win_rate": "safelens.eval.metrics",
         "win_rate_ci": "safelens.eval.metrics", "win_rate_summary": "safelens.eval.metrics",
         "reward_win_rate": "safelens.eval.runner"}


def __getattr__(name: str) -> Any:
    if name not in MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"safelens.reward.{name} moved to {MOVED[name]}.{name}; the old path goes "
                  "in the next release", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(MOVED[name]), name)
