"""A hook-free Hugging Face view of a ``TransformerBridge`` that shares its parameters.

The bridge splices a hooked component around every HF module (blocks, attention, MLP, every
linear layer), and each call through it pays for its hook points: on the default model a
forward pass through the bridge costs about a third more than the same HF module without them
(``benchmarks/bench_engine.py``). Training, reference log-probs and plain generation need no
hooks, so they run on a *plain view*: a fresh HF model of the same class whose parameters and
buffers are the bridge's own ``nn.Parameter`` objects (no copy; an optimizer step on one is a
step on the other).

Whenever any hook is attached to the bridge (an ablation, activation noise, a neuron scaling,
``run_with_hooks``), :func:`fast_module` returns the bridged HF module instead, so hooks always
apply.
"""

from __future__ import annotations

import contextlib
import copy
import weakref
from collections.abc import Iterator

import torch

_VIEWS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[torch.nn.Module, tuple]] = (
    weakref.WeakKeyDictionary())

_SPLICE = "._original_component"


def _internal_hook_ids(model: torch.nn.Module) -> set[int]:
    """Ids of the hooks TransformerLens installs for itself (its blocks' capture hooks)."""
    ids: set[int] = set()
    for module in model.modules():
        for handle in getattr(module, "_capture_hook_handles", None) or ():
            ids.add(handle.id)
    return ids


def has_active_hooks(model: torch.nn.Module) -> bool:
    """Whether a user hook (forward/backward, pre or post) is attached to any module.

    TransformerLens' own capture hooks, which a bridge installs on its first hooked forward
    and keeps, do not count.
    """
    internal = _internal_hook_ids(model)
    for module in model.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks,
                      module._backward_hooks, module._backward_pre_hooks):
            if any(key not in internal for key in hooks):
                return True
    return False


def _canonical(named: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, tensor in named:
        out.setdefault(name.replace(_SPLICE, ""), tensor)
    return out


def _build(hf: torch.nn.Module) -> tuple[torch.nn.Module, tuple]:
    """A model of ``type(hf)`` whose parameters and buffers are ``hf``'s own tensors."""
    # Its own config, so that choosing an attention kernel for the view
    # (:func:`attention_implementation`) never changes the bridge.
    config = copy.deepcopy(hf.config)
    with torch.device("meta"):
        plain = type(hf)(config)
    params = _canonical(list(hf.named_parameters(remove_duplicate=False)))
    buffers = _canonical(list(hf.named_buffers(remove_duplicate=False)))
    shared = []
    for name, _ in plain.named_parameters(remove_duplicate=False):
        if name not in params:
            raise RuntimeError(f"plain view: the bridged model has no parameter {name!r}")
        owner, _, leaf = name.rpartition(".")
        plain.get_submodule(owner)._parameters[leaf] = params[name]
        shared.append(params[name])
    for name, _ in plain.named_buffers(remove_duplicate=False):
        owner, _, leaf = name.rpartition(".")
        module = plain.get_submodule(owner)
        if name not in buffers:
            raise RuntimeError(f"plain view: the bridged model has no buffer {name!r}")
        module._buffers[leaf] = buffers[name]
        shared.append(buffers[name])
    plain.generation_config = copy.deepcopy(hf.generation_config)
    return plain, tuple(shared)


def _still_shared(hf: torch.nn.Module, shared: tuple) -> bool:
    # A reloaded or re-created parameter (``load_state_dict(assign=True)``, ``to_empty``) breaks
    # the sharing; then the view is rebuilt. ``module.to()`` keeps the Parameter objects.
    own = {id(t) for t in hf.parameters()} | {id(t) for t in hf.buffers()}
    return all(id(t) in own for t in shared)


def plain_view(model: torch.nn.Module) -> torch.nn.Module:
    """The hook-free HF model sharing ``model``'s parameters (built once, then cached).

    Args:
        model: a ``TransformerBridge``; anything else is returned unchanged.

    Returns:
        A ``PreTrainedModel`` of the bridged model's class, in the bridge's train/eval mode.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> bridge = load_tiny_model()
        >>> view = plain_view(bridge)
        >>> view.model.embed_tokens.weight is bridge.original_model.model.embed_tokens.weight
        True
    """
    hf = getattr(model, "original_model", None)
    if hf is None:
        return model
    cached = _VIEWS.get(model)
    if cached is None or not _still_shared(hf, cached[1]):
        cached = _build(hf)
        _VIEWS[model] = cached
    view = cached[0]
    if view.training != model.training:
        view.train(model.training)
    return view


def cached_view(model: torch.nn.Module) -> torch.nn.Module | None:
    """The plain view of ``model`` if one was built and still shares its parameters, else None
    (never builds one)."""
    hf = getattr(model, "original_model", None)
    cached = _VIEWS.get(model) if hf is not None else None
    if cached is None or not _still_shared(hf, cached[1]):
        return None
    return cached[0]


def forget_view(model: torch.nn.Module) -> None:
    """Drop ``model``'s cached plain view (the next :func:`plain_view` builds a fresh one), e.g.
    after LoRA adapters injected into it were merged into the shared weights."""
    _VIEWS.pop(model, None)


def fast_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module to run a plain forward or ``generate`` on.

    The plain view when no hook is attached to the bridge, else the bridged HF module (so that
    ablations and activation noise apply); a plain HF model is returned as it is.
    """
    hf = getattr(model, "original_model", None)
    if hf is None:
        return model
    return hf if has_active_hooks(model) else plain_view(model)


@contextlib.contextmanager
def attention_implementation(module: torch.nn.Module, name: str) -> Iterator[None]:
    """Run ``module`` (a plain view) with another attention kernel, e.g. ``"sdpa"``.

    On 2 CPU cores the fused SDPA kernel decodes faster than eager attention (same tokens),
    while eager is faster for training forward + backward passes (``benchmarks/README.md``).
    """
    config = module.config
    before = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = before
