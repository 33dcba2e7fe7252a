"""Evaluation: generation, judges, metrics and the resumable evaluation runner."""

from safelens.eval.generation import GenerationConfig, generate
from safelens.eval.judges import (
    REFUSAL_MARKERS,
    HarmJudge,
    HFJudge,
    Judge,
    KeywordJudge,
    LearnedJudge,
    available_judges,
    get_judge,
    register_judge,
    run_judge,
)
from safelens.eval.metrics import bootstrap_ci, format_summary, rate, summarize
from safelens.eval.runner import (
    EvalResult,
    evaluate_on_sets,
    evaluate_policy,
    finished_eval,
    generate_rows,
    judge_rows,
    summarize_judged,
)

__all__ = [
    "REFUSAL_MARKERS", "EvalResult", "GenerationConfig", "HFJudge", "HarmJudge", "Judge",
    "KeywordJudge", "LearnedJudge", "available_judges", "bootstrap_ci", "evaluate_on_sets",
    "evaluate_policy", "finished_eval", "format_summary", "generate", "generate_rows",
    "get_judge", "judge_rows", "rate", "register_judge", "run_judge", "summarize",
    "summarize_judged",
]
