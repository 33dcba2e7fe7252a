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
    >>> from safelens.training.rundir import run_is_finished
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

from safelens.models.loading import DEFAULT_MODEL, cache_dir
from safelens.models.precision import resolve_precision

# RUN_ONLY_SETTINGS: re-export for one release (it moved to checkpoint with config_changes;
# run_is_finished, read_log and drop_optimizer_state moved to rundir; all stay importable here)
from safelens.training.checkpoint import (  # noqa: F401
    RUN_ONLY_SETTINGS,
    config_changes,
    read_trainer_state,
)
from safelens.training.data import (
    drop_identical_pairs,
    load_train_rows,
    prepare_rows,
    rows_sha256,
)
from safelens.training.registry import get_method
from safelens.training.resolve import make_method, resolve_config
from safelens.training.rundir import drop_optimizer_state, read_log, run_is_finished
from safelens.training.trainer import Trainer

logger = logging.getLogger(__name__)


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


def _wanted_data_sha256(config: Any, method: str) -> str:
    """``train_data_sha256`` of the rows the trainer would select for ``config`` now."""
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
    model = model or DEFAULT_MODEL
    if run_dir is None:
        name = f"{BASELINE_METHOD}-{BASELINE_PRESET}"
        if model != DEFAULT_MODEL:
            name += "-" + hashlib.sha256(str(model).encode()).hexdigest()[:8]
        run_dir = cache_dir() / "baselines" / name
    if model == DEFAULT_MODEL and not overrides and not run_is_finished(run_dir):
        precision = resolve_precision(resolve_config(BASELINE_METHOD, preset=BASELINE_PRESET,
                                                     model=model).precision)
        if precision != "bf16":
            warnings.warn(
                f"aligned_baseline: training in {precision}, since precision='auto' is fp32 on a "
                "CPU without native bf16 matmuls (avx512_bf16 or AMX): slower than the README's "
                "timings and another model than the README's baseline (trained in bf16), so the "
                "committed results files in results/ will not resume from it", stacklevel=2)
    return train_or_reuse(run_dir, BASELINE_METHOD, preset=BASELINE_PRESET, model=model,
                          **overrides)
