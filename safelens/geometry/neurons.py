"""MLP neurons as units of analysis: what a neuron's value vector writes to the logits, how it
fires on prompts, and hooks that scale it (the analysis behind ``safelens.viz.NeuronExplorer``).

- :func:`neuron_logit_effects` — tokens a neuron's value vector promotes / suppresses through the
  unembedding (logit lens of ``W_out[l, j]``).
- :func:`mlp_activations` / :func:`neuron_activations` — the neuron's activation
  (``blocks.{l}.mlp.hook_post``: the MLP hidden state ``act(gate)·up`` that multiplies the value
  vectors) pooled over the tokens of chat-formatted prompts.
- :func:`neuron_scale_hooks` — TransformerLens forward hooks that ablate (×0) or scale (×s)
  neurons; :func:`safelens.eval.interventions.generate_with_neuron_scaled` generates with them.

Neurons are ranked elsewhere (:func:`safelens.geometry.value_vectors.rank_value_vectors`,
:func:`~safelens.geometry.value_vectors.top_k_neurons`).

Logit-lens choice: a value vector ``w`` added to the final residual stream reaches the logits as
``W_Uᵀ (γ ⊙ w) / rms(x)`` through the final RMSNorm (scale ``γ``). ``1/rms(x)`` is one positive
number per position, so it changes no ranking and is dropped; ``γ`` is per dimension and does
change the ranking, so it is applied by default (``apply_final_norm=True``). Only the direct
path is measured: what later layers do with ``w`` is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from safelens.geometry.value_vectors import d_mlp_of
from safelens.models.chat import prompt_ids

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = [
    "Neuron",
    "check_neuron",
    "mlp_activations",
    "mlp_post_hook",
    "neuron_activations",
    "neuron_logit_effects",
    "neuron_scale_hooks",
    "as_neurons",
]

Neuron = tuple[int, int]


def mlp_post_hook(layer: int) -> str:
    """Name of the MLP hidden-activation hook of block ``layer`` (input of ``W_out``)."""
    return f"blocks.{layer}.mlp.hook_post"


def check_neuron(model: TransformerBridge, layer: int, neuron: int) -> None:
    """Raise ``ValueError`` unless ``0 <= layer < n_layers`` and ``0 <= neuron < d_mlp``."""
    n_layers, d_mlp = int(model.cfg.n_layers), d_mlp_of(model)
    if not 0 <= int(layer) < n_layers:
        raise ValueError(f"layer must be in [0, {n_layers}), got {layer}")
    if not 0 <= int(neuron) < d_mlp:
        raise ValueError(f"neuron must be in [0, d_mlp={d_mlp}), got {neuron}")


def _final_norm_scale(model: TransformerBridge) -> Tensor | None:
    """``γ`` of the final norm ``[d_model]`` (``None`` if the model has none or folded it)."""
    ln = getattr(model, "ln_final", None)
    module = getattr(ln, "original_component", ln)
    weight = getattr(module, "weight", None)
    return None if weight is None else weight.detach().float()


def _token_text(tokenizer: Any, token_id: int) -> str:
    return str(tokenizer.decode([int(token_id)]))


def neuron_logit_effects(
    model: TransformerBridge,
    layer: int,
    neuron: int,
    k: int = 10,
    apply_final_norm: bool = True,
) -> dict[str, Any]:
    """Tokens the value vector ``W_out[layer, neuron]`` promotes and suppresses (logit lens).

    ``logits = (γ ⊙ W_out[l, j]) @ W_U`` with ``γ`` the final RMSNorm's scale (see the module
    docstring for why ``γ`` is applied and ``1/rms`` is not).

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        layer: block index ``l``.
        neuron: neuron index ``j`` in ``[0, d_mlp)``.
        k: how many tokens at each end.
        apply_final_norm: multiply by the final norm's ``γ`` first.

    Returns:
        dict with ``layer``, ``neuron``, ``promoted`` and ``suppressed`` (lists of
        ``(token text, logit)``, strongest first), ``promoted_ids``/``suppressed_ids`` ``[k]``
        and ``logits`` ``[d_vocab]`` (float32, CPU).

    Examples:
        >>> fx = neuron_logit_effects(model, layer=29, neuron=12)  # doctest: +SKIP
        >>> [t for t, _ in fx["promoted"][:3]]  # doctest: +SKIP
    """
    check_neuron(model, layer, neuron)
    with torch.no_grad():
        w = model.W_out[int(layer), int(neuron)].detach().float().cpu()  # [d_model]
        if apply_final_norm:
            gamma = _final_norm_scale(model)
            if gamma is not None:
                w = w * gamma.cpu()
        logits = w @ model.W_U.detach().float().cpu()  # [d_vocab]
    k = max(1, min(int(k), logits.numel()))
    top = torch.topk(logits, k)
    bottom = torch.topk(-logits, k)
    tok = model.tokenizer
    return {
        "layer": int(layer),
        "neuron": int(neuron),
        "promoted": [
            (_token_text(tok, i), float(v)) for i, v in zip(top.indices, top.values, strict=True)
        ],
        "suppressed": [
            (_token_text(tok, i), float(-v))
            for i, v in zip(bottom.indices, bottom.values, strict=True)
        ],
        "promoted_ids": top.indices,
        "suppressed_ids": bottom.indices,
        "logits": logits,
    }


def _right_padded_prompts(
    model: TransformerBridge, prompts: Sequence[str], system_prompt: str | None
) -> tuple[Tensor, Tensor]:
    """Chat-formatted prompts (with the assistant-turn opening), right-padded: ``[N, T]`` ×2."""
    rows = [prompt_ids(model.tokenizer, p, system_prompt) for p in prompts]
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)  # [N, T]
    att = torch.zeros((len(rows), width), dtype=torch.long)  # [N, T]
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        att[b, : len(r)] = 1
    return ids, att


def mlp_activations(
    model: TransformerBridge,
    prompts: Sequence[str],
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    batch_size: int = 8,
    system_prompt: str | None = None,
) -> Tensor:
    """MLP hidden activations (``blocks.{l}.mlp.hook_post``) of every neuron, pooled per prompt.

    Prompts are chat-formatted as for generation (user turn + assistant-turn opening) and
    right-padded, so padding never shifts positions.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        prompts: ``N`` user messages.
        layers: blocks to read (default: all).
        pooling: ``"mean"`` over all real tokens of the formatted prompt (the template's tokens
            are the same for every prompt, so differences come from the request) or ``"last"``
            (the last token, where the answer's first token is decided).
        batch_size: prompts per forward.
        system_prompt: optional system message.

    Returns:
        ``[N, len(layers), d_mlp]`` float32 on CPU.
    """
    if not prompts:
        raise ValueError("prompts is empty; expected at least one prompt")
    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling must be 'mean' or 'last', got {pooling!r}")
    n_layers = int(model.cfg.n_layers)
    layers = list(range(n_layers)) if layers is None else [int(x) for x in layers]
    for x in layers:
        check_neuron(model, x, 0)
    names = [mlp_post_hook(x) for x in layers]
    ids, att = _right_padded_prompts(model, list(prompts), system_prompt)
    device = next(model.original_model.parameters()).device
    stop = max(layers) + 1
    extra: dict[str, Any] = {"stop_at_layer": stop} if stop < n_layers else {}
    out = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            sub_ids = ids[start : start + batch_size].to(device)  # [b, T]
            sub_att = att[start : start + batch_size].to(device)  # [b, T]
            _, cache = model.run_with_cache(
                sub_ids, names_filter=names, attention_mask=sub_att, **extra
            )
            per_layer = []
            for name in names:
                acts = cache[name].float()  # [b, T, d_mlp]
                if pooling == "mean":
                    m = sub_att.unsqueeze(-1).to(acts.dtype)  # [b, T, 1]
                    pooled = (acts * m).sum(1) / m.sum(1)  # [b, d_mlp]
                else:
                    last = sub_att.sum(1) - 1  # [b]
                    pooled = acts[torch.arange(acts.shape[0], device=acts.device), last]
                per_layer.append(pooled.cpu())
            out.append(torch.stack(per_layer, dim=1))  # [b, L, d_mlp]
            del cache
    return torch.cat(out)  # [N, L, d_mlp]


def neuron_activations(
    model: TransformerBridge,
    layer: int,
    neuron: int,
    prompts: Sequence[str],
    pooling: str = "mean",
    batch_size: int = 8,
) -> Tensor:
    """One neuron's pooled activation on each prompt, ``[N]`` (see :func:`mlp_activations`).

    Examples:
        >>> neuron_activations(model, 29, 12, ["How do I pick a lock?"]).shape  # doctest: +SKIP
        torch.Size([1])
    """
    check_neuron(model, layer, neuron)
    acts = mlp_activations(model, prompts, [layer], pooling=pooling, batch_size=batch_size)
    return acts[:, 0, int(neuron)]


def as_neurons(neurons: Neuron | Iterable[Neuron] | Tensor) -> list[Neuron]:
    """``(layer, neuron)``, a list of them or a ``[k, 2]`` tensor, as a list of int pairs."""
    if isinstance(neurons, Tensor):
        if neurons.ndim == 1 and neurons.numel() == 2:
            neurons = neurons.unsqueeze(0)
        if neurons.ndim != 2 or neurons.shape[1] != 2:
            raise ValueError(f"neurons must be [k, 2] (layer, neuron), got {tuple(neurons.shape)}")
        return [(int(a), int(b)) for a, b in neurons.tolist()]
    seq = list(neurons)
    if len(seq) == 2 and all(isinstance(x, int) for x in seq):
        return [(int(seq[0]), int(seq[1]))]
    return [(int(a), int(b)) for a, b in seq]


def neuron_scale_hooks(
    neurons: Neuron | Iterable[Neuron] | Tensor, scale: float = 0.0
) -> list[tuple[str, Callable[..., Tensor]]]:
    """Forward hooks multiplying the given neurons' activations by ``scale`` (0 = ablation).

    Because ``hook_post`` feeds ``W_out``, scaling neuron ``j`` by ``s`` scales its value vector's
    contribution ``a_j W_out[l, j]`` to the residual stream by ``s``.

    Args:
        neurons: ``(layer, neuron)``, a list of them, or a ``[k, 2]`` tensor.
        scale: factor applied to those activations.

    Returns:
        ``[(hook_name, fn), ...]`` for ``with model.hooks(fwd_hooks=...)``, one per layer.
    """
    by_layer: dict[int, list[int]] = {}
    for layer, j in as_neurons(neurons):
        by_layer.setdefault(layer, []).append(j)

    def make(idx: list[int]) -> Callable[..., Tensor]:
        index = torch.tensor(sorted(set(idx)), dtype=torch.long)

        def hook(act: Tensor, hook: Any = None) -> Tensor:  # act: [b, T, d_mlp]
            act = act.clone()  # never edit a tensor autograd may need in place
            act[..., index.to(act.device)] *= scale
            return act

        return hook

    return [(mlp_post_hook(layer), make(idx)) for layer, idx in sorted(by_layer.items())]
