"""Numeric precision of forward passes: ``fp32``, ``bf16`` (autocast) or ``auto``.

One setting serves training (``TrainConfig.precision``), evaluation (``safelens eval
--precision``) and the benchmarks. ``bf16`` is *autocast*: weights, optimizer state and
gradients stay float32 (the master copy), matmuls run in bfloat16, and everything that
autocast keeps in float32 stays there — softmax, log-softmax, RMSNorm's variance — plus the
response log-probs and every loss, which safelens computes from float32 logits.

``auto`` picks ``bf16`` where the hardware runs bfloat16 matmuls natively — a GPU that
reports bf16 support, or a CPU with ``avx512_bf16`` or AMX (on this project's 2-core Xeon a
bf16 matmul runs about 3-4x faster than fp32) — and ``fp32`` elsewhere. ``bf16`` asked for
explicitly on hardware without native support is an error naming the setting (emulated bf16 is
slower than fp32 on such CPUs). Hessian / λ_max code does not take this setting: it stays in
float32 or float64.

Examples:
    >>> resolve_precision("fp32", "cpu")
    'fp32'
    >>> resolve_precision("fp16", "cpu")
    Traceback (most recent call last):
    ...
    safelens.errors.SafelensError: precision must be one of ('fp32', 'bf16', 'auto'), got 'fp16'
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import torch

from safelens.errors import SafelensError

PRECISIONS = ("fp32", "bf16", "auto")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether the hardware of ``device`` runs bfloat16 matmuls natively (not emulated)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        flags = _cpu_flags()
        if flags:
            return bool({"avx512_bf16", "amx_bf16"} & flags)
        probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(probe()) if probe is not None else False
    return False


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """:func:`native_bf16`, unless ``$SAFELENS_BF16`` says otherwise.

    ``SAFELENS_BF16=0`` makes ``auto`` mean fp32 everywhere (the unit tests set it, so their
    exact-equality checks do not depend on the machine); ``SAFELENS_BF16=1`` allows bf16 where
    it is emulated.
    """
    forced = os.environ.get("SAFELENS_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    return native_bf16(device)


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``fp32`` or ``bf16``: what ``precision`` means on ``device``.

    Raises:
        SafelensError: an unknown name, or ``bf16`` on a device without native bf16 matmuls
            (a ``ValueError``).
    """
    if precision not in PRECISIONS:
        raise SafelensError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    native = bf16_supported(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        raise SafelensError(
            f"precision='bf16' but {torch.device(device).type} has no native bf16 matmul "
            "(a CPU needs avx512_bf16 or AMX, a GPU bf16 support); use precision='fp32' or 'auto'")
    return precision


def autocast(precision: str, device: str | torch.device = "cpu"
             ) -> contextlib.AbstractContextManager:
    """The autocast context of a resolved precision (``fp32``: a no-op context)."""
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"resolve the precision first: expected 'fp32' or 'bf16', got {precision!r}")
