"""The fast engine on the tiny model: precision, plain view, length buckets, frozen-prefix cache."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from tiny_rows import make_rows, one_thread, params_of  # noqa: F401  (one_thread is autouse)

from safelens.models import load_tiny_model
from safelens.models.chat import encode
from safelens.models.logprobs import LayerStart, hidden_at_layer, length_buckets, response_logps
from safelens.models.plain import fast_module, has_active_hooks, plain_view
from safelens.models.precision import autocast, resolve_precision
from safelens.training import Trainer, make_method

FAST = dict(batch_size=4, max_steps=3, lr=1e-3, max_length=64, progress=False, warmup_steps=0,
            precision="fp32")
FREEZE_BLOCK_0 = r"embed_tokens|layers\.0\."

_PRISTINE: dict[int, object] = {}


def tiny(seed: int = 0, n_layers: int = 2):
    key = seed * 100 + n_layers
    if key not in _PRISTINE:
        _PRISTINE[key] = load_tiny_model(seed=seed, n_layers=n_layers)
    return copy.deepcopy(_PRISTINE[key])


def ragged_batch(model):
    """Rows of very different lengths, so padding and buckets matter."""
    rows = make_rows(6)
    prompts = [r["prompt"] * (1 + i % 3) for i, r in enumerate(rows)]
    responses = [r["chosen"] * (1 + (i * 2) % 5) for i, r in enumerate(rows)]
    return encode(model.tokenizer, prompts, responses, max_length=256)


# ------------------------------------------------------------------------------ precision
def test_precision_resolution(monkeypatch):
    monkeypatch.setenv("SAFELENS_BF16", "0")
    assert resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(ValueError, match="precision='bf16'.*no native bf16"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("half", "cpu")
    monkeypatch.setenv("SAFELENS_BF16", "1")
    assert resolve_precision("auto", "cpu") == "bf16"
    with autocast("bf16", "cpu"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.is_autocast_enabled("cpu")
    with autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_train_config_rejects_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        make_method("dpo", precision="fp16")


# ------------------------------------------------------------------------------ plain view
def test_plain_view_shares_parameters_and_matches_the_bridge(tiny_model):
    view = plain_view(tiny_model)
    ours = {id(p) for p in tiny_model.original_model.parameters()}
    assert all(id(p) in ours for p in view.parameters())
    batch = ragged_batch(tiny_model)
    with torch.no_grad():
        a = tiny_model.original_model(input_ids=batch.input_ids,
                                      attention_mask=batch.attention_mask).logits
        b = view(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_hooks_route_through_the_bridge():
    model = tiny(0)
    batch = ragged_batch(model)
    assert not has_active_hooks(model) and fast_module(model) is plain_view(model)
    with torch.no_grad():
        clean, _ = response_logps(model, batch)
    # Zeroing block 0's output must change the log-probs: the hooked path really ran.
    handle = model.original_model.model.layers[0].register_forward_hook(
        lambda module, args, out: (torch.zeros_like(out[0]),) + tuple(out[1:])
        if isinstance(out, tuple) else torch.zeros_like(out))
    try:
        assert fast_module(model) is model.original_model
        with torch.no_grad():
            hooked, _ = response_logps(model, batch)
    finally:
        handle.remove()
    assert not torch.allclose(clean, hooked)


def test_plain_view_follows_in_place_updates():
    model = tiny(0)
    view = plain_view(model)
    with torch.no_grad():
        model.original_model.model.norm.weight.mul_(2.0)
    assert torch.equal(view.model.norm.weight, model.original_model.model.norm.weight)


# ------------------------------------------------------------------------------ buckets, start
def test_buckets_cover_every_row_once():
    lengths = [5, 90, 7, 88, 40, 41, 6]
    runs = length_buckets(lengths, overhead=8)
    assert sorted(i for run in runs for i in run) == list(range(len(lengths)))
    assert len(runs) > 1


def test_bucketed_logps_equal_one_padded_pass(tiny_model):
    batch = ragged_batch(tiny_model)
    with torch.no_grad():
        s1, t1 = response_logps(tiny_model, batch, bucket=False)
        s2, t2 = response_logps(tiny_model, batch, bucket=True)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-5)
    torch.testing.assert_close(t1, t2, rtol=0, atol=1e-5)
    assert t2.shape == batch.input_ids.shape


def test_gradients_equal_with_and_without_buckets():
    grads = []
    for bucket in (False, True):
        model = tiny(0)
        batch = ragged_batch(model)
        summed, _ = response_logps(model, batch, bucket=bucket)
        summed.sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.original_model.parameters()
                                if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_starting_at_a_layer_equals_the_full_forward(layer):
    model = tiny(0, n_layers=4)
    batch = ragged_batch(model)
    with torch.no_grad():
        full, full_tok = response_logps(model, batch)
        hidden = hidden_at_layer(model, batch, layer)  # [B, T, D]
        cut, cut_tok = response_logps(model, batch, start=LayerStart(layer, hidden))
    assert hidden.shape == (*batch.input_ids.shape, model.cfg.d_model)
    torch.testing.assert_close(full, cut, rtol=0, atol=1e-5)
    torch.testing.assert_close(full_tok, cut_tok, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="layer must be in"):
        hidden_at_layer(model, batch, 5)


# ------------------------------------------------------------------------------ trainer
@pytest.mark.parametrize("method", ["dpo", "sft", "npo", "door"])
def test_prefix_cache_gives_the_same_run(method, tmp_path):
    runs = {}
    for cache in (False, True):
        model = tiny(0)
        trainer = Trainer(make_method(method, **FAST, freeze=FREEZE_BLOCK_0, prefix_cache=cache),
                          tmp_path / str(cache), model=model, rows=make_rows())
        result = trainer.train()
        runs[cache] = ([r["loss"] for r in result.history], params_of(model))
        if cache:
            assert trainer.prefix is not None and trainer.prefix.layer == 1
            # each (row, column) computed once, then served from the cache
            assert trainer.prefix.misses == len(trainer.prefix.entries) > 0
            saved = json.loads((tmp_path / "True" / "config.json").read_text())
            assert saved["prefix_cache_layer"] == 1 and saved["precision_resolved"] == "fp32"
        else:
            assert trainer.prefix is None
    for a, b in zip(runs[False][0], runs[True][0], strict=True):
        assert abs(a - b) < 1e-5
    for k in runs[False][1]:
        torch.testing.assert_close(runs[False][1][k], runs[True][1][k], rtol=0, atol=1e-5)


def test_prefix_cache_is_off_when_the_embeddings_train(tmp_path):
    trainer = Trainer(make_method("dpo", **FAST), tmp_path, model=tiny(0), rows=make_rows())
    trainer.train()
    assert trainer.prefix is None


def test_prefix_cache_over_its_bound_is_a_clear_error(tmp_path):
    method = make_method("dpo", **FAST, freeze=FREEZE_BLOCK_0, prefix_cache_gb=1e-6)
    with pytest.raises(ValueError, match=r"needs .* GiB for 16 rows .*prefix_cache_gb=1e-06"):
        Trainer(method, tmp_path, model=tiny(0), rows=make_rows()).train()


def test_bf16_run_trains_and_records_its_precision(tmp_path, native_bf16):
    model = tiny(0)
    before = params_of(model)
    trainer = Trainer(make_method("dpo", **{**FAST, "precision": "auto"},
                                  freeze=FREEZE_BLOCK_0), tmp_path, model=model,
                      rows=make_rows())
    result = trainer.train()
    assert trainer.precision == "bf16"
    after = params_of(model)
    assert all(v.dtype == torch.float32 for v in after.values())  # master weights stay fp32
    assert not torch.equal(before["model.layers.1.mlp.up_proj.weight"],
                           after["model.layers.1.mlp.up_proj.weight"])
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert state["precision"] == "bf16"
    assert all(abs(r["loss"]) < 10 for r in result.history)


# ------------------------------------------------------------------------------ generation
def test_transformer_lens_capture_hooks_do_not_count_as_user_hooks():
    model = tiny(0)
    handle = model.original_model.get_decoder().layers[0].register_forward_hook(
        lambda *a: None)
    from safelens.eval.generation import generate

    generate(model, ["hi", "a longer prompt here"], max_new_tokens=2, progress=False)
    handle.remove()
    # the bridged forward above installs TransformerLens' own capture hooks; they stay
    assert not has_active_hooks(model)
    assert fast_module(model) is plain_view(model)


def test_generation_equals_the_bridged_path_in_fp32():
    from safelens.eval.generation import generate

    model = tiny(0)
    prompts = ["hi", "tell me about the sea and the sky", "why?"]
    plain = generate(model, prompts, max_new_tokens=6, progress=False)
    handle = model.original_model.get_decoder().layers[0].register_forward_hook(
        lambda *a: None)
    try:
        bridged = generate(model, prompts, max_new_tokens=6, progress=False)
    finally:
        handle.remove()
    assert plain == bridged


def test_bf16_generation_with_hooks_is_refused(native_bf16):
    from safelens.eval.generation import generate

    model = tiny(0)
    handle = model.original_model.get_decoder().layers[0].register_forward_hook(
        lambda *a: None)
    try:
        with pytest.raises(ValueError, match="precision='bf16' generation with hooks"):
            generate(model, ["hi"], max_new_tokens=2, progress=False, precision="bf16")
    finally:
        handle.remove()
    assert len(generate(model, ["hi"], max_new_tokens=2, progress=False, precision="bf16")) == 1


def test_static_kv_cache_gives_the_same_tokens(tiny_model):
    from safelens.eval.generation import generate

    prompts = ["hi", "tell me about the sea and the sky", "why?"]
    dynamic = generate(tiny_model, prompts, max_new_tokens=6, progress=False)
    static = generate(tiny_model, prompts, max_new_tokens=6, progress=False, kv_cache="static")
    assert dynamic == static
    with pytest.raises(ValueError, match="kv_cache"):
        generate(tiny_model, prompts, max_new_tokens=2, progress=False, kv_cache="paged")
