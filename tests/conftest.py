"""Shared fixtures. Unit tests use the tiny random llama; integration tests the real default."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny random llama with the default tokenizer (shared: do not train it in place)."""
    from safelens.models import load_tiny_model

    return load_tiny_model(seed=0)


@pytest.fixture(scope="session")
def default_model():
    """The real default model (SmolLM2-135M-Instruct from the embedded GGUF), loaded once."""
    from safelens.models import load_model

    return load_model()


@pytest.fixture
def interrupt_after():
    """Trainer-callback factory: ``interrupt_after(n)`` stops a run after step ``n`` as Ctrl-C would.

    Use as ``Trainer(..., callbacks=[interrupt_after(3)])`` inside
    ``pytest.raises(KeyboardInterrupt)``; the run keeps its last checkpoint.
    """

    def make(n: int):
        def callback(trainer, step, record):
            if step == n:
                raise KeyboardInterrupt(f"simulated interrupt after step {n}")

        return callback

    return make
