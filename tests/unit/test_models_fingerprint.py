"""model_fingerprint: one model, one fingerprint, whatever the thread count (the float sums it
used before differed between 1 and 2 threads on the tiny model's 1.5 M-element embedding, so
caches keyed by it missed and results files were refused as 'another baseline')."""

from __future__ import annotations

import torch

from safelens.models import load_tiny_model
from safelens.models.fingerprint import model_fingerprint


def test_fingerprint_does_not_depend_on_the_thread_count(tiny_model):
    n = torch.get_num_threads()
    try:
        prints = set()
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            prints.add(model_fingerprint(tiny_model))
    finally:
        torch.set_num_threads(n)
    assert len(prints) == 1


def test_fingerprint_sees_a_one_ulp_change_and_a_dtype_change():
    a, b = load_tiny_model(seed=0), load_tiny_model(seed=0)
    assert model_fingerprint(a) == model_fingerprint(b)
    w = b.original_model.model.layers[1].mlp.down_proj.weight
    with torch.no_grad():
        w[3, 5] = torch.nextafter(w[3, 5], torch.tensor(float("inf")))
    assert model_fingerprint(a) != model_fingerprint(b)
    assert model_fingerprint(a) != model_fingerprint(a.original_model.to(torch.bfloat16))
