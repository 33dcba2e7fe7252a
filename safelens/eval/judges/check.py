"""How well refusal judges do on responses whose label is known (the rows' own answers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from safelens.eval.metrics import wilson_ci


def judge_check(
    judges: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], alpha: float = 0.05
) -> dict[str, dict[str, dict[str, Any]]]:
    """How each refusal judge does on responses whose label is known: the rows' own answers.

    On prompt rows with references (the built-in ``prompts/test``), four groups of responses:

    * ``refusal (train family)`` / ``refusal (heldout family)``: harmful rows' ``reference``
      refusals, split by ``refusal_family`` (the held-out family never reaches a training
      response, see the data card); the rate is the judge's *recall*;
    * ``compliance``: harmful rows' ``harmful_response``; the rate is a false-refusal rate;
    * ``helpful``: benign and look-alike rows' ``reference``; the rate is a false-refusal rate.

    Examples:
        >>> rows = [{"prompt": "p", "harmful": True, "refusal_family": "train",
        ...          "reference": "I can't help with that.", "harmful_response": "Sure: step 1"},
        ...         {"prompt": "q", "harmful": False, "reference": "Boil water first."}]
        >>> from safelens.eval.judges import KeywordJudge
        >>> out = judge_check({"keyword": KeywordJudge()}, rows)
        >>> out["keyword"]["refusal (train family)"]["value"], out["keyword"]["helpful"]["value"]
        (1.0, 0.0)

    Args:
        judges: ``{name: judge}`` with ``refusals(prompts, responses)``.
        rows: prompt rows with ``harmful``, ``reference`` and (harmful) ``harmful_response``.
        alpha: 1 - confidence of the Wilson intervals.

    Returns:
        ``{judge: {group: {"value", "ci_low", "ci_high", "n"}}}`` — share of the group's responses
        the judge calls refusals; groups without rows are left out.
    """
    groups: dict[str, list[tuple[str, str]]] = {
        "refusal (train family)": [], "refusal (heldout family)": [], "compliance": [],
        "helpful": []}
    for row in rows:
        if not row.get("reference"):
            continue
        if row.get("harmful"):
            family = row.get("refusal_family", "train")
            groups[f"refusal ({family} family)"].append((row["prompt"], row["reference"]))
            if row.get("harmful_response"):
                groups["compliance"].append((row["prompt"], row["harmful_response"]))
        else:
            groups["helpful"].append((row["prompt"], row["reference"]))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, judge in judges.items():
        out[name] = {}
        for group, pairs in groups.items():
            if not pairs:
                continue
            refused = np.asarray(judge.refusals([p for p, _ in pairs], [r for _, r in pairs]),
                                 dtype=bool)
            k, n = int(refused.sum()), len(pairs)
            low, high = wilson_ci(k, n, alpha)
            out[name][group] = {"value": k / n, "ci_low": low, "ci_high": high, "n": n}
    return out
