"""Safety as a function of perturbation strength (seed 002): one runner per attack.

:func:`noise_curve` (parameter noise at relative scales ``sigmas``), :func:`activation_noise_curve`
(activation noise) and :func:`quantization_sweep` (weight formats) evaluate the model under each
(strength, seed) cell with :func:`safelens.eval.runner.generate_rows` +
:func:`~safelens.eval.runner.judge_rows` (ASR, over-refusal and degenerate rate with bootstrap
CIs, :func:`safelens.eval.metrics.summarize`) and aggregate over seeds.

A cell is cached as ``OUT/<attack>/<strength>-seed<seed>.json`` (summary + per-row verdicts; the
judged rows go to the ``.jsonl`` beside it) and reused when its ``key`` is identical: the model's
weights fingerprint (:func:`safelens.models.fingerprint.model_fingerprint`, taken before any
perturbation), the rows' hash, the attack's settings, the decoding settings and the judge.
Strength 0 (``sigma=0``) is the unperturbed model: it is evaluated once and reported for every
seed. Quantization is deterministic, so a format has one cell (``seed`` is ``None``).

Returned record (every runner)::

    {"attack", "settings", "model_fingerprint", "rows_sha256", "n_rows",
     "cells": [{"strength", "seed", "summary": {"asr", "over_refusal", "degenerate",
                "harmful_refusal_rate"}, "cached", "path", ...}],
     "curve": [{"strength", "n_seeds",
                "asr" | "over_refusal" | "degenerate": {"value", "ci_low", "ci_high", "n",
                                                        "per_seed": [rate, ...]}}]}

Each rate is ``{"value", "ci_low", "ci_high", "n"}``. In ``curve``, ``value`` is the mean over
seeds; the interval is a Student-t interval over the seeds' values when there are at least two
seeds (seed-to-seed variation; each seed's own bootstrap interval over prompts is in
``per_seed``), else the single seed's bootstrap interval.

Examples:
    >>> from safelens.models import load_tiny_model                  # doctest: +SKIP
    >>> rec = noise_curve(load_tiny_model(), rows, [0, 0.05], seeds=[0, 1],
    ...                   out="runs/noise")                           # doctest: +SKIP
    >>> [p["asr"]["value"] for p in rec["curve"]]                      # doctest: +SKIP
    [0.1, 0.35]
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safelens.attacks.perturb import (
    activation_noise,
    activation_noise_hooks,
    check_layer,
    check_sigma,
    parameter_noise_applied,
)
from safelens.attacks.quantize import check_format, quantization_applied
from safelens.data.io import write_jsonl
from safelens.data.jsonfile import cached_json, strict_json
from safelens.errors import SafelensError
from safelens.eval.degeneracy import SALAD_NLL, response_nll, salad_flags
from safelens.eval.generation import GenerationConfig
from safelens.eval.judges import get_judge
from safelens.eval.metrics import detectable_difference, paired_difference
from safelens.eval.runner import generate_rows, judge_rows, summarize_judged
from safelens.geometry.value_vectors import Subspace
from safelens.models.fingerprint import model_fingerprint
from safelens.simulation.experiments import t_interval

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge


__all__ = ["CURVE_METRICS", "activation_noise_curve", "aggregate_seeds", "cell_success",
           "compare_curves", "curve_table", "flag_salad", "noise_curve", "quantization_sweep", "rows_sha256"]

#: The rates each cell reports and the curve aggregates.
CURVE_METRICS = ("asr", "over_refusal", "degenerate")
CACHE_FORMAT = "safelens.perturb-cell/1"


def rows_sha256(rows: Sequence[Mapping[str, Any]]) -> str:
    """Hash of the rows' ids, prompts, prefills and labels (what the evaluation reads)."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([r.get("id"), r["prompt"], r.get("prefill"), r.get("harmful"),
                             r.get("kind")], ensure_ascii=False).encode())
    return h.hexdigest()[:20]


def _subspace_digest(subspace: Any) -> str | None:
    """A hash of a subspace's parameter names and masks (part of the cache key)."""
    if subspace is None:
        return None

    pairs = (list(zip(subspace.param_names, subspace.masks, strict=False))
             if isinstance(subspace, Subspace) else list(subspace.items()))
    h = hashlib.sha256()
    for name, mask in pairs:
        h.update(str(name).encode())
        if hasattr(mask, "numpy"):
            h.update(mask.detach().bool().cpu().numpy().tobytes())
        else:
            h.update(repr(mask).encode())
    return h.hexdigest()[:20]


def aggregate_seeds(rates: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """One strength's rate over seeds: mean, t-interval over seeds (>= 2), per-seed rates.

    Examples:
        >>> r = aggregate_seeds([{"value": 0.2, "ci_low": 0.1, "ci_high": 0.3, "n": 10},
        ...                      {"value": 0.4, "ci_low": 0.2, "ci_high": 0.6, "n": 10}])
        >>> round(r["value"], 3), r["n"], len(r["per_seed"])
        (0.3, 20, 2)
    """
    have = [r for r in rates if r is not None and r.get("value") is not None
            and math.isfinite(r["value"])]
    if not have:
        return None
    if len(have) == 1:
        out = {k: have[0].get(k) for k in ("value", "ci_low", "ci_high", "n")}
    else:
        t = t_interval([r["value"] for r in have])
        out = {"value": t["value"], "ci_low": max(0.0, t["ci_low"]),
               "ci_high": min(1.0, t["ci_high"]), "n": sum(int(r["n"]) for r in have)}
    out["per_seed"] = list(rates)
    return out


def _strength_label(strength: Any) -> str:
    return f"{strength:g}" if isinstance(strength, int | float) else str(strength)


def _run_cells(
    attack: str,
    model: TransformerBridge,
    rows: Sequence[dict],
    strengths: Sequence[Any],
    seeds: Sequence[int | None],
    perturb: Callable[[Any, int | None], Any],
    settings: dict[str, Any],
    *,
    judge: Any,
    gen_config: GenerationConfig | None,
    out: str | Path | None,
    agreement_judges: Sequence[str] | None,
    progress: bool,
    zero: Any = None,
    salad_nll: float | None = None,
) -> dict[str, Any]:
    """Evaluate every (strength, seed) cell under ``perturb(strength, seed)`` (a context
    manager), with the cache; then aggregate."""
    if not rows:
        raise SafelensError(f"{attack}: no prompt rows; expected at least one")
    cfg = gen_config or GenerationConfig()
    judge_name = judge if isinstance(judge, str) else str(getattr(judge, "name", None)
                                                           or type(judge).__name__)
    judge_obj = get_judge(judge) if isinstance(judge, str) else judge
    fingerprint = model_fingerprint(model)
    digest = rows_sha256(rows)
    base_key = {"format": CACHE_FORMAT, "attack": attack, "model_fingerprint": fingerprint,
                "rows_sha256": digest, "n_rows": len(rows), "settings": settings,
                "decoding": asdict(cfg), "judge": judge_name,
                "agreement_judges": list(agreement_judges or ())}
    if salad_nll is not None:
        base_key["salad_nll"] = salad_nll
    base_key = strict_json(json.loads(json.dumps(base_key, default=str)))
    folder = Path(out) / attack if out is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    cells: list[dict[str, Any]] = []
    done: dict[tuple[str, Any], dict[str, Any]] = {}
    for strength in strengths:
        for seed in seeds:
            # strength 0 is the unperturbed model: one evaluation serves every seed
            run_seed = seeds[0] if zero is not None and strength == zero else seed
            if (_strength_label(strength), run_seed) in done:
                cells.append({**done[(_strength_label(strength), run_seed)], "seed": seed,
                              "shared_with_seed": run_seed})
                continue
            key = {**base_key, "strength": strength, "seed": run_seed}
            stem = _strength_label(strength) + (f"-seed{run_seed}" if run_seed is not None
                                                else "")
            path = folder / f"{stem}.json" if folder is not None else None
            computed: list[bool] = []

            def compute(strength: Any = strength, run_seed: Any = run_seed,
                        path: Path | None = path, computed: list[bool] = computed
                        ) -> dict[str, Any]:
                computed.append(True)
                with perturb(strength, run_seed) as info:
                    generated = generate_rows(model, [dict(r) for r in rows], config=cfg,
                                              progress=progress)
                judged, summary = judge_rows(generated, judge_obj,
                                             agreement_judges=agreement_judges or (),
                                             judge_name=judge_name)
                if summary is None:
                    raise SafelensError(f"{attack}: every row needs 'harmful' or 'kind' to be "
                                        "summarised")
                if salad_nll is not None:  # scored by the clean model, after the perturbation
                    summary = {**summary, **flag_salad(model, judged, salad_nll)}
                kept = {k: summary.get(k) for k in (*CURVE_METRICS, "harmful_refusal_rate",
                                                    "degenerate_harmful", "degenerate_benign",
                                                    "n_empty", "judge", "judges")}
                if path is not None:
                    write_jsonl(path.with_suffix(".jsonl"), judged)
                return {"strength": strength, "seed": run_seed, "summary": kept,
                        "perturbation": info, "refused": [r.get("refused") for r in judged],
                        "degenerate": [r.get("degenerate") for r in judged],
                        "salad_nll": [r.get("salad_nll") for r in judged],
                        "ids": [r.get("id") for r in judged]}

            cell = {**cached_json(path, key, compute), "cached": not computed,
                    "path": str(path) if path else None}
            done[(_strength_label(strength), run_seed)] = cell
            cells.append({**cell, "seed": seed}
                         | ({"shared_with_seed": run_seed} if run_seed != seed else {}))
    curve = []
    for strength in strengths:
        mine = [c for c in cells if _strength_label(c["strength"]) == _strength_label(strength)]
        point: dict[str, Any] = {"strength": strength, "n_seeds": len(
            {c.get("shared_with_seed", c["seed"]) for c in mine})}
        for metric in CURVE_METRICS:
            unique = {c.get("shared_with_seed", c["seed"]): c["summary"].get(metric)
                      for c in mine}
            point[metric] = aggregate_seeds(list(unique.values()))
        curve.append(point)
    return {"attack": attack, "settings": settings, "model_fingerprint": fingerprint,
            "rows_sha256": digest, "n_rows": len(rows), "judge": judge_name,
            "cells": cells, "curve": curve}


def flag_salad(model: Any, judged: list[dict], threshold: float) -> dict[str, Any]:
    """Score each judged row's response with the (clean) ``model``, store ``salad_nll``, mark
    word salad (:func:`safelens.eval.degeneracy.salad_flags`) ``degenerate`` with reason
    ``"salad"``, and return the summary recomputed from the rows."""
    nll, n_tokens = response_nll(model, [r["prompt"] for r in judged],
                                 [r.get("response") for r in judged])
    for row, value, salad in zip(judged, nll, salad_flags(nll, n_tokens, threshold),
                                 strict=True):
        row["salad_nll"] = None if math.isnan(value) else round(float(value), 3)
        if salad and not row.get("degenerate"):
            row["degenerate"], row["degenerate_reason"] = True, "salad"
    return summarize_judged(judged)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SafelensError(f"seeds {seeds!r}: expected one or more integers >= 0")
    return seeds


def noise_curve(
    model: TransformerBridge,
    rows: Sequence[dict],
    sigmas: Sequence[float],
    seeds: Sequence[int] = (0,),
    *,
    layer: int | None = None,
    subspace: Subspace | Mapping[str, Any] | None = None,
    judge: Any = "keyword",
    gen_config: GenerationConfig | None = None,
    out: str | Path | None = None,
    agreement_judges: Sequence[str] | None = (),
    progress: bool = False,
    salad_nll: float | None = SALAD_NLL,
) -> dict[str, Any]:
    """Safety under Gaussian parameter noise of relative scale ``sigma``, per sigma and seed.

    Args:
        model: the aligned ``TransformerBridge`` (restored bit-exactly after every cell).
        rows: labelled prompt rows.
        sigmas: relative scales (>= 0): ``||eps_W|| = sigma * ||W||`` per tensor.
        seeds: noise seeds.
        layer, subspace: the target (:func:`safelens.attacks.perturb.target_parameters`);
            default every parameter.
        judge: refusal judge name or object (default ``keyword``).
        gen_config: decoding settings (default greedy, 128 tokens).
        out: cache folder (cells in ``OUT/parameter-noise/``); None caches nothing.
        agreement_judges: extra refusal judges per cell (default none).
        progress: tqdm bars.
        salad_nll: after each cell the clean model scores the responses and marks those above
            this mean NLL as degenerate word salad (:data:`safelens.eval.degeneracy.SALAD_NLL`,
            the default); None skips the check.

    Returns:
        The record described in the module docstring.
    """
    sigmas = [check_sigma(s) for s in sigmas]
    seeds = _check_seeds(seeds)
    if layer is not None:
        check_layer(layer, int(model.cfg.n_layers))
    settings = {"target": ("subspace" if subspace is not None else
                           f"layer {layer}" if layer is not None else "all"),
                "layer": layer, "subspace": _subspace_digest(subspace)}

    def perturb(sigma: float, seed: int | None):
        return _summarised(parameter_noise_applied(model, sigma, seed or 0, layer=layer,
                                                   subspace=subspace),
                           lambda noise: {"tensors": len(noise)})

    return _run_cells("parameter-noise", model, rows, sigmas, seeds, perturb, settings,
                      judge=judge, gen_config=gen_config, out=out,
                      agreement_judges=agreement_judges, progress=progress, zero=0.0,
                      salad_nll=salad_nll)


def activation_noise_curve(
    model: TransformerBridge,
    rows: Sequence[dict],
    sigmas: Sequence[float],
    seeds: Sequence[int] = (0,),
    *,
    layers: Sequence[int] | int | None = None,
    sites: Sequence[str] = ("resid_post",),
    judge: Any = "keyword",
    gen_config: GenerationConfig | None = None,
    out: str | Path | None = None,
    agreement_judges: Sequence[str] | None = (),
    progress: bool = False,
    salad_nll: float | None = SALAD_NLL,
) -> dict[str, Any]:
    """Safety under per-position activation noise (:func:`safelens.attacks.perturb.activation_noise`)
    at ``layers`` (default all) and ``sites`` (``resid_post``, ``mlp_out``, ...), per sigma and
    seed. Arguments and result as :func:`noise_curve` (cells in ``OUT/activation-noise/``)."""
    sigmas = [check_sigma(s) for s in sigmas]
    seeds = _check_seeds(seeds)
    layer_list = [layers] if isinstance(layers, int) else (
        list(layers) if layers is not None else None)
    activation_noise_hooks(model, 0.0, layers=layer_list, sites=sites)  # checks layers/sites
    settings = {"layers": layer_list, "sites": list(sites)}

    def perturb(sigma: float, seed: int | None):
        return _summarised(activation_noise(model, sigma, seed or 0, layers=layer_list,
                                            sites=sites), lambda names: {"hooks": names})

    return _run_cells("activation-noise", model, rows, sigmas, seeds, perturb, settings,
                      judge=judge, gen_config=gen_config, out=out,
                      agreement_judges=agreement_judges, progress=progress, zero=0.0,
                      salad_nll=salad_nll)


def quantization_sweep(
    model: TransformerBridge,
    rows: Sequence[dict],
    formats: Sequence[str],
    *,
    embedding_format: str | None = None,
    judge: Any = "keyword",
    gen_config: GenerationConfig | None = None,
    out: str | Path | None = None,
    agreement_judges: Sequence[str] | None = (),
    progress: bool = False,
    salad_nll: float | None = SALAD_NLL,
) -> dict[str, Any]:
    """Safety after each weight-quantization round trip (:mod:`safelens.attacks.quantize`);
    ``"none"`` in ``formats`` is the unquantized model. One cell per format (deterministic);
    each cell's ``perturbation`` holds the round trip's report (relative weight error, F16
    fallbacks). Cells in ``OUT/quantization/``."""
    names = ["none" if str(f).lower() == "none" else check_format(f, "formats")
             for f in formats]
    if not names:
        raise SafelensError("formats is empty; expected one or more formats")
    if embedding_format is not None:
        embedding_format = check_format(embedding_format, "embedding_format")

    def perturb(fmt: str, seed: int | None):
        import contextlib

        if fmt == "none":
            return contextlib.nullcontext({"format": "none"})
        return _summarised(quantization_applied(model, fmt, embedding_format=embedding_format),
                           lambda report: {k: v for k, v in report.items() if k != "tensors"})

    return _run_cells("quantization", model, rows, names, [None], perturb,
                      {"embedding_format": embedding_format}, judge=judge,
                      gen_config=gen_config, out=out, agreement_judges=agreement_judges,
                      progress=progress, salad_nll=salad_nll)


class _summarised:
    """Wrap a context manager so that ``as`` yields a small JSON-able summary of its value."""

    def __init__(self, manager: Any, summary: Callable[[Any], dict]) -> None:
        self.manager, self.summary = manager, summary

    def __enter__(self) -> dict:
        return self.summary(self.manager.__enter__())

    def __exit__(self, *exc: Any) -> Any:
        return self.manager.__exit__(*exc)


def curve_table(record: Mapping[str, Any]) -> str:
    """A small text table of a runner's curve: strength, ASR, over-refusal, degenerate (% with
    intervals) and the seeds.

    Examples:
        >>> r = {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n": 8, "per_seed": []}
        >>> print(curve_table({"attack": "parameter-noise", "curve": [
        ...     {"strength": 0.01, "n_seeds": 1, "asr": r, "over_refusal": None,
        ...      "degenerate": r}]}))
        parameter-noise  strength  ASR                   over-refusal          degenerate            seeds
                         0.01      50.0 [25.0, 75.0]     -                     50.0 [25.0, 75.0]     1
    """
    def cell(stat: Mapping[str, Any] | None) -> str:
        if not stat or stat.get("value") is None:
            return "-"
        lo, hi = stat.get("ci_low"), stat.get("ci_high")
        ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
        return f"{100 * stat['value']:.1f}{ci}"

    lines = [f"{record['attack']:<16} {'strength':<9} {'ASR':<21} {'over-refusal':<21} "
             f"{'degenerate':<21} seeds"]
    for p in record["curve"]:
        lines.append(f"{'':<16} {_strength_label(p['strength']):<9} {cell(p['asr']):<21} "
                     f"{cell(p['over_refusal']):<21} {cell(p['degenerate']):<21} "
                     f"{p['n_seeds']}")
    return "\n".join(line.rstrip() for line in lines)


def cell_success(cell: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """``{row id: attack success}`` of one cell's harmful rows: neither refused nor degenerate
    (the ASR numerator of :func:`safelens.eval.metrics.summarize`). ``rows`` are the prompt rows
    the cell was evaluated on (for ``harmful``)."""
    harmful = {r.get("id"): bool(r.get("harmful", r.get("kind") == "harmful")) for r in rows}
    return {i: not bool(ref) and not bool(deg)
            for i, ref, deg in zip(cell["ids"], cell["refused"], cell["degenerate"], strict=True)
            if harmful.get(i)}


def compare_curves(a: Mapping[str, Any], b: Mapping[str, Any],
                   rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ASR of model ``a`` minus model ``b`` at each strength both records measured, paired on
    (prompt, noise seed): both models saw the same prompts and, for a seed, the same noise draw.

    Pairs from several seeds share prompts, so the paired (Newcombe) interval treats them as
    independent and is somewhat narrow when seeds agree; with one seed it is exact in form.
    ``mde`` is :func:`safelens.eval.metrics.detectable_difference` at the pooled rate.

    Returns:
        One dict per strength: ``{"strength", "asr_a", "asr_b", "diff", "ci_low", "ci_high",
        "p_value", "n_pairs", "seeds", "mde"}``.

    Raises:
        SafelensError: the records were evaluated on other prompts or with another attack.
    """
    if a["attack"] != b["attack"] or a["rows_sha256"] != b["rows_sha256"]:
        raise SafelensError(f"compare_curves: {a['attack']} vs {b['attack']} on other prompts "
                            "or attacks; expected the same attack on the same rows")
    out = []
    for strength in [p["strength"] for p in a["curve"]]:
        label = _strength_label(strength)

        sa, sb = ({c.get("shared_with_seed", c["seed"]): cell_success(c, rows)
                   for c in rec["cells"] if _strength_label(c["strength"]) == label}
                  for rec in (a, b))
        seeds = sorted(set(sa) & set(sb), key=str)
        xa, xb = [], []
        for seed in seeds:
            ids = sorted(set(sa[seed]) & set(sb[seed]))
            xa += [sa[seed][i] for i in ids]
            xb += [sb[seed][i] for i in ids]
        if not xa:
            continue
        d = paired_difference(xa, xb)
        pooled = (sum(xa) + sum(xb)) / (2 * len(xa))
        out.append({"strength": strength, "asr_a": sum(xa) / len(xa), "asr_b": sum(xb) / len(xb),
                    "diff": d["diff"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                    "p_value": d["p_value"], "n_pairs": len(xa), "seeds": seeds,
                    "mde": detectable_difference(pooled, len(xa))})
    return out
