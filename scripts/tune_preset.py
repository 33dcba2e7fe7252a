"""Tuning runs of a training preset on the VALIDATION split, one results row per run.

Each variant is a JSON object of config overrides on top of a preset. The script trains it
(``safelens.training.runs.train_or_reuse``: a finished run with the same settings is reused),
evaluates the model on ``data/prompts/validation.jsonl`` (greedy, fp32 generation, keyword
judge) and appends one JSON line to the results file with the full resolved settings, the
training wall time, ASR and over-refusal with their intervals and the final training metrics.
``--prefill-k`` adds the prefilling attack on the validation split's harmful prompts (their
built-in harmful responses, k tokens prefilled; ``safelens.eval.prefill.prefill_attack``), the
quantity deep alignment is tuned for (issue 22). ``--base aligned`` trains from the aligned
baseline (``safelens.training.aligned_baseline``) instead of the preset's model. The test split
is never read. ``--select`` trains nothing: it applies the selection rule
(``select_settings``) to the rows already in ``--results`` and prints the winners.

Usage::

    python scripts/tune_preset.py --method dpo --preset quick \\
        --variant '{"max_train_rows": 800, "max_steps": 200, "lr": 3e-5}' \\
        --results safelens/training/tuning/quick.jsonl --runs runs/tune
    python scripts/tune_preset.py --method door --preset quick --base aligned --prefill-k 10 \
        --variant '{"max_steps": 200, "max_train_rows": 1600}' \
        --results results/seed003/tuning.jsonl --runs runs/tune-deep
    python scripts/tune_preset.py --select --results results/seed000/tuning.jsonl \
        --select-note "issue 16 item 1" > runs/tuned.txt
    python scripts/tune_preset.py --select --results results/seed003/tuning.jsonl \
        --select-note "1 epoch" --prefill-k 10   # deep alignment: + prefill ASR at k = 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _data_fingerprint() -> dict[str, str]:
    """sha256 (first 12 hex digits) of the built-in files a tuning row depends on."""
    from safelens.data.builtin import builtin_path

    root = builtin_path()
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest()[:12]
            for name in ("preferences/train.jsonl", "prompts/validation.jsonl")}


#: overrides that say where a run starts, what it leans on or how it runs: never searched
NOT_SEARCHED = ("model", "seed", "star_model", "reference_cache_dir", "progress")


def selection_score(row: dict[str, Any], prefill_k: int | None = None) -> float:
    """A tuning row's score under the selection rule: validation ASR + over-refusal, plus the
    prefill ASR at ``prefill_k`` when given (rates, lower is better).

    Raises:
        ValueError: ``prefill_k`` is given and the row has no prefill ASR at that k.

    Examples:
        >>> selection_score({"asr": {"value": 0.05}, "over_refusal": {"value": 0.02},
        ...                  "prefill_asr": {"10": {"value": 0.25}}}, prefill_k=10)
        0.32
    """
    value = row["asr"]["value"] + row["over_refusal"]["value"]
    if prefill_k is not None:
        prefill = (row.get("prefill_asr") or {}).get(str(prefill_k))
        if prefill is None:
            raise ValueError(f"tuning row {row['method']} {row['overrides']}: no prefill ASR "
                             f"at k = {prefill_k} to select on")
        value += prefill["value"]
    return float(value)


def select_settings(rows: list[dict[str, Any]], *, tolerance: float = 0.02,
                    preferred_lr: float = 7e-5,
                    prefill_k: int | None = None) -> dict[str, dict[str, Any]]:
    """The winning setting of each method's tuning rows, by the rule fixed before the runs.

    Per method: the row with the lowest validation ASR + over-refusal (+ prefill ASR at
    ``prefill_k`` when given: deep alignment is tuned for it, issue 22) wins; when rows within
    ``tolerance`` of that lowest score run at ``preferred_lr``, the best of those wins instead
    (a difference that small is noise at 100 + 100 prompts). Only the overrides that vary among
    the rows are returned (the searched settings, e.g. ``lr``, IPO's ``beta``, W-DOOR's
    ``variant``), never those of ``NOT_SEARCHED`` (W-DOOR's pi* is the power run's own).

    Args:
        rows: tuning rows of this script (``method``, ``preset``, ``overrides``, ``config``,
            ``asr`` and ``over_refusal`` with their ``value``).
        tolerance: the band, in rate units (0.02 = 2 points of ASR + over-refusal).
        prefill_k: add the row's prefill ASR at this k (``prefill_asr[str(k)]``) to the score;
            a row without it is an error, as are rows trained in two precisions
            (``precision_resolved``: the presets' ``auto`` is bf16 or fp32 by CPU).
        preferred_lr: the lr kept inside the band (the quick preset's DPO-family lr, 7e-5;
            the same for every method, IPO and SFT included, whose preset lr is 2e-5).

    Returns:
        ``{method: {setting: value}}``, the shape of ``scripts/shapo_power.py --tuned``.

    Examples:
        >>> def row(lr, asr, over):
        ...     return {"method": "dpo", "preset": "quick", "overrides": {"lr": lr, "seed": 0},
        ...             "config": {"lr": lr}, "asr": {"value": asr},
        ...             "over_refusal": {"value": over}}
        >>> select_settings([row(3.5e-5, 0.05, 0.04), row(7e-5, 0.05, 0.05),
        ...                  row(1.4e-4, 0.01, 0.02)])
        {'dpo': {'lr': 0.00014}}
        >>> select_settings([row(3.5e-5, 0.03, 0.04), row(7e-5, 0.05, 0.03)])  # within 2 points
        {'dpo': {'lr': 7e-05}}
    """
    def score(row: dict[str, Any]) -> float:
        return selection_score(row, prefill_k)

    trained_in = {row.get("precision_resolved") for row in rows}
    if len(trained_in) > 1:  # "auto" is bf16 on some CPUs and fp32 on others
        raise ValueError(f"tuning rows trained in {sorted(map(str, trained_in))} precision: "
                         "rows of one precision are one search (select them with --select-note)")

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["method"], []).append(row)
    # the searched settings: the overrides that are not the same in every row
    keys = {k for row in rows for k in row["overrides"]}
    varied = sorted(k for k in keys - set(NOT_SEARCHED)
                    if len({json.dumps(r["overrides"].get(k), default=str) for r in rows}) > 1)
    winners: dict[str, dict[str, Any]] = {}
    for method, group in groups.items():
        best = min(score(row) for row in group)
        band = [row for row in group if score(row) <= best + tolerance + 1e-9]
        preferred = [row for row in band if math.isclose(row["config"]["lr"], preferred_lr)]
        pick = min(preferred or band, key=score)
        winners[method] = {k: pick["overrides"][k] for k in varied if k in pick["overrides"]}
    return winners


def select_main(results: str, note: str | None, tolerance: float, preferred_lr: float,
                prefill_k: int | None = None) -> int:
    """``--select``: print each method's rows and the winners (JSON, last line)."""
    path = Path(results)
    if not path.is_file():
        raise SystemExit(f"--select {results}: no such tuning results file")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if note is None or note in (row.get("note") or "")]
    if not rows:
        raise SystemExit(f"--select {results}: no rows"
                         + (f" whose note contains {note!r}" if note else ""))
    try:
        winners = select_settings(rows, tolerance=tolerance, preferred_lr=preferred_lr,
                                  prefill_k=prefill_k)
    except ValueError as exc:
        raise SystemExit(f"--select {results}: {exc}") from None
    for row in sorted(rows, key=lambda r: (r["method"], json.dumps(r["overrides"], default=str))):
        asr, over = row["asr"]["value"], row["over_refusal"]["value"]
        searched = {"lr": row["config"]["lr"],  # the preset's when not overridden
                    **{k: v for k, v in row["overrides"].items() if k in ("beta", "variant")}}
        at_k = ("" if prefill_k is None else
                f"  prefill k={prefill_k} {100 * row['prefill_asr'][str(prefill_k)]['value']:5.1f}%")
        print(f"{row['method']:8s} {json.dumps(searched):32s} ASR {100 * asr:5.1f}%  "
              f"over-refusal {100 * over:5.1f}%{at_k}  "
              f"sum {100 * selection_score(row, prefill_k):5.1f}")
    print(json.dumps(winners))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="dpo")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--variant", action="append", default=[],
                    help="JSON object of overrides (repeatable; '{}' = the preset as it is)")
    ap.add_argument("--results", required=True, help="JSONL file the rows are appended to")
    ap.add_argument("--select", action="store_true",
                    help="train nothing: print the winning setting of each method's rows in "
                         "--results (select_settings), as JSON for shapo_power.py --tuned")
    ap.add_argument("--select-note", default=None,
                    help="with --select, only the rows whose note contains this text")
    ap.add_argument("--tolerance", type=float, default=0.02,
                    help="with --select, the band (rate units) inside which --prefer-lr wins")
    ap.add_argument("--prefer-lr", type=float, default=7e-5,
                    help="with --select, the lr kept when scores are within --tolerance")
    ap.add_argument("--runs", default="runs/tune", help="folder of the training runs")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--note", default="", help="free text stored with each row")
    ap.add_argument("--base", default=None,
                    help="model to train from: 'aligned' (the aligned baseline), a name or a "
                         "path (default: the preset's model)")
    ap.add_argument("--prefill-k", type=int, nargs="+", default=[],
                    help="also attack by prefilling k harmful tokens (each k) on the harmful "
                         "validation prompts; with --select, one k whose prefill ASR joins the "
                         "score")
    ap.add_argument("--seed", type=int, default=None, help="training seed (default: the preset's)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.select:
        if len(args.prefill_k) > 1:
            raise SystemExit(f"--select --prefill-k: one k to select on, got {args.prefill_k}")
        return select_main(args.results, args.select_note, args.tolerance, args.prefer_lr,
                           args.prefill_k[0] if args.prefill_k else None)
    warnings.filterwarnings("ignore")

    import torch

    from safelens.data.builtin import load_builtin
    from safelens.eval.generation import GenerationConfig
    from safelens.eval.metrics import rate
    from safelens.eval.prefill import prefill_attack, prefill_outcomes
    from safelens.eval.runner import evaluate_policy
    from safelens.models import load_model
    from safelens.training.resolve import resolve_config
    from safelens.training.runs import aligned_baseline, train_or_reuse

    torch.set_num_threads(args.threads)
    prompts = load_builtin("prompts", "validation")
    base = (str(aligned_baseline().model_dir) if args.base == "aligned" else args.base)
    for text in args.variant or ["{}"]:
        overrides = json.loads(text)
        if not isinstance(overrides, dict):
            raise SystemExit(f"--variant {text!r}: expected a JSON object of config overrides")
        if base is not None:
            overrides.setdefault("model", base)
        if args.seed is not None:
            overrides.setdefault("seed", args.seed)
        config = resolve_config(args.method, preset=args.preset, **overrides)
        tag = hashlib.sha256(json.dumps([args.method, config.to_dict()], sort_keys=True,
                                        default=str).encode()).hexdigest()[:10]
        run_dir = Path(args.runs) / f"{args.method}-{args.preset}-{tag}"
        t0 = time.time()
        run = train_or_reuse(run_dir, args.method, preset=args.preset, **overrides)
        train_s = run.wall_s if not run.reused else None
        model = load_model(str(run.run_dir))
        t1 = time.time()
        gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=64)
        result = evaluate_policy(model, prompts, judge="keyword", config=gen,
                                 out=run_dir / "validation.jsonl", progress=False)
        s = result.summary
        prefill: dict[str, Any] = {}
        if args.prefill_k:
            attacked = prefill_attack(model, prompts, ks=args.prefill_k, config=gen,
                                      progress=False, out=run_dir / "validation-prefill.json")
            for k in args.prefill_k:
                prefill[str(k)] = rate(prefill_outcomes(attacked, k)[0])
        last = run.history[-1] if run.history else {}
        row = {
            "date": time.strftime("%Y-%m-%d"), "method": args.method, "preset": args.preset,
            "overrides": overrides, "config": config.to_dict(),
            "precision_resolved": run.config.get("precision_resolved"),
            "train_seconds": round(train_s, 1) if train_s is not None else None,
            "loop_seconds": last.get("time"),
            "eval_seconds": round(time.time() - t1, 1),
            "split": "validation", "judge": "keyword", "max_new_tokens": args.max_new_tokens,
            "base": args.base, "asr": s["asr"], "over_refusal": s["over_refusal"],
            "prefill_asr": prefill or None,
            "over_refusal_benign": s.get("over_refusal_benign"),
            "over_refusal_lookalike": s.get("over_refusal_lookalike"),
            "degenerate": s.get("degenerate"),
            "judges": {name: {k: v.get(k) for k in ("asr", "over_refusal")}
                       for name, v in (s.get("judges") or {}).items()},
            "final_loss": last.get("loss"), "final_margin": last.get("rewards/margins"),
            "run_dir": str(run_dir), "note": args.note,
            "data": _data_fingerprint(),
        }
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a") as handle:
            handle.write(json.dumps(row, default=str) + "\n")
        at_k = "".join(f" prefill k={k} {100 * r['value']:.0f}%" for k, r in prefill.items())
        print(f"{json.dumps(overrides)}: ASR {100 * s['asr']['value']:.0f}% "
              f"over-refusal {100 * s['over_refusal']['value']:.0f}%{at_k} "
              f"train {row['train_seconds']} s ({time.time() - t0:.0f} s in all)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
