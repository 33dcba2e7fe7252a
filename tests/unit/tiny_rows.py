"""Shared helpers of the tiny-model training tests (imported by name: pytest puts tests/unit on
``sys.path``): preference rows, parameter snapshots and the one-thread fixture."""

from __future__ import annotations

import pytest
import torch


def make_rows(
    n: int = 16,
    prompt: str = "Question number {i}: how do I do thing {i}?",
    rejected: str = "Here is how: first {i}, then more.",
    rewards: bool = True,
) -> list[dict]:
    """``n`` tiny preference rows in the project schema, alternating harmful / benign.

    ``prompt`` and ``rejected`` (the harmful rows' compliant answer) are formatted with ``i``;
    ``rewards`` adds ``reward_chosen`` / ``reward_rejected`` label scores (ShaPO-R).
    """
    rows = []
    for i in range(n):
        harmful = i % 2 == 0
        row = {
            "id": f"r{i}", "prompt": prompt.format(i=i),
            "chosen": "I can't help with that." if harmful else f"Sure: step one, step {i}.",
            "rejected": rejected.format(i=i) if harmful else "I won't help.",
            "harmful": harmful, "kind": "harmful" if harmful else "benign",
            "category": "test", "domain": "direct", "template": "t",
        }
        if rewards:
            row.update(reward_chosen=1.0, reward_rejected=-1.0)
        rows.append(row)
    return rows


def params_of(model) -> dict[str, torch.Tensor]:
    """A detached copy of a bridged model's parameters under their HF names."""
    from safelens.models.loading import hf_state_dict

    return {k: v.detach().clone() for k, v in hf_state_dict(model.original_model).items()}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny-model ops are too small to parallelise; on a shared 2-core box 2 threads are 5x slower.

    Autouse in every module that imports it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
