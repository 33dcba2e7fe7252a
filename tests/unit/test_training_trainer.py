"""The one trainer on the tiny model: every method, resume, NaN, flips, caches, checkpoints, CLI."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from tiny_rows import make_rows, one_thread, params_of  # noqa: F401  (one_thread is autouse)

from safelens.models import load_model, load_tiny_model, save_model
from safelens.training import (
    DPOConfig,
    NonFiniteLossError,
    Trainer,
    available_methods,
    make_method,
    register_method,
)
from safelens.training.checkpoint import CheckpointError
from safelens.training.methods.preference import DPO

FAST = dict(batch_size=4, max_steps=3, lr=1e-3, max_length=64, progress=False, warmup_steps=0)


_PRISTINE: dict[int, object] = {}


def tiny(seed: int = 0):
    """A fresh copy of the tiny model (training mutates it); copying is 4x faster than building."""
    if seed not in _PRISTINE:
        _PRISTINE[seed] = load_tiny_model(seed=seed)
    return copy.deepcopy(_PRISTINE[seed])


@pytest.fixture
def fresh():
    return tiny(0)


class NaNAtStep2(DPO):
    """DPO whose loss is NaN on its second call (the second optimizer step)."""

    def compute_loss(self, policy, ref, batch):
        self.calls = getattr(self, "calls", 0) + 1
        loss, metrics = super().compute_loss(policy, ref, batch)
        return (loss * math.nan if self.calls == 2 else loss), metrics


register_method("test-nan-at-step-2", DPOConfig, NaNAtStep2)


@pytest.mark.parametrize("name", ["sft", "dpo", "ipo", "cdpo", "rdpo", "drdpo", "npo",
                                  "reward-level"])
def test_every_method_trains_and_changes_parameters(name, fresh, tmp_path):
    before = params_of(fresh)
    result = Trainer(make_method(name, **FAST), tmp_path, model=fresh, rows=make_rows()).train()
    assert result.step == 3 and len(result.history) == 3
    assert all(math.isfinite(r["loss"]) for r in result.history)
    after = params_of(fresh)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"{name}: unchanged {set(before) - set(changed)}"
    logged = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3]
    for key in ("loss", "lr", "grad_norm", "step", "epoch", "time"):
        assert key in logged[0]
    if make_method(name).needs_reference and name != "npo":
        for key in ("rewards/chosen", "rewards/rejected", "rewards/margins",
                    "rewards/accuracies", "logps/chosen", "logps/rejected"):
            assert key in logged[0], key
        # policy == reference at step 1: zero implicit reward margin
        assert abs(logged[0]["rewards/margins"]) < 1e-5
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["method"] == name and cfg["max_steps"] == 3


def test_dpo_loss_goes_down(fresh, tmp_path):
    cfg = {**FAST, "max_steps": 8, "batch_size": 8}
    result = Trainer(make_method("dpo", **cfg), tmp_path, model=fresh, rows=make_rows(8)).train()
    losses = [r["loss"] for r in result.history]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)
    assert losses[-1] < losses[0] and result.history[-1]["rewards/margins"] > 0


def test_rpo_alpha_adds_the_chosen_nll(fresh, tmp_path):
    result = Trainer(make_method("dpo", **{**FAST, "max_steps": 1, "rpo_alpha": 0.5}), tmp_path,
                     model=fresh, rows=make_rows()).train()
    rec = result.history[0]
    assert rec["pref_loss"] == pytest.approx(math.log(2), abs=1e-5) and rec["nll_loss"] > 0
    assert rec["loss"] == pytest.approx(rec["pref_loss"] + 0.5 * rec["nll_loss"], rel=1e-5)


def test_resume_gives_the_same_weights(tmp_path, interrupt_after):
    cfg = {**FAST, "max_steps": 6, "save_every": 3, "warmup_steps": 2, "scheduler": "linear"}
    rows = make_rows()
    straight = tiny(0)
    Trainer(make_method("dpo", **cfg), tmp_path / "a", model=straight, rows=rows).train()

    with pytest.raises(KeyboardInterrupt):
        Trainer(make_method("dpo", **cfg), tmp_path / "b", model=tiny(0),
                rows=rows, callbacks=[interrupt_after(3)]).train()
    state = json.loads((tmp_path / "b" / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 3
    resumed = tiny(0)
    result = Trainer(make_method("dpo", **cfg), tmp_path / "b", model=resumed, rows=rows,
                     resume=True).train()
    assert result.reference_cache_hit  # reference read from the run's cache, not recomputed
    a, b = params_of(straight), params_of(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log_a = (tmp_path / "a" / "log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "time"} for x in log_a]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "time"} for x in log_b]
    # the saved run loads as a model, and equals the trained one
    loaded = load_model(str(tmp_path / "b" / "model"), device="cpu")
    c = params_of(loaded)
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_a_finished_run_keeps_no_optimizer_state_and_resumes_as_a_no_op(tmp_path,
                                                                        interrupt_after):
    cfg = {**FAST, "max_steps": 4, "save_every": 2}
    rows = make_rows()
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_method("dpo", **cfg), tmp_path, model=tiny(0), rows=rows,
                callbacks=[interrupt_after(2)]).train()
    ck = tmp_path / "checkpoint"
    assert (ck / "optimizer.safetensors").is_file()  # an interrupted run needs it to resume
    (ck / "optimizer.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="optimizer.safetensors"):
        Trainer(make_method("dpo", **cfg), tmp_path, model=tiny(0), rows=rows,
                resume=True).train()
    (ck / "optimizer.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="optimizer.safetensors is missing"):
        Trainer(make_method("dpo", **cfg), tmp_path, model=tiny(0), rows=rows,
                resume=True).train()

    done = tmp_path / "done"
    model = tiny(0)
    Trainer(make_method("dpo", **cfg), done, model=model, rows=rows).train()
    assert not list((done / "checkpoint").glob("optimizer.*"))  # never written at the end
    before = params_of(model)
    again = tiny(0)
    result = Trainer(make_method("dpo", **cfg), done, model=again, rows=rows, resume=True).train()
    assert result.step == 4 and all(torch.equal(before[k], v) for k, v in params_of(again).items())


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(fresh, tmp_path):
    method = make_method("test-nan-at-step-2", **{**FAST, "save_every": 1})
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 2.*step 1\) is kept"):
        Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 1
    saved = params_of(load_model(str(tmp_path / "model"), device="cpu"))
    live = params_of(fresh)  # the NaN step applied no update
    assert all(torch.equal(saved[k], live[k]) for k in saved)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_label_flips_touch_only_training_rows(fresh, tmp_path):
    rows = make_rows(20)
    original = json.dumps(rows)
    trainer = Trainer(make_method("dpo", **{**FAST, "max_steps": 1, "flip_rate": 0.25}),
                      tmp_path, model=fresh, rows=rows)
    trainer.train()
    assert json.dumps(rows) == original  # the caller's rows are not mutated
    by_id = {r["id"]: r for r in rows}
    flipped = [r for r in trainer.train_rows if r.get("flipped")]
    assert len(flipped) == 5
    for r in flipped:
        assert (r["chosen"], r["rejected"]) == (by_id[r["id"]]["rejected"], by_id[r["id"]]["chosen"])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["flip_rate"] == 0.25 and cfg["seed"] == 0


def test_reference_cache_hit_on_second_run(tmp_path):
    cache = tmp_path / "refcache"
    cfg = {**FAST, "max_steps": 1, "reference_cache_dir": str(cache)}
    first = Trainer(make_method("dpo", **cfg), tmp_path / "1", model=tiny(0),
                    rows=make_rows()).train()
    second = Trainer(make_method("cdpo", **cfg), tmp_path / "2", model=tiny(0),
                     rows=make_rows()).train()
    assert first.reference_cache_hit is False and second.reference_cache_hit is True
    assert len(list(cache.glob("reference-*.safetensors"))) == 1
    # another max_length (or model) is another key
    third = Trainer(make_method("dpo", **{**cfg, "max_length": 48}), tmp_path / "3",
                    model=tiny(0), rows=make_rows()).train()
    assert third.reference_cache_hit is False
    other = Trainer(make_method("dpo", **cfg), tmp_path / "4", model=tiny(1),
                    rows=make_rows()).train()
    assert other.reference_cache_hit is False


def test_checkpoint_has_no_pickle_and_run_dir_rules(fresh, tmp_path):
    Trainer(make_method("sft", **{**FAST, "max_steps": 1}), tmp_path, model=fresh,
            rows=make_rows()).train()
    files = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert files and all(f.endswith((".safetensors", ".json")) for f in files), files
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".bin", ".pt", ".pkl", ".pth")]
    assert not (tmp_path / ".staging").exists()
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(make_method("sft", **FAST), tmp_path, model=fresh, rows=make_rows()).train()
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        Trainer(make_method("sft", **FAST), tmp_path / "new", model=fresh, rows=make_rows(),
                resume=True).train()


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    rows = make_rows(8)
    cfg = {**FAST, "max_steps": 1, "batch_size": 8, "max_grad_norm": None}
    one = tiny(0)
    Trainer(make_method("dpo", **cfg), tmp_path / "1", model=one, rows=rows).train()
    two = tiny(0)
    Trainer(make_method("dpo", **{**cfg, "grad_accum_steps": 2}), tmp_path / "2", model=two,
            rows=rows).train()
    a, b = params_of(one), params_of(two)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_reward_level_scores_with_a_callable_once(fresh, tmp_path):
    calls = []

    def scorer(prompts, responses):
        calls.append(len(prompts))
        return torch.tensor([-1.0 if "help" in r else 1.0 for r in responses])

    rows = [{k: v for k, v in r.items() if not k.startswith("reward_")} for r in make_rows()]
    Trainer(make_method("reward-level", **FAST), tmp_path, model=fresh, rows=rows,
            reward_model=scorer).train()
    assert calls == [2 * len(rows)]  # chosen and rejected scored in one call, once
    assert list((tmp_path / "reference").glob("rewards-*.safetensors"))


def test_freeze_and_bf16(fresh, tmp_path, native_bf16):
    before = params_of(fresh)
    result = Trainer(make_method("dpo", **{**FAST, "max_steps": 2, "freeze": "embed_tokens",
                                           "precision": "bf16"}),
                     tmp_path, model=fresh, rows=make_rows()).train()
    after = params_of(fresh)
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["model.norm.weight"], after["model.norm.weight"])
    assert all(math.isfinite(r["loss"]) for r in result.history)


def test_cli_align(tmp_path, capsys):
    from safelens.cli.main import main
    from safelens.data import write_jsonl

    base = tmp_path / "base"
    save_model(tiny(0), base)
    write_jsonl(tmp_path / "train.jsonl", make_rows(8))
    out = tmp_path / "run"
    argv = ["align", "--method", "drdpo", "--model", str(base), "--out", str(out),
            "--train", str(tmp_path / "train.jsonl"), "--max-steps", "2", "--batch-size", "4",
            "--max-length", "64", "--lr", "1e-3", "--beta-prime", "2.0", "--no-progress"]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "drdpo" and cfg["beta_prime"] == 2.0 and cfg["base_model"] == str(base)
    assert cfg["data_source"] == str(tmp_path / "train.jsonl")
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    load_model(str(out / "model"), device="cpu")
    # unknown method: a clear error listing the available ones
    assert main(["align", "--method", "bogus", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown training method 'bogus'" in err and all(m in err for m in available_methods())
    # a flag of another method
    assert main(["align", "--method", "dpo", "--eps", "0.1", "--out", str(tmp_path / "y")]) == 2
    assert "--eps do(es) not apply to method 'dpo'" in capsys.readouterr().err


def test_method_without_reference_needs_no_cache(fresh, tmp_path):
    result = Trainer(make_method("sft", **FAST), Path(tmp_path), model=fresh,
                     rows=make_rows()).train()
    assert result.reference_cache_hit is None and not (tmp_path / "reference").exists()


class TokenLevel(DPO):
    """A token-level method (constrained SFT on the refusals) using per-token reference log-probs."""

    columns = ("chosen",)
    needs_token_logps = True

    def compute_loss(self, policy, ref, batch):
        from safelens.losses import constrained_sft_loss

        tok_p, tok_r, mask = policy.tokens("chosen"), ref.tokens("chosen"), ref.token_mask("chosen")
        gap = ((tok_p - tok_r).abs() * mask).max()
        return constrained_sft_loss(tok_p, tok_r, mask, 0.5), {"ref_token_gap": gap.detach()}


register_method("test-token-level", DPOConfig, TokenLevel)


def test_token_level_method_gets_aligned_per_token_reference(fresh, tmp_path):
    result = Trainer(make_method("test-token-level", **FAST), tmp_path, model=fresh,
                     rows=make_rows()).train()
    assert result.history[0]["ref_token_gap"] < 1e-5  # policy == reference at step 1
    assert result.history[-1]["ref_token_gap"] > 1e-4


class TwoPassWrapper:
    """A SAM-shaped optimizer wrapper: two closure calls per step, then the optimizer step."""

    def __init__(self, optimizer, params, ctx):
        self.optimizer, self.params, self.calls = optimizer, params, 0

    def step(self, closure):
        first = closure()
        with torch.no_grad():  # perturb, re-evaluate the gradient, restore
            saved = [p.detach().clone() for p in self.params]
            for p in self.params:
                p.add_(1e-3 * p.grad.sign())
        out = closure()
        with torch.no_grad():
            for p, s in zip(self.params, saved, strict=True):
                p.copy_(s)
        self.calls += 2
        self.optimizer.step()
        out.metrics["loss_unperturbed"] = first.loss
        return out

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def test_optimizer_wrapper_hook(fresh, tmp_path):
    made = []

    def factory(optimizer, params, ctx):
        made.append(TwoPassWrapper(optimizer, params, ctx))
        return made[-1]

    result = Trainer(make_method("dpo", **FAST), tmp_path, model=fresh, rows=make_rows(),
                     optimizer_wrapper=factory).train()
    assert made[0].calls == 6 and "loss_unperturbed" in result.history[0]
    assert json.loads((tmp_path / "checkpoint" / "wrapper.json").read_text())


def _rpo_methods() -> list[tuple[str, bool]]:
    import dataclasses

    from safelens.training import available_methods, get_method

    return [(name, "rpo_alpha" in {f.name for f in dataclasses.fields(get_method(name).config_cls)})
            for name in available_methods()  # the package's own; zo-refine: see test_zo
            if name != "zo-refine" and get_method(name).method_cls.__module__.startswith("safelens.")]


@pytest.mark.parametrize(("name", "accepts"), _rpo_methods())
def test_rpo_alpha_reaches_every_method_that_accepts_it_and_is_rejected_elsewhere(
        name, accepts, tmp_path):
    """Issue 16's confound: the quick preset sets rpo_alpha=1 for every method that has it, so a
    method that silently ignored it (reward-level, and ShaPO-R through it, did) would be
    compared with an extra NLL term missing."""
    from safelens.errors import SafelensError

    if not accepts:
        with pytest.raises((SafelensError, TypeError, ValueError), match="rpo_alpha"):
            make_method(name, rpo_alpha=0.5)
        return
    extra = {"subspace": "random", "sam_every": 1} if name.startswith("shapo") else {}
    result = Trainer(make_method(name, **{**FAST, "max_steps": 1, "rpo_alpha": 0.5, **extra}),
                     tmp_path, model=tiny(0), rows=make_rows()).train()
    rec = result.history[0]
    assert rec["nll_loss"] > 0, name
    assert rec["loss"] == pytest.approx(rec["pref_loss"] + 0.5 * rec["nll_loss"], rel=1e-5), name
