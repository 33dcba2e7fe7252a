"""Benchmark: wall time per epoch of DPO, ShaPO-T (exact / reuse) and ShaPO-R — Table 4 analogue.

All four methods train the same model (default SmolLM2-135M-Instruct; ``--model tiny`` for the
tiny random llama) in ONE process, from the same initial weights (restored before each run), on
the same rows (a balanced, seeded subsample of ``--rows`` pairs of the built-in
``preferences/train`` split), with the same batch size, max length, seed and preset (``quick``:
the lower half of the blocks and the embeddings frozen), each for exactly one epoch, through the
public trainer (``safelens.training.Trainer`` + ``make_method``):

==================  ===========================================================================
DPO                 ``dpo`` (the baseline every ratio is taken against)
ShaPO-T exact       ``shapo-t``, ``sam_mode="exact"``: two forward-backward passes on SAM steps
ShaPO-T reuse       ``shapo-t``, ``sam_mode="reuse"``: one pass per step (previous step's g_S)
ShaPO-R             ``shapo-r`` with its defaults (``sam_mode="exact"``)
==================  ===========================================================================

ShaPO runs use ``sam_every = --sam-every`` (the seed's tau = 5) and the methods' default
subspace (``selective``: the top 1 % value vectors against a probe trained on the rows).

What is timed: only the optimisation loop of the epoch, from the start of the first optimizer
step to the end of the last (an optimizer-wrapper proxy passed as ``Trainer(optimizer_wrapper=)``
timestamps the first step and counts forward-backward passes; a ``Trainer`` callback
timestamps the end of every step). It includes the per-step chat encoding, reference-cache
look-ups, SAM perturb/restore, clipping, AdamW, the scheduler and the per-step log write.
One-off costs are measured in the same runs but reported separately, never in the epoch:

* reference log-probs: computed once (in the warmup run) into a cache shared by all runs;
  every timed run must hit it (checked);
* reward model: ``default_reward_model()``, ShaPO-R's default scorer (loaded, or trained once
  and cached under ``$SAFELENS_CACHE``), and its scoring of the rows (first ShaPO-R run; later
  runs hit the reward cache); ``--rewards labels`` skips it (+/-1 reward columns);
* ``Method.prepare``: for ShaPO the probe + subspace selection (Algorithm 1, step 0), rebuilt
  every run; for ShaPO-R also the reward scoring above;
* the final checkpoint save.

Noise: one warmup run (DPO, ``min(3, steps)`` steps, not timed) first; then ``--repeats``
rounds, each running every method once (the order rotates by one method per round, so load
drift does not always hit the same method); each method's seconds/epoch is the median over the
rounds, its ratio is median(method) / median(DPO). Per-round ratios go into the JSON. The
ratios are only trustworthy on an otherwise idle machine: the script prints the load average
at the start and the end.

Usage::

    python benchmarks/bench_shapo_runtime.py                     # default model, 2 rounds
    python benchmarks/bench_shapo_runtime.py --model tiny        # tiny random llama (smoke)
    python benchmarks/bench_shapo_runtime.py --repeats 3 --threads 2 --out shapo_runtime.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Run from a checkout without installing: the repository root holds the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

#: label -> (registered method, config overrides on top of the shared settings)
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "DPO": ("dpo", {}),
    "ShaPO-T exact": ("shapo-t", {"sam_mode": "exact"}),
    "ShaPO-T reuse": ("shapo-t", {"sam_mode": "reuse"}),
    "ShaPO-R": ("shapo-r", {}),
}
BASELINE = "DPO"
#: issue 5, item 4: time per epoch / DPO's, at tau = 5
TARGETS = {"ShaPO-T exact": 1.22, "ShaPO-T reuse": 1.05, "ShaPO-R": 1.10}
#: the ShaPO seed's Table 4 (H100s, 4 backbones): ShaPO-T 21/16 .. 89/46, ShaPO-R 30/16 .. 99/46
SEED_RATIOS = {"ShaPO-T exact": "1.31-1.93", "ShaPO-R": "1.88-2.15"}
WARMUP_STEPS = 3


# --------------------------------------------------------------------------- measurement
def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


class _StepTimer:
    """Optimizer-wrapper proxy: times the loop from its first step, counts closure passes.

    Wraps the method's own wrapper (``DefaultStep`` or ``SubspaceSAM``), so the update is
    unchanged; everything else (``state_dict``, ``sam_steps``, …) is delegated.
    """

    def __init__(self) -> None:
        self.inner: Any = None
        self.device: torch.device | None = None
        self.created: float | None = None
        self.first_start: float | None = None
        self.passes = 0

    def step(self, closure: Callable[..., Any]) -> Any:
        if self.first_start is None:
            _sync(self.device)
            self.first_start = time.perf_counter()

        def counted(backward: bool = True) -> Any:
            self.passes += 1
            return closure(backward)

        return self.inner.step(counted)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (only during construction)
            raise AttributeError(name)
        return getattr(self.inner, name)


class _TimedScorer:
    """A reward scorer (``.score(prompts, responses)``) that adds up the time spent scoring."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name = inner, name
        self.seconds, self.calls, self.pairs = 0.0, 0, 0

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        t = time.perf_counter()
        out = self.inner.score(prompts, responses)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        self.pairs += len(prompts)
        return out


def _snapshot(model: Any) -> dict[str, torch.Tensor]:
    from safelens.models.loading import hf_state_dict

    return {k: v.detach().clone() for k, v in hf_state_dict(model.original_model).items()}


def _restore(model: Any, initial: dict[str, torch.Tensor]) -> None:
    """Put the initial weights back in place (the trainer trains the model in place)."""
    from safelens.models.loading import hf_state_dict

    with torch.no_grad():
        for name, tensor in hf_state_dict(model.original_model).items():
            tensor.copy_(initial[name])
    for p in model.original_model.parameters():
        p.grad = None


def lower_half_freeze(n_layers: int) -> str:
    """The ``freeze`` regex of the embeddings + the lower half of ``n_layers`` blocks.

    Examples:
        >>> lower_half_freeze(2)
        'embed_tokens|layers\\\\.(0)\\\\.'
        >>> lower_half_freeze(1)
        'embed_tokens'
    """
    half = n_layers // 2
    if half == 0:
        return "embed_tokens"
    return r"embed_tokens|layers\.(" + "|".join(str(i) for i in range(half)) + r")\."


def resolve_freeze(model: Any, preset_freeze: str | None) -> tuple[str | None, str | None]:
    """``(freeze, note)``: the preset's regex, or the lower half when it freezes every MLP.

    ShaPO's selective subspace needs trainable value vectors; the quick preset's regex is
    written for the default model's 30 blocks and freezes every block of a 2-layer tiny model.
    """
    n = int(model.cfg.n_layers)
    if preset_freeze is None:
        return None, None
    pattern = re.compile(preset_freeze)
    if any(not pattern.search(f"model.layers.{i}.mlp.down_proj.weight") for i in range(n)):
        return preset_freeze, None
    alt = lower_half_freeze(n)
    return alt, (f"the preset's freeze {preset_freeze!r} freezes all {n} blocks of this model; "
                 f"using the embeddings + lower half instead: {alt!r}")


def run_once(method_name: str, overrides: dict[str, Any], model: Any,
             initial: dict[str, torch.Tensor], rows: list[dict[str, Any]], settings: dict[str, Any],
             preset: str | None, work_dir: Path, scorer: Any = None,
             max_steps: int | None = None) -> dict[str, Any]:
    """Train ``method_name`` for one epoch (or ``max_steps``) from ``initial``; its timings.

    Returns a dict with ``epoch_s`` (the optimisation loop), ``steps``, ``passes``,
    ``sam_steps``, ``step_s`` (per-step durations), ``prepare_s``, ``reference_s``
    (reference pass, or cache read), ``save_s``, ``other_setup_s``, ``total_s``,
    ``reference_cache_hit``, ``final_loss``.
    """
    from safelens.training import Trainer, make_method

    _restore(model, initial)
    kw = {**settings, **overrides}
    if max_steps is not None:
        kw["max_steps"] = max_steps
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="overriding preset")  # printed once by main
        method = make_method(method_name, preset=preset, **kw)
    device = torch.device(kw["device"]) if kw.get("device") else None

    marks: dict[str, float] = {}
    timer = _StepTimer()
    timer.device = device
    inner_prepare = method.prepare

    def timed_prepare(prep_rows, ctx):
        marks["prepare_start"] = time.perf_counter()
        out = inner_prepare(prep_rows, ctx)
        marks["prepare_end"] = time.perf_counter()
        return out

    method.prepare = timed_prepare  # instance attribute: wraps the class's hook, same call

    def factory(optimizer, params, ctx):
        timer.created = time.perf_counter()
        timer.device = timer.device or next(iter(params)).device
        timer.inner = method.optimizer_wrapper(optimizer, params, ctx)
        return timer

    ends: list[float] = []

    def on_step(trainer, step, record):
        _sync(timer.device)
        ends.append(time.perf_counter())

    out_dir = Path(tempfile.mkdtemp(prefix=f"{method_name}-", dir=work_dir))
    trainer = Trainer(method, out_dir, model=model, rows=rows, data_source="benchmark rows",
                      preset=preset, reward_model=scorer if method_name == "shapo-r" else None,
                      optimizer_wrapper=factory, callbacks=[on_step])
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = trainer.train()
    t_end = time.perf_counter()
    truncation = None
    for w in caught:  # the trainer's "N of M encoded responses were cut": kept as a note
        if "were cut to max_length" in str(w.message):
            truncation = str(w.message)
        elif "truncated to max_length" in str(w.message):  # the probe's, same rows
            continue
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    shutil.rmtree(out_dir, ignore_errors=True)  # the saved model: hundreds of MB per run

    starts = [timer.first_start, *ends[:-1]]
    prep_start = marks.get("prepare_start", t0)
    prep_end = marks.get("prepare_end", prep_start)
    assert timer.first_start is not None and timer.created is not None and ends
    return {
        "method": method_name, "overrides": overrides, "rows": len(trainer.train_rows),
        "epoch_s": ends[-1] - timer.first_start,
        "steps": len(ends),
        "passes": timer.passes,
        "sam_steps": int(getattr(timer.inner, "sam_steps", 0)),
        "step_s": [e - s for s, e in zip(starts, ends, strict=True)],
        "other_setup_s": prep_start - t0,
        "prepare_s": prep_end - prep_start,
        "reference_s": timer.created - prep_end,
        "save_s": t_end - ends[-1],
        "total_s": t_end - t0,
        "reference_cache_hit": result.reference_cache_hit,
        "final_loss": result.history[-1]["loss"],
        "truncation": truncation,
    }


def measure(model: Any, rows: list[dict[str, Any]], *, methods: dict[str, tuple[str, dict]]
            = METHODS, repeats: int = 2, batch_size: int = 8, max_length: int = 128,
            n_rows: int = 64, preset: str | None = "quick", freeze: str | None = "preset",
            sam_every: int = 5, seed: int = 0, device: str | None = None, scorer: Any = None,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time one epoch of every method in ``methods`` on ``model``; see the module docstring.

    Args:
        model: the policy (a ``TransformerBridge``); restored to its weights at call time
            before every run, and left so at the end.
        rows: preference rows; the trainer takes a balanced seeded subsample of ``n_rows``.
        methods: ``{label: (registered name, overrides)}``; must contain ``BASELINE``.
        repeats: timed rounds (each runs every method once), after one warmup run.
        batch_size, max_length, seed, device: shared training settings.
        n_rows: ``max_train_rows``.
        preset: the preset under the shared settings (``quick``: frozen lower layers).
        freeze: a regex, ``None`` (nothing frozen) or ``"preset"`` (the preset's, or the lower
            half when the preset's freezes every block of this model).
        sam_every: tau of the ShaPO methods.
        scorer: ShaPO-R's reward scorer (``.score``); ``None`` = rows must carry
            ``reward_chosen`` / ``reward_rejected``.
        log: progress printer.

    Returns:
        ``{"settings", "notes", "warmup", "runs": {label: [run, ...]}, "summary": {label: …},
        "one_off": {…}}``; ``summary[label]`` has ``epoch_s`` (median), ``ratio`` (to the
        baseline's median), ``passes_per_step``, ``sam_steps``, ``steps``, ``round_ratios``.
    """
    from safelens.training import resolve_config

    if BASELINE not in methods:
        raise ValueError(f"methods must include the baseline {BASELINE!r}, got {list(methods)}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    notes: list[str] = []
    preset_freeze = resolve_config("dpo", preset=preset).freeze
    if freeze == "preset":
        freeze, note = resolve_freeze(model, preset_freeze)
        if note:
            notes.append(note)
    settings: dict[str, Any] = {
        "max_train_rows": n_rows, "batch_size": batch_size, "max_length": max_length,
        "epochs": 1.0, "max_steps": None, "seed": seed, "freeze": freeze, "progress": False,
    }
    if device is not None:
        settings["device"] = device
    base = resolve_config("dpo", preset=preset)
    changed = {k: (getattr(base, k), v) for k, v in settings.items()
               if k not in ("max_steps", "progress", "device") and getattr(base, k) != v}
    if changed:
        notes.append(f"preset {preset!r} settings overridden for this benchmark: "
                     + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))

    initial = _snapshot(model)
    work_dir = Path(tempfile.mkdtemp(prefix="bench_shapo_runtime_"))
    try:
        # One cache for all runs: reference log-probs (identical for every method here: same
        # rows, columns, max_length, weights) and reward scores are computed once.
        settings["reference_cache_dir"] = str(work_dir / "cache")
        sam = {"sam_every": sam_every}
        per_method = {label: (name, {**(sam if name.startswith("shapo") else {}), **extra})
                      for label, (name, extra) in methods.items()}

        warm_name, warm_extra = per_method[BASELINE]
        log(f"warmup: {warm_name} for {WARMUP_STEPS} steps (computes the shared reference cache)")
        warmup = run_once(warm_name, warm_extra, model, initial, rows, settings, preset,
                          work_dir, max_steps=WARMUP_STEPS)
        log(f"  reference pass {warmup['reference_s']:.2f}s, {warmup['steps']} steps in "
            f"{warmup['epoch_s']:.2f}s")

        labels = list(methods)
        runs: dict[str, list[dict]] = {label: [] for label in labels}
        for r in range(repeats):
            order = labels[r % len(labels):] + labels[: r % len(labels)]
            for label in order:
                name, extra = per_method[label]
                run = run_once(name, extra, model, initial, rows, settings, preset, work_dir,
                               scorer=scorer)
                run["round"] = r
                runs[label].append(run)
                log(f"round {r} {label:14s} epoch {run['epoch_s']:8.2f}s  {run['steps']} steps  "
                    f"{run['passes']} passes ({run['sam_steps']} SAM)  "
                    f"prepare {run['prepare_s']:.2f}s  loss {run['final_loss']:.4f}")
        _restore(model, initial)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    if runs[BASELINE][0]["truncation"]:
        notes.append(f"{runs[BASELINE][0]['truncation']} (one epoch of {BASELINE})")
    misses = [(label, run["round"]) for label, rs in runs.items() for run in rs
              if run["reference_cache_hit"] is False]
    if misses:
        notes.append(f"reference cache missed in timed runs {misses}: those runs recomputed the "
                     "reference (outside the timed epoch, but unexpected)")
    base_s = statistics.median(run["epoch_s"] for run in runs[BASELINE])
    summary = {}
    for label, rs in runs.items():
        med = statistics.median(run["epoch_s"] for run in rs)
        steps = rs[0]["steps"]
        by_round = {run["round"]: run["epoch_s"] for run in runs[BASELINE]}
        summary[label] = {
            "method": rs[0]["method"], "overrides": rs[0]["overrides"],
            "epoch_s": med, "epoch_s_all": [run["epoch_s"] for run in rs],
            "step_s_median": statistics.median(s for run in rs for s in run["step_s"]),
            "ratio": med / base_s,
            "round_ratios": [run["epoch_s"] / by_round[run["round"]] for run in rs],
            "steps": steps, "sam_steps": rs[0]["sam_steps"],
            "passes_per_step": rs[0]["passes"] / steps,
            "prepare_s": statistics.median(run["prepare_s"] for run in rs),
            "save_s": statistics.median(run["save_s"] for run in rs),
            "target": TARGETS.get(label), "seed_ratio": SEED_RATIOS.get(label),
        }
        if label in TARGETS:
            summary[label]["pass"] = med / base_s <= TARGETS[label]
    one_off = {"reference_s": warmup["reference_s"],
               "reference_computed_in": "warmup" if not warmup["reference_cache_hit"] else None}
    if scorer is not None and hasattr(scorer, "seconds"):
        one_off.update(reward_scoring_s=scorer.seconds, reward_scored_pairs=scorer.pairs)
    return {"settings": {**settings, "preset": preset, "sam_every": sam_every,
                         "repeats": repeats, "n_rows_used": runs[BASELINE][0]["rows"]},
            "notes": notes, "warmup": warmup, "runs": runs, "summary": summary,
            "one_off": one_off}


# --------------------------------------------------------------------------- report
def format_table(results: dict[str, Any]) -> str:
    """The Table 4 analogue: seconds/epoch, ratio to DPO, target, SAM passes per step."""
    s = results["summary"]
    lines = [f"{'method':16s}{'s/epoch':>10s}{'s/step':>9s}{'ratio':>8s}{'target':>9s}"
             f"{'':>6s}{'seed':>11s}{'passes/step':>13s}{'SAM steps':>11s}"]
    for label, row in s.items():
        target = f"<= {row['target']:.2f}" if row["target"] is not None else "baseline" \
            if label == BASELINE else "-"
        verdict = ("PASS" if row["pass"] else "MISS") if "pass" in row else ""
        lines.append(
            f"{label:16s}{row['epoch_s']:10.2f}{row['step_s_median']:9.3f}{row['ratio']:8.2f}"
            f"{target:>9s}{verdict:>6s}{row['seed_ratio'] or '-':>11s}"
            f"{row['passes_per_step']:13.3f}{row['sam_steps']:>7d} / {row['steps']}")
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    return {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor() or None,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _load(model_name: str) -> Any:
    if model_name == "tiny":
        from safelens.models import load_tiny_model

        return load_tiny_model(seed=0)
    from safelens import load_model

    return load_model(model_name)


def _reward_scorer(kind: str) -> tuple[Any, dict[str, Any]]:
    if kind == "labels":
        return None, {"reward_source": "labels (reward_chosen = 1, reward_rejected = -1)"}
    from safelens.models.loading import cache_dir
    from safelens.reward import default_reward_model

    cached = (cache_dir() / "reward" / "default-seed0" / "reward_config.json").is_file()
    t = time.perf_counter()
    model = default_reward_model()
    load_s = time.perf_counter() - t
    return _TimedScorer(model, "default-seed0"), {
        "reward_source": "default_reward_model()",
        "reward_model_s": load_s,
        "reward_model_was": "loaded from cache" if cached else "trained now, then cached"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from safelens.data import load_builtin
    from safelens.models.loading import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"'{DEFAULT_MODEL}' (default), 'tiny' (random tiny llama), an HF id or dir")
    ap.add_argument("--rows", type=int, default=64, help="training pairs (one epoch = rows/batch)")
    ap.add_argument("--batch-size", type=int, default=8, help="preference pairs per step")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--preset", default="quick", help="'quick' (frozen lower layers), 'paper' "
                    "or 'none'")
    ap.add_argument("--freeze", default="preset",
                    help="'preset' (the preset's; the lower half if it freezes every block), "
                         "'none' or a regex of parameter names")
    ap.add_argument("--sam-every", type=int, default=5, help="ShaPO's tau (seed: 5)")
    ap.add_argument("--repeats", type=int, default=2, help="timed rounds; medians are reported")
    ap.add_argument("--rewards", choices=("model", "labels"), default="model",
                    help="ShaPO-R's scores: the default reward model (one-off, reported "
                         "separately) or +/-1 label columns (skips the reward model)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--device", default=None, help="cpu, cuda, ...; default: what Accelerate picks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", "--json", dest="out", default=None,
                    help="write the results (summary, every run, machine info) as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.rows < 1 or args.batch_size < 1 or args.sam_every < 1:
        ap.error("--repeats, --rows, --batch-size and --sam-every must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" of every run's final save
    preset = None if args.preset == "none" else args.preset
    freeze = None if args.freeze == "none" else args.freeze

    load_start = os.getloadavg()
    machine = _machine()
    print(f"machine: {machine['cpu_count']} CPUs, torch {machine['torch']} with "
          f"{machine['torch_threads']} threads, cuda: {machine['cuda']}; load average at start "
          f"{load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f} (1 / 5 / 15 min); "
          "the ratios are only trustworthy on an otherwise idle machine")
    t = time.perf_counter()
    model = _load(args.model)
    print(f"model {args.model}: loaded in {time.perf_counter() - t:.1f}s")
    rows = load_builtin("preferences", "train")
    if args.rewards == "labels":
        rows = [{**r, "reward_chosen": 1.0, "reward_rejected": -1.0} for r in rows]
    scorer, reward_info = _reward_scorer(args.rewards)
    if "reward_model_s" in reward_info:
        print(f"reward model: {reward_info['reward_model_was']} in "
              f"{reward_info['reward_model_s']:.1f}s")

    results = measure(model, rows, repeats=args.repeats, batch_size=args.batch_size,
                      max_length=args.max_length, n_rows=args.rows, preset=preset, freeze=freeze,
                      sam_every=args.sam_every, seed=args.seed, device=args.device,
                      scorer=scorer)
    load_end = os.getloadavg()
    results.update(model=args.model, machine={**machine, "loadavg_start": load_start,
                                              "loadavg_end": load_end})
    results["one_off"].update(reward_info)

    s, st = results["summary"], results["settings"]
    steps = s[BASELINE]["steps"]
    print()
    print(f"Wall time per epoch (Table 4 analogue): {args.model}, {st['n_rows_used']} pairs "
          f"= {steps} steps of {args.batch_size}, max_length "
          f"{args.max_length}, preset {preset}, freeze {st['freeze']!r}, tau {args.sam_every}, "
          f"median of {args.repeats} round(s), seed {args.seed}")
    print(format_table(results))
    print("ratio = median s/epoch / DPO's; per-round ratios: " + "; ".join(
        f"{label} {', '.join(f'{x:.2f}' for x in row['round_ratios'])}"
        for label, row in s.items() if label != BASELINE))
    print("seed = the ShaPO seed's Table 4 (ShaPO-T 1.31-1.93x, ShaPO-R 1.88-2.15x over DPO, "
          "H100s); reuse mode is ours (no seed number)")
    if steps % args.sam_every:
        print(f"note: an epoch of {steps} steps holds {steps // args.sam_every} SAM step(s), a "
              f"SAM share of {steps // args.sam_every / steps:.3f} rather than 1/tau = "
              f"{1 / args.sam_every:.3f}; use --rows a multiple of batch_size x tau "
              f"({args.batch_size * args.sam_every}) for exactly 1/tau")
    for note in results["notes"]:
        print(f"note: {note}")
    oo = results["one_off"]
    parts = [f"reference log-probs {oo['reference_s']:.2f}s (once, shared by all runs)"]
    if "reward_model_s" in oo:
        parts.append(f"reward model {oo['reward_model_s']:.1f}s ({oo['reward_model_was']})")
    if "reward_scoring_s" in oo:
        parts.append(f"reward scoring {oo['reward_scoring_s']:.2f}s "
                     f"({oo['reward_scored_pairs']} responses, first ShaPO-R run, includes loading "
                     "the encoder)")
    parts += [f"prepare {label} {row['prepare_s']:.2f}s" for label, row in s.items()
              if row["method"] != "dpo"]
    parts.append(f"final save {statistics.median(r['save_s'] for r in s.values()):.2f}s/run")
    print("one-off costs (not in s/epoch): " + "; ".join(parts))
    print("  (prepare = probe + subspace selection, rebuilt every run"
          + ("; ShaPO-R's first run also scores the rows)" if "reward_scoring_s" in oo else ")"))
    # The 1-minute load at the end counts this benchmark's own threads: only the excess over
    # them is other work.
    others = load_end[0] - torch.get_num_threads()
    busy = others > 0.25 * (os.cpu_count() or 1)
    print(f"load average at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}: "
          + ("the machine was BUSY, so the ratios and PASS/MISS above are not trustworthy; "
             "rerun on an idle machine" if busy else
             "ratios are only trustworthy on an idle machine, as this one looked"))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
