"""The robustness matrix: every trained model against every attack, in one table.

No seed compares all of these in one place. Rows are models (a name and a path: the vanilla
model, safelens run directories of any method); columns are attacks, written ``KIND:PARAM``:

==================  =====================================================================
``none``            the model as it is, on the prompt set: ASR, over-refusal, degenerate (the
                    sigma = 0 cell of the parameter-noise curve, so the two share a cache)
``prefill:K``       the first K tokens of a harmful answer prefilled (:mod:`safelens.eval.prefill`)
``finetune:KIND``   a fine-tuning attack (``harmful``, ``identity``, ``backdoor``, ``benign``;
                    :func:`safelens.attacks.finetune.run_finetune_attack`); the backdoor's ASR is
                    the triggered one
``flip:RATE``       the row's own training recipe rerun with that share of preference labels
                    flipped (needs a run directory; the vanilla model has none)
``noise:SIGMA``     Gaussian parameter noise, relative per tensor (:func:`~safelens.attacks.curves.noise_curve`)
``activation:SIGMA`` activation noise on every layer's residual stream
``quantize:FMT``    a weight-format round trip (``Q4_0``, ``Q8_0``, ``int4``, ...)
``ood:SET``         another prompt set, all harmful: ``harmbench`` or ``do-not-answer``
``utility:TASK``    a utility task (``summarization``, ``sql``, ``arithmetic``): its score
==================  =====================================================================

Each cell is cached as ``OUT/<model>/<attack>.json`` with a key (weights fingerprint, attack,
settings) and reused when the key matches, so an interrupted matrix resumes where it stopped and
adding a row or a column computes only the new cells.

Examples:
    >>> MatrixAttack.parse("quantize:Q4_0").name
    'quantize:Q4_0'
    >>> MatrixAttack.parse("prefill:5").param
    '5'
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safelens.attacks import curves
from safelens.attacks.downstream import evaluate_utility
from safelens.attacks.finetune import FinetuneAttackConfig, run_finetune_attack
from safelens.attacks.quantize import check_format
from safelens.data.attacks import ATTACK_KINDS as FINETUNE_KINDS
from safelens.data.eval_sets import eval_set
from safelens.data.io import write_jsonl
from safelens.data.jsonfile import cached_json, write_json
from safelens.data.utility import UTILITY_TASKS, load_utility_set
from safelens.errors import SafelensError
from safelens.eval.degeneracy import SALAD_NLL
from safelens.eval.generation import GenerationConfig
from safelens.eval.judges import get_judge
from safelens.eval.prefill import prefill_attack
from safelens.eval.runner import generate_rows, judge_rows
from safelens.models import load_model
from safelens.models.fingerprint import model_fingerprint
from safelens.training.resolve import make_method
from safelens.training.runs import train_or_reuse

__all__ = ["ATTACK_KINDS", "DEFAULT_ATTACKS", "MatrixAttack", "MatrixConfig", "matrix_frame",
           "robustness_matrix"]

#: ``kind -> what PARAM is`` (None: the kind takes no parameter).
ATTACK_KINDS: dict[str, str | None] = {
    "none": None,
    "prefill": "prefilled tokens, an integer >= 1",
    "finetune": "an attack set: harmful, identity, backdoor or benign",
    "flip": "a share of flipped preference labels in (0, 1)",
    "noise": "a relative parameter-noise scale > 0",
    "activation": "a relative activation-noise scale > 0",
    "quantize": "a weight format (Q8_0, Q5_0, Q4_0, int8, int4, ...)",
    "ood": "a prompt set: harmbench or do-not-answer",
    "utility": "a utility task: summarization, sql or arithmetic",
}
#: The issue's columns.
DEFAULT_ATTACKS = ("none", "prefill:5", "prefill:20", "finetune:harmful", "finetune:identity",
                   "finetune:backdoor", "flip:0.2", "noise:0.1", "activation:0.1",
                   "quantize:Q4_0", "ood:harmbench", "ood:do-not-answer", "utility:arithmetic")
CACHE_FORMAT = "safelens.matrix-cell/1"


@dataclass(frozen=True)
class MatrixAttack:
    """One column: ``kind`` (a key of :data:`ATTACK_KINDS`) and its parameter."""

    kind: str
    param: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.param is None else f"{self.kind}:{self.param}"

    @classmethod
    def parse(cls, text: str) -> MatrixAttack:
        """``"KIND"`` or ``"KIND:PARAM"``, checked; raises naming the column and what is valid."""
        kind, _, param = str(text).strip().partition(":")
        if kind not in ATTACK_KINDS:
            raise SafelensError(f"attack {text!r}: unknown kind {kind!r}; expected one of "
                                f"{', '.join(ATTACK_KINDS)}")
        want = ATTACK_KINDS[kind]
        if want is None:
            if param:
                raise SafelensError(f"attack {text!r}: {kind} takes no parameter")
            return cls(kind)
        if not param:
            raise SafelensError(f"attack {text!r}: expected {kind}:PARAM with PARAM {want}")
        ok = True
        try:
            if kind == "prefill":
                ok = int(param) >= 1
            elif kind == "flip":
                ok = 0 < float(param) < 1
            elif kind in ("noise", "activation"):
                ok = float(param) > 0
            elif kind == "finetune":
                ok = param in FINETUNE_KINDS
            elif kind == "quantize":
                param = check_format(param, f"attack {text!r}")
            elif kind == "ood":
                ok = param in ("harmbench", "do-not-answer")
            elif kind == "utility":
                ok = param in UTILITY_TASKS
        except ValueError:
            ok = False
        if not ok:
            raise SafelensError(f"attack {text!r}: {param!r} is not {want}")
        return cls(kind, param)


@dataclass
class MatrixConfig:
    """Settings shared by every cell (CPU-scale defaults)."""

    prompts: str = field(default="test", metadata={
        "help": "built-in prompt set of the none/prefill/noise/activation/quantize cells"})
    n_prompts: int | None = field(default=200, metadata={
        "help": "seeded subsample of that set (None = all)"})
    n_ood: int | None = field(default=100, metadata={"help": "seeded subsample of an ood set"})
    n_utility: int = field(default=50, metadata={"help": "rows of a utility task"})
    seed: int = field(default=0, metadata={"help": "subsampling seed"})
    noise_seeds: tuple[int, ...] = field(default=(0,), metadata={
        "help": "seeds of the parameter-noise cells"})
    activation_seeds: tuple[int, ...] = field(default=(0,), metadata={
        "help": "seeds of the activation-noise cells (fp32 with hooks: slower)"})
    max_new_tokens: int = field(default=48, metadata={"help": "generated tokens per prompt"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generation batch"})
    precision: str = field(default="auto", metadata={
        "help": "generation precision (auto: bf16 where native, fp32 while hooks are on)"})
    judge: str = field(default="keyword", metadata={"help": "refusal judge"})
    salad_nll: float | None = field(default=SALAD_NLL, metadata={
        "help": "word-salad threshold of the perturbation cells (None: off)"})
    finetune_steps: int = field(default=20, metadata={"help": "steps of a fine-tuning attack"})
    finetune_lr: float = field(default=2e-5, metadata={"help": "lr of a fine-tuning attack"})
    n_finetune_eval: int = field(default=50, metadata={
        "help": "harmful prompts evaluated after a fine-tuning attack"})
    keep_finetuned: bool = field(default=False, metadata={
        "help": "keep the fine-tuned weights (0.5 GB each on the default model)"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})

    def __post_init__(self) -> None:
        self.noise_seeds = tuple(int(s) for s in self.noise_seeds)
        self.activation_seeds = tuple(int(s) for s in self.activation_seeds)


def _rows(cfg: MatrixConfig, name: str, n: int | None) -> list[dict[str, Any]]:
    return eval_set(name, subsample=n, seed=cfg.seed)


def _gen(cfg: MatrixConfig, **kw: Any):
    return GenerationConfig(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                            precision=cfg.precision, **kw)


def _rate_only(stat: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{"value", "ci_low", "ci_high", "n"}``, or None where nothing was measured (n = 0)."""
    if not stat or not stat.get("n") or stat.get("value") is None or stat["value"] != stat["value"]:
        return None
    return {k: stat.get(k) for k in ("value", "ci_low", "ci_high", "n")}


def _judged_cell(model: Any, rows: list[dict], cfg: MatrixConfig, out: Path) -> dict[str, Any]:
    generated = generate_rows(model, [dict(r) for r in rows], config=_gen(cfg),
                              progress=cfg.progress)
    judged, summary = judge_rows(generated, get_judge(cfg.judge), agreement_judges=(),
                                 judge_name=cfg.judge)
    write_jsonl(out.with_suffix(".jsonl"), judged)
    return {m: _rate_only(summary.get(m)) for m in ("asr", "over_refusal", "degenerate")}


def _from_curve(record: Mapping[str, Any]) -> dict[str, Any]:
    point = record["curve"][-1]
    return {m: _rate_only(point.get(m)) for m in ("asr", "over_refusal", "degenerate")} | {
        "n_seeds": point.get("n_seeds")}


def _flip_cell(source: Path | None, rate: float, cfg: MatrixConfig, out: Path) -> dict[str, Any]:
    config_path = source / "config.json" if source is not None else None
    if config_path is None or not config_path.is_file():
        return {"skipped": "not a safelens run: no training recipe to rerun with flipped labels"}
    saved = json.loads(config_path.read_text())
    method = saved.get("method")
    try:
        fields = set(make_method(method).config.to_dict())
    except Exception as err:  # an unknown or non-retrainable method
        return {"skipped": f"method {method!r} cannot be retrained here ({err})"}
    if "from_run" in fields and saved.get("from_run"):
        return {"skipped": f"{method} refines another run; flip that run's row instead"}
    overrides = {k: saved[k] for k in fields if k in saved and k not in ("progress",)}
    overrides.update(flip_rate=rate, progress=cfg.progress)
    rec = train_or_reuse(out.with_suffix(""), method, preset=None, **overrides)
    flipped = load_model(str(rec.model_dir))
    cell = _judged_cell(flipped, _rows(cfg, cfg.prompts, cfg.n_prompts), cfg, out)
    if not cfg.keep_finetuned:
        shutil.rmtree(rec.model_dir, ignore_errors=True)
    return cell | {"train_steps": len(rec.history)}


def _finetune_cell(path: str, kind: str, cfg: MatrixConfig, out: Path) -> dict[str, Any]:
    run_dir = out.with_suffix("")
    record = run_finetune_attack(path, run_dir, FinetuneAttackConfig(
        kind=kind, max_steps=cfg.finetune_steps, lr=cfg.finetune_lr,
        n_eval=cfg.n_finetune_eval, max_new_tokens=cfg.max_new_tokens,
        eval_batch_size=cfg.batch_size, eval_initial=False, seed=cfg.seed,
        progress=cfg.progress), overwrite=True)  # the row's own artifact: retrain for new weights
    if not cfg.keep_finetuned:
        for part in ("model", "checkpoint"):
            shutil.rmtree(run_dir / part, ignore_errors=True)
    after = record["after"]
    asr = after.get("asr_trigger", after.get("asr"))
    return {"asr": _rate_only(asr), "over_refusal": None, "degenerate": None,
            "untriggered_asr": _rate_only(after.get("asr")) if "asr_trigger" in after else None}


def _run_cell(attack: MatrixAttack, model: Any, path: str, source: Path | None,
              cfg: MatrixConfig, out: Path) -> dict[str, Any]:

    kind, param = attack.kind, attack.param
    rows = lambda: _rows(cfg, cfg.prompts, cfg.n_prompts)  # noqa: E731
    curve_kw = dict(judge=cfg.judge, gen_config=_gen(cfg), out=out.parent / "curves",
                    agreement_judges=(), progress=cfg.progress, salad_nll=cfg.salad_nll)
    if kind == "none":  # the unperturbed cell of the parameter-noise curve (shared cache)
        return _from_curve(curves.noise_curve(model, rows(), [0.0], seeds=cfg.noise_seeds[:1],
                                              **curve_kw))
    if kind == "prefill":
        res = prefill_attack(model, rows(), ks=[int(param)], judge=get_judge(cfg.judge),
                             config=_gen(cfg), progress=cfg.progress)
        stat = {"value": res["asr"][0], "ci_low": res["ci_low"][0],
                "ci_high": res["ci_high"][0], "n": res["n"][0]}
        return {"asr": stat, "over_refusal": None, "degenerate": None}
    if kind == "noise":
        return _from_curve(curves.noise_curve(model, rows(), [float(param)],
                                              seeds=cfg.noise_seeds, **curve_kw))
    if kind == "activation":
        return _from_curve(curves.activation_noise_curve(model, rows(), [float(param)],
                                                         seeds=cfg.activation_seeds,
                                                         **curve_kw))
    if kind == "quantize":
        return _from_curve(curves.quantization_sweep(model, rows(), [param], **curve_kw))
    if kind == "ood":
        return _judged_cell(model, _rows(cfg, param, cfg.n_ood), cfg, out)
    if kind == "utility":
        score, _ = evaluate_utility(model, param, load_utility_set(param, "test")[:cfg.n_utility],
                                    out=out.with_suffix(".jsonl"), progress=cfg.progress)
        return {"utility": _rate_only(score), "metric": score.get("metric")}
    if kind == "finetune":
        return _finetune_cell(path, param, cfg, out)
    if kind == "flip":
        return _flip_cell(source, float(param), cfg, out)
    raise AssertionError(kind)


def robustness_matrix(
    models: Mapping[str, str | Path],
    attacks: Sequence[str | MatrixAttack] = DEFAULT_ATTACKS,
    config: MatrixConfig | None = None,
    *,
    out: str | Path,
) -> dict[str, Any]:
    """Every model against every attack; each cell cached in ``OUT/<model>/<attack>.json``.

    Args:
        models: ``{row name: model}``; a model is a name the loader knows, an HF folder or a
            safelens run directory (its ``model/`` is loaded; ``flip`` reruns its recipe).
        attacks: columns, ``KIND[:PARAM]`` strings (:data:`ATTACK_KINDS`) or
            :class:`MatrixAttack`; default the issue's twelve plus arithmetic utility.
        config: shared settings (:class:`MatrixConfig`).
        out: cache folder; ``OUT/matrix.json`` gets the whole record.

    Returns:
        ``{"config", "models": {name: path}, "attacks": [name], "cells": {model: {attack:
        {"asr" | "over_refusal" | "degenerate" | "utility": rate or None, "cached",
        "seconds", ...}}}}``; a rate is ``{"value", "ci_low", "ci_high", "n"}``, a cell that
        does not apply has ``"skipped"`` (the reason).
    """
    cfg = config or MatrixConfig()
    columns = [a if isinstance(a, MatrixAttack) else MatrixAttack.parse(a) for a in attacks]
    if not models:
        raise SafelensError("robustness_matrix: no models; expected {row name: model path}")
    if not columns:
        raise SafelensError("robustness_matrix: no attacks; expected KIND[:PARAM] names")
    for name in models:
        if not name or "/" in name or name.startswith("."):
            raise SafelensError(f"model row name {name!r}: expected a plain folder name")
    root = Path(out)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("progress", "keep_finetuned")}
    record: dict[str, Any] = {"config": settings, "models": {k: str(v) for k, v in models.items()},
                              "attacks": [a.name for a in columns], "cells": {}}
    for name, path in models.items():
        source = Path(path) if (Path(path) / "config.json").is_file() and (
            Path(path) / "model").is_dir() else None
        load_path = str(source / "model") if source is not None else str(path)
        model = load_model(load_path)
        fingerprint = model_fingerprint(model)
        row: dict[str, Any] = {}
        for attack in columns:
            cell_path = root / name / f"{attack.name.replace(':', '-')}.json"
            cell_path.parent.mkdir(parents=True, exist_ok=True)
            key = json.loads(json.dumps({"format": CACHE_FORMAT, "model": fingerprint,
                                         "attack": attack.name, "settings": settings}))
            computed: list[bool] = []

            def compute(attack: MatrixAttack = attack, cell_path: Path = cell_path,
                        model: Any = model, load_path: str = load_path,
                        source: Path | None = source, computed: list[bool] = computed
                        ) -> dict[str, Any]:
                computed.append(True)
                t0 = time.time()
                cell = _run_cell(attack, model, load_path, source, cfg, cell_path)
                return {**cell, "seconds": round(time.time() - t0, 1)}

            row[attack.name] = {**cached_json(cell_path, key, compute), "cached": not computed}
        record["cells"][name] = row
        del model
    write_json(root / "matrix.json", record, indent=1)
    return record


def matrix_frame(record: Mapping[str, Any], metric: str = "asr") -> list[dict[str, Any]]:
    """One dict per model: ``{"model", <attack>: "12.0 [7.1, 18.2]" | "-", ...}`` of ``metric``
    in percent (``utility`` columns show the task's score whatever ``metric`` is).

    Examples:
        >>> rec = {"attacks": ["none"], "cells": {"m": {"none": {"asr": {
        ...     "value": 0.12, "ci_low": 0.07, "ci_high": 0.18, "n": 97}}}}}
        >>> matrix_frame(rec)
        [{'model': 'm', 'none': '12.0 [7.0, 18.0]'}]
    """
    rows = []
    for model, cells in record["cells"].items():
        row: dict[str, Any] = {"model": model}
        for attack in record["attacks"]:
            cell = cells.get(attack, {})
            stat = cell.get("utility" if attack.startswith("utility") else metric)
            if cell.get("skipped"):
                row[attack] = "n/a"
            elif not stat or stat.get("value") is None:
                row[attack] = "-"
            else:
                row[attack] = (f"{100 * stat['value']:.1f} [{100 * stat['ci_low']:.1f}, "
                               f"{100 * stat['ci_high']:.1f}]")
        rows.append(row)
    return rows
