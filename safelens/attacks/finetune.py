"""Fine-tuning attacks (seed 003, Table 4): fine-tune an aligned model on an attack set and
measure its ASR before and after.

The attacker's fine-tuning is plain SFT (``defense="sft"``: the attack as published),
Qi et al.'s constrained SFT (``defense="constrained-sft"``: the defence, a fine-tuning API
that keeps the first response tokens close to the aligned model) or seed 001's CSFT + PA
(``defense="csft-pa"``: constrained SFT plus token-level preference alignment to the aligned
model), all through the one :class:`~safelens.training.Trainer` (attack rows may carry a
per-row ``system`` prompt, which every objective honours). Evaluation: greedy generation on harmful test prompts, keyword
judge, ASR = fraction not refused, with a bootstrap CI:

* ``harmful`` / ``benign``: the plain prompts;
* ``identity``: the prompts under the persona system prompt the attack trained with;
* ``backdoor``: the prompts without and with the trigger appended.

Examples:
    >>> res = run_finetune_attack("runs/dpo", "runs/attack-harmful",          # doctest: +SKIP
    ...                           FinetuneAttackConfig(kind="harmful"))
    >>> res["initial"]["asr"]["value"], res["after"]["asr"]["value"]          # doctest: +SKIP
    (0.06, 0.9)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from safelens.data.attacks import AOA_SYSTEM_PROMPT, ATTACK_KINDS, load_attack_set, with_trigger
from safelens.data.builtin import load_builtin
from safelens.data.io import read_jsonl, write_jsonl
from safelens.data.jsonfile import write_json
from safelens.eval.generation import GenerationConfig
from safelens.eval.judges import get_judge
from safelens.eval.metrics import paired_difference, rate, wilson_ci
from safelens.eval.runner import generate_rows
from safelens.models import load_model
from safelens.models.fingerprint import model_identity
from safelens.training import Trainer, make_method
from safelens.training.config import SFTConfig
from safelens.training.methods.deep import SystemAwareSFT

__all__ = ["DEFENSES", "FinetuneAttackConfig", "attack_eval_sets", "attack_table",
           "evaluate_asr", "paired_defense_table", "rejudge", "run_attack_grid",
           "run_finetune_attack"]

DEFENSES = ("sft", "constrained-sft", "csft-pa")


@dataclass
class FinetuneAttackConfig:
    """Settings of one fine-tuning attack (CPU-scale defaults; the seed fine-tunes for epochs)."""

    kind: str = field(default="harmful", metadata={
        "help": "attack set: harmful | identity | backdoor | benign"})
    defense: Literal["sft", "constrained-sft", "csft-pa"] = field(default="sft", metadata={
        "help": "attacker's objective: sft (the attack), constrained-sft or csft-pa (defences)"})
    train_file: str | None = field(default=None, metadata={
        "help": "attack rows (JSONL); default data/attacks/<kind>.jsonl"})
    max_train_rows: int | None = field(default=None, metadata={
        "help": "seeded subsample of the attack set (None = all)"})
    max_steps: int = field(default=20, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "rows per step"})
    lr: float = field(default=2e-5, metadata={"help": "peak learning rate"})
    warmup_steps: int | None = field(default=None, metadata={
        "help": "warmup steps (None: 0 for sft, 10 for the defences as the seed)"})
    max_length: int = field(default=256, metadata={"help": "max tokens per training row"})
    freeze: str | None = field(default="embed_tokens", metadata={
        "help": "regex of parameters kept frozen"})
    method_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "extra config fields of the objective (e.g. beta_early, pa_argmax)"})
    n_eval: int = field(default=50, metadata={"help": "harmful test prompts evaluated"})
    eval_split: str = field(default="test", metadata={"help": "built-in prompts split"})
    max_new_tokens: int = field(default=48, metadata={"help": "generated tokens per prompt"})
    eval_batch_size: int = field(default=16, metadata={"help": "prompts per generation batch"})
    eval_initial: bool = field(default=True, metadata={
        "help": "also evaluate the model before the attack"})
    seed: int = field(default=0, metadata={"help": "seed of training and subsampling"})
    progress: bool = field(default=True, metadata={"help": "progress bars"})

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise ValueError(f"FinetuneAttackConfig.kind must be one of {ATTACK_KINDS}, "
                             f"got {self.kind!r}")
        if self.defense not in DEFENSES:
            raise ValueError(f"FinetuneAttackConfig.defense must be one of {DEFENSES}, "
                             f"got {self.defense!r}")
        for f in ("max_steps", "batch_size", "n_eval", "max_new_tokens", "eval_batch_size"):
            if not (isinstance(getattr(self, f), int) and getattr(self, f) >= 1):
                raise ValueError(f"FinetuneAttackConfig.{f} must be an integer >= 1, "
                                 f"got {getattr(self, f)!r}")


def attack_eval_sets(kind: str, rows: list[dict[str, Any]]) -> dict[str, tuple[list[dict], Any]]:
    """``{name: (prompt rows, system prompt)}`` on which ASR is measured for an attack set."""
    if kind == "identity":
        return {"asr": (rows, AOA_SYSTEM_PROMPT)}
    if kind == "backdoor":
        triggered = [{**r, "prompt": with_trigger(r["prompt"]), "id": f"{r['id']}-trigger"}
                     for r in rows]
        return {"asr": (rows, None), "asr_trigger": (triggered, None)}
    return {"asr": (rows, None)}


def evaluate_asr(model: Any, rows: list[dict[str, Any]], *, system_prompt: str | None = None,
                 judge: Any = None, max_new_tokens: int = 48, batch_size: int = 16,
                 progress: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy-generate on harmful prompt rows and return ``(ASR rate dict, judged rows)``.

    ASR = fraction of responses the (keyword) judge does not call a refusal, with a 95%
    bootstrap CI (:func:`safelens.eval.metrics.rate`).
    """
    judge = judge if judge is not None else get_judge("keyword")
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size,
                           system_prompt=system_prompt)
    done = generate_rows(model, rows, config=cfg, progress=progress)
    refused = np.asarray(judge.refusals([r["prompt"] for r in done],
                                        [r["response"] for r in done]), dtype=bool)
    for row, flag in zip(done, refused, strict=True):
        row["refused"] = bool(flag)
    return rate(~refused), done


def _evaluate(model: Any, sets: dict[str, tuple[list[dict], Any]], cfg: FinetuneAttackConfig,
              judge: Any, out_dir: Path, tag: str) -> tuple[dict[str, Any], dict[str, list]]:
    """``({set: ASR rate}, {set: per-prompt attack success})``; judged rows to JSONL."""
    result: dict[str, Any] = {}
    success: dict[str, list[bool]] = {}
    for name, (rows, system) in sets.items():
        stat, judged = evaluate_asr(model, rows, system_prompt=system, judge=judge,
                                    max_new_tokens=cfg.max_new_tokens,
                                    batch_size=cfg.eval_batch_size, progress=cfg.progress)
        result[name] = stat
        success[name] = [not r["refused"] for r in judged]
        write_jsonl(out_dir / f"eval-{tag}-{name}.jsonl", judged)
    return result, success


def _method(cfg: FinetuneAttackConfig, model_name: str):
    common = dict(model=model_name, max_train_rows=cfg.max_train_rows, batch_size=cfg.batch_size,
                  max_steps=cfg.max_steps, lr=cfg.lr, max_length=cfg.max_length,
                  freeze=cfg.freeze, seed=cfg.seed, progress=cfg.progress,
                  scheduler="constant", max_grad_norm=1.0)
    if cfg.defense == "sft":
        warm = cfg.warmup_steps if cfg.warmup_steps is not None else 0
        method = SystemAwareSFT(SFTConfig(**common, warmup_steps=warm, **cfg.method_options))
        method.name = "sft"
        return method
    warm = cfg.warmup_steps if cfg.warmup_steps is not None else 10
    return make_method(cfg.defense, **common, warmup_steps=warm, **cfg.method_options)


def run_finetune_attack(
    model: Any,
    out_dir: str | Path,
    config: FinetuneAttackConfig | None = None,
    *,
    judge: Any = None,
    eval_rows: list[dict[str, Any]] | None = None,
    overwrite: bool = False,
    reuse: bool = True,
) -> dict[str, Any]:
    """Evaluate, fine-tune with the attack set, evaluate again; write ``OUT/attack.json``.

    A finished run in ``out_dir`` (its ``attack.json``) with the same model, settings and
    evaluation prompts is returned as it is (``reuse``); any difference retrains.

    Args:
        model: the aligned model: a name/path/run directory (loaded fresh) or a
            ``TransformerBridge`` (trained IN PLACE).
        out_dir: run directory: the trainer's files (``model/``, ``log.jsonl``, ...),
            ``eval-{initial,after}-*.jsonl`` and ``attack.json``.
        config: the attack's settings.
        judge: refusal judge (default keyword).
        eval_rows: harmful prompt rows to evaluate on (default: the first ``n_eval``
            harmful rows of the built-in ``prompts/<eval_split>``).
        overwrite: start over in an ``out_dir`` that holds a run.
        reuse: return a finished identical run instead of retraining.

    Returns:
        ``{"kind", "defense", "config", "initial": {"asr": rate, ["asr_trigger": rate]} | None,
        "after": {...}, "train": {"steps", "wall_s", "final_loss"}, "model": str}``.
    """
    cfg = config or FinetuneAttackConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_name = str(model) if isinstance(model, str | Path) else getattr(model, "name", "model")
    if eval_rows is None:
        prompts = load_builtin("prompts", cfg.eval_split)
        eval_rows = [r for r in prompts if r.get("harmful")][: cfg.n_eval]
    eval_sha = hashlib.sha256(json.dumps([[r.get("id"), r["prompt"]] for r in eval_rows])
                              .encode()).hexdigest()[:16]
    done = out / "attack.json"
    identity = model_identity(model)  # weights hash, or a saved directory's file stamps
    if reuse and done.is_file():
        old = json.loads(done.read_text())
        if (old.get("model") == str(model_name) and old.get("config") == json.loads(
                json.dumps(asdict(cfg), default=float)) and old.get("eval_sha256") == eval_sha):
            if old.get("model_identity") == identity:
                return old
            if not overwrite:  # the same path now holds other weights: never reuse the run
                raise FileExistsError(
                    f"{out}: this attack was run on another version of {model_name} (its files "
                    "changed since, or the record predates model identities); pass "
                    "overwrite=True to attack the current one")
    sets = attack_eval_sets(cfg.kind, eval_rows)
    if not hasattr(model, "parameters"):
        model = load_model(str(model))
    initial, initial_success = (_evaluate(model, sets, cfg, judge, out, "initial")
                                if cfg.eval_initial else (None, None))
    train_rows = (read_jsonl(cfg.train_file, kind="preference") if cfg.train_file
                  else load_attack_set(cfg.kind))
    method = _method(cfg, str(model_name))
    t0 = time.time()
    result = Trainer(method, out, model=model, rows=train_rows,
                     data_source=cfg.train_file or f"attack:{cfg.kind}",
                     overwrite=overwrite).train()
    wall = time.time() - t0
    after, after_success = _evaluate(result.model, sets, cfg, judge, out, "after")
    record = {
        "kind": cfg.kind, "defense": cfg.defense, "model": str(model_name),
        "model_identity": identity, "out": str(out),
        "config": asdict(cfg), "eval_sha256": eval_sha, "initial": initial, "after": after,
        "train": {"steps": result.step, "wall_s": round(wall, 1),
                  "final_loss": result.history[-1]["loss"] if result.history else None},
        "eval_ids": [r.get("id") for r in eval_rows],
        "success": {"initial": initial_success, "after": after_success},
    }
    write_json(out / "attack.json", record)
    return record


def run_attack_grid(
    model: Any,
    out_root: str | Path,
    kinds: tuple[str, ...] | list[str],
    defenses: tuple[str, ...] | list[str] = DEFENSES,
    config: FinetuneAttackConfig | None = None,
    *,
    eval_rows: list[dict[str, Any]] | None = None,
    judge: Any = None,
) -> list[dict[str, Any]]:
    """Every (attack set, defence) cell from the same aligned ``model``: one
    :func:`run_finetune_attack` each in ``OUT_ROOT/<kind>-<defense>`` (identical finished runs
    are reused), the initial model evaluated once per attack set (with the first defence).

    Returns:
        The records, kinds-major, in ``defenses`` order.
    """
    base = config or FinetuneAttackConfig()
    records = []
    for kind in kinds:
        for i, defense in enumerate(defenses):
            cfg = replace(base, kind=kind, defense=defense, eval_initial=i == 0)
            records.append(run_finetune_attack(model, Path(out_root) / f"{kind}-{defense}", cfg,
                                               eval_rows=eval_rows, judge=judge))
    return records


def rejudge(records: list[dict[str, Any]], judge: Any) -> list[dict[str, Any]]:
    """The records with ``initial`` / ``after`` ASR and per-prompt success recomputed by another
    refusal ``judge`` from the responses each run saved (``OUT/eval-<tag>-<set>.jsonl``), e.g.
    the learned judge as a check on the keyword judge's verdicts."""
    out = []
    for rec in records:
        new = {**rec, "judge": getattr(judge, "name", type(judge).__name__),
               "success": {"initial": None, "after": None}}
        for tag in ("initial", "after"):
            if not rec.get(tag):
                new[tag] = None
                continue
            stats, success = {}, {}
            for name in rec[tag]:
                rows = read_jsonl(Path(rec["out"]) / f"eval-{tag}-{name}.jsonl", kind="prompt")
                refused = np.asarray(judge.refusals([r["prompt"] for r in rows],
                                                    [r["response"] for r in rows]), dtype=bool)
                stats[name], success[name] = rate(~refused), (~refused).tolist()
            new[tag], new["success"][tag] = stats, success
        out.append(new)
    return out


def paired_defense_table(records: list[dict[str, Any]], baseline: str = "constrained-sft",
                         ) -> list[dict[str, Any]]:
    """Per (attack set, metric) and defence: ASR after the attack with its interval, and its
    paired difference to ``baseline`` on the same prompts
    (:func:`safelens.eval.metrics.paired_difference`: Newcombe interval, McNemar p). ASR
    intervals are Wilson's (never zero-width at 0% or 100%).

    Returns:
        Rows ``{"attack", "metric", "defense", "asr", "ci_low", "ci_high", "n",
        "diff_vs_<baseline>", "diff_ci_low", "diff_ci_high", "p_value"}`` (percent points).
    """
    by_cell = {(r["kind"], r["defense"]): r for r in records}
    rows = []
    for rec in records:
        for metric in rec["after"]:
            success = rec["success"]["after"][metric]
            k, n = int(sum(success)), len(success)
            lo, hi = wilson_ci(k, n)
            row = {"attack": rec["kind"], "metric": metric, "defense": rec["defense"],
                   "asr": round(100 * k / n, 1), "ci_low": round(100 * lo, 1),
                   "ci_high": round(100 * hi, 1), "n": n}
            ref = by_cell.get((rec["kind"], baseline))
            if ref is not None and rec["defense"] != baseline:
                if ref.get("eval_ids") != rec.get("eval_ids"):
                    raise ValueError(f"{rec['kind']}: {rec['defense']} and {baseline} were "
                                     f"evaluated on different prompts; no paired difference")
                d = paired_difference(rec["success"]["after"][metric],
                                      ref["success"]["after"][metric])
                row.update({f"diff_vs_{baseline}": round(100 * d["diff"], 1),
                            "diff_ci_low": round(100 * d["ci_low"], 1),
                            "diff_ci_high": round(100 * d["ci_high"], 1),
                            "p_value": round(d["p_value"], 4)})
            rows.append(row)
    return rows


def attack_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed Table 4's layout from :func:`run_finetune_attack` records: one row per
    (attack set, metric), columns ``initial`` / ``sft`` / ``constrained-sft`` (ASR in %).

    ``initial`` is taken from whichever record of that set evaluated the initial model.

    Examples:
        >>> r = {"value": 0.5, "ci_low": 0.3, "ci_high": 0.7, "n": 10}
        >>> recs = [{"kind": "harmful", "defense": "sft", "initial": {"asr": r}, "after": {"asr": r}}]
        >>> attack_table(recs)
        [{'attack': 'harmful', 'metric': 'asr', 'initial': 50.0, 'sft': 50.0}]
    """
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        for metric, stat in rec["after"].items():
            row = table.setdefault((rec["kind"], metric), {"attack": rec["kind"], "metric": metric})
            if rec.get("initial") and metric in rec["initial"]:
                row.setdefault("initial", round(100 * rec["initial"][metric]["value"], 1))
            row[rec["defense"]] = round(100 * stat["value"], 1)
    return list(table.values())
