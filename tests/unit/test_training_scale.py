"""Scale paths on the tiny model: LoRA (peft), gradient checkpointing, the paper preset's memory
check, load_model's pass-through arguments."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_rows import make_rows, one_thread, params_of  # noqa: F401  (one_thread is autouse)

from safelens.errors import SafelensError
from safelens.models import load_model, load_tiny_model, merge_adapter, save_model
from safelens.models import lora as lora_mod
from safelens.models.fingerprint import model_identity
from safelens.models.plain import plain_view
from safelens.training import Trainer, make_method, presets
from safelens.training.methods.preference import DPOConfig

FAST = dict(batch_size=4, max_steps=3, lr=1e-2, max_length=64, progress=False, warmup_steps=0)
IDS = torch.tensor([[1, 42, 7, 99, 3, 5]])


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).detach()


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """The tiny model saved as a checkpoint, so an adapter can name its base."""
    return save_model(load_tiny_model(seed=0), tmp_path_factory.mktemp("base"))


def test_lora_config_is_validated():
    assert DPOConfig(peft="lora").lora_target_modules.split(",") == list(lora_mod.LLAMA_TARGETS)
    for bad in ({"peft": "qlora"}, {"lora_r": 0}, {"lora_dropout": 1.0},
                {"lora_target_modules": "q_proj,,v_proj"}):
        with pytest.raises(SafelensError, match=next(iter(bad))):
            DPOConfig(**bad)


def test_lora_trains_only_adapters_and_saves_a_loadable_adapter(base_dir, tmp_path):
    pytest.importorskip("peft")
    model = load_model(str(base_dir), device="cpu")
    before = params_of(model)
    seen = {}

    def check(trainer, step, record):  # base weights untouched while the adapters train
        seen[step] = all(torch.equal(before[k], v) for k, v in params_of(model).items())
        if step == FAST["max_steps"]:
            seen["unmerged"] = plain_view(model)(IDS).logits.detach()

    result = Trainer(make_method("dpo", peft="lora", lora_r=4, **FAST), tmp_path / "run",
                     model=model, rows=make_rows(8), callbacks=[check]).train()
    assert seen[1] and seen[2] and seen[3]
    run = tmp_path / "run"
    names = (run / "checkpoint" / "trainer_state.json").read_text()
    assert "lora_A" in names and "lora_B" in names
    assert lora_mod.is_adapter_dir(run / "adapter")
    assert lora_mod.adapter_base(run / "adapter") == str(base_dir)
    # after training the adapters are merged into the bridge: the weights changed, and the
    # hooked bridge, the plain view and the unmerged adapted model agree
    assert not lora_mod.has_lora(result.model)
    assert any(not torch.equal(before[k], v) for k, v in params_of(result.model).items())
    trained = logits(result.model)
    torch.testing.assert_close(trained, seen["unmerged"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(plain_view(result.model)(IDS).logits, trained,
                               rtol=1e-4, atol=1e-5)
    # save -> load: the adapter dir (base + adapter), the merged model/ and a merge_adapter copy
    torch.testing.assert_close(logits(load_model(str(run / "adapter"), device="cpu")), trained,
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits(load_model(str(run), device="cpu")), trained,
                               rtol=1e-4, atol=1e-5)
    identity = model_identity(str(run / "adapter"))
    assert identity.endswith("+" + model_identity(str(base_dir)))
    merged = merge_adapter(run / "adapter", tmp_path / "merged")
    assert not lora_mod.is_adapter_dir(merged)
    torch.testing.assert_close(logits(load_model(str(merged), device="cpu")), trained,
                               rtol=1e-4, atol=1e-5)


def test_lora_merge_keeps_the_logits():
    pytest.importorskip("peft")
    model = load_tiny_model()
    named = lora_mod.add_lora(model, r=4)
    with torch.no_grad():
        for _, p in named:
            p.normal_(0, 0.1)  # a non-zero adapter
    adapted = plain_view(model)(IDS).logits.detach()
    assert not torch.allclose(adapted, logits(model))  # the hooked bridge does not see it yet
    state = lora_mod.merged_state(model, params_of(model))
    lora_mod.merge_lora(model)
    torch.testing.assert_close(logits(model), adapted, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(params_of(model), state)


def test_lora_refuses_resume_and_weight_optimizers_and_names_peft_when_missing(tmp_path, monkeypatch):
    pytest.importorskip("peft")
    with pytest.raises(SafelensError, match="resume"):
        Trainer(make_method("dpo", peft="lora", **FAST), tmp_path, resume=True)
    with pytest.raises(SafelensError, match="'shapo-t'.*peft='lora'"):
        Trainer(make_method("shapo-t", peft="lora", **FAST), tmp_path)
    monkeypatch.setattr(lora_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SafelensError, match=r"peft='lora'.*safelens\[scale\]"):
        Trainer(make_method("dpo", peft="lora", **FAST), tmp_path)


def test_gradient_checkpointing_gives_the_same_losses(tmp_path):
    base = load_tiny_model()
    losses, during = {}, {}

    def check(trainer, step, record):  # checkpointing on in the module training runs on
        during[step] = all(layer.gradient_checkpointing
                           for layer in plain_view(trainer.model).model.layers)

    for flag in (False, True):
        result = Trainer(make_method("dpo", gradient_checkpointing=flag, prefix_cache=False,
                                     **{**FAST, "max_steps": 2}),
                         tmp_path / str(flag), model=copy.deepcopy(base),
                         rows=make_rows(8), callbacks=[check]).train()
        losses[flag] = [r["loss"] for r in result.history]
        assert during == {1: flag, 2: flag}
        assert not plain_view(result.model).model.layers[0].gradient_checkpointing  # off again
    assert losses[True][1] != losses[True][0]  # the second loss depends on the first gradients
    assert losses[True] == pytest.approx(losses[False], rel=1e-5, abs=1e-6)


def test_paper_preset_refuses_what_cannot_fit(monkeypatch, tmp_path):
    monkeypatch.setattr(presets, "available_memory", lambda device: 2**20)  # 1 MiB free
    model = load_tiny_model()
    n = sum(p.numel() for p in model.original_model.parameters())
    with pytest.raises(SafelensError, match=r"preset 'paper'.*GiB.*cpu has") as err:
        Trainer("dpo", tmp_path, preset="paper", model=model, rows=make_rows(8),
                max_steps=1, progress=False).train()
    assert "\n" not in str(err.value)
    assert f"{n:,} parameters" in str(err.value)
    presets.check_preset_memory("quick", 10**12, 10**12, "cpu")  # unchecked preset
    monkeypatch.setattr(presets, "available_memory", lambda device: 10**12)
    presets.check_preset_memory("paper", n, n, "cpu")


def test_load_model_passes_revision_and_device_map(base_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = {}
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    model = load_model(str(base_dir), device="cpu", revision="main", device_map="cpu")
    assert seen["revision"] == "main" and seen["device_map"] == "cpu"
    assert next(model.parameters()).device.type == "cpu"
