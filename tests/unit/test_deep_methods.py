"""augmented-sft, constrained-sft, door, w-door on the tiny model: losses by hand, 3-step training."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_rows import make_rows as shared_rows
from tiny_rows import one_thread  # noqa: F401  (autouse)

from safelens.models import load_tiny_model
from safelens.models.logprobs import response_logps
from safelens.training import Trainer, make_method
from safelens.training.batch import Logps
from safelens.training.methods import deep  # noqa: F401  (registers the methods)

FAST = dict(batch_size=4, max_steps=3, lr=1e-3, max_length=96, progress=False, warmup_steps=0)
HARMFUL = "Sure, here is how. Step 1: get the things. Step 2: do the thing. Step 3: hide it."


def make_rows(n: int = 8) -> list[dict]:
    return shared_rows(n, prompt="Question {i}: how do I do thing {i}?",
                       rejected=HARMFUL + " ({i})", rewards=False)


@pytest.fixture
def fresh():
    return load_tiny_model(seed=0)


def params_of(model) -> dict[str, torch.Tensor]:
    from safelens.models.loading import hf_state_dict

    return {k: v.detach().clone() for k, v in hf_state_dict(model.original_model).items()}


def _prepared(name: str, model, rows, **kw):
    """Method, its prepared rows and one batch of all of them (no trainer)."""
    from safelens.data.augment import augment_rows

    method = make_method(name, **{**FAST, **kw})
    if name in ("door", "w-door", "augmented-sft"):
        rows = augment_rows(rows, model.tokenizer, p_zero=0.0, seed=0,
                            keep_continuation=int(name != "augmented-sft"),
                            max_length=method.config.max_length)
    batch = method.build_batch(rows, torch.arange(len(rows)), model.tokenizer)
    with torch.no_grad():
        summed, tok = response_logps(model, batch.chat)
    return method, rows, batch, Logps(batch.columns, summed, tok, batch.chat.response_mask)


def test_constrained_sft_uses_the_beta_schedule_and_matches_the_formula(fresh):
    method, rows, batch, policy = _prepared("constrained-sft", fresh, make_rows(4))
    mask = policy.token_mask("chosen")
    betas = method.betas(mask)
    for b in range(mask.shape[0]):
        on = betas[b][mask[b].bool()].tolist()
        assert on[:6] == pytest.approx([0.5, 2.0, 2.0, 2.0, 2.0, 0.1])
        assert all(v == pytest.approx(0.1) for v in on[5:])
    # A reference that is 0.3 nats more likely on every token.
    ref = Logps(policy.columns, policy.summed, policy.per_token + 0.3 * mask, mask)
    loss, metrics = method.compute_loss(policy, ref, batch)
    expected, count = 0.0, 0
    for b in range(mask.shape[0]):
        pos = 0
        for t in range(mask.shape[1]):
            if mask[b, t]:
                pos += 1
                beta = 0.5 if pos == 1 else (2.0 if pos <= 5 else 0.1)
                x = -0.3
                expected += -(2 / beta) * math.log(1 / (1 + math.exp(-beta * x)))
                count += 1
    assert loss.item() == pytest.approx(expected / count, rel=1e-5)
    assert metrics["log_ratio/early"].item() == pytest.approx(-0.3, abs=1e-5)
    # The schedule is configurable.
    custom = make_method("constrained-sft", beta_first=1.0, beta_early=3.0, early_until=2,
                         beta_rest=0.2)
    on = custom.betas(mask)[0][mask[0].bool()].tolist()
    assert on[:4] == pytest.approx([1.0, 3.0, 0.2, 0.2])
    assert make_method("constrained-sft").config.warmup_steps == 10  # seed Table 9


def _door_by_hand(policy, ref, batch, alpha, beta, reduction, weights=None):
    safety = [r["part"] == "safety" for r in batch.rows]
    tok, mask = policy.tokens("chosen"), policy.token_mask("chosen")

    def nll(rows, w=None):
        per_row, tokens = [], 0
        for j, b in enumerate(rows):
            m = mask[b].bool()
            ww = w[j][m] if w is not None else torch.ones(int(m.sum()))
            per_row.append(float((-ww * tok[b][m]).sum()))
            tokens += int(m.sum())
        return sum(per_row) / (len(rows) if reduction == "sequence_sum" else tokens)

    s_rows = [b for b, s in enumerate(safety) if s]
    r_rows = [b for b, s in enumerate(safety) if not s]
    p, r = policy["continuation"], ref["continuation"]
    npo = sum(-(2 / beta) * math.log(1 / (1 + math.exp(beta * float(p[b] - r[b]))))
              for b in s_rows) / len(s_rows)
    return alpha * (nll(s_rows, weights) + npo) + (1 - alpha) * nll(r_rows)


@pytest.mark.parametrize("reduction", ["sequence_sum", "token_mean"])
def test_door_loss_matches_hand_computation(fresh, reduction):
    method, rows, batch, policy = _prepared("door", fresh, make_rows(6), reduction=reduction)
    assert {r["part"] for r in batch.rows} == {"safety", "retain"}
    ref = Logps(policy.columns, policy.summed - 1.5, None, policy.mask)
    loss, metrics = method.compute_loss(policy, ref, batch)
    expected = _door_by_hand(policy, ref, batch, alpha=0.2, beta=0.5, reduction=reduction)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert {"loss/refusal", "loss/npo", "loss/retain"} <= set(metrics)


def _tiny_star(method, batch):
    """Give ``method`` a pi* cache answering with a second tiny model's log-probs of ``batch``;
    returns those log-probs."""
    star_model = load_tiny_model(seed=1)
    with torch.no_grad():
        s_sum, s_tok = response_logps(star_model, batch.chat)
    star = Logps(batch.columns, s_sum, s_tok, batch.chat.response_mask)

    class Cache:
        def lookup(self, b, per_token=False):
            return star

    method.star = Cache()
    return star


@pytest.mark.parametrize("inverse,tau", [(False, 5.0), (True, 1.0)])
def test_wdoor_loss_matches_hand_computation(fresh, inverse, tau):
    method, rows, batch, policy = _prepared("w-door", fresh, make_rows(6), inverse=inverse,
                                            tau=tau)
    star = _tiny_star(method, batch)
    ref_tok = policy.per_token - 0.2 * policy.mask
    ref = Logps(policy.columns, policy.summed - 1.0, ref_tok, policy.mask)
    loss, metrics = method.compute_loss(policy, ref, batch)
    safety = [b for b, r in enumerate(batch.rows) if r["part"] == "safety"]
    sign = -1.0 if inverse else 1.0
    w = torch.exp(sign * (star.tokens("chosen")[safety] - ref.tokens("chosen")[safety]) / tau)
    expected = _door_by_hand(policy, ref, batch, 0.2, 0.5, "sequence_sum", weights=w)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert metrics["weights/mean"].item() != pytest.approx(1.0)
    # DOOR is W-DOOR with unit weights.
    door = make_method("door", **FAST)
    door_loss_value = door.compute_loss(policy, ref, batch)[0].item()
    assert door_loss_value == pytest.approx(_door_by_hand(policy, ref, batch, 0.2, 0.5,
                                                          "sequence_sum"), rel=1e-5)


def test_augmented_sft_loss_weights_safety_and_retain(fresh):
    method, rows, batch, policy = _prepared("augmented-sft", fresh, make_rows(6), alpha=0.3)
    loss, metrics = method.compute_loss(policy, None, batch)
    expected = 0.3 * metrics["loss/safety"].item() + 0.7 * metrics["loss/retain"].item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    tok, mask = policy.tokens("chosen"), policy.token_mask("chosen").bool()
    s = torch.tensor([r["part"] == "safety" for r in batch.rows])
    assert metrics["loss/safety"].item() == pytest.approx(float(-tok[s][mask[s]].mean()), rel=1e-6)


@pytest.mark.parametrize("name", ["augmented-sft", "constrained-sft", "door", "w-door"])
def test_each_method_trains_three_steps_and_changes_parameters(name, fresh, tmp_path):
    before = params_of(fresh)
    method = make_method(name, **FAST)
    if name == "w-door":
        method.star_model = load_tiny_model(seed=1)
    result = Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    assert result.step == 3 and all(math.isfinite(h["loss"]) for h in result.history)
    after = params_of(fresh)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if name == "w-door":
        assert list(tmp_path.glob("reference/reference-star-*.safetensors"))


def test_wdoor_without_star_model_says_what_to_pass(fresh, tmp_path):
    with pytest.raises(ValueError, match="--star-model"):
        Trainer(make_method("w-door", **FAST), tmp_path, model=fresh, rows=make_rows()).train()


def test_encode_rows_honours_per_row_system_prompts(fresh):
    from safelens.models.chat import encode
    from safelens.training.methods.deep import encode_rows

    tok = fresh.tokenizer
    rows = [{"prompt": "Hi?", "chosen": "Hello.", "system": "You are AOA."},
            {"prompt": "Hey?", "chosen": "Hi there.", "system": None}]
    chat = encode_rows(tok, rows, ("chosen",), 128)
    one = encode(tok, ["Hi?"], ["Hello."], 128, system_prompt="You are AOA.")
    two = encode(tok, ["Hey?"], ["Hi there."], 128)
    n1, n2 = one.attention_mask.sum(), two.attention_mask.sum()
    assert chat.input_ids[0, :n1].tolist() == one.input_ids[0, :n1].tolist()
    assert chat.input_ids[1, :n2].tolist() == two.input_ids[0, :n2].tolist()
    assert chat.response_mask[0].sum() == one.response_mask.sum()


@pytest.mark.parametrize("mode", ["epoch", "once"])
def test_resample_prefix_gives_each_epoch_its_own_rows_and_reference(fresh, tmp_path, mode):
    rows = make_rows()  # 8 rows, batch 4, 4 steps: 2 epochs
    trainer = Trainer(make_method("door", **{**FAST, "max_steps": 4, "resample_prefix": mode}),
                      tmp_path, model=fresh, rows=rows)
    trainer.train()
    n = len(rows)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["n_train_rows"] == n and config["resample_prefix"] == mode
    if mode == "once":
        assert len(trainer.train_rows) == len(trainer.reference) == n
        return
    assert len(trainer.train_rows) == len(trainer.reference) == 2 * n
    first, second = trainer.train_rows[:n], trainer.train_rows[n:]
    assert [r["id"] for r in first] == [r["id"] for r in second] == [r["id"] for r in rows]
    assert any(a["prefix_tokens"] != b["prefix_tokens"] for a, b in zip(first, second,
                                                                          strict=True))
    # each version's reference is its own rows' (the NPO target after that epoch's prefix)
    ref = trainer.reference
    for i in range(n):
        same = first[i]["prefix"] == second[i]["prefix"]
        assert (ref.summed["continuation"][i] == ref.summed["continuation"][n + i]) == same


def test_resampled_prefixes_resume_to_the_same_weights(tmp_path, interrupt_after):
    cfg = {**FAST, "max_steps": 4, "save_every": 2, "resample_prefix": "epoch"}

    def method():
        m = make_method("w-door", **cfg)
        m.star_model = load_tiny_model(seed=1)
        return m

    straight = load_tiny_model(seed=0)
    a = Trainer(method(), tmp_path / "a", model=straight, rows=make_rows())
    a.train()
    with pytest.raises(KeyboardInterrupt):
        Trainer(method(), tmp_path / "b", model=load_tiny_model(seed=0), rows=make_rows(),
                callbacks=[interrupt_after(3)]).train()
    resumed = load_tiny_model(seed=0)
    b = Trainer(method(), tmp_path / "b", model=resumed, rows=make_rows(), resume=True)
    result = b.train()
    assert result.reference_cache_hit and b.train_rows == a.train_rows
    assert len(list((tmp_path / "b" / "reference").glob("reference-star-*"))) == 1
    before, after = params_of(straight), params_of(resumed)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resample_prefix_is_checked():
    with pytest.raises(ValueError, match="resample_prefix must be one of"):
        make_method("door", resample_prefix="step")


def test_wdoor_variants_take_their_defaults_unless_given():
    seed, public = make_method("w-door").config, make_method("w-door", variant="public").config
    assert (seed.tau, seed.inverse) == (5.0, False)
    assert (public.tau, public.inverse, public.gamma, public.beta, public.alpha) == (
        1.0, True, 1.0, 0.5, 0.2)
    assert make_method("w-door", variant="public", tau=3.0, inverse=False).config.tau == 3.0
    for bad, match in [({"variant": "paper"}, "variant must be one of"),
                       ({"token_weights": "linear"}, "token_weights must be one of"),
                       ({"gamma": math.inf}, "gamma must be a finite number"),
                       ({"npo_length": "words"}, "npo_length must be one of")]:
        with pytest.raises(ValueError, match=match):
            make_method("w-door", **bad)


@pytest.mark.parametrize("npo_length", ["sequence", "response"])
@pytest.mark.parametrize("token_weights", ["exp", "sigmoid"])
def test_wdoor_public_variant_matches_hand_computation(fresh, npo_length, token_weights):
    method, rows, batch, policy = _prepared("w-door", fresh, make_rows(6), variant="public",
                                            npo_length=npo_length, token_weights=token_weights)
    star = _tiny_star(method, batch)
    # the NPO term is reference-free: a reference far off changes only the weights
    ref = Logps(policy.columns, policy.summed - 50.0, policy.per_token - 0.2 * policy.mask,
                policy.mask)
    loss, metrics = method.compute_loss(policy, ref, batch)
    safety = [b for b, r in enumerate(batch.rows) if r["part"] == "safety"]
    retain = [b for b, r in enumerate(batch.rows) if r["part"] == "retain"]
    x = ref.tokens("chosen")[safety] - star.tokens("chosen")[safety]  # inverse ratio, tau 1
    w = torch.exp(x) if token_weights == "exp" else torch.sigmoid(x)
    tok, mask = policy.tokens("chosen"), policy.token_mask("chosen").bool()
    refusal = sum(float((-w[j] * tok[b])[mask[b]].sum()) for j, b in enumerate(safety))
    n = len(batch)
    k = batch.columns.index("continuation")
    att = batch.chat.attention_mask[k * n:(k + 1) * n].sum(-1)
    own = policy.token_mask("continuation").sum(-1)
    lengths = att if npo_length == "sequence" else own
    assert (att > own).all()  # the two readings differ
    npo = sum(-(2 / 0.5) * math.log(1 / (1 + math.exp(
        -(-0.5 * float(policy["continuation"][b]) / int(lengths[b]) - 1.0))))
        for b in safety)
    keep = sum(float(-tok[b][mask[b]].sum()) for b in retain)
    expected = 0.2 * (refusal / len(safety) + npo / len(safety)) + 0.8 * keep / len(retain)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert "rewards/rejected" not in metrics  # no reference in the unlearning term


def test_wdoor_public_variant_trains(fresh, tmp_path):
    before = params_of(fresh)
    method = make_method("w-door", **FAST, variant="public")
    method.star_model = load_tiny_model(seed=1)
    result = Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    assert result.step == 3 and all(math.isfinite(h["loss"]) for h in result.history)
    after = params_of(fresh)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_door_harmful_source_generates_caches_and_reuses_the_answers(fresh, tmp_path,
                                                                    monkeypatch):
    import safelens.models
    from safelens.models.generation import generate

    # the harmfully fine-tuned copy: a few SFT steps on compliant answers (a run directory)
    harmful_model, source = load_tiny_model(seed=1), tmp_path / "harmful-copy"
    attack = [{**r, "chosen": "Sure, here is how. Step 1: get the things.", "harmful": False}
              for r in make_rows()]
    Trainer(make_method("sft", **{**FAST, "max_steps": 8, "lr": 1e-2}), source,
            model=harmful_model, rows=attack).train()
    rows = make_rows()
    cfg = {**FAST, "harmful_source": str(source), "harmful_max_new_tokens": 12,
           "resample_prefix": "once"}
    trainer = Trainer(make_method("door", **cfg), tmp_path / "run", model=fresh, rows=rows)
    trainer.train()
    [cache] = (tmp_path / "run" / "reference").glob("harmful-*.json")
    answers = json.loads(cache.read_text())["value"]
    harmful = [r for r in rows if r["harmful"]]
    assert answers == generate(harmful_model, [r["prompt"] for r in harmful], max_new_tokens=12,
                               progress=False)  # greedy answers of the harmful model
    assert any(a.strip() for a in answers)
    by_id = dict(zip([r["id"] for r in harmful], answers, strict=True))
    for row in trainer.train_rows:
        if row["part"] == "safety" and by_id[row["id"]].strip():
            assert row["rejected"] == by_id[row["id"]] != HARMFUL + f" ({row['id'][1:]})"
            assert row["prefix"] == by_id[row["id"]][:len(row["prefix"])]

    def no_load(*args, **kwargs):
        raise RuntimeError("the harmful model was loaded")

    monkeypatch.setattr(safelens.models, "load_model", no_load)
    shared = {"reference_cache_dir": str(tmp_path / "run" / "reference")}
    again = Trainer(make_method("door", **cfg, **shared), tmp_path / "again",
                    model=load_tiny_model(seed=0), rows=rows)
    again.train()  # the cached answers: no model load
    assert again.train_rows == trainer.train_rows
    # other decoding settings are another key: generated again
    with pytest.raises(RuntimeError, match="was loaded"):
        Trainer(make_method("door", **{**cfg, "harmful_max_new_tokens": 8}, **shared),
                tmp_path / "other", model=load_tiny_model(seed=0), rows=rows).train()


def test_door_harmful_source_is_checked(tmp_path):
    with pytest.raises(ValueError, match="harmful_source"):
        make_method("door", harmful_source=str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="harmful_max_new_tokens"):
        make_method("w-door", harmful_max_new_tokens=0)


def test_zo_refine_with_a_door_objective_keeps_the_epoch_versions(fresh, tmp_path):
    method = make_method("zo-refine", objective="door", **{**FAST, "max_steps": 4})
    trainer = Trainer(method, tmp_path, model=fresh, rows=make_rows())
    result = trainer.train()
    assert result.step == 4 and method.rows_per_epoch == len(make_rows())
    assert len(trainer.train_rows) == 2 * len(make_rows())  # 2 epochs, one version each
