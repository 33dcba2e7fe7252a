"""Downstream fine-tuning (seed 001, Table 4): fine-tune an aligned model on a utility task with
SFT, constrained SFT or CSFT + PA, then score the task and the model's safety side by side.

A downstream task is fine-tuning data like any other: :func:`run_downstream` runs the
fine-tuning-attack runner (:func:`~safelens.attacks.finetune.run_finetune_attack`) with the
task's train split (``data/utility/<task>/train.jsonl``) in place of an attack set, so ASR on
harmful test prompts comes out of the same code, then greedy-generates on the task's test split
and scores it (:func:`safelens.eval.utility.score_utility`: ROUGE-L F1, SQL execution accuracy,
exact final answer). ``OUT/utility.json`` holds both; an identical finished run is reused.

Examples:
    >>> rec = run_downstream(aligned_baseline().model_dir, "runs/sql-csft-pa",    # doctest: +SKIP
    ...                      "sql", FinetuneAttackConfig(defense="csft-pa"))
    >>> rec["utility"]["value"], rec["after"]["asr"]["value"]                    # doctest: +SKIP
    (0.93, 0.04)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from safelens.attacks.finetune import FinetuneAttackConfig, run_finetune_attack
from safelens.data.io import read_jsonl, write_jsonl
from safelens.data.jsonfile import cached_json, write_json
from safelens.data.utility import load_utility_set, utility_path
from safelens.eval.generation import GenerationConfig
from safelens.eval.runner import generate_rows
from safelens.eval.utility import score_utility
from safelens.models import load_model
from safelens.models.fingerprint import model_fingerprint

__all__ = ["evaluate_utility", "run_downstream", "run_downstream_grid", "utility_table"]


def evaluate_utility(model: Any, task: str, rows: list[dict[str, Any]], *,
                     max_new_tokens: int = 64, batch_size: int = 32, progress: bool = False,
                     out: str | Path | None = None,
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy answers of ``model`` on utility ``rows`` and their score.

    With ``out`` (a JSONL path) the answered rows go there and the score to
    ``OUT.score.json``; a later call for the same weights (fingerprint), rows and decoding
    length reads them back instead of generating.

    Returns:
        ``(score_utility's dict without per_row, rows with "response" and "score")``.
    """
    generated: list[list[dict[str, Any]]] = []

    def compute() -> dict[str, Any]:
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
        done = generate_rows(model, rows, config=cfg, progress=progress)
        score = score_utility(task, done, [r["response"] for r in done])
        for row, value in zip(done, score.pop("per_row"), strict=True):
            row["score"] = value
        if out is not None:
            write_jsonl(out, done)
        generated.append(done)
        return score

    if out is None:
        return compute(), generated[0]
    out = Path(out)
    key = {"task": task, "model": model_fingerprint(model), "tokens": max_new_tokens,
           "rows": hashlib.sha256(json.dumps([[r.get("id"), r["prompt"]] for r in rows])
                                  .encode()).hexdigest()[:16]}
    meta = out.with_name(out.name + ".score.json")
    if not out.is_file():
        meta.unlink(missing_ok=True)  # a score without its rows is not reused
    score = cached_json(meta, key, compute)
    return score, generated[0] if generated else read_jsonl(out, kind="prompt")


def run_downstream(
    model: Any,
    out_dir: str | Path,
    task: str,
    config: Any = None,
    *,
    eval_rows: list[dict[str, Any]] | None = None,
    n_utility: int | None = None,
    utility_tokens: int = 64,
    judge: Any = None,
    reuse: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``model`` on ``task``'s train split with ``config.defense`` and measure utility
    on its test split and ASR on harmful prompts.

    Args:
        model: the aligned model (a path / run directory).
        out_dir: run directory (the fine-tuning run, ``eval-*.jsonl``, ``utility.jsonl``,
            ``utility.json``).
        task: one of :data:`safelens.data.utility.UTILITY_TASKS`.
        config: a :class:`~safelens.attacks.finetune.FinetuneAttackConfig` (its ``kind`` and
            ``train_file`` are set here).
        eval_rows: harmful prompt rows for ASR (default: the runner's).
        n_utility: test rows scored (None = all).
        utility_tokens: tokens generated per utility answer.
        judge: refusal judge of the ASR evaluation.
        reuse: return an identical finished run.

    Returns:
        The attack record (``initial``, ``after``, ``train``, ...) plus ``task``,
        ``utility`` (``{"metric", "value", "ci_low", "ci_high", "n", ...}``) and
        ``initial_utility`` (the model before fine-tuning, when ``config.eval_initial``).
    """
    out = Path(out_dir)
    cfg = replace(config or FinetuneAttackConfig(), kind="benign",
                  train_file=str(utility_path(task, "train")))
    test = load_utility_set(task, "test")[:n_utility]
    wanted = {"task": task, "n_utility": len(test), "utility_tokens": utility_tokens,
              "config": json.loads(json.dumps(asdict(cfg), default=float)), "model": str(model)}
    path = out / "utility.json"
    if reuse and path.is_file():
        old = json.loads(path.read_text())
        if all(old.get(k) == v for k, v in wanted.items()):
            return old
    initial = None
    if cfg.eval_initial:
        initial, answered = evaluate_utility(load_model(str(model)), task, test,
                                             max_new_tokens=utility_tokens, progress=cfg.progress)

        write_jsonl(out / "utility-initial.jsonl", answered)
    record = run_finetune_attack(model, out, cfg, eval_rows=eval_rows, judge=judge,
                                 reuse=reuse, overwrite=not reuse)
    tuned = load_model(str(out / "model"))
    score, answered = evaluate_utility(tuned, task, test, max_new_tokens=utility_tokens,
                                       progress=cfg.progress)

    write_jsonl(out / "utility.jsonl", answered)
    record = {**record, **wanted, "utility": score, "initial_utility": initial}
    write_json(path, record)
    return record


def run_downstream_grid(model: Any, out_root: str | Path, tasks: Sequence[str],
                        defenses: Sequence[str], config: Any = None,
                        **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`run_downstream` for every (task, defence) in ``OUT_ROOT/<task>-<defense>``; the
    model before fine-tuning (utility and ASR) is evaluated with the first defence."""
    base = config or FinetuneAttackConfig()
    return [run_downstream(model, Path(out_root) / f"{task}-{defense}", task,
                           replace(base, defense=defense, eval_initial=i == 0), **kwargs)
            for task in tasks for i, defense in enumerate(defenses)]


def utility_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed Table 4's layout: one row per task, ``<defense>`` utility and ``<defense> ASR``
    columns (in %), from :func:`run_downstream` records.

    Examples:
        >>> r = {"task": "sql", "defense": "sft", "utility": {"value": 0.9},
        ...      "after": {"asr": {"value": 0.1}}}
        >>> utility_table([r])
        [{'task': 'sql', 'sft': 90.0, 'sft ASR': 10.0}]
    """
    table: dict[str, dict[str, Any]] = {}
    for rec in records:
        row = table.setdefault(rec["task"], {"task": rec["task"]})
        if rec.get("initial_utility"):
            row["initial"] = round(100 * rec["initial_utility"]["value"], 1)
            row["initial ASR"] = round(100 * rec["initial"]["asr"]["value"], 1)
        row[rec["defense"]] = round(100 * rec["utility"]["value"], 1)
        row[f"{rec['defense']} ASR"] = round(100 * rec["after"]["asr"]["value"], 1)
    return list(table.values())
