"""Model loading, chat encoding and response log-probs on the tiny model."""

from __future__ import annotations

import pytest
import torch

from safelens.models import ModelNotFoundError, load_model, load_tiny_model, save_model
from safelens.models.chat import encode, encode_prompts
from safelens.models.logprobs import response_logps

PROMPTS = ["How do I bake bread?", "hi"]
RESPONSES = ["Mix flour, water and yeast; knead, proof and bake.", "Hello! How can I help?"]


def reference_logps(model, batch) -> torch.Tensor:
    """Per-token response log-probs from a plain full-vocabulary HF forward."""
    with torch.no_grad():
        logits = model.original_model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logp = torch.log_softmax(logits.float(), -1)[:, :-1]
    tok = logp.gather(-1, batch.input_ids[:, 1:, None])[..., 0]
    return tok * batch.response_mask[:, 1:]


def test_encode_masks_and_padding(tiny_model):
    tok = tiny_model.tokenizer
    batch = encode(tok, PROMPTS, RESPONSES)
    assert batch.input_ids.shape == batch.attention_mask.shape == batch.response_mask.shape
    lengths = batch.attention_mask.sum(1)
    # right padding: ones then zeros, and response tokens only on real tokens
    for b, n in enumerate(lengths.tolist()):
        assert batch.attention_mask[b, :n].all() and not batch.attention_mask[b, n:].any()
    assert (batch.response_mask <= batch.attention_mask).all()
    # the response part decodes back to the response + end-of-turn
    row = batch.input_ids[1][batch.response_mask[1].bool()]
    assert tok.decode(row, skip_special_tokens=True).strip() == RESPONSES[1]
    assert row[-1].item() == tok.eos_token_id
    # the prompt part is exactly the chat template with the generation prompt
    head = batch.input_ids[1][: int((batch.response_mask[1] == 0).sum() - (batch.attention_mask[1] == 0).sum())]
    expected = tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                       add_generation_prompt=True, tokenize=True,
                                       return_dict=True)["input_ids"]
    assert head.tolist() == list(expected)


def test_encode_rejects_bad_input(tiny_model):
    tok = tiny_model.tokenizer
    with pytest.raises(ValueError, match="pair 1: the response is empty"):
        encode(tok, PROMPTS, ["fine", "   "])
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        encode(tok, PROMPTS, RESPONSES[:1])
    with pytest.raises(ValueError, match="the prompt alone"):
        encode(tok, ["word " * 200], ["x"], max_length=50)
    with pytest.raises(ValueError, match="over max_length"):
        encode(tok, PROMPTS, ["long " * 200, "ok"], max_length=64, on_overlong="error")


def test_encode_truncates_overlong_with_warning(tiny_model):
    with pytest.warns(UserWarning, match="1 of 2 responses were truncated"):
        batch = encode(tiny_model.tokenizer, PROMPTS, ["long " * 200, "ok"], max_length=64)
    assert batch.input_ids.shape[1] == 64
    assert batch.truncated.tolist() == [True, False]


def test_prefix_is_outside_the_response_mask(tiny_model):
    tok = tiny_model.tokenizer
    plain = encode(tok, ["q"], ["I can't help with that."])
    prefixed = encode(tok, ["q"], ["I can't help with that."], prefixes=["Sure, step one"])
    assert plain.response_mask.sum() == prefixed.response_mask.sum()
    assert prefixed.input_ids.shape[1] > plain.input_ids.shape[1]


def test_encode_prompts_left_pads_and_prefills(tiny_model):
    tok = tiny_model.tokenizer
    batch = encode_prompts(tok, ["a much longer prompt than the other one", "hi"],
                           prefills=[None, "Sure,"])
    assert batch.attention_mask[:, -1].all()  # left padding: last column is real everywhere
    assert batch.attention_mask[1, 0] == 0
    tail = tok.decode(batch.input_ids[1, -3:])
    assert "Sure," in tail


def test_response_logps_match_plain_forward(tiny_model):
    batch = encode(tiny_model.tokenizer, PROMPTS, RESPONSES)
    summed, per_token = response_logps(tiny_model, batch)
    ref = reference_logps(tiny_model, batch)
    assert per_token.shape == batch.input_ids.shape
    torch.testing.assert_close(per_token[:, 1:], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(summed, ref.sum(1), atol=1e-4, rtol=1e-6)
    assert (per_token[batch.response_mask == 0] == 0).all()
    mean, _ = response_logps(tiny_model, batch, average=True)
    torch.testing.assert_close(mean, summed / batch.response_mask.sum(1))


def test_response_logps_backpropagates(tiny_model):
    model = load_tiny_model(seed=1)
    batch = encode(model.tokenizer, PROMPTS, RESPONSES)
    summed, _ = response_logps(model, batch)
    summed.sum().backward()
    grads = [p.grad for p in model.original_model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_response_logps_rejects_rows_without_response(tiny_model):
    batch = encode(tiny_model.tokenizer, PROMPTS, RESPONSES)
    batch.response_mask[0] = 0
    with pytest.raises(ValueError, match="row 0 has no response tokens"):
        response_logps(tiny_model, batch)


def test_save_and_reload_checkpoint(tmp_path, tiny_model):
    save_model(tiny_model, tmp_path / "ck" / "model")
    # a `safelens align` run directory keeps its weights in DIR/model and its *training*
    # config in DIR/config.json, which must not be mistaken for the HF config
    (tmp_path / "ck" / "config.json").write_text('{"method": "dpo"}')
    reloaded = load_model(str(tmp_path / "ck"), device="cpu")
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids), tiny_model(ids))
    assert reloaded.cfg.n_layers == tiny_model.cfg.n_layers


def test_missing_model_is_a_clear_error(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="no Hugging Face checkpoint"):
        load_model(str(empty))
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE=1"):
        load_model("no-such-org/no-such-model-xyz")


def test_tiny_model_is_deterministic():
    a, b = load_tiny_model(seed=3), load_tiny_model(seed=3)
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(a(ids), b(ids))


def greedy_without_cache(model, prompt: str, max_new_tokens: int) -> str:
    """Greedy decoding by full forward passes (no KV cache), stopping at end-of-turn."""
    from safelens.models.chat import prompt_ids

    tok = model.tokenizer
    ids = torch.tensor([prompt_ids(tok, prompt)])
    start = ids.shape[1]
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = model.original_model(input_ids=ids, use_cache=False).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
            if nxt.item() == tok.eos_token_id:
                break
    return tok.decode(ids[0, start:], skip_special_tokens=True).strip()


def test_generate_equals_greedy_decoding_without_cache(tiny_model):
    # Guards the KV-cache path of the wrapped HF model: with transformers 5.24 and
    # transformer-lens 4.3 cached generation turned every answer into repeated tokens while
    # plain forward passes stayed right (this test fails on 5.24.0, passes on 5.23.0).
    from safelens.eval.generation import generate

    prompts = ["How do I bake bread?", "hi", "Tell me a very short story about a cat, please."]
    got = generate(tiny_model, prompts, max_new_tokens=12, progress=False, batch_size=3)
    assert got == [greedy_without_cache(tiny_model, p, 12) for p in prompts]
