"""Identities of models for caches and provenance: a weights hash of a loaded model, file stamps
of a saved directory, and :func:`model_identity` choosing between them.

Examples:
    >>> from safelens.models import load_tiny_model
    >>> a, b = load_tiny_model(seed=0), load_tiny_model(seed=1)
    >>> model_fingerprint(a) == model_fingerprint(load_tiny_model(seed=0)), model_fingerprint(a) == model_fingerprint(b)
    (True, False)
    >>> model_identity("smollm2-135m-instruct")      # a name that is not a path: itself
    'smollm2-135m-instruct'
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from safelens.models import lora
from safelens.models.loading import hf_state_dict

__all__ = ["checkpoint_fingerprint", "model_fingerprint", "model_identity"]


#: integer views of each float width: a weight's bit patterns summed as integers
_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def model_fingerprint(model: torch.nn.Module) -> str:
    """A cheap hash of a model's weights: per-tensor name, shape, dtype, a checksum and a few
    values.

    Sensitive to any real change of the weights (a training step, another checkpoint) without
    hashing every byte. The checksum is the integer sum of the weights' bit patterns: exact, so
    the fingerprint does not depend on the number of threads (a float sum's rounding does:
    before 2026-12-07 one model had one fingerprint at 1 thread and another at 2, and every
    cache keyed by it missed when the thread count changed).
    """
    hf = getattr(model, "original_model", model)
    h = hashlib.sha256()
    with torch.no_grad():
        for name, t in sorted(hf_state_dict(hf).items()):
            flat = t.detach().reshape(-1).cpu()
            if flat.is_floating_point() and flat.element_size() in _BITS:
                bits = flat.contiguous().view(_BITS[flat.element_size()])
            else:
                bits = flat
            checksum = int(bits.to(torch.int64).sum())  # integer addition: order-free
            head = flat[:8].double().tolist()
            h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|{checksum}|{head}".encode())
    return h.hexdigest()[:20]


def checkpoint_fingerprint(path: str | Path) -> str:
    """A cheap identity of a saved model directory (or file) without loading it: its resolved
    path and each file's name, size and modification time. Retraining into the same folder
    changes it; copying the folder elsewhere does too (a fresh result is then computed)."""
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256(str(path).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if path.is_dir() else f.name}|{st.st_size}|"
                 f"{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def model_identity(model: Any) -> str:
    """What a cache key records for ``model``: the weights fingerprint of a loaded model, the
    file stamps of a saved directory or file (:func:`checkpoint_fingerprint`), else the name
    itself (a packaged model such as the default one). A PEFT adapter directory is its files'
    stamps plus its base model's identity."""
    if hasattr(model, "parameters"):
        return model_fingerprint(model)
    path = Path(str(model)).expanduser()
    if lora.is_adapter_dir(path):  # base + adapter: a changed base is another model
        return f"{checkpoint_fingerprint(path)}+{model_identity(lora.adapter_base(path))}"
    if path.exists():
        return checkpoint_fingerprint(model)
    return str(model)
