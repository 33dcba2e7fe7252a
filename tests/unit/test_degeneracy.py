"""Unit tests for safelens.eval.degeneracy: empty, non-language and looping responses."""

from __future__ import annotations

import numpy as np
import pytest

from safelens.eval import degeneracy as D
from safelens.eval.degeneracy import degenerate, degenerate_reason, degenerate_reasons

# Legitimate answers, short or unusual, that must never be flagged.
LEGIT = [
    "Yes.",
    "No.",
    "42",
    "=",
    "No, no, no.",
    "Paris.",
    "I can't help with that.",  # one refusal: a refusal, not a loop
    "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
    '{"name": "Ada", "born": 1815, "tags": ["math", "poetry"]}',
    "x = (-b ± sqrt(b^2 - 4ac)) / 2a, where a, b and c are the coefficients.",
    "for i in range(10):\n    print(i ** 2)",
    "Step 1: mix the flour. Step 2: add the eggs. Step 3: bake. Step 4: cool. Step 5: serve.",
    "See https://github.com/Unispac/shallow-vs-deep-alignment/blob/main/README.md for details.",
    "The SHA-256 of the empty string is "
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.",
    # content first, then a short loop: below LOOP_COVERAGE
    "Boil water, add the pasta, stir, and cook for ten minutes. Drain it and serve it with a "
    "tomato sauce and some cheese. " + "and then " * 6,
    "这是一个关于如何煮米饭的回答：先洗米，然后加水，最后用电饭锅煮二十分钟。",
    "Привет! Вот как сварить яйцо: положите его в кипящую воду на девять минут.",
]


@pytest.mark.parametrize("text", LEGIT)
def test_legitimate_answers_are_not_degenerate(text: str) -> None:
    assert degenerate_reason(text) is None, text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        (None, "empty"),
        ("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "non-language"),
        ("?? ## ** -- == ++ @@ $$ %% ^^ && ~~", "non-language"),
        ("x" * (D.LONG_RUN_CHARS + 20), "non-language"),
        ("abc" * 60 + " ok", "non-language"),
        ("the the the the the the the the the the", "loop"),
        ("ha ha ha ha ha ha ha ha", "loop"),
        ("First, you need to " * 12, "loop"),
        # a repeated refusal IS a loop (the flag describes the text; the judge still says refusal)
        ("I can't help with that. I can't help with that. I can't help with that.", "loop"),
        # a long period (one sentence of 9 words) repeated: the sentence rule
        ("The quick brown fox jumps over the lazy dog today. " * 4, "loop"),
        ("这是一个很长的中文回答，" * 20, "loop"),
    ],
)
def test_degenerate_reasons(text, reason) -> None:
    assert degenerate_reason(text) == reason


def test_short_repeats_are_not_loops() -> None:
    # under LOOP_MIN_WORDS words: an answer, even if repetitive
    assert degenerate_reason("Sure. Sure. Sure.") is None
    assert len("Sure. Sure. Sure.".split()) < D.LOOP_MIN_WORDS
    # a single non-language character burst under NONLANG_MIN_CHARS
    assert degenerate_reason("?!?!") is None


def test_loop_coverage_threshold_is_the_boundary() -> None:
    content = "alpha beta gamma delta epsilon zeta eta theta iota kappa"  # 10 distinct words
    loop = " ".join(["again"] * 10)
    assert degenerate_reason(f"{content} {loop}") is None  # 10 / 20 = 0.5 < 0.6
    assert degenerate_reason(f"{content} {loop} {loop}") == "loop"  # 20 / 30 >= 0.6


def test_no_space_scripts_are_not_long_runs() -> None:
    text = "米饭的做法很简单先洗米再加水然后煮熟即可" * 8  # one whitespace-free run of 160 chars
    assert len(text) > D.LONG_RUN_CHARS
    assert degenerate_reason(text) != "non-language"


def test_array_api_and_thresholds_documented() -> None:
    flags = degenerate(["Yes.", "", "ok ok ok ok ok ok ok ok"])
    assert flags.dtype == np.bool_ and flags.tolist() == [False, True, True]
    assert degenerate([]).shape == (0,)
    assert degenerate_reasons(["Yes.", ""]) == [None, "empty"]
    for name in ("NONLANG_MIN_CHARS", "MIN_ALNUM_FRACTION", "LONG_RUN_CHARS",
                 "LONG_RUN_COVERAGE", "LOOP_MIN_WORDS", "LOOP_MAX_NGRAM", "LOOP_MIN_REPEATS",
                 "LOOP_COVERAGE"):
        assert name in D.__doc__ or name in (D.degenerate.__doc__ or ""), name


def test_built_in_data_has_no_degenerate_responses() -> None:
    from safelens.data import load_builtin

    rows = list(load_builtin("preferences", "validation"))
    texts = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    assert not degenerate(texts).any()
