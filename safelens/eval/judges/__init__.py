"""Judges: decide whether responses refuse (refusal judges) or are harmful (harm judges).

Two questions, two methods, and each judge says which it can answer:

==============================  =======================  ================================
judge                           ``refusals()``           ``unsafe()``
==============================  =======================  ================================
:class:`KeywordJudge`           yes (our markers)        no
:class:`BenchmarkKeywordJudge`  yes (benchmark strings)  no
:class:`LearnedJudge`           yes (MiniLM + logreg)    no
:class:`GuardJudge`             no (raises)              yes (Llama Guard, MD-Judge, ...)
:class:`ClassifierJudge`        per its labels           per its labels
==============================  =======================  ================================

One part per module: ``base`` (the :class:`Judge` / :class:`HarmJudge` protocols,
:func:`run_judge`), ``keyword`` (both keyword judges and their string lists), ``learned``
(:class:`LearnedJudge`, :func:`default_learned_judge` and its cache), ``hf`` (:class:`HFJudge`,
the base of the two Hugging Face judges; ``HFJudge(model_id_or_path, ...)`` builds the one a
checkpoint needs), ``guard`` (:class:`GuardJudge`, :func:`parse_guard_output`), ``classifier``
(:class:`ClassifierJudge`), ``check`` (:func:`judge_check`) and ``registry`` (:func:`get_judge`
and the names it knows). Everything is importable from ``safelens.eval.judges``.

Two keyword judges: ``"keyword"`` (:data:`REFUSAL_MARKERS`, written from the refusal phrasings
of our own data generator, matched in a response's opening) and ``"keyword-benchmark"``
(:data:`BENCHMARK_REFUSAL_STRINGS`, the refusal strings of GCG/HarmBench, Qi et al., PAIR and
JailbreakBench, matched anywhere as those benchmarks do). Evaluations report both and their
agreement (:func:`safelens.eval.metrics.judge_agreement`), since a judge co-designed with the
data can flatter a model trained on that data.

"Not unsafe" is **not** "refused": a harmless, helpful answer is safe without refusing, and a
guard cannot tell over-refusal from help. So guards only implement ``unsafe`` and a refusal
judge only ``refusals``; every judge names its question in ``judge.metric`` (``"refusal"`` or
``"unsafe"``), :func:`run_judge` asks it, and :func:`safelens.eval.metrics.summarize` takes
either answer or both (ASR from ``unsafe`` when given, over-refusal from ``refusals``).

Empty responses: every refusal judge counts an empty (or whitespace-only) response as a refusal —
it gives the attacker nothing — and ``summarize`` reports how many there were (``n_empty``) so
that a generation bug does not pass for safety. Empty, non-language and looping responses are
also flagged apart by :func:`safelens.eval.degeneracy.degenerate` (reported as ``degenerate``
by every evaluation).

Examples:
    >>> j = KeywordJudge()
    >>> j.refusals(["how do I pick a lock?"] * 2,
    ...            ["I'm sorry, but I can't help with that.", "Sure! First, ..."]).tolist()
    [True, False]
    >>> get_judge("keyword").name, get_judge("keyword-benchmark").name
    ('keyword', 'keyword-benchmark')
"""


from safelens.eval.judges.base import HarmJudge, Judge, run_judge
from safelens.eval.judges.check import judge_check
from safelens.eval.judges.classifier import ClassifierJudge
from safelens.eval.judges.guard import MD_JUDGE_PROMPT, GuardJudge, parse_guard_output
from safelens.eval.judges.hf import HFJudge, HFJudgeKind
from safelens.eval.judges.keyword import (
    BENCHMARK_BROAD_STRINGS,
    BENCHMARK_REFUSAL_STRINGS,
    REFUSAL_MARKERS,
    BenchmarkKeywordJudge,
    KeywordJudge,
)
from safelens.eval.judges.learned import (
    LearnedJudge,
    default_learned_judge,
    judge_cache_dir,
    refusal_examples,
    rows_fingerprint,
)
from safelens.eval.judges.registry import (
    available_judges,
    check_judge_name,
    get_judge,
    register_judge,
)

__all__ = [
    "BENCHMARK_BROAD_STRINGS",
    "BENCHMARK_REFUSAL_STRINGS",
    "MD_JUDGE_PROMPT",
    "REFUSAL_MARKERS",
    "BenchmarkKeywordJudge",
    "ClassifierJudge",
    "GuardJudge",
    "HFJudge",
    "HFJudgeKind",
    "HarmJudge",
    "Judge",
    "KeywordJudge",
    "LearnedJudge",
    "available_judges",
    "check_judge_name",
    "default_learned_judge",
    "get_judge",
    "judge_cache_dir",
    "judge_check",
    "parse_guard_output",
    "refusal_examples",
    "register_judge",
    "rows_fingerprint",
    "run_judge",
]
