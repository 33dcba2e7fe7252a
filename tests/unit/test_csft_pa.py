"""csft-pa (seed 001) on the tiny model: logits plumbing, the loss by hand, the delta schedule
per epoch, the reference's top-k cache, resume equality and the bad-input errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from tiny_rows import make_rows as shared_rows
from tiny_rows import (
    one_thread,  # noqa: F401  (autouse)
    params_of,
)

from safelens.errors import SafelensError
from safelens.losses import constrained_sft_loss, pa_terms
from safelens.models import load_tiny_model
from safelens.models.logprobs import response_logps
from safelens.training import Trainer, make_method
from safelens.training.batch import Logps
from safelens.training.methods.csft_pa import CSFTPA, check_same_tokenizer, pa_delta_at
from safelens.training.reference import ReferenceCache, compute_reference

FAST = dict(batch_size=4, max_steps=3, lr=1e-3, max_length=96, progress=False, warmup_steps=0)


def make_rows(n: int = 8) -> list[dict]:
    return shared_rows(n, rewards=False)


@pytest.fixture
def fresh():
    return load_tiny_model(seed=0)


def _batch(method, model, rows):
    return method.build_batch(rows, torch.arange(len(rows)), model.tokenizer)


def test_return_logits_are_row_major_and_give_the_per_token_logps(fresh):
    method = make_method("csft-pa", **FAST)
    batch = _batch(method, fresh, make_rows(5))
    with torch.no_grad():
        summed, tok, logits = response_logps(fresh, batch.chat, return_logits=True)
    mask = batch.chat.response_mask.bool()
    assert logits.shape == (int(mask.sum()), fresh.original_model.config.vocab_size)
    targets = batch.chat.input_ids[mask]  # [N]
    gathered = F.log_softmax(logits.float(), -1).gather(-1, targets[:, None]).squeeze(-1)
    torch.testing.assert_close(gathered, tok[mask], rtol=1e-5, atol=1e-5)


def test_loss_is_csft_plus_delta_times_pa_by_hand(fresh):
    method = make_method("csft-pa", **FAST)
    rows = make_rows(4)
    batch = _batch(method, fresh, rows)
    with torch.no_grad():
        summed, tok, logits = response_logps(fresh, batch.chat, return_logits=True)
    mask = batch.chat.response_mask
    policy = Logps(batch.columns, summed, tok, mask, logits)
    # A reference that prefers the next token over each policy argmax.
    ref_logits = logits.roll(1, dims=-1)
    ref_tok = torch.zeros_like(tok).masked_scatter(
        mask.bool(), F.log_softmax(ref_logits, -1).gather(
            -1, batch.chat.input_ids[mask.bool()][:, None]).squeeze(-1))
    ref = Logps(batch.columns, summed, ref_tok, mask, ref_logits)
    batch.extras.update(epoch=2.5, max_epoch=4.0)  # third epoch of four: delta = 0.2
    loss, metrics = method.compute_loss(policy, ref, batch)
    csft = constrained_sft_loss(tok, ref_tok, mask, method.betas(mask))
    # mu and Delta by hand at every position, soft argmax at temperature 0.1.
    logp, logq = F.log_softmax(logits, -1), F.log_softmax(ref_logits, -1)
    mu = (logp.exp() * (logp - logq)).sum(-1)
    delta = ((F.softmax(logq / 0.1, -1) - F.softmax(logits / 0.1, -1)) * logp).sum(-1)
    pa = (-F.logsigmoid(mu.clamp(max=10.0) * delta)).mean()
    assert metrics["pa/delta"] == pytest.approx(0.2)
    assert loss.item() == pytest.approx((csft + 0.2 * pa).item(), rel=1e-5)
    assert metrics["pa/disagree"].item() == 1.0  # rolled logits never share an argmax


def test_delta_follows_the_epoch_schedule_in_the_log(fresh, tmp_path):
    # 8 rows, 4 per step, 8 steps = 4 epochs: delta 0.1, 0.15, 0.2, 0.25 for two steps each.
    method = make_method("csft-pa", **{**FAST, "max_steps": 8, "ref_topk": 0})
    Trainer(method, tmp_path, model=fresh, rows=make_rows(8)).train()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [round(r["pa/delta"], 4) for r in log] == [0.1, 0.1, 0.15, 0.15, 0.2, 0.2, 0.25, 0.25]
    assert all(math.isfinite(r["loss"]) and r["pa/mu_clipped"] == 0.0 for r in log)
    assert log[0]["pa/mu"] < 1e-4 < log[-1]["pa/mu"]  # pi starts at pi_aligned, then drifts


def test_pa_delta_at_per_step_is_continuous():
    assert [round(pa_delta_at(e, 2.0, per="step"), 3) for e in (0.0, 1.0, 2.0)] == [0.1, 0.2, 0.3]
    assert pa_delta_at(5.0, 2.0, per="step") == pytest.approx(0.3)  # never beyond the cap


def test_trains_and_changes_parameters(fresh, tmp_path):
    before = params_of(fresh)
    result = Trainer(make_method("csft-pa", **FAST), tmp_path, model=fresh,
                     rows=make_rows()).train()
    assert result.step == 3 and all(math.isfinite(h["loss"]) for h in result.history)
    after = params_of(fresh)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    cache = list((tmp_path / "reference").glob("reference-*.safetensors"))
    assert len(cache) == 1


def test_resume_gives_the_same_weights(tmp_path, interrupt_after):
    cfg = {**FAST, "max_steps": 6, "save_every": 3}
    rows = make_rows()
    straight = load_tiny_model(seed=0)
    Trainer(make_method("csft-pa", **cfg), tmp_path / "a", model=straight, rows=rows).train()
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_method("csft-pa", **cfg), tmp_path / "b", model=load_tiny_model(seed=0),
                rows=rows, callbacks=[interrupt_after(3)]).train()
    resumed = load_tiny_model(seed=0)
    Trainer(make_method("csft-pa", **cfg), tmp_path / "b", model=resumed, rows=rows,
            resume=True).train()
    a, b = params_of(straight), params_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _reference(model, method, rows, **kw):
    def build(chunk, index):
        return method.build_batch(chunk, index, model.tokenizer)

    return compute_reference(model, rows, build, method.columns, 4, True,
                             torch.device("cpu"), progress=False, **kw)


def test_reference_topk_cache_is_exact_at_full_vocabulary_and_normalised_below(fresh):
    method = make_method("csft-pa", **FAST)
    rows = make_rows(4)
    batch = _batch(method, fresh, rows)
    with torch.no_grad():
        _, _, logits = response_logps(fresh, batch.chat, return_logits=True)
    full = F.log_softmax(logits.float(), -1)  # [N, V]
    exact = ReferenceCache(method.columns, _reference(fresh, method, rows, logits_topk=0))
    torch.testing.assert_close(exact.dense_logps("chosen", range(4)), full)
    k = 8
    top = ReferenceCache(method.columns, _reference(fresh, method, rows, logits_topk=k))
    dense = top.dense_logps("chosen", range(4))
    assert torch.allclose(dense.exp().sum(-1), torch.ones(len(dense)), atol=1e-5)
    torch.testing.assert_close(dense.topk(k, -1).values, full.topk(k, -1).values)
    assert torch.equal(dense.argmax(-1), full.argmax(-1))  # y_aligned is exact


def test_reference_logits_over_the_memory_bound_is_a_clear_error(fresh):
    method = make_method("csft-pa", **FAST)
    with pytest.raises(SafelensError, match="logits_max_gb=1e-06.*ref_topk"):
        _reference(fresh, method, make_rows(4), logits_topk=0, logits_max_gb=1e-6)


def test_an_aligned_model_with_another_vocabulary_fails_before_training(fresh, tmp_path,
                                                                      monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = load_tiny_model(seed=1)
    bigger = LlamaForCausalLM(LlamaConfig(**{**other.original_model.config.to_dict(),
                                             "vocab_size": other.original_model.config.vocab_size
                                             + 8}))
    other.original_model.lm_head = bigger.lm_head
    monkeypatch.setattr("safelens.models.load_model", lambda *a, **k: other)
    method = make_method("csft-pa", **FAST, aligned_model="some/other-model")
    with pytest.raises(SafelensError, match="aligned_model 'some/other-model' has an output "
                                            "vocabulary"):
        Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    assert not (tmp_path / "log.jsonl").exists()


def test_check_same_tokenizer_names_a_different_tokenizer():
    class Tok:
        def __init__(self, vocab):
            self.vocab = vocab

        def get_vocab(self):
            return self.vocab

    check_same_tokenizer(Tok({"a": 0}), Tok({"a": 0}), 1, 1, "m")
    with pytest.raises(SafelensError, match="different tokenizer"):
        check_same_tokenizer(Tok({"a": 0}), Tok({"b": 0}), 1, 1, "m")


@pytest.mark.parametrize("field,value", [("pa_argmax", "gumbel"), ("pa_temperature", 0.0),
                                         ("pa_max_mu", float("inf")), ("ref_topk", -1),
                                         ("pa_delta_per", "batch")])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(SafelensError, match=f"CSFTPAConfig.{field}"):
        make_method("csft-pa", **{field: value})


def test_infinite_kl_is_clipped_and_logged_never_nan():
    pol = torch.zeros(2, 4)
    ref = torch.tensor([[0.0, 0.0, 0.0, -math.inf], [0.0, 0.0, 0.0, 0.0]])
    terms = pa_terms(pol, ref, max_mu=10.0)
    assert terms["clipped"].tolist() == [True, False] and torch.isfinite(terms["loss"]).all()


def test_method_class_is_registered():
    assert isinstance(make_method("csft-pa"), CSFTPA)
