"""A run directory after (or during) training: finished or not, its log, its optimizer state.

What :func:`safelens.training.runs.train_or_reuse` and the zeroth-order tools
(``zo-refine --from``, :func:`safelens.training.zo.layer_sensitivity`) read from ``DIR``
without building a trainer. The directory's layout is in ``safelens/training/AGENTS.md``.

Examples:
    >>> run_is_finished("no/such/run")
    False
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safelens.data.io import read_jsonl_prefix
from safelens.training.checkpoint import read_trainer_state


def run_is_finished(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a model and its checkpoint is at the last step."""
    run_dir = Path(run_dir)
    if not (run_dir / "model" / "config.json").is_file():
        return False
    state = read_trainer_state(run_dir)
    return state is not None and state["step"] == state["total_steps"]


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/log.jsonl`` (a torn last line is skipped)."""
    return read_jsonl_prefix(Path(run_dir) / "log.jsonl")


def drop_optimizer_state(run_dir: str | Path) -> int:
    """Delete a FINISHED run's optimizer state (AdamW moments: ~0.4 GB on the default model).

    A finished run is only ever reused (other settings retrain it from scratch), so the moments
    are dead weight; ``checkpoint/trainer_state.json`` (what :func:`run_is_finished` reads),
    the model and the log stay. Returns the bytes freed.

    Raises:
        ValueError: the run is not finished (its checkpoint is still needed to resume).
    """
    run_dir = Path(run_dir)
    if not run_is_finished(run_dir):
        raise ValueError(f"{run_dir} is not a finished run; its optimizer state is needed to "
                         "resume it")
    freed = 0
    for path in (run_dir / "checkpoint").glob("optimizer.*"):
        freed += path.stat().st_size
        path.unlink()
    return freed
