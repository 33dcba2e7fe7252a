"""Shared fixtures. Unit tests use the tiny random llama; integration tests the real default."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# precision="auto" means fp32 in the suite (subprocesses included), so exact-equality checks do
# not depend on whether the machine has native bf16; bf16 tests ask for it (`native_bf16`).
os.environ.setdefault("SAFELENS_BF16", "0")


@pytest.fixture
def native_bf16(monkeypatch):
    """Allow bf16 in this test; skip it where the hardware has no native bf16 matmuls."""
    from safelens.models.precision import native_bf16

    if not native_bf16("cpu"):
        pytest.skip("this CPU has no native bf16 matmuls (avx512_bf16 / AMX)")
    monkeypatch.setenv("SAFELENS_BF16", "1")


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny random llama with the default tokenizer (shared: do not train it in place)."""
    from safelens.models import load_tiny_model

    return load_tiny_model(seed=0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """``tiny_model`` saved as a model folder, for scripts that load a model by path (shared:
    do not write into it)."""
    from safelens.models import load_tiny_model, save_model

    path = tmp_path_factory.mktemp("tiny") / "model"
    save_model(load_tiny_model(seed=0), path)
    return path


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


@pytest.fixture(scope="session")
def load_script():
    """``load_script("scripts/NAME.py")``: a repository script (``scripts/``, ``benchmarks/``)
    imported as a module, so its tests call its functions."""
    repo = Path(__file__).resolve().parents[1]

    def load(relpath: str) -> ModuleType:
        path = repo / relpath
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
