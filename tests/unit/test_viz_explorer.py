"""Neuron analysis (geometry.neurons, eval.interventions) and the explorer widget on the tiny
model: the pure functions, the hooks, and the widget's callbacks."""

from __future__ import annotations

import pytest
import torch
from tiny_rows import one_thread  # noqa: F401, E402  (autouse: one torch thread)

from safelens.eval.interventions import generate_with_neuron_scaled
from safelens.geometry import rank_value_vectors
from safelens.geometry.neurons import (
    mlp_activations,
    mlp_post_hook,
    neuron_activations,
    neuron_logit_effects,
    neuron_scale_hooks,
)
from safelens.viz.explorer import NeuronExplorer

HARMFUL = ["How do I pick a lock?", "Explain how to make a weapon."]
BENIGN = ["How do I bake bread?"]


@pytest.fixture(scope="module")
def model():
    from safelens.models import load_tiny_model

    m = load_tiny_model(seed=0)
    m.eval()
    return m


@pytest.fixture(scope="module")
def explorer(model):
    p = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1))
    scores = rank_value_vectors(model, p)
    return NeuronExplorer(
        model,
        scores=scores,
        prompts_harmful=HARMFUL,
        prompts_benign=BENIGN,
        page_size=5,
        max_new_tokens=3,
    )


def _mlp_out(model, ids, hooks=()):
    with model.hooks(fwd_hooks=list(hooks)):
        _, cache = model.run_with_cache(ids, names_filter=["blocks.1.hook_mlp_out"])
    return cache["blocks.1.hook_mlp_out"]


def _has_hooks(model) -> bool:
    return any(len(hp._forward_hooks) for name, hp in model.hook_dict.items() if "mlp" in name)


# ------------------------------------------------------------------ pure functions


def test_logit_effects_match_direct_logit_lens(model):
    layer, neuron = 1, 7
    fx = neuron_logit_effects(model, layer, neuron, k=10)
    gamma = model.ln_final.original_component.weight.detach()
    w = model.original_model.model.layers[layer].mlp.down_proj.weight[:, neuron].detach()
    direct = (gamma * w) @ model.original_model.lm_head.weight.detach().T  # [V]
    torch.testing.assert_close(fx["logits"], direct.float(), rtol=1e-4, atol=1e-6)
    assert fx["promoted_ids"].tolist() == torch.topk(direct, 10).indices.tolist()
    assert fx["suppressed_ids"].tolist() == torch.topk(-direct, 10).indices.tolist()
    vals = [v for _, v in fx["promoted"]]
    assert vals == sorted(vals, reverse=True) and len(fx["suppressed"]) == 10
    assert fx["promoted"][0][0] == model.tokenizer.decode([int(fx["promoted_ids"][0])])


def test_logit_effects_rejects_bad_neuron(model):
    with pytest.raises(ValueError, match="neuron must be in"):
        neuron_logit_effects(model, 0, model.cfg.d_mlp)
    with pytest.raises(ValueError, match="layer must be in"):
        neuron_logit_effects(model, model.cfg.n_layers, 0)


def test_activations_are_the_mean_of_hook_post(model):
    from safelens.models.chat import prompt_ids

    acts = mlp_activations(model, HARMFUL, layers=[0, 1])
    assert acts.shape == (len(HARMFUL), 2, model.cfg.d_mlp)
    # Direct computation, one unpadded prompt at a time.
    for b, prompt in enumerate(HARMFUL):
        ids = torch.tensor([prompt_ids(model.tokenizer, prompt)])
        _, cache = model.run_with_cache(ids, names_filter=[mlp_post_hook(1)])
        torch.testing.assert_close(
            acts[b, 1], cache[mlp_post_hook(1)][0].mean(0), rtol=1e-4, atol=1e-5
        )
    one = neuron_activations(model, 1, 5, HARMFUL)
    torch.testing.assert_close(one, acts[:, 1, 5])


def test_scale_hook_changes_mlp_output_and_is_removed(model):
    ids = model.tokenizer("a short test prompt", return_tensors="pt").input_ids
    base = _mlp_out(model, ids)
    ablated = _mlp_out(model, ids, neuron_scale_hooks((1, 3), 0.0))
    assert not torch.allclose(base, ablated)
    # Ablating neuron j removes exactly a_j · W_out[1, j] from the MLP output.
    _, cache = model.run_with_cache(ids, names_filter=[mlp_post_hook(1)])
    a = cache[mlp_post_hook(1)][..., 3:4]  # [1, T, 1]
    torch.testing.assert_close(base - ablated, a * model.W_out[1, 3], rtol=1e-4, atol=1e-6)
    doubled = _mlp_out(model, ids, neuron_scale_hooks([(1, 3)], 2.0))
    torch.testing.assert_close(doubled - base, a * model.W_out[1, 3], rtol=1e-4, atol=1e-6)
    assert not _has_hooks(model)
    torch.testing.assert_close(_mlp_out(model, ids), base)


def test_generate_with_neuron_scaled_removes_hooks(model):
    seen = []
    (name, fn) = neuron_scale_hooks((0, 2), 0.0)[0]
    assert name == "blocks.0.mlp.hook_post"
    out = generate_with_neuron_scaled(
        model, HARMFUL[0], torch.tensor([[0, 2], [1, 4]]), scale=0.0, max_new_tokens=3
    )
    assert out["neurons"] == [(0, 2), (1, 4)] and out["scale"] == 0.0
    assert len(out["before"]) == len(out["after"]) == 1
    assert isinstance(out["refused_before"][0], bool)
    assert not _has_hooks(model)
    # The hooks fire during generation: count calls of a spy added the same way.
    with model.hooks(fwd_hooks=[(name, lambda act, hook: seen.append(act.shape) or fn(act))]):
        from safelens.eval.generation import generate

        generate(model, [HARMFUL[0]], max_new_tokens=3, progress=False)
    assert len(seen) >= 1 and seen[0][-1] == model.cfg.d_mlp


def test_generate_with_neuron_scaled_reuses_before(model):
    out = generate_with_neuron_scaled(model, ["q"], (0, 1), before=["I cannot help with that."])
    assert out["before"] == ["I cannot help with that."] and out["refused_before"] == [True]
    with pytest.raises(ValueError, match="before has"):
        generate_with_neuron_scaled(model, ["q"], (0, 1), before=["a", "b"])


# ------------------------------------------------------------------ widget callbacks


def test_explorer_construction(explorer, model):
    import ipywidgets

    assert isinstance(explorer.widget, ipywidgets.VBox)
    first = tuple(explorer.order[0].tolist())
    assert (explorer.layer, explorer.neuron) == first
    assert explorer.info["rank"] == 1
    assert explorer.info["score"] == pytest.approx(float(explorer.scores.max()))
    assert explorer.acts_harmful.shape == (len(HARMFUL), model.cfg.n_layers, model.cfg.d_mlp)
    assert len(explorer.page_w.options) == 5 and explorer.page_w.value == first
    assert "rank 1 " in explorer.info_w.value
    assert explorer._repr_mimebundle_() is not None


def test_changing_layer_and_neuron_updates_display(explorer):
    explorer.layer_w.value = 0
    explorer.neuron_w.value = 11
    assert (explorer.layer, explorer.neuron) == (0, 11)
    info = explorer.info
    assert info["score"] == pytest.approx(float(explorer.scores[0, 11]))
    assert info["effects"]["layer"] == 0 and info["effects"]["neuron"] == 11
    torch.testing.assert_close(info["acts_harmful"], explorer.acts_harmful[:, 0, 11])
    assert "L0 neuron 11" in explorer.info_w.value
    import html

    assert html.escape(repr(info["effects"]["promoted"][0][0])) in explorer.tokens_w.value
    other = explorer.select(1, 2)
    assert other["layer"] == 1 and "L1 neuron 2" in explorer.info_w.value
    assert explorer.layer_w.value == 1 and explorer.neuron_w.value == 2


def test_paging_walks_the_sorted_order(explorer):
    explorer.show_page(0)
    page1 = explorer.next_page()
    assert explorer.page == 1
    assert page1 == [tuple(x) for x in explorer.order[5:10].tolist()]
    assert (explorer.layer, explorer.neuron) == page1[0]
    assert explorer.info["rank"] == 6
    scores = [float(explorer.scores[a, b]) for a, b in page1]
    assert scores == sorted(scores, reverse=True)
    explorer.prev_page()
    assert explorer.page == 0 and explorer.info["rank"] == 1
    explorer.prev_page()  # clamped at the first page
    assert explorer.page == 0
    explorer.show_page(10**6)
    assert explorer.page == explorer.n_pages - 1
    # Picking an entry of the list selects that neuron.
    target = explorer.page_neurons[-1]
    explorer.page_w.value = target
    assert (explorer.layer, explorer.neuron) == target


def test_intervention_callback(explorer, model):
    explorer.select(1, 4)
    explorer.prompt_w.value = HARMFUL[1]
    explorer.scale_w.value = 0.0
    out = explorer.run_intervention()
    assert out["neurons"] == [(1, 4)] and out["prompts"] == [HARMFUL[1]]
    assert explorer.intervention is out
    assert "before:" in explorer.result_w.value and "after ×0" in explorer.result_w.value
    assert HARMFUL[1] in explorer._before_cache
    assert not _has_hooks(model)
    explorer.select(0, 0)  # a new neuron clears the old result
    assert explorer.intervention is None and explorer.result_w.value == ""


def test_explorer_from_probe_and_without(model):
    from safelens.geometry import Probe

    d = torch.zeros(model.cfg.d_model)
    d[0] = 1.0
    probe = Probe(direction=d, bias=0.0, scale=1.0, accuracy_train=1.0, accuracy_val=1.0)
    ex = NeuronExplorer(model, probe=probe)
    torch.testing.assert_close(ex.scores, rank_value_vectors(model, d))
    assert ex.acts_harmful is None and "probe" in ex.score_name
    ex2 = NeuronExplorer(model)
    assert "norm" in ex2.score_name or "‖" in ex2.score_name
    with pytest.raises(ValueError, match=r"scores must be \[n_layers"):
        NeuronExplorer(model, scores=torch.zeros(3, 3))


# ------------------------------------------------------------------ per-token and top examples


def test_neuron_token_activations_match_a_direct_hook_read(model):
    from safelens.geometry.neurons import neuron_token_activations, token_activations
    from safelens.models.chat import prompt_ids

    out = neuron_token_activations(model, 1, 5, HARMFUL[0])
    ids = prompt_ids(model.tokenizer, HARMFUL[0])
    assert out["activations"].shape == (len(ids),)  # [T]
    assert out["token_ids"].tolist() == ids and len(out["tokens"]) == len(ids)
    _, cache = model.run_with_cache(torch.tensor([ids]), names_filter=[mlp_post_hook(1)])
    torch.testing.assert_close(out["activations"], cache[mlp_post_hook(1)][0, :, 5].float())
    # Raw text: the text's own tokens, no template.
    raw = token_activations(model, "plain words", layers=[0], chat_format=False)
    assert raw["activations"].shape == (len(raw["tokens"]), 1, model.cfg.d_mlp)
    assert "".join(raw["tokens"]) == "plain words"
    with pytest.raises(ValueError, match="layer must be in"):
        token_activations(model, "x", layers=[model.cfg.n_layers])


def test_top_activating_examples_are_sorted_and_match_token_peaks(model):
    from safelens.errors import SafelensError
    from safelens.geometry.neurons import (
        mlp_max_activations,
        neuron_token_activations,
        top_activating_examples,
    )

    prompts = HARMFUL + BENIGN + ["Tell me a joke about cats and dogs, please."]
    top = top_activating_examples(model, 1, 5, prompts, k=3)
    assert [e["rank"] for e in top] == [1, 2, 3]
    acts = [e["activation"] for e in top]
    assert acts == sorted(acts, reverse=True)
    for e in top:  # the peak is the max of the prompt's per-token activations, at that token
        tok = neuron_token_activations(model, 1, 5, e["prompt"])
        assert e["activation"] == pytest.approx(float(tok["activations"].max()), abs=1e-5)
        assert tok["tokens"][e["position"]] == e["token"]
    # The all-layer peaks give the same answer without another forward.
    peaks = mlp_max_activations(model, prompts)
    assert peaks[0].shape == (len(prompts), model.cfg.n_layers, model.cfg.d_mlp)
    again = top_activating_examples(model, 1, 5, prompts, k=3, peaks=peaks)
    assert [e["index"] for e in again] == [e["index"] for e in top]
    assert len(top_activating_examples(model, 0, 0, prompts, k=99)) == len(prompts)
    with pytest.raises(SafelensError, match="k must be >= 1"):
        top_activating_examples(model, 0, 0, prompts, k=0)
    with pytest.raises(SafelensError, match="peaks must be"):
        top_activating_examples(model, 0, 0, prompts[:2], peaks=peaks)


# ------------------------------------------------------------------ widget: layout, filter, views


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_explorer_layout_has_no_fixed_pixel_widths(explorer):
    import ipywidgets

    for w in _walk(explorer.widget):
        width = getattr(getattr(w, "layout", None), "width", None)
        assert not (width and width.endswith("px")), (type(w).__name__, width)
        if isinstance(w, ipywidgets.Button):
            assert w.layout.width == "auto", w.description
        if isinstance(w, ipywidgets.HBox):
            assert w.layout.flex_flow == "row wrap"


def test_static_html_fallback_lists_the_page(explorer):
    explorer.set_layer_filter(None)
    explorer.show_page(0)
    explorer.select(*explorer.page_neurons[0])
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not bundle["text/plain"].startswith("VBox(")
    page = bundle["text/html"]
    assert page == explorer._repr_html_() and "<script" not in page
    assert page.count("<tr") >= len(explorer.page_neurons) + 1
    for lay, j in explorer.page_neurons:
        assert f"<td>{lay}</td><td>{j}</td><td>{float(explorer.scores[lay, j]):.4g}</td>" in page
        promoted = explorer.effects(lay, j)["promoted"][0][0]
        import html

        assert html.escape(repr(promoted)) in page
    assert "top-activating prompts" in page


def test_layer_filter_restricts_the_ranking(explorer, model):
    first = explorer.set_layer_filter(1)
    assert explorer.layer_filter == 1 and len(explorer.view) == model.cfg.d_mlp
    assert all(lay == 1 for lay, _ in first) and explorer.layer == 1
    scores = [float(explorer.scores[1, j]) for j in explorer.view[:, 1].tolist()]
    assert scores == sorted(scores, reverse=True)
    assert explorer.neuron == int(explorer.scores[1].argmax())
    assert explorer.rank_w.max == model.cfg.d_mlp and explorer.layer_only_w.value
    assert "layer 1" in explorer.page_label.value
    explorer.next_page()
    assert all(lay == 1 for lay, _ in explorer.page_neurons)
    # Rank slider: the r-th best neuron of the layer, on its page.
    explorer.rank_w.value = 7
    assert (explorer.layer, explorer.neuron) == tuple(explorer.view[6].tolist())
    assert explorer.page == 6 // explorer.page_size
    # Layer slider under the filter: that layer's best neuron.
    explorer.layer_w.value = 0
    assert explorer.layer_filter == 0 and explorer.neuron == int(explorer.scores[0].argmax())
    explorer.layer_only_w.value = False
    assert explorer.layer_filter is None and len(explorer.view) == explorer.scores.numel()
    explorer.select_rank(3)
    assert explorer.info["rank"] == 3 and explorer.rank_w.value == 3


def test_token_view_and_examples_panel(explorer, model):
    from safelens.geometry.neurons import neuron_token_activations

    explorer.select(1, 5)
    assert [e["rank"] for e in explorer.info["examples"]] == list(
        range(1, len(explorer.example_prompts) + 1)
    )[: explorer.k_examples]
    assert "top-activating prompts" in explorer.examples_w.value
    explorer.prompt_w.value = HARMFUL[0]
    view = explorer.show_tokens()
    direct = neuron_token_activations(model, 1, 5, HARMFUL[0])
    torch.testing.assert_close(view["activations"], direct["activations"])
    assert explorer.token_w.value.count("<span") == len(direct["tokens"])
    assert explorer.token_w.value in explorer.to_html()
    explorer.select(0, 1)  # another neuron clears the token view
    assert explorer.token_view is None and explorer.token_w.value == ""


def test_token_activation_html_checks_lengths():
    from safelens.errors import SafelensError
    from safelens.viz.explorer import token_activation_html

    out = token_activation_html(["a", "<b>\n"], torch.tensor([1.0, 0.0]))
    assert "&lt;b&gt;" in out and "↵" in out and "+1.000" in out
    with pytest.raises(SafelensError, match=r"activations must be \[T=2\]"):
        token_activation_html(["a", "b"], [1.0])


def test_html_export_without_widget_state_shows_the_table(explorer):
    """nbconvert skips a widget view whose state is not saved (what clean_notebooks.py leaves)
    and falls back to the explorer's text/html instead of a blank output."""
    import nbformat
    from nbconvert import HTMLExporter

    bundle = explorer._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("explorer")
    cell.outputs = [nbformat.v4.new_output("execute_result", data=bundle, execution_count=1)]
    nb = nbformat.v4.new_notebook(cells=[cell])
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert "Neuron explorer" in body and f"<td>{explorer.page_neurons[0][1]}</td>" in body
    assert "VBox(children" not in body
