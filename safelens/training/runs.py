"""Train-or-reuse: the one call that experiments (notebooks, ``safelens demo``) make for a run.

An experiment grid (nine methods, four subspaces, four flip rates ...) is a set of run
directories. :func:`train_or_reuse` makes rerunning the grid cheap and safe:

* a **finished** run whose saved ``config.json`` equals the config asked for is reused;
* a finished run trained with **other settings** is retrained from scratch (the changed
  settings are logged), so a stale directory never answers for a new config;
* a finished run trained on **other rows** (``train_data_sha256`` in ``config.json``: the
  built-in data regenerated, the ``train_file`` edited) is retrained too, and so is a run that
  predates that record;
* an **interrupted** run (a checkpoint short of the last step) is resumed;
* a run this call finishes drops its optimizer state (:func:`drop_optimizer_state`): a finished
  run is only reused, never resumed, and the AdamW moments are ~0.4 GB on the default model.

Examples:
    >>> from safelens.training.runs import run_is_finished
    >>> run_is_finished("no/such/run")
    False
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safelens.training.checkpoint import read_trainer_state

logger = logging.getLogger(__name__)

#: Settings that do not change what a run computes (ignored when comparing configs).
RUN_ONLY_SETTINGS = frozenset({"progress", "log_every", "save_every", "device", "ref_batch_size",
                               "reference_cache_dir"})


@dataclass
class RunRecord:
    """A trained run directory.

    Attributes:
        run_dir: the run directory.
        model_dir: ``run_dir/model`` (what ``load_model`` takes).
        history: the ``log.jsonl`` records, one per logged step.
        config: the run's ``config.json``.
        reused: True when a finished run was reused instead of trained now.
        wall_s: seconds this call spent training (0.0 when reused).
    """

    run_dir: Path
    model_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    wall_s: float = 0.0

    @property
    def fingerprint(self) -> str:
        """12 hex digits identifying this training (settings + last log record).

        Name results derived from the run with it, so that a retrained run never reads the
        stale results of the previous one.
        """
        last = self.history[-1] if self.history else {}
        text = json.dumps({"config": self.config, "last": last}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_is_finished(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a model and its checkpoint is at the last step."""
    run_dir = Path(run_dir)
    if not (run_dir / "model" / "config.json").is_file():
        return False
    state = read_trainer_state(run_dir)
    return state is not None and state["step"] == state["total_steps"]


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/log.jsonl`` (a torn last line is skipped)."""
    from safelens.data.io import read_jsonl_prefix

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


def config_changes(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Settings whose saved value differs from the wanted one (run-only settings ignored).

    Examples:
        >>> config_changes({"lr": 1e-4, "progress": True}, {"lr": 7e-5, "progress": False})
        ['lr']
    """
    return sorted(k for k, v in wanted.items()
                  if k not in RUN_ONLY_SETTINGS and k in saved and saved[k] != v)


def _wanted_data_sha256(config: Any, method: str) -> str:
    """``train_data_sha256`` of the rows the trainer would select for ``config`` now."""
    from safelens.training.data import (
        drop_identical_pairs,
        load_train_rows,
        prepare_rows,
        rows_sha256,
    )
    from safelens.training.registry import get_method

    rows, source = load_train_rows(config)
    columns = get_method(method).method_cls.columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rows_sha256(drop_identical_pairs(prepare_rows(rows, config), columns, source))


def train_or_reuse(
    run_dir: str | Path,
    method: str,
    *,
    preset: str | None = "quick",
    reward_model: Any = None,
    **overrides: Any,
) -> RunRecord:
    """Train ``method`` into ``run_dir``, or reuse/resume what is already there.

    Args:
        run_dir: the run directory.
        method: a registered method name (``safelens.training.available_methods()``).
        preset: the preset the config starts from (``None`` = the method's defaults).
        reward_model: a scorer for reward-level methods (``shapo-r``, ``reward-level``);
            default: the method's own default reward model.
        **overrides: config settings on top of the preset (as ``make_method`` takes them).

    Returns:
        A :class:`RunRecord` of the finished run.

    Raises:
        KeyError / ValueError: unknown method, preset or setting (from ``resolve_config``).
    """
    from safelens.training.presets import resolve_config
    from safelens.training.registry import make_method
    from safelens.training.trainer import Trainer

    run_dir = Path(run_dir)
    config = resolve_config(method, preset=preset, **overrides)
    wanted = {"method": method, **config.to_dict()}
    saved_path = run_dir / "config.json"
    saved = json.loads(saved_path.read_text()) if saved_path.is_file() else None
    changed = config_changes(saved, wanted) if saved is not None else []
    if saved is not None and saved.get("method") != method:
        changed = ["method", *changed]
    if saved is not None and saved.get("train_data_sha256") != _wanted_data_sha256(config, method):
        changed = [*changed, "train data"]  # regenerated built-in data or an edited train_file

    if saved is not None and not changed and run_is_finished(run_dir):
        logger.info("reusing the finished run %s", run_dir)
        return RunRecord(run_dir, run_dir / "model", read_log(run_dir), saved, reused=True)

    state = read_trainer_state(run_dir) if saved is not None and not changed else None
    resume = state is not None and state["step"] < state["total_steps"]
    if changed:
        logger.info("%s was trained with other settings %s: training it again", run_dir, changed)
    t0 = time.time()
    Trainer(make_method(method, config=config), run_dir, preset=preset,
            reward_model=reward_model, resume=resume, overwrite=not resume).train()
    drop_optimizer_state(run_dir)
    return RunRecord(run_dir, run_dir / "model", read_log(run_dir),
                     json.loads(saved_path.read_text()), reused=False, wall_s=time.time() - t0)


BASELINE_METHOD = "sft"
BASELINE_PRESET = "standard"
"""The aligned baseline's recipe: ``safelens align --method sft --preset standard``."""


def aligned_baseline(
    run_dir: str | Path | None = None, model: str | None = None, **overrides: Any
) -> RunRecord:
    """The aligned starting point of robustness experiments: the default model after SFT in
    the ``standard`` preset (issue 15; its numbers are in the README), trained once or reused.

    Attacks (prefilling, fine-tuning, perturbations) and method comparisons that should start
    from an aligned model pass ``aligned_baseline().model_dir`` as their ``model`` (and as the
    reference of preference methods, which is the starting model by default).

    Args:
        run_dir: where the run lives (default: ``$SAFELENS_CACHE/baselines/sft-standard``
            for the default model, ``.../sft-standard-<sha of model>`` for another one).
        model: base model (default: the default model).
        **overrides: settings on top of the preset (smoke runs; the preset's targets are not
            promised then).

    Returns:
        The :class:`RunRecord` (``.model_dir`` is what ``load_model`` takes).
    """
    from safelens.models.loading import DEFAULT_MODEL, cache_dir

    model = model or DEFAULT_MODEL
    if run_dir is None:
        name = f"{BASELINE_METHOD}-{BASELINE_PRESET}"
        if model != DEFAULT_MODEL:
            name += "-" + hashlib.sha256(str(model).encode()).hexdigest()[:8]
        run_dir = cache_dir() / "baselines" / name
    return train_or_reuse(run_dir, BASELINE_METHOD, preset=BASELINE_PRESET, model=model,
                          **overrides)
