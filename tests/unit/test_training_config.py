"""Training configs, registry, presets, schedules, data order and the no-pickle state format."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from safelens.training import (
    CDPOConfig,
    DPOConfig,
    DrDPOConfig,
    available_methods,
    get_method,
    make_method,
    register_method,
    resolve_config,
)
from safelens.training.checkpoint import flatten_state, rng_state, unflatten_state
from safelens.training.data import DataOrder, subsample
from safelens.training.methods.preference import DPO
from safelens.training.optim import lr_factor

BUILTIN = ["augmented-sft", "cdpo", "constrained-sft", "door", "dpo", "drdpo", "ipo", "npo", "rdpo",
           "reward-level", "sft", "shapo-r", "shapo-t", "w-door"]


def test_builtin_methods_registered():
    assert set(BUILTIN) <= set(available_methods())
    for name in BUILTIN:
        method = make_method(name)
        assert method.name == name
        assert isinstance(method.config, get_method(name).config_cls)
    assert not make_method("sft").needs_reference
    assert make_method("ipo").average_logps and not make_method("dpo").average_logps


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: DPOConfig(lr=-1.0), r"DPOConfig.lr must be > 0"),
        (lambda: DPOConfig(scheduler="bogus"), r"scheduler must be one of"),
        (lambda: DPOConfig(beta=0.0), r"beta must be > 0"),
        (lambda: DPOConfig(flip_rate=1.5), r"flip_rate must be in \[0, 1\]"),
        (lambda: DPOConfig(batch_size=6, grad_accum_steps=4), r"not divisible"),
        (lambda: DPOConfig(max_steps=0), r"max_steps must be None or an integer >= 1"),
        (lambda: DPOConfig(precision="fp8"), r"precision must be one of"),
        (lambda: CDPOConfig(eps=0.7), r"eps must be in \[0, 0.5\]"),
        (lambda: DrDPOConfig(beta_prime=-1.0), r"beta_prime must be > 0"),
        (lambda: DPOConfig(rpo_alpha=-1.0), r"rpo_alpha must be >= 0"),
        (lambda: DPOConfig(harmful_fraction=2.0), r"harmful_fraction must be in \[0, 1\]"),
    ],
)
def test_bad_configs_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_unknown_method_lists_available():
    with pytest.raises(KeyError, match=r"unknown training method 'bogus'; available: .*dpo"):
        get_method("bogus")
    with pytest.raises(KeyError, match="unknown preset"):
        resolve_config("dpo", preset="bogus")
    with pytest.raises(ValueError, match=r"has no setting\(s\) \['eps'\]"):
        make_method("dpo", eps=0.1)


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="'dpo' is already registered"):
        register_method("dpo", DPOConfig, DPO)


def test_presets_resolve_in_order():
    quick = resolve_config("dpo", preset="quick")
    assert quick.batch_size == 8 and quick.balance and quick.max_steps
    paper = resolve_config("drdpo", preset="paper")
    assert (paper.lr, paper.beta, paper.beta_prime, paper.epochs) == (5e-7, 0.1, 1.0, 3.0)
    # explicit overrides beat the preset (and warn that the preset's tuning no longer holds)
    with pytest.warns(UserWarning, match="overriding preset"):
        cfg = resolve_config("dpo", preset="quick", lr=3e-4)
    assert cfg.lr == 3e-4
    assert resolve_config("dpo", preset="quick", max_steps=2).max_steps == 2


def test_lr_schedules():
    assert [lr_factor(s, 0, 4, "constant") for s in range(4)] == [1.0] * 4
    assert [lr_factor(s, 1, 5, "linear") for s in range(5)] == [0.5, 1.0, 0.75, 0.5, 0.25]
    cos = [lr_factor(s, 0, 10, "cosine") for s in range(10)]
    assert cos[0] == 1.0 and math.isclose(cos[5], 0.5) and cos[-1] > 0


def test_data_order_is_seeded_and_covers_epochs():
    a, b = DataOrder(10, 4, seed=3), DataOrder(10, 4, seed=3)
    steps = [a.batch(s) for s in range(5)]  # 20 positions = 2 epochs
    assert steps == [b.batch(s) for s in range(5)]
    flat = [i for s in steps for i in s]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert [DataOrder(10, 4, seed=4).batch(s) for s in range(5)] != steps


def test_balanced_subsample():
    rows = [{"id": i, "harmful": i < 30} for i in range(40)]
    out = subsample(rows, 20, seed=0, balance=True)
    assert len(out) == 20 and sum(r["harmful"] for r in out) == 10
    assert out == subsample(rows, 20, seed=0, balance=True)
    mostly = subsample(rows, 20, seed=0, balance=True, harmful_fraction=0.75)
    assert sum(r["harmful"] for r in mostly) == 15


def test_state_round_trip_without_pickle():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "rng": rng_state(), "t": (1, "a", None, math.inf)}
    tree, tensors = flatten_state(state)
    back = unflatten_state(tree, tensors)
    assert back["t"] == (1, "a", None, math.inf)
    assert back["optimizer"]["param_groups"] == opt.state_dict()["param_groups"]
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(back["optimizer"]["state"][0][k], v)
    np.testing.assert_array_equal(back["rng"]["numpy"][1], state["rng"]["numpy"][1])
    assert back["rng"]["python"] == state["rng"]["python"]
    with pytest.raises(TypeError, match="without pickle"):
        flatten_state({"f": object()})


def test_data_order_with_one_version_of_the_rows_per_epoch():
    plain, versions = DataOrder(10, 4, seed=3), DataOrder(10, 4, seed=3, per_epoch_rows=True)
    for s in range(8):  # 32 positions: epochs 0-3
        epochs = [p // 10 for p in range(4 * s, 4 * s + 4)]
        assert versions.batch(s) == [i + 10 * e for i, e in zip(plain.batch(s), epochs,
                                                               strict=True)]
    assert plain.epochs_started(5) == 2 and plain.epochs_started(8) == 4  # 20 and 32 positions
    assert plain.epochs_started(0) == 1
