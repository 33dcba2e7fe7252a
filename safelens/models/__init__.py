"""Models: loading (default GGUF model, HF ids, local dirs), chat formatting, log-probs."""

from safelens.models.loading import (
    DEFAULT_MODEL,
    ModelNotFoundError,
    load_hf,
    load_model,
    load_tiny_model,
    merge_adapter,
    save_model,
    wrap,
)

__all__ = [
    "DEFAULT_MODEL",
    "ModelNotFoundError",
    "load_hf",
    "load_model",
    "load_tiny_model",
    "merge_adapter",
    "save_model",
    "wrap",
]
