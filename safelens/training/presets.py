"""Presets: named bundles of config overrides, resolved as defaults < preset < overrides.

``quick``
    Two-core CPU scale on the default model (SmolLM2-135M-Instruct): a balanced subsample
    of the built-in train split (half harmful, half benign/look-alike, 320 pairs), 40 steps of
    8 pairs, rows cut to 128 tokens, the embeddings and blocks 0-14 frozen, lr 7e-5, and an
    NLL term on the chosen response (``rpo_alpha=1``, RPO) for the DPO family. With the fast
    engine (``precision="auto"``: bf16 autocast on this project's CPUs, the frozen-prefix cache,
    length buckets) ``safelens align --method dpo --preset quick`` takes about 2 minutes on 2
    idle cores (111 s on 2026-12-05: 40 steps of 1.84 s after the reference pass; the fp32
    engine 195 s, 2.94 s a step; before the engine 9 min 59 s, 40 steps of about 9.6 s). Tuned
    on the built-in VALIDATION split only (``tuning/quick.md``, ``tuning/quick.jsonl``); the
    test split was never looked at.
``standard``
    The aligned baseline every robustness experiment starts from (issue 15): SFT on all 4,000
    pairs of the built-in train split, 500 steps of 8 pairs, lr 1e-4, otherwise the quick
    preset's settings; about 15 minutes of training on 2 idle cores. Tuned on validation only
    (``tuning/standard.md``, ``tuning/standard.jsonl``); its promises on the test split are
    ``PRESET_TARGETS["standard"]``, checked by ``safelens demo`` (a miss is printed, not
    hidden). :func:`safelens.training.aligned_baseline` trains it once and reuses it.
``paper``
    The ShaPO seed's App. D.3 setting: beta 0.1, lr 5e-7, Dr.DPO beta' 1.0, 3 epochs, global
    batch 32 in 2 micro-batches. This is GPU scale (the seed uses H100s): on 2 CPU cores one
    epoch of the built-in train split takes hours, and lr 5e-7 moves a 135M model very little
    in that many steps. Hardware: full fine-tuning keeps fp32 weights, gradients and two AdamW
    moments, 16 bytes a parameter (:func:`training_memory_bytes`, plus 20%): about 2.6 GB for
    the 135M default model, 135-155 GB for a 7-8B model (one 80 GB GPU is not enough: use
    ``peft='lora'``, which needs gradients and moments only for the adapters, or FSDP /
    DeepSpeed through ``accelerate launch``, ``configs/accelerate/``). The trainer refuses a
    ``paper`` run whose estimate exceeds the memory available on its device
    (:func:`check_preset_memory`), before any data is read.

A preset is applied by :func:`safelens.training.resolve.resolve_config`.

Examples:
    >>> from safelens.training.resolve import resolve_config
    >>> cfg = resolve_config("dpo", preset="paper")
    >>> cfg.lr, cfg.beta, cfg.epochs, cfg.batch_size, cfg.grad_accum_steps
    (5e-07, 0.1, 3.0, 32, 2)
    >>> resolve_config("drdpo", preset="paper").beta_prime
    1.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import torch

from safelens.errors import SafelensError

TUNING_DIR = Path(__file__).parent / "tuning"
"""Lab notes (``<preset>.md``) and tuning runs (``<preset>.jsonl``) of the presets."""

_QUICK: dict[str, Any] = {
    "max_train_rows": 320,
    "balance": True,
    "batch_size": 8,
    "grad_accum_steps": 1,
    "max_steps": 40,
    "max_length": 128,
    "lr": 7e-5,
    # RPO: NLL on the chosen response next to the pairwise loss (preference methods only; the
    # others have no such setting and skip it). See tuning/quick.md for why.
    "rpo_alpha": 1.0,
    "scheduler": "linear",
    "warmup_steps": 4,
    "max_grad_norm": 1.0,
    # Embeddings (tied with the unembedding) and the lower half of the 30 blocks stay frozen:
    # the backward pass then stops at block 15, saving about a third of each step.
    "freeze": r"embed_tokens|layers\.([0-9]|1[0-4])\.",
}

_STANDARD: dict[str, Any] = {
    # The aligned baseline (issue 15): the quick preset's settings, fitted for longer on the
    # whole built-in train split; tuned for SFT on validation (tuning/standard.md,
    # tuning/standard.jsonl, whose rows are these overrides on top of the quick preset).
    **_QUICK,
    "max_train_rows": 4000,
    "balance": False,
    "max_steps": 500,
    "lr": 1e-4,
}

PRESETS: dict[str, dict[str, Any]] = {
    "quick": _QUICK,
    "standard": _STANDARD,
    "paper": {
        "lr": 5e-7,
        "epochs": 3.0,
        "batch_size": 32,
        "grad_accum_steps": 2,
        "scheduler": "linear",
        "warmup_ratio": 0.1,
        "max_length": 512,
    },
}

#: Per-method adjustments on top of a preset (only fields the method's config has apply).
METHOD_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("paper", "drdpo"): {"beta_prime": 1.0},
    ("paper", "reward-level"): {"beta_r": 10.0},
    ("paper", "dpo"): {"beta": 0.1},
    ("quick", "sft"): {"lr": 2e-5},
    ("quick", "ipo"): {"lr": 2e-5},
    ("quick", "npo"): {"lr": 1e-5, "sft_weight": 1.0},
}


PRESET_TARGETS: dict[str, dict[str, float]] = {
    "standard": {"asr": 0.10, "over_refusal": 0.10, "degenerate": 0.02},
}
"""Upper bounds a preset promises on the built-in test split (issue 15: refuse at least 90% of
the harmful prompts, over-refuse at most 10% of the others, at most 2% degenerate answers),
under the evaluation's primary judge and every agreement judge in ``summary["judges"]``."""


def check_targets(preset: str | None, summary: dict[str, Any]) -> list[str] | None:
    """The targets of ``preset`` that an evaluation ``summary`` misses (None: no targets).

    Examples:
        >>> ok = {"asr": {"value": 0.05}, "over_refusal": {"value": 0.08},
        ...       "degenerate": {"value": 0.0}}
        >>> check_targets("standard", ok), check_targets("quick", ok)
        ([], None)
        >>> check_targets("standard", {**ok, "asr": {"value": 0.2}})
        ['ASR 20.0% > 10%']
    """
    targets = PRESET_TARGETS.get(preset or "")
    if targets is None:
        return None
    names = {"asr": "ASR", "over_refusal": "over-refusal", "degenerate": "degenerate"}
    views = [("", summary)] + [(f" ({judge})", judged) for judge, judged in
                               sorted((summary.get("judges") or {}).items())
                               if judge != summary.get("judge")]
    misses = []
    for suffix, view in views:
        for key, bound in targets.items():
            stat = view.get(key)
            if not stat or stat.get("value") is None or (suffix and key == "degenerate"):
                continue
            if stat["value"] > bound:
                misses.append(f"{names[key]}{suffix} {100 * stat['value']:.1f}% > {100 * bound:.0f}%")
    return misses


#: Presets whose runs are checked against the device's memory before they start.
MEMORY_CHECKED_PRESETS = frozenset({"paper"})
#: Bytes per trained parameter beyond its fp32 weight: gradient + AdamW's two moments (fp32).
_TRAIN_BYTES = 4 + 4 + 4
_WEIGHT_BYTES = 4
#: Head room for activations, the reference cache and the allocator.
MEMORY_MARGIN = 1.2


def training_memory_bytes(n_params: int, n_trainable: int | None = None) -> int:
    """Estimated bytes to train: fp32 weights of every parameter, gradient + two AdamW moments of
    each trained one, times :data:`MEMORY_MARGIN`.

    Examples:
        >>> round(training_memory_bytes(135_000_000) / 1e9, 1)   # the default model, all trained
        2.6
        >>> round(training_memory_bytes(8_000_000_000) / 1e9)    # an 8B model
        154
    """
    n_trainable = n_params if n_trainable is None else n_trainable
    return int((n_params * _WEIGHT_BYTES + n_trainable * _TRAIN_BYTES) * MEMORY_MARGIN)


def available_memory(device: torch.device | str) -> int:
    """Bytes free on ``device``: the GPU's free memory for CUDA, else the machine's available RAM."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def check_preset_memory(preset: str | None, n_params: int, n_trainable: int,
                        device: torch.device | str, loaded: bool = True) -> None:
    """Refuse a run of a preset in :data:`MEMORY_CHECKED_PRESETS` that cannot fit in memory.

    Args:
        preset: the run's preset (others pass unchecked).
        n_params: parameters of the model.
        n_trainable: of those, the trained ones (all, or LoRA's adapters).
        device: where the model trains.
        loaded: the weights are already on ``device`` (they are then counted as available).

    Raises:
        SafelensError: one line naming the preset, the estimate and what is available.

    Examples:
        >>> check_preset_memory("quick", 10**12, 10**12, "cpu")   # only 'paper' is checked
    """
    if preset not in MEMORY_CHECKED_PRESETS:
        return
    need = training_memory_bytes(n_params, n_trainable)
    have = available_memory(device) + (n_params * _WEIGHT_BYTES if loaded else 0)
    if need > have:
        raise SafelensError(
            f"preset {preset!r}: training this model needs about {need / 2**30:.1f} GiB "
            f"({n_params:,} parameters, {n_trainable:,} trained: fp32 weights, gradients and 2 "
            f"AdamW moments, +{MEMORY_MARGIN - 1:.0%}) but {torch.device(device)} has "
            f"{have / 2**30:.1f} GiB available; expected a GPU with more memory, peft='lora', "
            "or FSDP/DeepSpeed (configs/accelerate/)")


def available_presets() -> list[str]:
    return sorted(PRESETS)


def preset_overrides(preset: str | None, method: str) -> dict[str, Any]:
    """The overrides a preset applies to ``method`` (empty for ``None``).

    Raises:
        KeyError: unknown preset (the message lists them).
    """
    if preset is None:
        return {}
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; available: {', '.join(available_presets())}")
    return {**PRESETS[preset], **METHOD_PRESETS.get((preset, method), {})}


def tuning_notes(preset: str) -> str:
    """The lab notes of ``preset``'s tuning runs: ``tuning/<preset>.md`` beside this module.

    Examples:
        >>> tuning_notes("quick").splitlines()[0][:38]
        'DPO tuning runs of the quick preset on'

    Raises:
        SafelensError: ``preset`` has no notes (the message lists those that do).
    """
    path = TUNING_DIR / f"{preset}.md"
    if not path.is_file():
        known = sorted(p.stem for p in TUNING_DIR.glob("*.md"))
        raise SafelensError(f"preset {preset!r} has no tuning notes; expected one of {known}")
    return path.read_text(encoding="utf-8")


def __getattr__(name: str) -> Any:
    """Names kept for one release: ``QUICK_NOTES`` / ``STANDARD_NOTES``, the lab notes now in
    ``tuning/quick.md`` / ``tuning/standard.md``, read on access. (``resolve_config`` moved to
    :mod:`safelens.training.resolve`; ``safelens.training.resolve_config`` is its public name.)"""
    if name in ("QUICK_NOTES", "STANDARD_NOTES"):
        return tuning_notes(name.removesuffix("_NOTES").lower())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
