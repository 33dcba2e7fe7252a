"""Method-comparison plots (ShaPO Tables 1-3, Figs. 3, 4, 7): what they draw and what they reject."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from safelens.viz import plot_rate_bars, plot_rate_vs, plot_training_curves  # noqa: E402
from safelens.viz.methods import rate_value  # noqa: E402


def r(v, half=0.1):
    return {"value": v, "ci_low": v - half, "ci_high": v + half, "n": 10}


def test_rate_bars_draw_one_bar_per_group_and_series_with_cis():
    fig = plot_rate_bars({"DPO": {"ASR": r(0.5), "WR": r(0.4)},
                          "ShaPO-T": {"ASR": r(0.3), "WR": {"win_rate": 0.6, "ci_low": 0.5,
                                                            "ci_high": 0.7}}})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [30.0, 40.0, 50.0, 60.0]  # percent
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ASR", "WR"]


def test_rate_bars_reject_ragged_tables():
    with pytest.raises(ValueError, match="every group needs the same series"):
        plot_rate_bars({"a": {"ASR": r(0.1)}, "b": {"WR": r(0.2)}})
    with pytest.raises(ValueError, match="table is empty"):
        plot_rate_bars({})
    with pytest.raises(ValueError, match="a rate needs 'value'"):
        rate_value({"mean": 0.3})


def test_rate_vs_draws_a_line_per_method():
    fig = plot_rate_vs([0, 0.1, 0.2, 0.4], {"DPO": [r(0.5), r(0.45), r(0.4), r(0.3)],
                                            "ShaPO-T": [r(0.5)] * 4})
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and list(lines[0].get_xdata()) == [0, 10, 20, 40]
    with pytest.raises(ValueError, match="has 1 rates for 2 x values"):
        plot_rate_vs([0, 1], {"DPO": [r(0.5)]})


def test_training_curves_skip_runs_without_the_metric():
    logs = {"DPO": [{"step": 1, "rewards/margins": 0.0}, {"step": 2, "rewards/margins": 0.5}],
            "SFT": [{"step": 1, "loss": 2.0}]}
    fig = plot_training_curves(logs)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1 and list(ax.get_lines()[0].get_ydata()) == [0.0, 0.5]
    assert "SFT" in ax.get_legend().get_title().get_text()
    with pytest.raises(ValueError, match="no run logs 'rewards/margins'"):
        plot_training_curves({"SFT": logs["SFT"]})
