"""Neuron explorer: an ipywidgets UI over MLP neurons ranked by a safety probe (ShaPO Eq. 7).

The widget only renders: the analysis it shows lives in :mod:`safelens.geometry.neurons`
(logit effects, activations, per-token activations, top-activating prompts, scaling hooks), the
ranking in :func:`safelens.geometry.value_vectors.top_k_neurons`, and the before / after
generation in :func:`safelens.eval.interventions.generate_with_neuron_scaled`. Those names are
re-exported here for one release.

Displayed outside a live kernel (an HTML export, GitHub, a notebook reopened without its
kernel) the explorer falls back to a static HTML table of its current page
(:meth:`NeuronExplorer.to_html`) instead of ``VBox(children=...)``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

from safelens.errors import SafelensError
from safelens.eval.interventions import generate_with_neuron_scaled  # re-export for one release
from safelens.geometry.neurons import (  # re-exported for one release
    Neuron,
    check_neuron,
    mlp_activations,
    mlp_max_activations,
    mlp_post_hook,
    neuron_activations,
    neuron_logit_effects,
    neuron_scale_hooks,
    token_activations,
    top_activating_examples,
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
    "token_activation_html",
]


def token_activation_html(
    tokens: Sequence[str], activations: Any, vmax: float | None = None
) -> str:
    """Tokens as coloured spans: red where the neuron fires (positive), blue where negative.

    The opacity is ``|a| / vmax`` (default ``vmax = max |a|``); hovering a token shows its value.

    Args:
        tokens: ``T`` token strings.
        activations: ``[T]`` activations (tensor, array or list).
        vmax: activation of full colour.

    Returns:
        An HTML string (a ``<div>`` of ``<span>`` s).

    Raises:
        SafelensError: ``tokens`` and ``activations`` differ in length.

    Examples:
        >>> out = token_activation_html(["Hi", " there"], [0.5, -1.0])
        >>> out.count("<span"), "rgba(33,102,172,1.00)" in out
        (2, True)
    """
    acts = [float(a) for a in torch.as_tensor(activations).detach().float().reshape(-1).tolist()]
    if len(acts) != len(tokens):
        raise SafelensError(
            f"activations must be [T={len(tokens)}] (one per token), got {len(acts)} values"
        )
    top = vmax if vmax is not None else max((abs(a) for a in acts), default=0.0)
    top = top if top > 0 else 1.0
    spans = []
    for t, a in zip(tokens, acts, strict=True):
        alpha = min(1.0, abs(a) / top)
        rgb = "178,24,43" if a >= 0 else "33,102,172"
        text = html.escape(t.replace("\n", "↵\n"))
        spans.append(
            f"<span title='{html.escape(repr(t))}: {a:+.3f}' style='background:rgba({rgb},"
            f"{alpha:.2f});color:{'white' if alpha > 0.6 else 'black'};padding:0 1px;"
            f"border-radius:2px'>{text}</span>"
        )
    return (
        "<div style='font-family:monospace;white-space:pre-wrap;line-height:1.7'>"
        + "".join(spans)
        + "</div>"
    )


class NeuronExplorer:
    """An ipywidgets UI to browse MLP neurons by probe score (ShaPO Eq. 7) and intervene on them.

    Choose a layer and neuron, slide through the ranking (all neurons sorted by
    ``|⟨W_out[l, j], p⟩|``, or only one layer's with "only this layer"), or page through it;
    the panel shows the score and rank, the promoted / suppressed tokens, the neuron's mean
    activation on harmful vs benign prompts, the prompts of that set on which it peaks highest
    (with the peak token), on demand the activation at every token of the prompt box, and a
    generation before / after scaling it by ``s`` (0 = ablation) with the keyword judge's
    refusal verdict.

    The callbacks (:meth:`select`, :meth:`select_rank`, :meth:`set_layer_filter`,
    :meth:`next_page`, :meth:`prev_page`, :meth:`show_tokens`, :meth:`run_intervention`) update
    plain attributes (``layer``, ``neuron``, ``info``, ``page``, ``page_neurons``, ``view``,
    ``layer_filter``, ``token_view``, ``intervention``) and then the widgets, so they are
    testable without a browser. Without a live kernel the explorer shows :meth:`to_html`.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        scores: ``[n_layers, d_mlp]`` neuron scores (e.g. ``rank_value_vectors``); default: from
            ``probe``; with neither, neurons are ranked by value-vector norm.
        probe: a :class:`~safelens.geometry.probes.Probe` (its ``direction`` is ``p``).
        prompts_harmful: prompts whose activations are compared ...
        prompts_benign: ... with these (both sets also feed the top-activating examples).
        page_size: neurons per page of the sorted list.
        k_tokens: promoted / suppressed tokens shown.
        max_new_tokens: generation length of the intervention.
        pooling: activation pooling (see :func:`mlp_activations`).
        judge: refusal judge (default keyword).
        k_examples: top-activating prompts shown.

    Raises:
        SafelensError: ``scores`` is not ``[n_layers, d_mlp]``.

    Examples:
        >>> ex = NeuronExplorer(model, probe=probe, prompts_harmful=h, prompts_benign=b)  # doctest: +SKIP
        >>> ex  # displays the widget in JupyterLab, a static table elsewhere  # doctest: +SKIP
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
        k_examples: int = 5,
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
            raise SafelensError(
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
        self.example_prompts = self.prompts_harmful + self.prompts_benign
        self.page_size = max(1, int(page_size))
        self.k_tokens = int(k_tokens)
        self.k_examples = max(1, int(k_examples))
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
        # Peak activation + position of every neuron on every prompt: the top-activating
        # examples of any neuron read from it without another forward.
        self.peaks = (
            mlp_max_activations(model, self.example_prompts) if self.example_prompts else None
        )  # ([N_h + N_b, n_layers, d_mlp], same) values, positions
        self._effects: dict[Neuron, dict[str, Any]] = {}
        self._token_cache: dict[str, dict[str, Any]] = {}
        self._before_cache: dict[str, str] = {}
        self.intervention: dict[str, Any] | None = None
        self.token_view: dict[str, Any] | None = None
        self.layer_filter: int | None = None
        self.view = self.order  # [N_view, 2] the ranking the list and the rank slider walk
        self.n_pages = -(-len(self.view) // self.page_size)
        self.page = 0
        self.page_neurons: list[Neuron] = []
        self.info: dict[str, Any] = {}
        self.layer, self.neuron = int(self.order[0, 0]), int(self.order[0, 1])

        # ---- widgets: flexible widths, wrapping rows, labels never cut (description_width)
        wide = {"description_width": "initial"}
        self.layer_w = W.IntSlider(
            value=self.layer, min=0, max=self.n_layers - 1, description="layer",
            style=wide, continuous_update=False, layout=W.Layout(width="auto", min_width="220px"),
        )
        self.layer_only_w = W.Checkbox(
            value=False, description="top neurons in this layer only", indent=False,
            layout=W.Layout(width="auto"),
        )
        self.rank_w = W.IntSlider(
            value=1, min=1, max=len(self.view), description="rank", style=wide,
            continuous_update=False, layout=W.Layout(width="auto", min_width="220px"),
        )
        self.neuron_w = W.BoundedIntText(
            value=self.neuron, min=0, max=self.d_mlp - 1, description="neuron", style=wide,
            layout=W.Layout(width="auto", min_width="160px"),
        )
        self.page_w = W.Select(
            options=[], rows=min(self.page_size, 12),
            layout=W.Layout(width="auto", min_width="240px"),
        )
        self.prev_w = W.Button(description="◀ prev", layout=W.Layout(width="auto"))
        self.next_w = W.Button(description="next ▶", layout=W.Layout(width="auto"))
        self.page_label = W.Label()
        self.info_w = W.HTML()
        self.tokens_w = W.HTML()
        self.examples_w = W.HTML()
        self.acts_w = W.Output(layout=W.Layout(min_width="220px", flex="1 1 240px"))
        self.prompt_w = W.Textarea(
            value=self.prompts_harmful[0] if self.prompts_harmful else "How do I pick a lock?",
            description="prompt", style=wide, layout=W.Layout(width="100%", height="60px"),
        )
        self.scale_w = W.FloatText(
            value=0.0, description="scale ×", style=wide,
            layout=W.Layout(width="auto", min_width="150px"),
        )
        self.show_tokens_w = W.Button(
            description="token activations", layout=W.Layout(width="auto"),
            tooltip="colour each token of the prompt by this neuron's hook_post activation",
        )
        self.run_w = W.Button(
            description="generate before / after", button_style="primary",
            layout=W.Layout(width="auto"),
            tooltip="greedy answer before and after scaling the neuron (0 = ablate)",
        )
        self.token_w = W.HTML()
        self.result_w = W.HTML()

        self._syncing = False
        self.layer_w.observe(self._on_layer, names="value")
        self.neuron_w.observe(self._on_neuron, names="value")
        self.layer_only_w.observe(self._on_layer_only, names="value")
        self.rank_w.observe(self._on_rank, names="value")
        self.page_w.observe(self._on_page_select, names="value")
        self.prev_w.on_click(lambda _: self.prev_page())
        self.next_w.on_click(lambda _: self.next_page())
        self.show_tokens_w.on_click(lambda _: self.show_tokens())
        self.run_w.on_click(lambda _: self.run_intervention())

        wrap = {"flex_flow": "row wrap", "align_items": "flex-start", "width": "100%"}
        left = W.VBox(
            [
                self.layer_w,
                self.layer_only_w,
                self.rank_w,
                self.neuron_w,
                W.HBox([self.prev_w, self.next_w, self.page_label],
                       layout=W.Layout(flex_flow="row wrap", align_items="center")),
                self.page_w,
            ],
            layout=W.Layout(flex="1 1 260px", min_width="240px"),
        )
        middle = W.VBox(
            [self.info_w, self.tokens_w, self.examples_w],
            layout=W.Layout(flex="2 1 340px", min_width="280px"),
        )
        self.widget = W.VBox(
            [
                W.HBox([left, middle, self.acts_w], layout=W.Layout(**wrap)),
                W.HTML(
                    "<b>Prompt</b> (token view; intervention: 0 = ablate, hooks on "
                    "<code>blocks.{l}.mlp.hook_post</code>)"
                ),
                self.prompt_w,
                W.HBox([self.scale_w, self.show_tokens_w, self.run_w], layout=W.Layout(**wrap)),
                self.token_w,
                self.result_w,
            ],
            layout=W.Layout(width="100%"),
        )
        self.show_page(0)
        self.select(self.layer, self.neuron)

    # ------------------------------------------------------------------ state + callbacks
    def effects(self, layer: int, neuron: int) -> dict[str, Any]:
        """:func:`neuron_logit_effects` of one neuron, cached (the table and the panel share it)."""
        key = (int(layer), int(neuron))
        if key not in self._effects:
            self._effects[key] = neuron_logit_effects(self.model, *key, k=self.k_tokens)
        return self._effects[key]

    def neuron_info(self, layer: int, neuron: int) -> dict[str, Any]:
        """Score, rank, logit effects, mean activations and top-activating prompts of one neuron
        (no widget update)."""
        check_neuron(self.model, layer, neuron)
        flat = int(layer) * self.d_mlp + int(neuron)
        info: dict[str, Any] = {
            "layer": int(layer),
            "neuron": int(neuron),
            "score": float(self.scores[layer, neuron]),
            "rank": int(self.rank[flat]) + 1,
            "effects": self.effects(layer, neuron),
        }
        for name, acts in (("harmful", self.acts_harmful), ("benign", self.acts_benign)):
            info[f"acts_{name}"] = None if acts is None else acts[:, layer, neuron].clone()
        info["examples"] = (
            top_activating_examples(
                self.model, layer, neuron, self.example_prompts, k=self.k_examples,
                peaks=self.peaks,
            )
            if self.peaks is not None
            else []
        )
        return info

    def select(self, layer: int, neuron: int) -> dict[str, Any]:
        """Show neuron ``(layer, neuron)``; returns its :meth:`neuron_info`.

        Under a layer filter, a neuron of another layer moves the filter to its layer.
        """
        self.info = self.neuron_info(layer, neuron)
        self.layer, self.neuron = int(layer), int(neuron)
        self.intervention = None
        self.token_view = None
        if self.layer_filter is not None and self.layer_filter != self.layer:
            self._set_view(self.layer)
            self.show_page((self.view_rank(self.layer, self.neuron) - 1) // self.page_size)
        self._syncing = True
        try:
            self.layer_w.value, self.neuron_w.value = self.layer, self.neuron
            self.rank_w.value = self.view_rank(self.layer, self.neuron)
            key = (self.layer, self.neuron)
            self.page_w.value = key if key in self.page_neurons else None
        finally:
            self._syncing = False
        self._render_info()
        self.result_w.value = ""
        self.token_w.value = ""
        return self.info

    def view_rank(self, layer: int, neuron: int) -> int:
        """1-based rank of ``(layer, neuron)`` in the current view (all layers or one)."""
        if self.layer_filter is None:
            return int(self.rank[int(layer) * self.d_mlp + int(neuron)]) + 1
        hit = ((self.view[:, 0] == int(layer)) & (self.view[:, 1] == int(neuron))).nonzero()
        return int(hit[0, 0]) + 1 if len(hit) else 1

    def _set_view(self, layer: int | None) -> None:
        self.layer_filter = None if layer is None else int(layer)
        if layer is None:
            self.view = self.order
        else:
            check_neuron(self.model, layer, 0)
            self.view = self.order[self.order[:, 0] == int(layer)]  # [d_mlp, 2], best first
        self.n_pages = -(-len(self.view) // self.page_size)
        self._syncing = True
        try:
            self.rank_w.max = len(self.view)
            self.layer_only_w.value = layer is not None
        finally:
            self._syncing = False

    def set_layer_filter(self, layer: int | None) -> list[Neuron]:
        """Rank only layer ``layer``'s neurons (``None``: all layers); selects the view's best.

        Returns:
            The first page of the new view.
        """
        self._set_view(layer)
        neurons = self.show_page(0)
        self.select(*neurons[0])
        return neurons

    def select_rank(self, rank: int) -> dict[str, Any]:
        """Select the neuron at 1-based ``rank`` of the current view (clamped) and show its page."""
        r = max(1, min(int(rank), len(self.view)))
        layer, neuron = (int(x) for x in self.view[r - 1].tolist())
        self.show_page((r - 1) // self.page_size)
        return self.select(layer, neuron)

    def show_page(self, page: int) -> list[Neuron]:
        """Fill the sorted list with page ``page`` (clamped); returns its ``(layer, neuron)`` s."""
        self.page = max(0, min(int(page), self.n_pages - 1))
        rows = self.view[self.page * self.page_size : (self.page + 1) * self.page_size]
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
        where = "all layers" if self.layer_filter is None else f"layer {self.layer_filter}"
        self.page_label.value = f"page {self.page + 1}/{self.n_pages} ({where})"
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

    def show_tokens(self, prompt: str | None = None) -> dict[str, Any]:
        """Colour each token of the prompt (the prompt box by default, chat-formatted) by the
        selected neuron's activation; one forward per prompt, cached for every neuron.

        Returns:
            dict with ``layer``, ``neuron``, ``prompt``, ``tokens`` ``[T]`` and ``activations``
            ``[T]`` (:func:`~safelens.geometry.neurons.token_activations`).
        """
        prompt = self.prompt_w.value if prompt is None else prompt
        if prompt not in self._token_cache:
            self._token_cache[prompt] = token_activations(self.model, prompt)
        cached = self._token_cache[prompt]
        self.token_view = {
            "layer": self.layer,
            "neuron": self.neuron,
            "prompt": prompt,
            "tokens": cached["tokens"],
            "activations": cached["activations"][:, self.layer, self.neuron].clone(),  # [T]
        }
        self._render_tokens()
        return self.token_view

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

    def _on_layer(self, change: dict) -> None:
        if self._syncing:
            return
        layer = int(self.layer_w.value)
        if self.layer_filter is not None:
            self.set_layer_filter(layer)  # the layer's best neuron
        else:
            self.select(layer, int(self.neuron_w.value))

    def _on_neuron(self, change: dict) -> None:
        if not self._syncing:
            self.select(int(self.layer_w.value), int(self.neuron_w.value))

    def _on_layer_only(self, change: dict) -> None:
        if not self._syncing:
            self.set_layer_filter(self.layer if change.get("new") else None)

    def _on_rank(self, change: dict) -> None:
        if not self._syncing:
            self.select_rank(int(self.rank_w.value))

    def _on_page_select(self, change: dict) -> None:
        if not self._syncing and change.get("new") is not None:
            self.select(*change["new"])

    # ------------------------------------------------------------------ rendering
    @staticmethod
    def _token_rows(pairs: list[tuple[str, float]]) -> str:
        return "".join(
            f"<tr><td><code>{html.escape(repr(t))}</code></td><td>{v:+.3f}</td></tr>"
            for t, v in pairs
        )

    def _examples_html(self, examples: list[dict[str, Any]]) -> str:
        if not examples:
            return ""
        rows = "".join(
            f"<tr><td>{e['rank']}</td><td>{e['activation']:+.3f}</td>"
            f"<td><code>{html.escape(repr(e['token']))}</code></td>"
            f"<td>{'harmful' if e['index'] < len(self.prompts_harmful) else 'benign'}</td>"
            f"<td style='text-align:left'>{html.escape(e['prompt'][:120])}</td></tr>"
            for e in examples
        )
        return (
            "<b>top-activating prompts</b> (peak <code>hook_post</code> over the prompt's tokens)"
            "<table><tr><th>#</th><th>peak</th><th>at token</th><th>set</th><th>prompt</th></tr>"
            f"{rows}</table>"
        )

    def _render_info(self) -> None:
        i = self.info
        self.info_w.value = (
            f"<b>L{i['layer']} neuron {i['neuron']}</b> — {html.escape(self.score_name)} = "
            f"{i['score']:.4g} (rank {i['rank']:,} of {self.scores.numel():,})"
        )
        fx = i["effects"]
        self.tokens_w.value = (
            "<table><tr><th>promotes</th><th></th><th>suppresses</th><th></th></tr><tr>"
            f"<td colspan=2><table>{self._token_rows(fx['promoted'])}</table></td>"
            f"<td colspan=2><table>{self._token_rows(fx['suppressed'])}</table></td></tr></table>"
        )
        self.examples_w.value = self._examples_html(i["examples"])
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
            ax.set_ylabel(f"{self.pooling} hook_post activation (a.u.)")
            ax.axhline(0, color="k", lw=0.5)
            fig.tight_layout()
            plt.show()
            plt.close(fig)

    def _render_tokens(self) -> None:
        tv = self.token_view
        if tv is None:
            self.token_w.value = ""
            return
        a = tv["activations"]
        self.token_w.value = (
            f"<b>L{tv['layer']} n{tv['neuron']} per token</b> (max {float(a.max()):+.3f}, "
            f"min {float(a.min()):+.3f}; red fires, blue negative)"
            + token_activation_html(tv["tokens"], a)
        )

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

    # ------------------------------------------------------------------ static fallback
    def to_html(self, n_tokens: int = 5) -> str:
        """The current page as a static HTML table (rank, layer, neuron, score, promoted and
        suppressed tokens) and the selected neuron's panel: what a non-live render shows.

        Args:
            n_tokens: promoted / suppressed tokens per row.

        Returns:
            An HTML string without scripts.
        """
        def toks(pairs: list[tuple[str, float]]) -> str:
            return " ".join(f"<code>{html.escape(repr(t))}</code>" for t, _ in pairs[:n_tokens])

        rows = []
        for lay, j in self.page_neurons:
            fx = self.effects(lay, j)
            mark = " style='font-weight:bold'" if (lay, j) == (self.layer, self.neuron) else ""
            rows.append(
                f"<tr{mark}><td>{int(self.rank[lay * self.d_mlp + j]) + 1}</td><td>{lay}</td>"
                f"<td>{j}</td><td>{float(self.scores[lay, j]):.4g}</td>"
                f"<td style='text-align:left'>{toks(fx['promoted'])}</td>"
                f"<td style='text-align:left'>{toks(fx['suppressed'])}</td></tr>"
            )
        where = "all layers" if self.layer_filter is None else f"layer {self.layer_filter} only"
        parts = [
            "<div class='safelens-neuron-explorer' style='max-width:100%;overflow-x:auto'>",
            f"<p><b>Neuron explorer</b> (static view: page {self.page + 1} of {self.n_pages}, "
            f"{where}; run the notebook in JupyterLab for the live widget)</p>",
            f"<table><tr><th>rank</th><th>layer</th><th>neuron</th>"
            f"<th>{html.escape(self.score_name)}</th><th>promoted tokens</th>"
            f"<th>suppressed tokens</th></tr>{''.join(rows)}</table>",
            f"<p>{self.info_w.value}</p>",
        ]
        means = [
            f"{n}: {float(self.info[f'acts_{n}'].mean()):+.3f} (n={len(self.info[f'acts_{n}'])})"
            for n in ("harmful", "benign")
            if self.info.get(f"acts_{n}") is not None
        ]
        if means:
            parts.append(f"<p>mean {self.pooling} activation — {'; '.join(means)}</p>")
        parts += [self.examples_w.value, self.token_w.value, self.result_w.value, "</div>"]
        return "".join(p for p in parts if p)

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # The live widget where a kernel renders it; the static table wherever it cannot
        # (HTML exports without widget state, GitHub, a notebook reopened without its kernel).
        data = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        data["text/html"] = self.to_html()
        data["text/plain"] = (
            f"NeuronExplorer: L{self.layer} neuron {self.neuron} "
            f"(rank {self.info.get('rank', '?')} of {self.scores.numel():,}), page {self.page + 1}"
            f"/{self.n_pages}"
        )
        return data
