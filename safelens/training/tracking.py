"""Experiment tracking: the ``log.jsonl`` records, also sent to TensorBoard and/or W&B.

``TrainConfig.report_to`` (``--report-to``) names the trackers: ``none`` (the default:
``log.jsonl`` only), ``tensorboard``, ``wandb`` or both (``tensorboard,wandb``). Each gets every
record the trainer writes to ``log.jsonl`` (every ``log_every`` steps, main process only), under
the same TRL metric names (``loss``, ``rewards/margins``, ``logps/chosen``, ``lr``, ...) at the
record's ``step``:

* ``tensorboard``: ``torch.utils.tensorboard.SummaryWriter`` into ``OUT/tensorboard/``
  (``tensorboard --logdir OUT/tensorboard``); needs the ``tensorboard`` package.
* ``wandb``: a W&B run under ``OUT/wandb/``, in ``offline`` mode unless ``WANDB_MODE`` is set
  (``wandb sync OUT/wandb/offline-run-*`` uploads it later), with the resolved config.

Both are optional packages: ``pip install 'safelens[tracking]'``; a missing one is a
:class:`~safelens.errors.SafelensError` naming the setting and the extra, raised before any
model loads.

Examples:
    >>> parse_report_to("tensorboard, wandb"), parse_report_to("none")
    (('tensorboard', 'wandb'), ())
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any, Protocol

from safelens.errors import SafelensError

#: Tracker name -> the module it needs.
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


class Tracker(Protocol):
    """What the trainer calls: ``log(step, record)`` per written record, ``close()`` at the end."""

    def log(self, step: int, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def parse_report_to(report_to: str) -> tuple[str, ...]:
    """The tracker names of a ``report_to`` setting (``()`` for ``none``)."""
    names = tuple(r.strip() for r in str(report_to).split(",") if r.strip())
    return tuple(n for n in names if n != "none")


def check_trackers(report_to: str) -> None:
    """Raise a one-line :class:`SafelensError` when a named tracker's package is missing."""
    for name in parse_report_to(report_to):
        if importlib.util.find_spec(_PACKAGES[name]) is None:
            raise SafelensError(f"report_to={name!r} (--report-to) needs the {_PACKAGES[name]} "
                                "package, which is not installed; expected `pip install "
                                f"'safelens[tracking]'` (or `pip install {_PACKAGES[name]}`)")


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's finite numbers (``step`` itself is the x axis, not a metric)."""
    return {k: float(v) for k, v in record.items()
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(float(v))}


class TensorBoardTracker:
    """Scalars per step into ``run_dir/tensorboard`` (one event file per run or resume)."""

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter  # optional package behind it

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", f"```\n{config}\n```", 0)

    def log(self, step: int, record: dict[str, Any]) -> None:
        for key, value in _scalars(record).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    """A W&B run under ``run_dir/wandb``; ``offline`` unless ``WANDB_MODE`` says otherwise."""

    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        import wandb  # optional package

        self.run = wandb.init(
            dir=str(run_dir), project=os.environ.get("WANDB_PROJECT", "safelens"),
            name=Path(run_dir).name, config=config,
            mode=os.environ.get("WANDB_MODE", "offline"),  # works without network by default
            reinit="create_new")

    def log(self, step: int, record: dict[str, Any]) -> None:
        self.run.log(_scalars(record), step=step)

    def close(self) -> None:
        self.run.finish()


_TRACKERS = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker}


def make_trackers(report_to: str, run_dir: str | Path, config: dict[str, Any]) -> list[Tracker]:
    """The trackers ``report_to`` names, started for ``run_dir`` (main process only).

    Raises:
        SafelensError: a tracker's package is not installed.
    """
    check_trackers(report_to)
    return [_TRACKERS[name](Path(run_dir), config) for name in parse_report_to(report_to)]
