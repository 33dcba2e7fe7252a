"""MLP neurons as units of analysis: what a neuron's value vector writes to the logits, how it
fires on prompts, and hooks that scale it (the analysis behind ``safelens.viz.NeuronExplorer``).

- :func:`neuron_logit_effects` — tokens a neuron's value vector promotes / suppresses through the
  unembedding (logit lens of ``W_out[l, j]``).
- :func:`mlp_activations` / :func:`neuron_activations` — the neuron's activation
  (``blocks.{l}.mlp.hook_post``: the MLP hidden state ``act(gate)·up`` that multiplies the value
  vectors) pooled over the tokens of chat-formatted prompts.
- :func:`neuron_token_activations` / :func:`token_activations` — the activation at every token
  of one prompt (which tokens fire the neuron).
- :func:`mlp_max_activations` / :func:`top_activating_examples` — each prompt's peak activation
  and the token where it peaks; the prompts of a set on which a neuron fires most.
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

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from safelens.errors import SafelensError
from safelens.geometry.value_vectors import d_mlp_of
from safelens.models.chat import prompt_ids, text_ids

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
    "mlp_max_activations",
    "neuron_token_activations",
    "token_activations",
    "top_activating_examples",
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
    out = []
    for sub_att, per_layer_acts in _mlp_post_batches(model, prompts, layers, batch_size,
                                                     system_prompt):
        per_layer = []
        for acts in per_layer_acts:  # [b, T, d_mlp]
            if pooling == "mean":
                m = sub_att.unsqueeze(-1).to(acts.dtype)  # [b, T, 1]
                pooled = (acts * m).sum(1) / m.sum(1)  # [b, d_mlp]
            else:
                last = sub_att.sum(1) - 1  # [b]
                pooled = acts[torch.arange(acts.shape[0], device=acts.device), last]
            per_layer.append(pooled.cpu())
        out.append(torch.stack(per_layer, dim=1))  # [b, L, d_mlp]
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


def _model_device(model: TransformerBridge) -> torch.device:
    return next(model.original_model.parameters()).device


def _layer_list(model: TransformerBridge, layers: Sequence[int] | None) -> list[int]:
    out = list(range(int(model.cfg.n_layers))) if layers is None else [int(x) for x in layers]
    for x in out:
        check_neuron(model, x, 0)
    return out


def _mlp_post_batches(
    model: TransformerBridge,
    prompts: Sequence[str],
    layers: Sequence[int] | None,
    batch_size: int,
    system_prompt: str | None,
) -> Iterator[tuple[Tensor, list[Tensor]]]:
    """Chat-formatted, right-padded prompts in batches through the model (no grad), stopping
    after the last layer read: yields ``(attention_mask [b, T], [hook_post [b, T, d_mlp] float32
    per layer])``."""
    layer_ids = _layer_list(model, layers)
    names = [mlp_post_hook(x) for x in layer_ids]
    ids, att = _right_padded_prompts(model, list(prompts), system_prompt)  # [N, T] x2
    device = _model_device(model)
    stop = max(layer_ids) + 1
    extra: dict[str, Any] = {"stop_at_layer": stop} if stop < int(model.cfg.n_layers) else {}
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            sub_att = att[start : start + batch_size].to(device)  # [b, T]
            _, cache = model.run_with_cache(
                ids[start : start + batch_size].to(device), names_filter=names,
                attention_mask=sub_att, **extra)
            acts = [cache[name].float() for name in names]
            del cache
            yield sub_att, acts


def token_activations(
    model: TransformerBridge,
    prompt: str,
    layers: Sequence[int] | None = None,
    chat_format: bool = True,
    system_prompt: str | None = None,
) -> dict[str, Any]:
    """Every neuron's ``hook_post`` activation at every token of one prompt.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        prompt: a user message (``chat_format=True``: formatted as for generation, with the
            assistant-turn opening) or raw text (``chat_format=False``: encoded as text, no
            template, so the tokens are exactly the text's).
        layers: blocks to read (default: all).
        chat_format: apply the chat template first.
        system_prompt: optional system message (chat format only).

    Returns:
        dict with ``token_ids`` ``[T]`` (long), ``tokens`` (``T`` decoded strings), ``layers``
        (the list read) and ``activations`` ``[T, len(layers), d_mlp]`` float32 on CPU.

    Raises:
        SafelensError: ``prompt`` encodes to no tokens.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> model = load_tiny_model()
        >>> out = token_activations(model, "Hi there", layers=[1], chat_format=False)
        >>> out["activations"].shape[1:] == (1, model.cfg.d_mlp)
        True
    """
    layer_ids = _layer_list(model, layers)
    tok = model.tokenizer
    ids = prompt_ids(tok, prompt, system_prompt) if chat_format else text_ids(tok, prompt)
    if not ids:
        raise SafelensError(f"prompt {prompt[:40]!r} encodes to no tokens; expected some text")
    names = [mlp_post_hook(x) for x in layer_ids]
    stop = max(layer_ids) + 1
    extra: dict[str, Any] = {"stop_at_layer": stop} if stop < int(model.cfg.n_layers) else {}
    x = torch.tensor([ids], dtype=torch.long, device=_model_device(model))  # [1, T]
    with torch.no_grad():
        _, cache = model.run_with_cache(x, names_filter=names, **extra)
        acts = torch.stack([cache[n][0].float().cpu() for n in names], dim=1)  # [T, L, d_mlp]
    return {
        "token_ids": torch.tensor(ids, dtype=torch.long),
        "tokens": [_token_text(tok, i) for i in ids],
        "layers": layer_ids,
        "activations": acts,
    }


def neuron_token_activations(
    model: TransformerBridge,
    layer: int,
    neuron: int,
    prompt: str,
    chat_format: bool = True,
    system_prompt: str | None = None,
) -> dict[str, Any]:
    """One neuron's activation at each token of a prompt: which tokens fire it.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        layer: block index ``l``.
        neuron: neuron index ``j``.
        prompt: the prompt (see :func:`token_activations` for ``chat_format``).
        chat_format: apply the chat template first.
        system_prompt: optional system message.

    Returns:
        dict with ``layer``, ``neuron``, ``tokens`` (``T`` strings), ``token_ids`` ``[T]`` and
        ``activations`` ``[T]`` (``blocks.{l}.mlp.hook_post[0, :, j]``, float32, CPU).

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> out = neuron_token_activations(load_tiny_model(), 1, 3, "Hi", chat_format=False)
        >>> out["activations"].shape == (len(out["tokens"]),)
        True
    """
    check_neuron(model, layer, neuron)
    out = token_activations(model, prompt, [layer], chat_format, system_prompt)
    return {
        "layer": int(layer),
        "neuron": int(neuron),
        "tokens": out["tokens"],
        "token_ids": out["token_ids"],
        "activations": out["activations"][:, 0, int(neuron)].clone(),  # [T]
    }


def mlp_max_activations(
    model: TransformerBridge,
    prompts: Sequence[str],
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    system_prompt: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Each neuron's peak ``hook_post`` activation over the real tokens of each prompt.

    Prompts are chat-formatted and right-padded as in :func:`mlp_activations`; padding never
    wins the max.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        prompts: ``N`` user messages.
        layers: blocks to read (default: all).
        batch_size: prompts per forward.
        system_prompt: optional system message.

    Returns:
        ``(values, positions)``, both ``[N, len(layers), d_mlp]`` on CPU: the peak activation
        (float32) and the token position where it occurs (long, into the formatted prompt).

    Raises:
        SafelensError: ``prompts`` is empty.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> values, where = mlp_max_activations(load_tiny_model(), ["Hi", "Bye now"], layers=[0])
        >>> values.shape == where.shape and values.shape[:2] == (2, 1)
        True
    """
    if not prompts:
        raise SafelensError("prompts is empty; expected at least one prompt")
    values, positions = [], []
    for sub_att, per_layer_acts in _mlp_post_batches(model, prompts, layers, batch_size,
                                                     system_prompt):
        pad = (sub_att == 0).unsqueeze(-1)  # [b, T, 1]
        per_value, per_pos = [], []
        for acts in per_layer_acts:
            v, i = acts.masked_fill(pad, float("-inf")).max(dim=1)  # [b, d_mlp] x2
            per_value.append(v.cpu())
            per_pos.append(i.cpu())
        values.append(torch.stack(per_value, dim=1))  # [b, L, d_mlp]
        positions.append(torch.stack(per_pos, dim=1))  # [b, L, d_mlp]
    return torch.cat(values), torch.cat(positions)


def top_activating_examples(
    model: TransformerBridge,
    layer: int,
    neuron: int,
    prompts: Sequence[str],
    k: int = 5,
    peaks: tuple[Tensor, Tensor] | None = None,
    batch_size: int = 8,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` prompts of a set on which one neuron peaks highest, with their peak token.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        layer: block index ``l``.
        neuron: neuron index ``j``.
        prompts: ``N`` user messages (chat-formatted as in :func:`mlp_activations`).
        k: how many prompts (at most ``N``).
        peaks: :func:`mlp_max_activations` of these prompts over **all** layers, to reuse
            (``[N, n_layers, d_mlp]`` x2); default: computed for ``layer`` only.
        batch_size: prompts per forward.
        system_prompt: optional system message.

    Returns:
        ``min(k, N)`` dicts sorted by ``activation``, highest first: ``rank`` (1-based),
        ``index`` (into ``prompts``), ``prompt``, ``activation`` (the peak), ``position`` and
        ``token`` (where the peak is, in the formatted prompt).

    Raises:
        SafelensError: ``prompts`` is empty, ``k < 1`` or ``peaks`` has the wrong shape.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> top = top_activating_examples(load_tiny_model(), 1, 3, ["Hi", "Bye", "Why?"], k=2)
        >>> [t["rank"] for t in top], top[0]["activation"] >= top[1]["activation"]
        ([1, 2], True)
    """
    check_neuron(model, layer, neuron)
    if not prompts:
        raise SafelensError("prompts is empty; expected at least one prompt")
    if int(k) < 1:
        raise SafelensError(f"k must be >= 1, got {k}")
    if peaks is None:
        values, where = mlp_max_activations(model, prompts, [layer], batch_size, system_prompt)
        column = 0
    else:
        values, where = peaks
        want = (len(prompts), int(model.cfg.n_layers), d_mlp_of(model))
        if tuple(values.shape) != want or tuple(where.shape) != want:
            raise SafelensError(
                f"peaks must be mlp_max_activations of all layers, [N, n_layers, d_mlp]={want}, "
                f"got {tuple(values.shape)}"
            )
        column = int(layer)
    v = values[:, column, int(neuron)]  # [N]
    pos = where[:, column, int(neuron)]  # [N]
    order = torch.argsort(v, descending=True, stable=True)[: int(k)]  # [k]
    out = []
    for r, i in enumerate(order.tolist()):
        ids = prompt_ids(model.tokenizer, prompts[i], system_prompt)
        p = int(pos[i])
        out.append(
            {
                "rank": r + 1,
                "index": int(i),
                "prompt": prompts[i],
                "activation": float(v[i]),
                "position": p,
                "token": _token_text(model.tokenizer, ids[p]),
            }
        )
    return out


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
