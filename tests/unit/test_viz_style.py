"""Paper-ready figures (issue 21, item 6): save_figure's three formats, coinciding curves kept
visible and named, bands over seeds, integer step ticks, units on axes, legends outside."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from safelens.errors import SafelensError  # noqa: E402
from safelens.viz import (  # noqa: E402
    plot_curves,
    plot_kl_depth,
    plot_metric_bars,
    plot_prefill_asr,
    plot_rate_bars,
    plot_rate_vs,
    plot_robustness_curves,
    plot_training_curves,
    save_figure,
)
from safelens.viz.style import legend_outside, overlap_labels, seed_band, series_style  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def r(v, half=0.1):
    return {"value": v, "ci_low": v - half, "ci_high": v + half, "n": 10}


def _sim_result():
    stat = {"value": 1.0, "ci_low": 0.8, "ci_high": 1.2}
    curve = {"value": [1.0, 0.5, 0.25], "ci_low": [0.9, 0.4, 0.2], "ci_high": [1.1, 0.6, 0.3]}
    return {"groups": ["CE", "CE+PA"], "seeds": [0, 1],
            "summary": {"kl_divergence": {"CE": stat, "CE+PA": stat}},
            "curves": {"kl_divergence": {"CE": curve, "CE+PA": dict(curve)}}}


def _figures():
    logs = {"DPO": [[{"step": s, "loss": 1.0 / s} for s in range(1, 6)],
                    [{"step": s, "loss": 1.2 / s} for s in range(1, 6)]],
            "IPO": [[{"step": s, "loss": 1.0 / s} for s in range(1, 6)],
                    [{"step": s, "loss": 1.2 / s} for s in range(1, 6)]]}
    prefill = {"ks": [0, 5, 10], "asr": [0.1, 0.5, 0.6]}
    rec = {"attack": "parameter-noise", "curve": [{"strength": 0.0, "asr": r(0.2)},
                                                  {"strength": 0.01, "asr": r(0.4)}]}
    return {
        "training": plot_training_curves(logs, key="loss"),
        "rate_vs": plot_rate_vs([0, 0.1], {"DPO": [r(0.5), r(0.4)], "IPO": [r(0.5), r(0.4)]}),
        "rate_bars": plot_rate_bars({"DPO": {"ASR": r(0.5)}, "IPO": {"ASR": r(0.4)}}),
        "prefill": plot_prefill_asr({"a": prefill, "b": prefill}),
        "kl": plot_kl_depth({"x": {"mean": [1.0, 0.5, 0.2]}, "y": {"mean": [1.0, 0.5, 0.2]}}),
        "robustness": plot_robustness_curves({"base": rec, "zo": rec}).figure,
        "sim_curves": plot_curves(_sim_result(), ["kl_divergence"]),
        "sim_bars": plot_metric_bars(_sim_result(), ["kl_divergence"]),
    }


def test_save_figure_writes_png_pdf_svg(tmp_path):
    fig = _figures()["training"]
    paths = save_figure(fig, tmp_path / "sub" / "fig.png")  # a suffix is dropped
    assert [p.name for p in paths] == ["fig.png", "fig.pdf", "fig.svg"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[1].read_bytes()[:4] == b"%PDF" and b"<svg" in paths[2].read_bytes()[:2000]
    assert [p.suffix for p in save_figure(fig, tmp_path / "only", formats=("pdf",))] == [".pdf"]
    with pytest.raises(SafelensError, match="cannot be written"):
        save_figure(fig, tmp_path / "x", formats=("docx",))
    with pytest.raises(SafelensError, match="formats is empty"):
        save_figure(fig, tmp_path / "x", formats=())


def test_coinciding_curves_are_named_and_look_different():
    assert overlap_labels({"a": [1, 2], "b": [1, 3], "c": [1, 2], "d": [1, 2]}) == {
        "a": "a", "b": "b", "c": "c (overlaps a)", "d": "d (overlaps a, c)"}
    assert overlap_labels({"a": [np.nan, 1.0], "b": [np.nan, 1.0]})["b"] == "b (overlaps a)"
    assert len({tuple(series_style(i).items()) for i in range(8)}) == 8
    figs = _figures()
    for name in ("training", "rate_vs", "prefill", "kl", "robustness", "sim_curves"):
        ax = figs[name].axes[0]
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("(overlaps " in t for t in texts), (name, texts)
        lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        styles = {(ln.get_linestyle(), ln.get_marker()) for ln in lines}
        assert len(styles) == len(lines), name


def test_per_seed_logs_draw_a_band():
    ax = _figures()["training"].axes[0]
    mean = ax.get_lines()[0].get_ydata()
    assert mean == pytest.approx([1.1 / s for s in range(1, 6)])
    assert len(ax.collections) == 2  # one band per method
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["DPO (mean ± 1 s.d., 2 seeds)", "IPO (overlaps DPO) (mean ± 1 s.d., 2 seeds)"]
    with pytest.raises(SafelensError, match=r"per_seed must be \[seeds, K=3\]"):
        seed_band(ax, [0, 1, 2], np.ones((2, 4)), "x")
    with pytest.raises(ValueError, match="one list of them per seed"):
        plot_training_curves({"DPO": [1, 2]}, key="loss")


def test_integer_step_ticks_units_and_outside_legends():
    figs = _figures()
    for name in ("training", "prefill", "kl", "sim_curves"):
        ticks = figs[name].axes[0].get_xticks()
        assert np.allclose(ticks, np.round(ticks)), (name, ticks)
    for name, fig in figs.items():
        fig.canvas.draw()
        for ax in fig.axes:
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                assert not label or "(" in label, (name, label)  # a unit in parentheses
            legend = ax.get_legend()
            if legend is None:
                continue
            box, area = legend.get_window_extent(), ax.get_window_extent()
            outside = box.x0 >= area.x1 - 1 or box.y1 <= area.y0 + 1
            assert outside, (name, box, area)
    with pytest.raises(SafelensError, match="where must be"):
        legend_outside(figs["kl"].axes[0], where="inside")


def test_robustness_curves_draw_the_spread_over_seeds():
    seeds = [r(0.2), r(0.4)]
    rec = {"attack": "parameter-noise", "curve": [
        {"strength": 0.0, "asr": {**r(0.3), "per_seed": seeds}},
        {"strength": 0.01, "asr": {**r(0.5), "per_seed": [r(0.4), r(0.6)]}}]}
    ax = plot_robustness_curves({"base": rec})
    (band,) = ax.collections[-1:]
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    sd = 100 * np.std([0.2, 0.4], ddof=1)
    assert low == pytest.approx(30 - sd) and high == pytest.approx(50 + sd)
    assert "± 1 s.d. over 2 seeds" in ax.get_legend().get_texts()[0].get_text()


def test_subspace_noise_plot_draws_every_arm_and_both_radii():
    """The mechanism figure (issue 16, item 4): one panel per subspace, one curve per model, its
    predicted (dotted) and measured (dashed) bypass radius as vertical lines at their values."""
    from safelens.viz import plot_subspace_noise

    def entry(lam, pred, meas):
        return {"lambda_max": lam, "bypass": {"predicted": pred},
                "directions": {"+v_top": {"measured": meas}},
                "noise": [{"eps_norm": 0.0, "asr": r(0.1)}, {"eps_norm": 2.0, "asr": r(0.3)},
                          {"eps_norm": 8.0, "asr": r(0.9)}]}

    arms = {"DPO": {"selective": entry(3.0, 0.5, 0.7), "random": entry(1.0, 1.5, float("inf"))},
            "ShaPO-T": {"selective": entry(2.0, 0.6, 0.8), "random": entry(1.0, 1.4, 2.0)}}
    axes = plot_subspace_noise(arms)
    assert [ax.get_title() for ax in axes] == ["noise restricted to the selective subspace",
                                               "noise restricted to the random subspace"]
    def radii(ax, what):
        return sorted(ln.get_xdata()[0] for ln in ax.get_lines()
                      if ln.get_label().startswith(f"_{what} radius"))

    assert radii(axes[0], "predicted") == [0.5, 0.6]
    assert radii(axes[0], "measured") == [0.7, 0.8]
    # an infinite measured radius (never crossed) draws no line
    assert radii(axes[1], "measured") == [2.0]
    assert "‖ε‖" in axes[0].get_xlabel() and "%" in axes[0].get_ylabel()


def test_difference_forest_plot_places_each_interval_and_the_claim_band():
    """``plot_differences``: every (comparison, metric) interval at its value in points, zero
    and the ±smallest-effect band drawn; a difference without an interval is a one-line error."""
    from safelens.viz import plot_differences

    def d(v):
        return {"diff": v, "ci_low": v - 0.02, "ci_high": v + 0.03}

    fig = plot_differences({"A − DPO": {"asr": d(-0.05), "asr_after_ft": d(-0.10)},
                            "B − DPO": {"asr": d(0.01), "asr_after_ft": d(0.0)}},
                           smallest_effect=0.05)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["asr", "asr_after_ft"]
    centres = sorted(round(float(x), 6) for c in ax.containers for x in c.lines[0].get_xdata())
    assert centres == [-10.0, -5.0, 0.0, 1.0]
    band = [p for p in ax.patches if "smallest effect" in p.get_label()]
    assert len(band) == 1 and "points" in ax.get_xlabel()
    with pytest.raises(SafelensError, match="needs diff, ci_low and ci_high"):
        plot_differences({"A − DPO": {"asr": {"diff": 0.1}}})


def test_share_readings_plot_draws_both_readings_per_ranking():
    """Fig. 1's two readings (issue 16, item 6): per ranking a solid joint and a dashed additive
    curve at the given fractions; a ranking missing a reading is a one-line error."""
    from safelens.viz import plot_share_readings

    fig1 = {"fractions": [0.005, 0.01, 1.0],
            "rankings": {"probe": {"joint": [0.02, 0.04, 1.0], "additive": [0.004, 0.009, 1.0]},
                         "oracle": {"joint": [0.94, 0.95, 1.0], "additive": [0.07, 0.09, 1.0]}}}
    ax = plot_share_readings(fig1).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert lines["oracle, joint"].get_linestyle() == "-"
    assert lines["oracle, additive"].get_linestyle() == "--"
    assert list(lines["probe, additive"].get_xdata()) == [0.5, 1.0, 100.0]
    assert list(lines["oracle, joint"].get_ydata()) == [0.94, 0.95, 1.0]
    with pytest.raises(ValueError, match="needs 'additive'"):
        plot_share_readings({"fractions": [0.01], "rankings": {"probe": {"joint": [0.1]}}})
