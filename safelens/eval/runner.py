"""Evaluate a model on a prompt set: generate, judge, summarise — resumable.

:func:`evaluate_policy` is what ``safelens eval``, ``safelens demo`` and the notebooks run
(:func:`evaluate_on_sets` runs it for one model on several named prompt sets):
:func:`generate_rows` (rows generated in chunks and appended to ``OUT.partial``; an interrupted
run started again with the same ``out`` skips the rows already there, when
``OUT.partial.meta.json`` shows the same model and decoding settings), :func:`judge_rows`, an
optional reward-model win rate, then :func:`save_eval` writes ``OUT`` and ``OUT.summary.json``.
A finished ``OUT`` is read back instead of generated again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from safelens import __version__
from safelens.data.io import read_jsonl, read_jsonl_prefix, write_jsonl
from safelens.data.jsonfile import rows_key, strict_json, write_json
from safelens.errors import SafelensError
from safelens.eval.checks import check_generation_config, check_prompt_lengths
from safelens.eval.degeneracy import degenerate_reasons
from safelens.eval.generation import GenerationConfig, generate
from safelens.eval.judges import check_judge_name, get_judge, run_judge
from safelens.eval.metrics import (
    rate,
    summarize,
    summarize_judges,
    win_outcomes,
    win_rate_summary,
)
from safelens.models import load_model
from safelens.models.fingerprint import model_fingerprint
from safelens.models.tokens import token_prefix
from safelens.reward.model import RewardScorer


@dataclass
class EvalResult:
    """Rows with ``response`` (and ``refused`` where judged) plus the metric summary."""

    rows: list[dict]
    summary: dict | None = None
    judge: str | None = None
    extra: dict = field(default_factory=dict)


def _prefill_of(row: dict) -> str | None:
    prefill = row.get("prefill")
    if prefill is not None and not isinstance(prefill, str):
        raise SafelensError(f"row {row.get('id', '?')}: 'prefill' must be a string, got {type(prefill).__name__}")
    return prefill or None


def partial_provenance(model: torch.nn.Module, config: GenerationConfig,
                       source: str | os.PathLike[str] | None = None) -> dict:
    """What produced an ``OUT.partial``: model name, weights fingerprint, decoding settings
    and (for provenance) the prompts file's SHA-256. Stored as ``OUT.partial.meta.json``."""
    name = str(getattr(getattr(model, "cfg", None), "model_name", None) or type(model).__name__)
    if Path(name).exists():  # a local directory: the same one however it was spelled
        name = str(Path(name).resolve())
    record = {"format": PARTIAL_FORMAT, "model": name,
              "weights": model_fingerprint(model), "decoding": asdict(config)}
    if source is not None and Path(source).is_file():
        record["prompts_file"] = str(source)
        record["prompts_sha256"] = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return record


PARTIAL_FORMAT = "safelens.eval-partial/1"
#: Keys of the provenance record that must match for a partial file to be reused.
_MUST_MATCH = ("format", "model", "weights", "decoding")


def _differs(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    """Why a stored evaluation is not this one: ``"it differs from this evaluation in its
    weights, decoding"`` (the :data:`_MUST_MATCH` keys that differ)."""
    keys = [k for k in _MUST_MATCH if saved.get(k) != wanted[k]]
    return f"it differs from this evaluation in its {', '.join(keys)}"


def _reusable_partial(partial: Path, meta_path: Path, wanted: dict) -> bool:
    """Whether ``partial`` was produced by the same model and decoding settings.

    When it was not (or nobody recorded what produced it), the old file is moved aside to
    ``OUT.partial.stale`` and the fresh start is announced on stderr: never reused silently.
    """
    if not partial.exists():
        return False
    try:
        saved = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    except (OSError, json.JSONDecodeError):
        saved = None
    if isinstance(saved, dict) and all(saved.get(k) == wanted[k] for k in _MUST_MATCH):
        return True
    if saved is None:
        why = f"nothing records what produced it (no {meta_path.name})"
    else:
        why = _differs(saved, wanted)
        if saved.get("model") != wanted["model"]:
            why += f" (model {saved.get('model')!r}, now {wanted['model']!r})"
    stale = Path(str(partial) + ".stale")
    partial.replace(stale)
    meta_path.unlink(missing_ok=True)
    print(f"safelens: not resuming from {partial}: {why}; starting afresh (old rows kept in "
          f"{stale})", file=sys.stderr)
    return False


def generate_rows(
    model: torch.nn.Module,
    rows: Sequence[dict],
    config: GenerationConfig | None = None,
    out: str | Path | None = None,
    chunk_size: int = 64,
    progress: bool = True,
    source: str | os.PathLike[str] | None = None,
) -> list[dict]:
    """Add a ``response`` to every row (a row's ``prefill`` opens the assistant turn).

    Args:
        model: a ``TransformerBridge``.
        rows: prompt rows (``prompt`` required, ``prefill`` optional).
        config: decoding settings.
        out: if given, completed rows are appended to ``<out>.partial`` as they finish, and a
            rerun resumes from it — only when ``<out>.partial.meta.json`` shows the same model
            (name + weights fingerprint) and decoding settings; otherwise it starts afresh and
            says so on stderr.
        chunk_size: rows generated between two appends to the partial file.
        progress: tqdm bar over rows.
        source: the prompts file, named in errors and recorded in the partial's provenance.

    Returns:
        Copies of ``rows`` with ``response`` added (for a prefill row, the continuation only).

    Raises:
        SafelensError: out-of-range decoding settings, a prompt over ``max_prompt_length``
            tokens (named by row and id), or a partial file holding other prompts.
    """
    cfg = config or GenerationConfig()
    check_generation_config(cfg)
    partial = Path(str(out) + ".partial") if out is not None else None
    meta_path = Path(str(out) + ".partial.meta.json") if out is not None else None
    wanted = partial_provenance(model, cfg, source) if partial else None
    # a torn last line from an interrupted write ends the prefix: regenerate from there
    results = read_jsonl_prefix(partial)[: len(rows)] if partial else []
    for done, row in zip(results, rows, strict=False):
        if done.get("prompt") != row.get("prompt"):
            raise SafelensError(
                f"{partial} does not belong to these prompts (row {done.get('id')} differs); "
                "delete it to start over")
    if partial and not _reusable_partial(partial, meta_path, wanted):
        results = []
    check_prompt_lengths(model.tokenizer, rows[len(results):], cfg.max_prompt_length,
                         cfg.system_prompt, source=str(source) if source else None)
    if partial:
        # Rewrite what survived (drops a torn last line) so new rows append after whole lines.
        partial.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
        meta_path.write_text(json.dumps(wanted, indent=1))
    bar = tqdm(total=len(rows), initial=len(results), desc="eval", disable=not progress)
    handle = partial.open("a") if partial else None
    try:
        for start in range(len(results), len(rows), chunk_size):
            chunk = [dict(r) for r in rows[start : start + chunk_size]]
            responses = generate(
                model,
                [r["prompt"] for r in chunk],
                prefills=[_prefill_of(r) for r in chunk],
                config=cfg,
                progress=False,
            )
            for row, response in zip(chunk, responses, strict=False):
                row["response"] = response
                if handle:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            if handle:
                handle.flush()
                os.fsync(handle.fileno())
            results.extend(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
        if handle:
            handle.close()
    return results


#: Refusal judges run on every evaluation besides the primary one (cheap: string matching).
DEFAULT_AGREEMENT_JUDGES: tuple[str, ...] = ("keyword", "keyword-benchmark")


def _judge_name(judge) -> str:
    return str(getattr(judge, "name", None) or type(judge).__name__)


def resolve_agreement_judges(
    agreement_judges: Sequence[str | object] | None, build: bool = True
) -> dict[str, object]:
    """``{name: judge}`` for :func:`judge_rows`' ``agreement_judges`` (names checked first).

    With ``build=False`` only the names are checked (judges given by name map to None).

    Raises:
        SafelensError: an unknown judge name (the message lists the registered ones), or a
            name given twice.
    """
    judges: dict[str, object] = {}
    for item in agreement_judges or ():
        if isinstance(item, str):
            check_judge_name(item, setting="agreement_judges:")
            name, obj = item, None  # built lazily, after the cheap checks of every name
        else:
            name, obj = _judge_name(item), item
        if name in judges:
            raise SafelensError(f"agreement_judges: {name!r} is named twice; expected each "
                                "judge once")
        judges[name] = obj
    if not build:
        return judges
    return {name: (get_judge(name) if obj is None else obj) for name, obj in judges.items()}


def judge_rows(
    rows: list[dict],
    judge,
    *,
    agreement_judges: Sequence[str | object] | Mapping[str, object] | None = (
        DEFAULT_AGREEMENT_JUDGES),
    count_degenerate: bool = True,
    judge_name: str | None = None,
) -> tuple[list[dict], dict | None]:
    """Judge every row's response and summarise where rows carry ``harmful``/``kind``.

    A refusal judge adds ``refused`` to each row, a harm judge (Llama Guard, MD-Judge) adds
    ``unsafe``. For a prefill row the judged response is the prefill plus the continuation, since
    that is what a user of the attacked model receives.

    Besides the primary ``judge`` (which alone drives ``summary["asr"]`` and
    ``summary["over_refusal"]``):

    - ``count_degenerate``: each row gets ``degenerate`` and ``degenerate_reason``
      (:func:`safelens.eval.degeneracy.degenerate_reason`), and the summary the degenerate rates;
      a degenerate response is no attack success (:func:`safelens.eval.metrics.summarize`).
    - ``agreement_judges``: these refusal judges run too (names or judge objects; the primary
      refusal judge stands in for one of the same name); each row gets ``refused_by`` (``{judge:
      bool}``) and the summary ``"judges"`` (each judge's ASR / over-refusal) and ``"agreement"``
      (:func:`safelens.eval.metrics.summarize_judges`). ``None`` or ``()`` runs none.

    Args:
        rows: rows with ``prompt`` and ``response``.
        judge: the primary judge (refusal or harm).
        agreement_judges: extra refusal judges (default: both keyword judges), as names,
            judge objects, or ``{name: judge}`` (:func:`resolve_agreement_judges`).
        count_degenerate: flag degenerate responses.
        judge_name: the primary judge's name in ``refused_by`` (default: ``judge.name``).

    Returns:
        ``(rows, summary)``; ``summary`` is None when a row lacks ``harmful`` and ``kind``.

    Raises:
        SafelensError: an unknown agreement judge, or one that judges harm, not refusals.
    """
    extra = (dict(agreement_judges) if isinstance(agreement_judges, Mapping)
             else resolve_agreement_judges(agreement_judges))
    prompts = [r["prompt"] for r in rows]
    shown = [(r.get("prefill") or "") + r["response"] for r in rows]
    refused, unsafe = run_judge(judge, prompts, shown)
    for name, flags in (("refused", refused), ("unsafe", unsafe)):
        if flags is not None:
            for row, flag in zip(rows, np.asarray(flags, dtype=bool), strict=False):
                row[name] = bool(flag)
    degenerate = None
    if count_degenerate:
        reasons = degenerate_reasons(shown)
        degenerate = np.array([r is not None for r in reasons], dtype=bool)  # [N]
        for row, reason in zip(rows, reasons, strict=True):
            row["degenerate"], row["degenerate_reason"] = reason is not None, reason
    primary = judge_name or _judge_name(judge)
    verdicts: dict[str, np.ndarray] = {}
    if extra and refused is not None:
        verdicts[primary] = refused
    for name, other in extra.items():
        if name in verdicts:
            continue
        other_refused, _ = run_judge(other, prompts, shown)
        if other_refused is None:
            raise SafelensError(f"agreement_judges: {name!r} judges harm (unsafe), not refusals; "
                                "expected refusal judges such as keyword, keyword-benchmark, "
                                "learned")
        verdicts[name] = other_refused
    for i, row in enumerate(rows):
        if verdicts:
            row["refused_by"] = {name: bool(v[i]) for name, v in verdicts.items()}
    labelled = all("harmful" in r or "kind" in r for r in rows)
    if not (labelled and rows):
        return rows, None
    summary = summarize(rows, refused, unsafe, degenerate=degenerate)
    summary["judge"] = primary
    if verdicts:
        summary.update(summarize_judges(rows, verdicts, degenerate=degenerate))
    return rows, summary


def save_eval(out: str | Path, rows: list[dict], summary: dict | None) -> None:
    """Write judged rows to ``out`` (dropping the resume file) and the summary next to it.

    The summary goes to ``out`` with the suffix ``.summary.json`` (``x.jsonl`` →
    ``x.summary.json``).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(out, rows)
    Path(str(out) + ".partial").unlink(missing_ok=True)
    Path(str(out) + ".partial.meta.json").unlink(missing_ok=True)
    if summary is not None:
        write_json(out.with_suffix(".summary.json"), summary)


def reward_win_rate(
    scorer: RewardScorer,
    prompts: Sequence[str],
    responses: Sequence[str],
    references: Sequence[str],
    alpha: float = 0.05,
    tie_tol: float = 0.0,
) -> dict[str, Any]:
    """Score policy responses and references with a reward model and compute the win rate.

    Args:
        scorer: a reward model (``score(prompts, responses) -> [B]``).
        prompts: ``N`` prompts.
        responses: ``N`` policy responses.
        references: ``N`` reference responses (the rows' ``chosen`` / ``reference``).
        alpha: ``1 - confidence`` of the Wilson interval.
        tie_tol: see :func:`safelens.eval.metrics.win_outcomes`.

    Returns:
        :func:`safelens.eval.metrics.win_rate_summary`: ``{"value", "ci_low", "ci_high", "n",
        "reward/policy", "reward/reference"}`` (the last two are mean rewards).

    Raises:
        ValueError: if the three sequences differ in length.
    """
    if not len(prompts) == len(responses) == len(references):
        raise ValueError(
            f"reward_win_rate: {len(prompts)} prompts, {len(responses)} responses and "
            f"{len(references)} references; expected equal lengths"
        )
    return win_rate_summary(scorer.score(prompts, responses), scorer.score(prompts, references),
                            alpha=alpha, tie_tol=tie_tol)


def row_win_outcomes(rows: Sequence[dict], scorer: RewardScorer, reference_tokens: int | None,
                     tokenizer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reward-model win outcomes of judged rows against their ``reference`` answers.

    The policy's text is what the user sees (the ``prefill``, if any, plus the ``response``);
    with ``reference_tokens`` each reference is cut to that many tokens first, so a 32-token
    answer is not compared with a 200-token one.

    Args:
        rows: ``N`` rows with ``prompt``, ``response`` and ``reference``.
        scorer: a reward model (``score(prompts, responses) -> [B]``).
        reference_tokens: tokens kept of each reference (``None``: all).
        tokenizer: the policy's tokenizer (cuts the references).

    Returns:
        ``(policy [N], reference [N], wins [N])``: rewards, and outcomes in {0, ½, 1}
        (:func:`safelens.eval.metrics.win_outcomes`).

    Raises:
        ValueError: a row without a ``reference`` (naming the first such rows).
    """
    missing = [r.get("id", i) for i, r in enumerate(rows) if not r.get("reference")]
    if missing:
        raise ValueError(f"win rate needs a 'reference' answer on every row; rows {missing[:5]} "
                         "have none (pass scorer=None to skip the win rate)")
    prompts = [r["prompt"] for r in rows]
    references = [r["reference"] for r in rows]
    if reference_tokens is not None:
        references = [token_prefix(tokenizer, text, reference_tokens, mode="decode")
                      for text in references]
    shown = [(r.get("prefill") or "") + r["response"] for r in rows]
    policy = np.asarray(scorer.score(prompts, shown), float)  # [N]
    ref = np.asarray(scorer.score(prompts, references), float)  # [N]
    return policy, ref, win_outcomes(policy, ref)


def _add_win_rate(rows: list[dict], summary: dict, scorer, reference_tokens: int | None,
                  tokenizer) -> None:
    """Per-row rewards/outcomes and the overall / per-domain / per-kind win rate (in place)."""
    policy, ref, wins = row_win_outcomes(rows, scorer, reference_tokens, tokenizer)
    for row, p, r, w in zip(rows, policy, ref, wins, strict=True):
        row["reward"], row["reward_reference"], row["win"] = float(p), float(r), float(w)
    summary["win_rate"] = win_rate_summary(policy, ref)
    summary["win_rate_reference_tokens"] = reference_tokens
    for key, fld in (("by_domain", "domain"), ("by_kind", "kind")):
        values = np.array([str(r.get(fld, "unknown")) for r in rows], dtype=object)
        groups = summary.setdefault(key, {})
        for v in sorted(set(values.tolist())):
            groups.setdefault(v, {})["win_rate"] = rate(wins[values == v])


def summarize_judged(rows: Sequence[dict]) -> dict:
    """The summary of judged rows, recomputed from their per-row verdicts.

    Use it to pool or regroup evaluations (e.g. the rows of two domains' results): ASR and
    over-refusal come from each row's ``refused`` / ``unsafe`` (:func:`judge_rows`; with each
    row's ``degenerate`` flag when every row has one), the per-judge rates and agreement from
    ``refused_by`` when every row names the same judges, the win rate from each row's ``win`` (:func:`evaluate_policy` with a scorer) when every row has one.

    Raises:
        ValueError: a row without a verdict, or without ``harmful`` / ``kind``.

    Examples:
        >>> rows = [{"harmful": True, "refused": False, "win": 0.0},
        ...         {"harmful": False, "kind": "benign", "refused": False, "win": 1.0}]
        >>> s = summarize_judged(rows)
        >>> s["asr"]["value"], s["over_refusal"]["value"], s["win_rate"]["value"]
        (1.0, 0.0, 0.5)
    """
    def column(name: str) -> list[bool] | None:
        return [bool(r[name]) for r in rows] if rows and all(name in r for r in rows) else None

    refused, unsafe = column("refused"), column("unsafe")
    degenerate = column("degenerate")
    if refused is None and unsafe is None:
        raise ValueError("summarize_judged: every row needs a 'refused' or 'unsafe' verdict "
                         "(judge the rows first)")
    summary = summarize(rows, refused, unsafe, degenerate=degenerate)
    names = [tuple(r["refused_by"]) if isinstance(r.get("refused_by"), dict) else None
             for r in rows]
    if names and names[0] and all(n == names[0] for n in names):
        verdicts = {name: [bool(r["refused_by"][name]) for r in rows] for name in names[0]}
        summary.update(summarize_judges(rows, verdicts, degenerate=degenerate))
    if all("win" in r for r in rows):
        summary["win_rate"] = dict(rate([float(r["win"]) for r in rows]))
        for key, fld in (("reward/policy", "reward"), ("reward/reference", "reward_reference")):
            if all(fld in r for r in rows):
                summary["win_rate"][key] = float(np.mean([r[fld] for r in rows]))
    return strict_json(summary)


def finished_eval(out: str | Path, rows: Sequence[dict]) -> EvalResult | None:
    """The evaluation :func:`evaluate_policy` saved at ``out`` for these rows, or None.

    None when ``out`` or its ``.summary.json`` is missing, or ``out`` holds other prompts.
    """
    out = Path(out)
    summary_path = out.with_suffix(".summary.json")
    if not (out.is_file() and summary_path.is_file()):
        return None
    done = read_jsonl(out)
    if [r["prompt"] for r in done] != [r["prompt"] for r in rows]:
        return None
    return EvalResult(done, json.loads(summary_path.read_text()))


def summary_provenance(rows: Sequence[dict], judge: str,
                       agreement_judges: Sequence[str | object] | None) -> dict[str, Any]:
    """What a summary records beside the model and decoding (:func:`partial_provenance`): the
    judges, the safelens version and the SHA-256 of the evaluated rows (id, prompt, labels)."""
    digest = rows_key(rows, ("id", "prompt", "prefill", "harmful", "kind", "category", "domain"))
    return {"judge": judge,
            "agreement_judges": [j if isinstance(j, str) else type(j).__name__
                                 for j in (agreement_judges or ())],
            "safelens_version": __version__, "rows_sha256": digest}


def _same_producer(done: EvalResult, out: Path, wanted: dict) -> bool:
    """Whether a finished evaluation at ``out`` was made by the model and decoding ``wanted``.

    When not (or when it records nothing), ``out`` and its summary are moved aside to
    ``*.stale`` and the re-evaluation is announced on stderr: a finished evaluation of another
    model is never reported under this one's name.
    """
    saved = done.summary.get("provenance")
    if isinstance(saved, dict) and all(saved.get(k) == wanted[k] for k in _MUST_MATCH):
        return True
    why = ("nothing records what produced it" if not isinstance(saved, dict) else
           _differs(saved, wanted))
    for path in (out, out.with_suffix(".summary.json")):
        path.replace(Path(str(path) + ".stale"))
    print(f"safelens: not reusing the finished evaluation {out}: {why}; evaluating again "
          f"(old files kept as *.stale)", file=sys.stderr)
    return False


def evaluate_policy(
    model: torch.nn.Module,
    rows: Sequence[dict],
    *,
    judge: str | object = "keyword",
    config: GenerationConfig | None = None,
    scorer=None,
    reference_tokens: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    agreement_judges: Sequence[str | object] | None = DEFAULT_AGREEMENT_JUDGES,
) -> EvalResult:
    """Generate, judge and (with ``scorer``) score a model's answers to labelled prompt rows.

    Args:
        model: a ``TransformerBridge`` (or ``None`` when ``out`` already holds the finished
            evaluation: then nothing is generated).
        rows: ``N`` prompt rows (``prompt``, ``harmful``/``kind``; ``reference`` for the win
            rate; ``domain`` for the per-domain breakdown).
        judge: a judge name (``safelens.eval.available_judges()``) or judge object: the
            primary judge, which alone gives ``summary["asr"]`` and ``summary["over_refusal"]``.
        config: decoding settings.
        scorer: a reward model (``score(prompts, responses) -> [B]``); adds the win rate of the
            responses against the rows' ``reference`` answers, overall (``summary["win_rate"]``)
            and per domain / kind (``summary["by_domain"][d]["win_rate"]``, ``by_kind``), and
            per row ``reward``, ``reward_reference`` and ``win`` (1, ½ tie, 0).
        reference_tokens: cut each reference to this many tokens of the model's tokenizer
            before scoring. Pass the generation budget (``max_new_tokens``) when it is short, so
            that a cut-off answer is not compared with a full reference. ``None`` = full.
        out: JSONL path; makes the evaluation resumable and cached (a finished ``out`` with its
            ``.summary.json`` is read back, generation and judging are skipped, when its
            ``summary["provenance"]`` shows the same model weights and decoding settings, or
            when ``model`` is None).
        progress: tqdm bar over rows.
        agreement_judges: refusal judges run besides ``judge`` on every evaluation (default
            both keyword judges; add ``"learned"`` for the MiniLM judge, which is trained on the
            built-in data and cached on first use; ``()`` for none). Their ASR / over-refusal go
            to ``summary["judges"]``, their pairwise agreement (with the primary refusal judge)
            to ``summary["agreement"]`` (:func:`safelens.eval.metrics.agreement_table` prints
            both), each row's verdicts to ``row["refused_by"]``.

    Every evaluation also flags degenerate responses (empty, non-language, loops:
    ``row["degenerate"]``, ``row["degenerate_reason"]``), reports their rates
    (``summary["degenerate"]``, ``"degenerate_harmful"``, ``"degenerate_benign"``) and leaves them
    out of the refusal-based ASR (:func:`safelens.eval.metrics.summarize`). A finished
    evaluation saved before these keys existed is read back as it was saved (delete it to
    evaluate again).

    Returns:
        :class:`EvalResult` with the judged rows and the summary (see
        :func:`safelens.eval.metrics.summarize`, plus ``"judge"`` (the primary judge's name),
        ``"judges"``, ``"agreement"`` and the win-rate keys above).

    Raises:
        ValueError: rows without labels (no summary can be made), or ``scorer`` given and a row
            has no ``reference``.
        SafelensError: an unknown judge name (``judge`` or in ``agreement_judges``; checked
            before anything is generated) or an agreement judge that judges harm.
    """
    judge_obj = get_judge(judge) if isinstance(judge, str) else judge
    judge_name = judge if isinstance(judge, str) else type(judge).__name__
    resolve_agreement_judges(agreement_judges, build=False)  # names checked before generating
    wanted = (partial_provenance(model, config or GenerationConfig())
              if model is not None else None)
    if out is not None:
        out = Path(out)
        done = finished_eval(out, rows)
        if done is not None and wanted is not None and not _same_producer(done, out, wanted):
            done = None
        if done is not None:
            done.judge = judge_name
            return done
        out.parent.mkdir(parents=True, exist_ok=True)
    if model is None:
        raise ValueError(f"evaluate_policy: model is None and {out} holds no finished evaluation "
                         "of these rows")
    generated = generate_rows(model, [dict(r) for r in rows], config=config, out=out,
                              progress=progress)
    judged, summary = judge_rows(generated, judge_obj, agreement_judges=agreement_judges,
                                 judge_name=judge if isinstance(judge, str) else None)
    if summary is None:
        raise ValueError("evaluate_policy: every row needs 'harmful' or 'kind' to be summarised")
    if scorer is not None:
        _add_win_rate(judged, summary, scorer, reference_tokens, model.tokenizer)
    summary["provenance"] = {**wanted, **summary_provenance(rows, judge_name, agreement_judges)}
    summary = strict_json(summary)  # the same in memory as read back from OUT.summary.json
    if out is not None:
        save_eval(out, judged, summary)
    return EvalResult(judged, summary, judge_name)


def evaluate_on_sets(
    model: torch.nn.Module | str | Path,
    eval_sets: Mapping[str, Sequence[dict]],
    out_dir: str | Path,
    *,
    stem: str,
    **kwargs,
) -> dict[str, EvalResult]:
    """:func:`evaluate_policy` of one model on several named prompt sets, each cached.

    Set ``name`` is saved as ``out_dir / f"{stem}-{name}.jsonl"``; a finished one is read back.
    When ``model`` is a name or path it is loaded (:func:`safelens.models.load_model`) only if
    some set still has to be generated, so re-running a finished comparison loads nothing.
    Use a stem that changes with the model, e.g. ``f"{rec.run_dir.name}-{rec.fingerprint}"``
    for a :class:`safelens.training.runs.RunRecord`.

    Args:
        model: a ``TransformerBridge``, or a model name / local path for ``load_model``.
        eval_sets: ``{set name: labelled prompt rows}``.
        out_dir: folder of the cached evaluations.
        stem: file-name prefix naming the model.
        **kwargs: passed to :func:`evaluate_policy` (``judge``, ``config``, ``scorer``,
            ``reference_tokens``, ``progress``).

    Returns:
        ``{set name: EvalResult}`` in ``eval_sets`` order.
    """
    if "out" in kwargs:
        raise TypeError("evaluate_on_sets: the output paths come from out_dir and stem, not out=")
    results = {}
    for name, rows in eval_sets.items():
        path = Path(out_dir) / f"{stem}-{name}.jsonl"
        if not isinstance(model, torch.nn.Module) and finished_eval(path, rows) is None:
            model = load_model(str(model))
        results[name] = evaluate_policy(
            model if isinstance(model, torch.nn.Module) else None, rows, out=path, **kwargs)
    return results
