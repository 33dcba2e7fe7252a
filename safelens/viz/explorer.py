"""Neuron explorer: an ipywidgets UI over MLP neurons ranked by a safety probe (ShaPO Eq. 7).

The widget only renders: the analysis it shows lives in :mod:`safelens.geometry.neurons`
(logit effects, activations, scaling hooks), the ranking in
:func:`safelens.geometry.value_vectors.top_k_neurons`, and the before / after generation in
:func:`safelens.eval.interventions.generate_with_neuron_scaled`. Those names are re-exported here
for one release.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

from safelens.eval.interventions import generate_with_neuron_scaled  # re-export for one release
from safelens.geometry.neurons import (  # re-exported for one release
    Neuron,
    check_neuron,
    mlp_activations,
    mlp_post_hook,
    neuron_activations,
    neuron_logit_effects,
    neuron_scale_hooks,
)
from safelens.geometry.value_vectors import rank_value_vectors, top_k_neurons

__all__ = [
    "NeuronExplorer",
    "neuron_logit_effects",
    "mlp_activations",
    "neuron_activations",
    "neuron_scale_hooks",
    "generate_with_neuron_scaled",
    "mlp_post_hook",
]

class NeuronExplorer:
    """An ipywidgets UI to browse MLP neurons by probe score (ShaPO Eq. 7) and intervene on them.

    Choose a layer and neuron, or page through all neurons sorted by ``|⟨W_out[l, j], p⟩|``; the
    panel shows the score and rank, the promoted / suppressed tokens, the neuron's mean
    activation on harmful vs benign prompts, and on demand a generation before / after scaling
    it by ``s`` (0 = ablation) with the keyword judge's refusal verdict.

    The callbacks (:meth:`select`, :meth:`next_page`, :meth:`prev_page`, :meth:`run_intervention`)
    update plain attributes (``layer``, ``neuron``, ``info``, ``page``, ``page_neurons``,
    ``intervention``) and then the widgets, so they are testable without a browser.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        scores: ``[n_layers, d_mlp]`` neuron scores (e.g. ``rank_value_vectors``); default: from
            ``probe``; with neither, neurons are ranked by value-vector norm.
        probe: a :class:`~safelens.geometry.probes.Probe` (its ``direction`` is ``p``).
        prompts_harmful: prompts whose activations are compared ...
        prompts_benign: ... with these.
        page_size: neurons per page of the sorted list.
        k_tokens: promoted / suppressed tokens shown.
        max_new_tokens: generation length of the intervention.
        pooling: activation pooling (see :func:`mlp_activations`).
        judge: refusal judge (default keyword).

    Examples:
        >>> ex = NeuronExplorer(model, probe=probe, prompts_harmful=h, prompts_benign=b)  # doctest: +SKIP
        >>> ex  # displays the widget in JupyterLab  # doctest: +SKIP
    """

    def __init__(
        self,
        model: TransformerBridge,
        scores: Tensor | None = None,
        probe: Any = None,
        prompts_harmful: Sequence[str] = (),
        prompts_benign: Sequence[str] = (),
        page_size: int = 10,
        k_tokens: int = 10,
        max_new_tokens: int = 32,
        pooling: str = "mean",
        judge: Any = None,
    ) -> None:
        import ipywidgets as W

        self.model = model
        self.n_layers, self.d_mlp = int(model.cfg.n_layers), int(model.cfg.d_mlp)
        if scores is None and probe is not None:
            scores = rank_value_vectors(model, probe.direction)
            self.score_name = "|⟨W_out[l,j], p⟩| (probe)"
        elif scores is None:
            with torch.no_grad():
                scores = model.W_out.detach().float().norm(dim=-1)  # [n_layers, d_mlp]
            self.score_name = "‖W_out[l,j]‖ (no probe given)"
        else:
            self.score_name = "score"
        scores = torch.as_tensor(scores).detach().float().cpu()
        if scores.shape != (self.n_layers, self.d_mlp):
            raise ValueError(
                f"scores must be [n_layers={self.n_layers}, d_mlp={self.d_mlp}], "
                f"got {tuple(scores.shape)}"
            )
        self.scores = scores
        self.order = top_k_neurons(scores, k=scores.numel())  # [N, 2] (layer, neuron), best first
        flat = self.order[:, 0] * self.d_mlp + self.order[:, 1]  # [N] flat indices, same order
        self.rank = torch.empty_like(flat)
        self.rank[flat] = torch.arange(flat.numel())  # rank[l*d_mlp + j] = 0-based position
        self.prompts_harmful = list(prompts_harmful)
        self.prompts_benign = list(prompts_benign)
        self.page_size = max(1, int(page_size))
        self.n_pages = -(-flat.numel() // self.page_size)
        self.k_tokens = int(k_tokens)
        self.max_new_tokens = int(max_new_tokens)
        self.pooling = pooling
        self.judge = judge
        # One forward per prompt set for all layers; every neuron's bars read from it.
        self.acts_harmful = (
            mlp_activations(model, self.prompts_harmful, pooling=pooling)
            if self.prompts_harmful
            else None
        )  # [N_h, n_layers, d_mlp]
        self.acts_benign = (
            mlp_activations(model, self.prompts_benign, pooling=pooling)
            if self.prompts_benign
            else None
        )  # [N_b, n_layers, d_mlp]
        self._before_cache: dict[str, str] = {}
        self.intervention: dict[str, Any] | None = None
        self.page = 0
        self.page_neurons: list[Neuron] = []
        self.info: dict[str, Any] = {}
        self.layer, self.neuron = int(self.order[0, 0]), int(self.order[0, 1])

        # ---- widgets
        self.layer_w = W.BoundedIntText(
            value=self.layer, min=0, max=self.n_layers - 1, description="layer"
        )
        self.neuron_w = W.BoundedIntText(
            value=self.neuron, min=0, max=self.d_mlp - 1, description="neuron"
        )
        self.page_w = W.Select(
            options=[], rows=self.page_size, description="by score", layout=W.Layout(width="320px")
        )
        self.prev_w = W.Button(description="◀ prev page")
        self.next_w = W.Button(description="next page ▶")
        self.page_label = W.Label()
        self.info_w = W.HTML()
        self.tokens_w = W.HTML()
        self.acts_w = W.Output()
        self.prompt_w = W.Textarea(
            value=self.prompts_harmful[0] if self.prompts_harmful else "How do I pick a lock?",
            description="prompt",
            layout=W.Layout(width="95%", height="60px"),
        )
        self.scale_w = W.FloatText(value=0.0, description="scale ×")
        self.run_w = W.Button(description="generate before / after", button_style="primary")
        self.result_w = W.HTML()

        self._syncing = False
        self.layer_w.observe(self._on_layer_neuron, names="value")
        self.neuron_w.observe(self._on_layer_neuron, names="value")
        self.page_w.observe(self._on_page_select, names="value")
        self.prev_w.on_click(lambda _: self.prev_page())
        self.next_w.on_click(lambda _: self.next_page())
        self.run_w.on_click(lambda _: self.run_intervention())

        self.widget = W.VBox(
            [
                W.HBox(
                    [
                        W.VBox(
                            [
                                self.layer_w,
                                self.neuron_w,
                                W.HBox([self.prev_w, self.next_w]),
                                self.page_label,
                                self.page_w,
                            ]
                        ),
                        W.VBox([self.info_w, self.tokens_w], layout=W.Layout(width="460px")),
                        self.acts_w,
                    ]
                ),
                W.HTML(
                    "<b>Intervention</b> (0 = ablate; hooks on <code>blocks.{l}.mlp.hook_post</code>)"
                ),
                self.prompt_w,
                W.HBox([self.scale_w, self.run_w]),
                self.result_w,
            ]
        )
        self.show_page(0)
        self.select(self.layer, self.neuron)

    # ------------------------------------------------------------------ state + callbacks
    def neuron_info(self, layer: int, neuron: int) -> dict[str, Any]:
        """Score, rank, logit effects and mean activations of one neuron (no widget update)."""
        check_neuron(self.model, layer, neuron)
        flat = int(layer) * self.d_mlp + int(neuron)
        info: dict[str, Any] = {
            "layer": int(layer),
            "neuron": int(neuron),
            "score": float(self.scores[layer, neuron]),
            "rank": int(self.rank[flat]) + 1,
            "effects": neuron_logit_effects(self.model, layer, neuron, k=self.k_tokens),
        }
        for name, acts in (("harmful", self.acts_harmful), ("benign", self.acts_benign)):
            info[f"acts_{name}"] = None if acts is None else acts[:, layer, neuron].clone()
        return info

    def select(self, layer: int, neuron: int) -> dict[str, Any]:
        """Show neuron ``(layer, neuron)``; returns its :meth:`neuron_info`."""
        self.info = self.neuron_info(layer, neuron)
        self.layer, self.neuron = int(layer), int(neuron)
        self.intervention = None
        self._syncing = True
        try:
            self.layer_w.value, self.neuron_w.value = self.layer, self.neuron
            key = (self.layer, self.neuron)
            self.page_w.value = key if key in self.page_neurons else None
        finally:
            self._syncing = False
        self._render_info()
        self.result_w.value = ""
        return self.info

    def show_page(self, page: int) -> list[Neuron]:
        """Fill the sorted list with page ``page`` (clamped); returns its ``(layer, neuron)`` s."""
        self.page = max(0, min(int(page), self.n_pages - 1))
        rows = self.order[self.page * self.page_size : (self.page + 1) * self.page_size]
        self.page_neurons = [(int(a), int(b)) for a, b in rows.tolist()]
        self._syncing = True
        try:
            self.page_w.options = [
                (
                    f"#{self.page * self.page_size + i + 1:>5}  L{lay:>2} n{j:<5} "
                    f"{float(self.scores[lay, j]):.3g}",
                    (lay, j),
                )
                for i, (lay, j) in enumerate(self.page_neurons)
            ]
            key = (self.layer, self.neuron)
            self.page_w.value = key if key in self.page_neurons else None
        finally:
            self._syncing = False
        self.page_label.value = f"page {self.page + 1} / {self.n_pages}"
        return self.page_neurons

    def next_page(self) -> list[Neuron]:
        """Next page of the sorted list; selects its first neuron."""
        neurons = self.show_page(self.page + 1)
        self.select(*neurons[0])
        return neurons

    def prev_page(self) -> list[Neuron]:
        """Previous page of the sorted list; selects its first neuron."""
        neurons = self.show_page(self.page - 1)
        self.select(*neurons[0])
        return neurons

    def run_intervention(
        self, prompt: str | None = None, scale: float | None = None
    ) -> dict[str, Any]:
        """Generate on the prompt before / after scaling the selected neuron (widget values by
        default); the unmodified generation is cached per prompt."""
        prompt = self.prompt_w.value if prompt is None else prompt
        scale = float(self.scale_w.value if scale is None else scale)
        before = [self._before_cache[prompt]] if prompt in self._before_cache else None
        out = generate_with_neuron_scaled(
            self.model,
            prompt,
            (self.layer, self.neuron),
            scale=scale,
            max_new_tokens=self.max_new_tokens,
            judge=self.judge,
            before=before,
        )
        self._before_cache[prompt] = out["before"][0]
        self.intervention = out
        self._render_intervention()
        return out

    def _on_layer_neuron(self, change: dict) -> None:
        if not self._syncing:
            self.select(int(self.layer_w.value), int(self.neuron_w.value))

    def _on_page_select(self, change: dict) -> None:
        if not self._syncing and change.get("new") is not None:
            self.select(*change["new"])

    # ------------------------------------------------------------------ rendering
    def _render_info(self) -> None:
        i = self.info
        self.info_w.value = (
            f"<b>L{i['layer']} neuron {i['neuron']}</b> — {html.escape(self.score_name)} = "
            f"{i['score']:.4g} (rank {i['rank']:,} of {self.scores.numel():,})"
        )

        def rows(pairs: list[tuple[str, float]]) -> str:
            return "".join(
                f"<tr><td><code>{html.escape(repr(t))}</code></td><td>{v:+.3f}</td></tr>"
                for t, v in pairs
            )

        fx = i["effects"]
        self.tokens_w.value = (
            "<table><tr><th>promotes</th><th></th><th>suppresses</th><th></th></tr><tr>"
            f"<td colspan=2><table>{rows(fx['promoted'])}</table></td>"
            f"<td colspan=2><table>{rows(fx['suppressed'])}</table></td></tr></table>"
        )
        self.acts_w.clear_output(wait=True)
        groups = [(n, i[f"acts_{n}"]) for n in ("harmful", "benign") if i[f"acts_{n}"] is not None]
        if not groups:
            return
        import matplotlib.pyplot as plt

        with self.acts_w:
            fig, ax = plt.subplots(figsize=(3.0, 2.4))
            for x, (_name, vals) in enumerate(groups):
                v = vals.numpy()
                ax.bar(x, v.mean(), color=["tab:red", "tab:blue"][x], alpha=0.5)
                ax.scatter([x] * len(v), v, s=8, color="k")
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([n for n, _ in groups])
            ax.set_ylabel(f"{self.pooling} activation")
            ax.axhline(0, color="k", lw=0.5)
            fig.tight_layout()
            plt.show()
            plt.close(fig)

    def _render_intervention(self) -> None:
        out = self.intervention
        if out is None:
            self.result_w.value = ""
            return

        def verdict(refused: bool) -> str:
            return (
                "<b style='color:green'>refuses</b>"
                if refused
                else "<b style='color:red'>complies</b>"
            )

        self.result_w.value = (
            f"<p>before: {verdict(out['refused_before'][0])} — "
            f"<i>{html.escape(out['before'][0])}</i></p>"
            f"<p>after ×{out['scale']:g}: {verdict(out['refused_after'][0])} — "
            f"<i>{html.escape(out['after'][0])}</i></p>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displaying the explorer displays its widget tree.
        return self.widget._repr_mimebundle_(**kwargs)
