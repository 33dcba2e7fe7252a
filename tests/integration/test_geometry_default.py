"""Safety geometry on the real default model: ranking, probe, selective subspace, logit lens."""

from __future__ import annotations

import pytest
import torch

from safelens.geometry import Subspace, probe_direction, rank_value_vectors, top_k_neurons

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # A shared 2-core machine: one OpenMP thread avoids oversubscription.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def direction(default_model):
    p = torch.randn(default_model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    return p / p.norm()


def test_rank_value_vectors_matches_direct_computation(default_model, direction):
    scores = rank_value_vectors(default_model, direction)
    assert scores.shape == (30, 1536)
    layer = 17
    down = default_model.original_model.model.layers[layer].mlp.down_proj.weight  # [d_model, d_mlp]
    direct = (down.detach().T.double() @ direction.double()).abs()  # [d_mlp]
    torch.testing.assert_close(scores[layer].double(), direct, rtol=1e-5, atol=1e-7)
    cos = rank_value_vectors(default_model, direction, normalize=True)
    torch.testing.assert_close(
        cos[layer].double(), direct / down.detach().double().norm(dim=0), rtol=1e-5, atol=1e-7
    )


@pytest.mark.filterwarnings("ignore:.*truncated to max_length")
def test_probe_beats_chance_on_its_training_rows(default_model):
    from safelens.data import load_builtin

    rows = [r for r in load_builtin("preferences", "train") if r["harmful"]][:6]
    probe = probe_direction(default_model, rows, val_fraction=0.0, max_length=96)
    assert probe.n_train == 12
    assert probe.accuracy_train > 0.75  # chance is 0.5
    assert probe.direction.shape == (576,)
    assert probe.direction.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_selective_subspace_has_one_percent_of_neurons(default_model, direction):
    sub = Subspace.selective(default_model, direction, fraction=0.01)
    k = round(0.01 * 30 * 1536)
    assert sub.neurons.shape == (k, 2)
    assert sub.numel == k * 576
    expected = top_k_neurons(rank_value_vectors(default_model, direction), k=k)
    assert torch.equal(sub.neurons, expected)
    for name, mask in zip(sub.param_names, sub.masks, strict=True):
        layer = int(name.split(".")[2])
        cols = mask.any(0).nonzero().flatten()  # [d_model, d_mlp] mask: neurons are columns
        chosen = expected[expected[:, 0] == layer, 1].sort().values
        assert torch.equal(cols.cpu(), chosen)
        assert bool(mask[:, cols].all())


def test_neuron_explorer_logit_lens_on_default_model(default_model):
    from safelens.geometry.neurons import mlp_post_hook, neuron_logit_effects

    assert mlp_post_hook(29) in default_model.hook_dict
    fx = neuron_logit_effects(default_model, 29, 5, k=5)
    hf = default_model.original_model
    w = hf.model.layers[29].mlp.down_proj.weight[:, 5].detach()  # [d_model]
    direct = (hf.model.norm.weight.detach() * w) @ hf.lm_head.weight.detach().T  # [V]
    assert fx["promoted_ids"].tolist() == torch.topk(direct, 5).indices.tolist()
    torch.testing.assert_close(fx["logits"], direct.float(), rtol=1e-4, atol=1e-5)
