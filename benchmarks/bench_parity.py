"""Parity: the quick preset's DPO run in bf16 autocast vs fp32, same data, seed and steps.

Trains ``safelens align --method dpo --preset quick`` twice on the default model — once with
``precision="fp32"``, once with ``precision="bf16"`` — and compares

* the training curves: max |difference| of ``loss`` and ``rewards/margins`` over the steps,
  and the final values;
* the two final models on the built-in VALIDATION prompts (greedy, 64 new tokens, fp32
  generation, keyword judge): ASR and over-refusal with 95% intervals, and the number of
  prompts whose refusal verdict differs between the two models;
* wall time of each run (reference log-probs + steps) and the ratio.

If bf16 changes a conclusion (a difference outside the intervals), fp32 should stay the
training default; the README of this folder records the outcome.

Usage::

    python benchmarks/bench_parity.py --out runs/parity --json benchmarks/results/parity.json
    python benchmarks/bench_parity.py --model tiny --steps 3 --prompts 8 --out /tmp/p  # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--out", required=True, help="folder for the two runs and evaluations")
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's (40)")
    ap.add_argument("--prompts", type=int, default=None, help="validation prompts (default all)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    import numpy as np
    import torch

    from safelens.data import builtin_path, read_jsonl
    from safelens.eval.generation import GenerationConfig
    from safelens.eval.runner import evaluate_policy
    from safelens.models import load_tiny_model
    from safelens.training import Trainer, make_method

    logging.disable(logging.WARNING)
    out = Path(args.out)
    prompts = read_jsonl(builtin_path() / "prompts" / "validation.jsonl")
    if args.prompts:
        prompts = prompts[:args.prompts]
    overrides = {"max_steps": args.steps} if args.steps else {}
    result: dict = {"threads": torch.get_num_threads()}
    curves, verdicts = {}, {}
    for precision in ("fp32", "bf16"):
        run_dir = out / precision
        model = load_tiny_model(n_layers=4) if args.model == "tiny" else None
        method = make_method("dpo", preset="quick", precision=precision,
                             **({"model": args.model} if args.model != "tiny" else {}),
                             **({"freeze": r"embed_tokens|layers\.0\."}
                                if args.model == "tiny" else {}), **overrides)
        t = time.perf_counter()
        trainer = Trainer(method, run_dir, model=model, preset="quick", overwrite=True)
        res = trainer.train()
        seconds = time.perf_counter() - t
        curves[precision] = res.history
        evaluation = evaluate_policy(
            res.model, prompts, judge="keyword",
            config=GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=16),
            out=out / f"{precision}-validation.jsonl", progress=False)
        verdicts[precision] = [r["refused"] for r in evaluation.rows]
        s = evaluation.summary
        result[precision] = {
            "train_seconds": seconds, "steps": res.step,
            "step_seconds": float(np.median(np.diff([0.0] + [r["time"] for r in res.history]))),
            "final_loss": res.history[-1]["loss"],
            "final_margin": res.history[-1].get("rewards/margins"),
            "asr": s["asr"], "over_refusal": s["over_refusal"]}
    a, b = curves["fp32"], curves["bf16"]
    for key in ("loss", "rewards/margins"):
        diff = [abs(x[key] - y[key]) for x, y in zip(a, b, strict=True)]
        result[f"max_abs_diff_{key}"] = max(diff)
    result["verdicts_differ"] = int(sum(x != y for x, y in
                                        zip(verdicts["fp32"], verdicts["bf16"], strict=True)))
    result["n_prompts"] = len(prompts)
    result["train_speedup"] = result["fp32"]["train_seconds"] / result["bf16"]["train_seconds"]

    def rate(r):
        return f"{100 * r['value']:.0f}% [{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}]"

    print(f"\nquick DPO, fp32 vs bf16 ({result['fp32']['steps']} steps, {len(prompts)} "
          "validation prompts)")
    print(f"{'':<22}{'fp32':>18}{'bf16':>18}")
    for key, fmt in (("train_seconds", "{:.0f} s"), ("step_seconds", "{:.2f} s"),
                     ("final_loss", "{:.4f}"), ("final_margin", "{:.3f}")):
        print(f"{key:<22}{fmt.format(result['fp32'][key]):>18}"
              f"{fmt.format(result['bf16'][key]):>18}")
    for key in ("asr", "over_refusal"):
        print(f"{key:<22}{rate(result['fp32'][key]):>18}{rate(result['bf16'][key]):>18}")
    print(f"max |loss diff| {result['max_abs_diff_loss']:.4f}, max |margin diff| "
          f"{result['max_abs_diff_rewards/margins']:.4f}, refusal verdicts that differ: "
          f"{result['verdicts_differ']} of {len(prompts)}; training {result['train_speedup']:.2f}x")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main()
