"""Evaluation: generation, judges, metrics and the resumable evaluation runner."""

from safelens.eval.degeneracy import degenerate, degenerate_reason, degenerate_reasons
from safelens.eval.generation import GenerationConfig, generate
from safelens.eval.judges import (
    BENCHMARK_BROAD_STRINGS,
    BENCHMARK_REFUSAL_STRINGS,
    REFUSAL_MARKERS,
    BenchmarkKeywordJudge,
    HarmJudge,
    HFJudge,
    Judge,
    KeywordJudge,
    LearnedJudge,
    available_judges,
    check_judge_name,
    get_judge,
    judge_check,
    register_judge,
    run_judge,
)
from safelens.eval.metrics import (
    Rate,
    agreement_table,
    bootstrap_ci,
    claim_verdict,
    cohen_kappa,
    difference_rows,
    equivalence_verdict,
    format_summary,
    judge_agreement,
    paired_bootstrap_difference,
    paired_difference,
    rate,
    summarize,
    summarize_judges,
    wilson_ci,
    win_outcomes,
    win_rate,
    win_rate_ci,
    win_rate_summary,
)
from safelens.eval.runner import (
    DEFAULT_AGREEMENT_JUDGES,
    EvalResult,
    evaluate_on_sets,
    evaluate_policy,
    finished_eval,
    generate_rows,
    judge_rows,
    reward_win_rate,
    summarize_judged,
)

__all__ = [
    "BENCHMARK_BROAD_STRINGS", "BENCHMARK_REFUSAL_STRINGS", "DEFAULT_AGREEMENT_JUDGES",
    "REFUSAL_MARKERS", "BenchmarkKeywordJudge", "EvalResult", "GenerationConfig", "HFJudge",
    "HarmJudge", "Judge", "KeywordJudge", "LearnedJudge", "agreement_table", "available_judges",
    "bootstrap_ci", "check_judge_name", "cohen_kappa", "degenerate", "degenerate_reason",
    "degenerate_reasons", "evaluate_on_sets", "evaluate_policy", "finished_eval",
    "format_summary", "generate", "generate_rows", "get_judge", "judge_agreement", "judge_check",
    "judge_rows",
    "rate", "register_judge", "run_judge", "summarize", "summarize_judged", "summarize_judges",
    "wilson_ci",
]
# Rates (one shape for every proportion) and the win rate, moved here from safelens.reward.
__all__ += ["Rate", "claim_verdict", "difference_rows", "equivalence_verdict",
            "paired_bootstrap_difference", "paired_difference", "reward_win_rate",
            "win_outcomes", "win_rate", "win_rate_ci", "win_rate_summary"]
