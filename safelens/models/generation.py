"""Batched generation (greedy by default), with assistant-turn prefills.

Generation runs Hugging Face ``generate`` (KV cache, left padding, stop at EOS) on the model's
plain view (:func:`safelens.models.plain.fast_module`: the HF module without the bridge's hook
points, sharing its parameters), which is faster; as soon as any hook is attached to the bridge
(ablations, activation noise, neuron scaling) it runs through the bridged module instead, so
every TransformerLens hook applies during generation. Prompts are sorted by token length so a
batch carries little padding, and ``precision`` runs the forward passes under bf16 autocast.

It sits in ``models`` so that every layer may generate (training builds DOOR's harmful
continuations with it); ``safelens.eval.generation`` re-exports it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from safelens.models.chat import left_pad, prompt_ids
from safelens.models.plain import attention_implementation, fast_module, plain_view
from safelens.models.precision import PRECISIONS, autocast, resolve_precision


@dataclass
class GenerationConfig:
    """Decoding settings for :func:`generate`.

    Attributes:
        max_new_tokens: tokens generated per prompt (after any prefill).
        batch_size: prompts per forward batch (64: on 2 CPU cores decoding is bound by
            per-token overhead, so wide batches are nearly free; prompts are length-sorted).
        do_sample: sample instead of greedy decoding.
        temperature: sampling temperature (``do_sample`` only).
        top_p: nucleus-sampling mass (``do_sample`` only).
        seed: RNG seed for sampling.
        system_prompt: optional system message for every prompt.
        max_prompt_length: prompts longer than this many tokens are an error.
        precision: ``fp32``, ``bf16`` (autocast) or ``auto`` (bf16 where native, fp32 while hooks
            are attached to the bridge); see :mod:`safelens.models.precision`. Greedy bf16 answers can differ from fp32 ones
            (``benchmarks/README.md`` measures how often), so the default is ``fp32``.
        kv_cache: ``dynamic`` (grows each step) or ``static`` (preallocated for the prompt
            plus ``max_new_tokens``); same tokens, see ``benchmarks/README.md`` for speed.
    """

    max_new_tokens: int = 128
    batch_size: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    system_prompt: str | None = None
    max_prompt_length: int = 1024
    precision: str = "fp32"
    kv_cache: str = "dynamic"

    def __post_init__(self) -> None:
        if self.kv_cache not in ("dynamic", "static"):
            raise ValueError(f"kv_cache must be 'dynamic' or 'static', got {self.kv_cache!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {self.temperature}")


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompts: Sequence[str],
    prefills: Sequence[str | None] | None = None,
    config: GenerationConfig | None = None,
    progress: bool = True,
    **overrides,
) -> list[str]:
    """Generate one response per prompt.

    Args:
        model: a ``TransformerBridge`` (with ``.tokenizer``).
        prompts: user messages.
        prefills: optional text opening each assistant turn (``None``/``""`` = no prefill); the
            returned string is then the *continuation only*.
        config: decoding settings; keyword ``overrides`` replace its fields
            (``generate(model, prompts, max_new_tokens=32)``).
        progress: show a tqdm bar.

    Returns:
        The decoded responses (special tokens stripped), in the order of ``prompts``.
    """
    cfg = config or GenerationConfig()
    if overrides:
        cfg = GenerationConfig(**{**cfg.__dict__, **overrides})
    if prefills is not None and len(prefills) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(prefills)} prefills")
    tokenizer = model.tokenizer
    hf = fast_module(model)
    device = next(hf.parameters()).device
    precision = resolve_precision(cfg.precision, device)
    hooked = hf is not plain_view(model)
    if precision == "bf16" and hooked and cfg.precision == "auto":
        precision = "fp32"  # "auto" is the fastest precision that is right (see below)
    if precision == "bf16" and hooked:
        # TransformerLens' eager attention under bf16 autocast turns left-padded rows into
        # empty answers (measured with TransformerLens 4.3): refuse rather than mis-generate.
        raise ValueError("precision='bf16' generation with hooks attached to the bridge gives "
                         "wrong answers for padded prompts; use precision='fp32' with hooks")
    amp = autocast(precision, device)
    # SDPA decodes faster than the bridge's eager attention on the plain view (same tokens).
    use_sdpa = hf is plain_view(model) and hf is not model
    # Encode every prompt once, then batch by token length (little padding); results go back
    # in input order.
    encoded = []
    for i, prompt in enumerate(prompts):
        ids = prompt_ids(tokenizer, prompt, cfg.system_prompt,
                         prefill=prefills[i] if prefills is not None else None)
        if len(ids) > cfg.max_prompt_length:
            raise ValueError(f"prompt {i} is {len(ids)} tokens, over "
                             f"max_prompt_length={cfg.max_prompt_length}")
        encoded.append(torch.tensor(ids, dtype=torch.long))
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[str] = [""] * len(prompts)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(cfg.seed)
    kwargs = dict(max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if cfg.kv_cache == "static":
        kwargs["cache_implementation"] = "static"
    if cfg.do_sample:
        kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    try:
        bar = tqdm(total=len(prompts), desc="generate", disable=not progress, leave=False)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            batch = left_pad([encoded[i] for i in idx], pad)
            kernel = (attention_implementation(hf, "sdpa") if use_sdpa
                      else contextlib.nullcontext())
            with amp, kernel:
                tokens = hf.generate(
                    input_ids=batch.input_ids.to(device),
                    attention_mask=batch.attention_mask.to(device),
                    **kwargs,
                )  # [b, T + new]
            new = tokens[:, batch.input_ids.shape[1]:]
            for i, text in zip(idx, tokenizer.batch_decode(new, skip_special_tokens=True),
                               strict=True):
                out[i] = text.strip()
            bar.update(len(idx))
        bar.close()
    finally:
        torch.random.set_rng_state(generator_state)
    return out

