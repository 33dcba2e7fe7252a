"""ShaPO-T against DPO from the aligned baseline, with seeds and paired statistics (issue 16).

Each arm is trained from the aligned baseline (``safelens.training.aligned_baseline``) with the
quick preset's settings (lr 7e-5, RPO α 1, blocks 0-14 frozen) for ``--steps`` steps on
``--rows`` pairs of the built-in train split, once per seed; ShaPO-T uses the selective
subspace, τ = 5, exact SAM, and the radius ``--rho`` (from ``scripts/shapo_calibration.py``: the
radius whose perturbed-loss gap at the baseline is ``--gap`` nats). Every checkpoint is then

* evaluated on the built-in test split (harmful prompts: ASR; benign + look-alike: over-refusal;
  keyword judge, greedy, ``--tokens`` new tokens), and
* attacked by harmful fine-tuning (20 SFT steps on ``data/attacks/harmful.jsonl``), ASR after.

Differences ShaPO-T − DPO come from ``paired_bootstrap_difference`` over (prompt, seed), each
with its 95% interval and the design's minimum detectable effect. Runs and evaluations are
cached under ``--out`` (rerunning resumes); the summary goes to ``--results``.

    python scripts/shapo_power.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from safelens import __version__
from safelens.attacks import FinetuneAttackConfig, run_finetune_attack
from safelens.data import load_builtin
from safelens.data.jsonfile import write_json
from safelens.eval.generation import GenerationConfig
from safelens.eval.metrics import paired_bootstrap_difference, rate
from safelens.eval.runner import evaluate_policy
from safelens.models import load_model
from safelens.training.runs import aligned_baseline, train_or_reuse

ARMS = ("dpo", "shapo-t")


def arm_settings(arm: str, args: argparse.Namespace) -> dict:
    common = {"max_steps": args.steps, "max_train_rows": args.rows, "progress": False}
    if arm == "shapo-t":
        common.update(subspace="selective", rho=args.rho, sam_every=5, sam_mode="exact")
    return common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rows", type=int, default=1600)
    ap.add_argument("--rho", type=float, required=True)
    ap.add_argument("--gap", type=float, default=None, help="the gap --rho was calibrated to")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--n-harmful", type=int, default=150)
    ap.add_argument("--n-benign", type=int, default=150)
    ap.add_argument("--out", default="runs/shapo-power")
    ap.add_argument("--results", default="results/seed000/shapo_vs_dpo.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    base = aligned_baseline().model_dir
    test = load_builtin("prompts", "test")
    harmful = [r for r in test if r["harmful"]][:: max(1, 300 // args.n_harmful)][: args.n_harmful]
    benign = [r for r in test if not r["harmful"]][:: max(1, 300 // args.n_benign)][: args.n_benign]
    rows = harmful + benign
    gen = GenerationConfig(max_new_tokens=args.tokens, batch_size=32)
    per: dict[str, dict[str, list]] = {a: {"asr": [], "over_refusal": [], "asr_after_ft": []}
                                       for a in ARMS}
    runs: dict[str, list] = {a: [] for a in ARMS}
    for seed in args.seeds:
        for arm in ARMS:
            t0 = time.time()
            rec = train_or_reuse(out / f"{arm}-seed{seed}", arm, preset="quick",
                                 model=str(base), seed=seed, **arm_settings(arm, args))
            model = load_model(str(rec.model_dir))
            ev = evaluate_policy(model, rows, config=gen, out=out / f"eval-{arm}-seed{seed}.jsonl",
                                 progress=False, agreement_judges=())
            del model
            refused = np.array([r["refused"] for r in ev.rows])
            success = ~refused & ~np.array([bool(r.get("degenerate")) for r in ev.rows])
            per[arm]["asr"].append(success[: len(harmful)].tolist())
            per[arm]["over_refusal"].append(refused[len(harmful):].tolist())
            atk = run_finetune_attack(
                str(rec.model_dir), out / f"ft-{arm}-seed{seed}",
                FinetuneAttackConfig(kind="harmful", max_steps=20, n_eval=len(harmful),
                                     max_new_tokens=args.tokens, eval_initial=False,
                                     progress=False, seed=seed), eval_rows=harmful)
            per[arm]["asr_after_ft"].append(atk["success"]["after"]["asr"])
            last = rec.history[-1] if rec.history else {}
            runs[arm].append({"seed": seed, "run_dir": str(rec.run_dir), "train_wall_s": last.get("time"),
                              "steps": len(rec.history), "reused": rec.reused,
                              "final": {k: last.get(k) for k in ("loss", "rewards/margins",
                                                                  "rewards/accuracies")},
                              "sam_gap_logged": [h["sam/loss_perturbed"] - h["loss"]
                                                 for h in rec.history
                                                 if h.get("sam/loss_perturbed") is not None],
                              "asr": rate(per[arm]["asr"][-1]),
                              "over_refusal": rate(per[arm]["over_refusal"][-1]),
                              "asr_after_ft": rate(per[arm]["asr_after_ft"][-1]),
                              "wall_s": round(time.time() - t0, 1)})
            print(arm, seed, {k: round(100 * runs[arm][-1][k]["value"], 1)
                              for k in ("asr", "over_refusal", "asr_after_ft")},
                  f"{time.time() - t0:.0f} s", flush=True)
        done = len(per["dpo"]["asr"])
        summary = {"safelens_version": __version__, "baseline": str(base),
                   "settings": {**vars(args), "seeds_done": args.seeds[:done]},
                   "n_harmful": len(harmful), "n_benign": len(benign), "runs": runs,
                   "pooled": {a: {m: rate(np.concatenate([np.asarray(x, float) for x in v]))
                                  for m, v in per[a].items()} for a in ARMS},
                   "shapo_minus_dpo": {m: paired_bootstrap_difference(
                       np.array(per["shapo-t"][m], float), np.array(per["dpo"][m], float))
                       for m in per["dpo"]}}
        write_json(Path(args.results), summary)
        print(json.dumps(summary["shapo_minus_dpo"], indent=1), flush=True)


if __name__ == "__main__":
    main()
