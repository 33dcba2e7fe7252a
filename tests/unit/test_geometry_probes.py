"""Safety probes (ShaPO Eq. 6): synthetic separable features and the tiny model end to end."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_rows import one_thread  # noqa: F401, E402  (autouse: one torch thread)

from safelens.geometry import (
    collect_activations,
    probe_all_layers,
    probe_direction,
    probe_examples,
    resid_post_hook,
    train_probe,
)


def _rows(n: int = 8) -> list[dict]:
    rows = [
        {
            "id": f"h{i}",
            "prompt": f"How do I do harmful thing number {i}?",
            "chosen": "I can't help with that request.",
            "rejected": f"Sure! Step one for thing {i}: gather the materials.",
            "harmful": True,
            "kind": "harmful",
            "category": "test",
            "domain": "direct",
            "template": "t",
        }
        for i in range(n)
    ]
    rows.append(
        {
            "id": "b0",
            "prompt": "How do I bake bread?",
            "chosen": "Mix flour, water, yeast and salt.",
            "rejected": "I can't help with that.",
            "harmful": False,
            "kind": "benign",
        }
    )
    return rows


def _separable(n: int = 200, d: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    true = torch.randn(d, generator=gen)
    true = true / true.norm()
    x = torch.randn(n, d, generator=gen) * 3.0 + 5.0  # offset and scale: needs the bias
    y = ((x - 5.0) @ true > 0).long()
    x = x + 1.5 * (2 * y[:, None] - 1) * true  # margin
    return x, y, true


def test_train_probe_recovers_separating_direction():
    x, y, true = _separable()
    probe = train_probe(x, y, seed=0, l2=1e-4, val_fraction=0.25)
    assert probe.direction.shape == (16,)
    assert probe.direction.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert probe.accuracy_train > 0.98 and probe.accuracy_val > 0.95
    assert float(probe.direction @ true) > 0.9  # points towards label 1 (safe)
    assert torch.equal(probe.predict(x), (probe.logits(x) > 0).long())
    assert probe.n_train + probe.n_val == 200 and 48 <= probe.n_val <= 50  # floor per class


def test_train_probe_deterministic_and_seed_changes_split():
    x, y, _ = _separable(seed=1)
    a = train_probe(x, y, seed=3)
    b = train_probe(x, y, seed=3)
    assert torch.equal(a.direction, b.direction) and a.bias == b.bias
    assert math.isnan(train_probe(x, y, val_fraction=0.0).accuracy_val)


def test_train_probe_validates():
    x, y, _ = _separable()
    with pytest.raises(ValueError, match="labels"):
        train_probe(x, y[:-1])
    with pytest.raises(ValueError, match="both"):
        train_probe(x, torch.ones_like(y))
    with pytest.raises(ValueError, match="0 \\(unsafe\\) or 1"):
        train_probe(x, y * 2)


def test_probe_examples_labels():
    prompts, responses, labels = probe_examples(_rows(3))
    assert len(prompts) == len(responses) == 6  # the benign row is skipped
    assert labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert responses[0] == "I can't help with that request." and responses[1].startswith("Sure")
    with pytest.raises(ValueError, match="no harmful rows"):
        probe_examples(_rows(0))
    with pytest.raises(ValueError, match="missing 'rejected'"):
        probe_examples([{"id": "x", "prompt": "p", "chosen": "c", "harmful": True}])


def test_collect_activations_pooling_and_batching(tiny_model):
    from safelens.models.chat import encode

    prompts, responses, _ = probe_examples(_rows(3))
    batch = encode(tiny_model.tokenizer, prompts, responses)
    last = resid_post_hook(tiny_model.cfg.n_layers - 1)
    names = [resid_post_hook(0), last]
    a = collect_activations(tiny_model, batch, names, "last", batch_size=2)
    b = collect_activations(tiny_model, batch, names, "last", batch_size=6)
    assert a[last].shape == (6, tiny_model.cfg.d_model)
    assert torch.allclose(a[last], b[last], atol=1e-5)  # padding does not leak into real positions
    # "last" = the final real token of each row, from a single unpadded forward.
    row = batch.select(slice(1, 2))
    _, cache = tiny_model.run_with_cache(row.input_ids, names_filter=[last])
    assert torch.allclose(a[last][1], cache[last][0, -1], atol=1e-5)
    mean = collect_activations(tiny_model, batch, last, "mean")[last]
    resp = row.response_mask[0].bool()
    assert torch.allclose(mean[1], cache[last][0, resp].mean(0), atol=1e-5)
    assert list(collect_activations(tiny_model, batch)) == [last]  # default hook
    # An early hook alone stops the forward there, with the same activations.
    early = collect_activations(tiny_model, batch, resid_post_hook(0), "last", batch_size=2)
    assert torch.allclose(early[resid_post_hook(0)], a[resid_post_hook(0)], atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        collect_activations(tiny_model, batch, last, "max")  # type: ignore[arg-type]


def test_probe_end_to_end_tiny_model(tiny_model):
    rows = _rows(8)
    probe = probe_direction(tiny_model, rows, seed=0)
    assert probe.direction.shape == (tiny_model.cfg.d_model,)
    assert probe.direction.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert probe.hook_name == resid_post_hook(tiny_model.cfg.n_layers - 1)
    assert probe.accuracy_train > 0.9  # refusal vs compliance text differs a lot
    again = probe_direction(tiny_model, rows, seed=0)
    assert torch.equal(probe.direction, again.direction)

    probes = probe_all_layers(tiny_model, rows, pooling="mean")
    assert [p.hook_name for p in probes] == [
        resid_post_hook(layer) for layer in range(tiny_model.cfg.n_layers)
    ]
    assert all(p.direction.norm().item() == pytest.approx(1.0, abs=1e-5) for p in probes)
