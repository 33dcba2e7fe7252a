"""Judges by name: the registry behind :func:`get_judge` and the name check the CLI shares.

``"keyword"``, ``"keyword-benchmark"`` and ``"learned"`` are registered here; ``learned:PATH``
or a directory holding a saved learned judge loads :class:`LearnedJudge`, and any other
directory or Hub id ``org/name`` an :class:`HFJudge`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from safelens.errors import SafelensError
from safelens.eval.judges.hf import HFJudge
from safelens.eval.judges.keyword import BenchmarkKeywordJudge, KeywordJudge
from safelens.eval.judges.learned import LearnedJudge, default_learned_judge, is_learned_judge_dir

_JUDGES: dict[str, Callable[..., Any]] = {}


def register_judge(name: str, factory: Callable[..., Any]) -> None:
    """Register ``factory(**kwargs) -> judge`` under ``name`` for :func:`get_judge`.

    Raises:
        ValueError: if ``name`` is already registered.
    """
    if name in _JUDGES:
        raise ValueError(f"register_judge: a judge named {name!r} is already registered")
    _JUDGES[name] = factory


def available_judges() -> list[str]:
    """Names registered with :func:`register_judge` (besides HF ids and paths)."""
    return sorted(_JUDGES)


register_judge("keyword", KeywordJudge)
register_judge("keyword-benchmark", BenchmarkKeywordJudge)
register_judge("learned", default_learned_judge)


def check_judge_name(name: object, setting: str = "judge") -> None:
    """Raise :class:`~safelens.errors.SafelensError` unless ``name`` can name a judge.

    A registered name (:func:`available_judges`), ``learned:PATH``, a directory, or a Hub id
    ``org/name`` (checked when it loads) is accepted.

    Examples:
        >>> check_judge_name("keyword-benchmark")
        >>> check_judge_name("keywrod")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: judge 'keywrod' is not a judge; expected one of keyword, ...
    """
    if not isinstance(name, str) or not name.strip():
        raise SafelensError(f"{setting} {name!r} is not a judge name; expected one of "
                            f"{', '.join(available_judges())}, learned:PATH, a directory or an "
                            "HF id (org/name)")
    if name.startswith("learned:"):
        if not Path(name.split(":", 1)[1]).is_dir():
            raise SafelensError(f"{setting} {name!r}: no such directory "
                                f"{name.split(':', 1)[1]!r}; expected a saved learned judge")
        return
    if name in _JUDGES or Path(name).is_dir():
        return
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return  # a Hub id: checked when it loads
    raise SafelensError(f"{setting} {name!r} is not a judge; expected one of "
                        f"{', '.join(available_judges())}, learned:PATH, a directory or an HF id "
                        "(org/name)")


def get_judge(name: str, **kwargs: Any) -> Any:
    """A judge by name.

    Args:
        name: ``"keyword"`` (:class:`KeywordJudge`); ``"keyword-benchmark"``
            (:class:`BenchmarkKeywordJudge`); ``"learned"`` (built-in learned judge, trained and
            cached on first use); ``"learned:PATH"`` or a directory holding ``judge.json`` (a
            saved :class:`LearnedJudge`); a Hub id ``org/name`` or another local directory is
            loaded with :class:`HFJudge`.
        **kwargs: passed to the judge's constructor/factory (e.g. ``kind=``, ``device=``).

    Returns:
        A :class:`Judge` (refusals) and/or :class:`HarmJudge` (unsafe).

    Examples:
        >>> get_judge("keyword", prefix_chars=100).prefix_chars
        100

    Raises:
        SafelensError: a name that is neither registered, ``learned:PATH``, a directory nor a
            Hub id ``org/name`` (the message lists the registered names).
    """
    check_judge_name(name)
    if name in _JUDGES:
        return _JUDGES[name](**kwargs)
    if name.startswith("learned:"):
        return LearnedJudge.load(name.split(":", 1)[1], **kwargs)
    if is_learned_judge_dir(name):
        return LearnedJudge.load(name, **kwargs)
    return HFJudge(name, **kwargs)
