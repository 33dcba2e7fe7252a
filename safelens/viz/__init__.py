"""Plots and the ipywidgets neuron explorer.

One part per file, imported lazily (``import safelens.viz`` loads neither matplotlib nor
ipywidgets until a name is used):

- ``plots.py`` — safety-geometry figures: probe accuracy per layer, ShaPO Figure 1 (Top-K vs
  Random-K), λ_max bars, per-token KL depth, bypass radius, reward margins and ShaPO-R soft
  targets (Figure 5); matplotlib (and plotly variants).
- ``explorer.py`` — :class:`NeuronExplorer` (live widget; a static HTML table outside a live
  kernel), ``token_activation_html`` (tokens coloured by a neuron's activation), and re-exports
  of the pure functions behind it (``neuron_logit_effects``, ``neuron_activations``,
  ``generate_with_neuron_scaled``).
- ``prefill.py`` — ASR vs number of prefilled harmful tokens.
- ``simulation.py`` — seed 001's pre-experiments: metric bars with CIs, curves per epoch with
  bands, paired differences (Table 2 / Figs. 2-5 analogues).
- ``robustness.py`` — seed 002: safety against perturbation strength per model, layer-wise
  sensitivity bars, the robustness matrix as a heat map; seed 000: ASR under noise restricted
  to a subspace beside its predicted bypass radius.
- ``style.py`` — the conventions every figure follows (units on axes, legends outside the data,
  integer step ticks, distinct styles and ``(overlaps X)`` notes for coinciding curves, bands
  over seeds) and ``save_figure(fig, path_stem)``: PNG + PDF + SVG in one call.
- ``methods.py`` — method comparisons: rates with CIs per method (ShaPO Tables 1-3, Fig. 4),
  a rate against the label-flip rate (Fig. 3), training curves from run logs (Fig. 7), paired
  differences to a baseline arm with their intervals (``plot_differences``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # plots.py
    "plot_probe_accuracy": "plots",
    "plot_worst_case_curves": "plots",
    "plot_share_readings": "plots",
    "plot_lambda_max": "plots",
    "plot_kl_depth": "plots",
    "plot_bypass": "plots",
    "plot_reward_margins": "plots",
    "probe_accuracy_plotly": "plots",
    "worst_case_curves_plotly": "plots",
    # explorer.py
    "NeuronExplorer": "explorer",
    "neuron_logit_effects": "explorer",
    "neuron_activations": "explorer",
    "mlp_activations": "explorer",
    "neuron_scale_hooks": "explorer",
    "generate_with_neuron_scaled": "explorer",
    "token_activation_html": "explorer",
    # prefill.py
    "plot_prefill_asr": "prefill",
    # methods.py
    "plot_rate_bars": "methods",
    "plot_rate_vs": "methods",
    "plot_training_curves": "methods",
    "plot_differences": "methods",
    # robustness.py
    "plot_robustness_curves": "robustness",
    "plot_layer_sensitivity": "robustness",
    "plot_matrix": "robustness",
    "plot_subspace_noise": "robustness",
    # style.py
    "save_figure": "style",
    "seed_band": "style",
    "overlap_labels": "style",
    "series_style": "style",
    "legend_outside": "style",
    "integer_ticks": "style",
    # simulation.py
    "plot_metric_bars": "simulation",
    "plot_curves": "simulation",
    "plot_paired_differences": "simulation",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'safelens.viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"safelens.viz.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
