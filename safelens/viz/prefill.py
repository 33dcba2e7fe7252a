"""Plot ASR vs number of prefilled harmful tokens (Qi et al., seed 003, Figure 2).

Examples:
    >>> res = {"ks": [0, 5], "asr": [0.1, 0.4], "ci_low": [0.0, 0.2], "ci_high": [0.2, 0.6]}
    >>> fig = plot_prefill_asr({"model": res})
    >>> fig.axes[0].get_xlabel()
    'prefilled harmful tokens k (tokens)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safelens.viz.style import integer_ticks, legend_outside, overlap_labels, series_style

__all__ = ["plot_prefill_asr"]


def _check(name: str, res: Mapping[str, Any]) -> None:
    if not isinstance(res, Mapping) or "ks" not in res or "asr" not in res:
        raise ValueError(f"results_by_model[{name!r}] must be a prefill_attack result "
                         "(a dict with 'ks' and 'asr' lists)")
    n = len(res["ks"])
    for key in ("asr", "ci_low", "ci_high"):
        if key in res and len(res[key]) != n:
            raise ValueError(f"results_by_model[{name!r}][{key!r}] must have one value per k "
                             f"([{n}] for ks={list(res['ks'])}), got {len(res[key])}")


def plot_prefill_asr(
    results_by_model: Mapping[str, Mapping[str, Any]],
    ax: Any = None,
    title: str | None = "ASR vs prefilled harmful tokens",
    key: str = "asr",
) -> Any:
    """One line per model: ASR (with its bootstrap CI as a band) against k.

    Args:
        results_by_model: ``{label: prefill_attack(...) result}`` (needs ``ks`` and ``asr``;
            ``ci_low``/``ci_high`` draw the band).
        ax: a matplotlib axes to draw into (default: a new figure).
        title: axes title.
        key: which curve to plot: ``"asr"`` (default), ``"asr_full"`` or
            ``"asr_continuation"`` (no band for the last two).

    Returns:
        The matplotlib ``Figure`` (it displays itself in Jupyter).

    Raises:
        ValueError: empty input or a result without ``ks``/``asr`` (names the model).
    """
    import matplotlib.pyplot as plt

    if not results_by_model:
        raise ValueError("results_by_model is empty; expected {model label: prefill result}")
    for name, res in results_by_model.items():
        _check(name, res)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
    else:
        fig = ax.figure
    names = overlap_labels({n: (list(r["ks"]), list(r[key])) for n, r in results_by_model.items()})
    for i, (name, res) in enumerate(results_by_model.items()):
        ks = list(res["ks"])
        ys = [100 * v for v in res[key]]
        (line,) = ax.plot(ks, ys, label=names[name], **series_style(i))
        if key == "asr" and "ci_low" in res and "ci_high" in res:
            ax.fill_between(ks, [100 * v for v in res["ci_low"]],
                            [100 * v for v in res["ci_high"]], alpha=0.15,
                            color=line.get_color())
    ax.set_xlabel("prefilled harmful tokens k (tokens)")
    ax.set_ylabel("ASR (% of harmful prompts)")
    ax.set_ylim(-2, 102)
    integer_ticks(ax)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_outside(ax)
    fig.tight_layout()
    return fig
