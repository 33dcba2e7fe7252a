"""Smoke test of benchmarks/bench_shapo_runtime.py on the tiny model: one round, pass counts."""

from __future__ import annotations

import pytest
import torch
from tiny_rows import make_rows as shared_rows
from tiny_rows import one_thread  # noqa: F401  (autouse)

from safelens.models import load_tiny_model


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmarks/bench_shapo_runtime.py")


def make_rows(n: int = 16) -> list[dict]:
    return shared_rows(n, prompt="Question {i}: how do I do thing {i}?")


def test_measure_counts_passes_and_restores_weights(bench):
    model = load_tiny_model(seed=0)
    before = {k: v.clone() for k, v in model.original_model.state_dict().items()}
    res = bench.measure(model, make_rows(), repeats=1, batch_size=4, max_length=64, n_rows=16,
                        sam_every=2, log=lambda msg: None)
    s = res["summary"]
    assert list(s) == list(bench.METHODS)
    assert all(row["steps"] == 4 and row["epoch_s"] > 0 for row in s.values())
    assert s["DPO"]["ratio"] == 1.0 and s["DPO"]["passes_per_step"] == 1.0
    # tau = 2 over 4 steps: exact doubles 2 of them, reuse never does
    assert s["ShaPO-T exact"]["sam_steps"] == 2 and s["ShaPO-T exact"]["passes_per_step"] == 1.5
    assert s["ShaPO-T reuse"]["sam_steps"] == 2 and s["ShaPO-T reuse"]["passes_per_step"] == 1.0
    assert s["ShaPO-R"]["passes_per_step"] == 1.5
    assert res["warmup"]["reference_cache_hit"] is False
    assert all(r["reference_cache_hit"] for rs in res["runs"].values() for r in rs)
    assert "embed_tokens|layers" in res["settings"]["freeze"]  # the lower half of 2 blocks
    table = bench.format_table(res)
    assert "ShaPO-T reuse" in table and ("PASS" in table or "MISS" in table)
    after = model.original_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
