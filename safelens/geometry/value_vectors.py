"""Value-vector ranking against a probe direction, neuron selections, and parameter subspaces.

ShaPO (seed 000, §3.2, Eq. 7 and Algorithm 1 step 0) scores every MLP neuron ``j`` of every
layer ``l`` by how much its *value vector* — the row ``W_out[l, j] ∈ R^{d_model}`` that the
neuron writes into the residual stream — lines up with the safety probe ``p``:
``s_{l,j} = |⟨W_out[l, j], p⟩|``. The top fraction of neurons defines the safety-critical
subspace ``S`` whose coordinates are the matching value-vector entries of the real
``nn.Parameter`` (for llama: column ``j`` of ``model.layers[l].mlp.down_proj.weight``, stored
``[d_model, d_mlp]``).

:class:`Subspace` is the one currency the ShaPO optimizer (subspace SAM), the Hessian
(:func:`~safelens.geometry.hessian.hessian_lambda_max`), the bypass radius and the worst-case
curve exchange: a list of parameters and one bool mask (or ``None`` = whole tensor) per parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = [
    "ValueVectorParam",
    "Subspace",
    "hf_param_names",
    "value_vector_params",
    "rank_value_vectors",
    "top_k_neurons",
    "random_k_neurons",
    "neuron_param_masks",
    "uniform_param_masks",
]


@dataclass(frozen=True)
class ValueVectorParam:
    """The real parameter holding one layer's value vectors.

    Attributes:
        layer: block index ``l``.
        name: parameter name inside ``model.original_model`` (e.g.
            ``"model.layers.3.mlp.down_proj.weight"``).
        param: the ``nn.Parameter`` itself (what the optimizer updates).
        neuron_dim: the axis of ``param`` indexed by the neuron ``j`` (1 for ``nn.Linear``, whose
            weight is ``[d_model, d_mlp]``; 0 for GPT-2's ``Conv1D``, ``[d_mlp, d_model]``).
    """

    layer: int
    name: str
    param: nn.Parameter
    neuron_dim: int

    def columns(self, index: Tensor) -> Tensor:
        """Copy of the value vectors of neurons ``index`` ``[k]`` as ``[k, d_model]``."""
        w = self.param.detach().index_select(self.neuron_dim, index.to(self.param.device))
        return w.t() if self.neuron_dim == 1 else w  # [k, d_model]

    def set_columns(self, index: Tensor, values: Tensor) -> None:
        """Write ``values`` ``[k, d_model]`` into the value vectors of neurons ``index`` ``[k]``."""
        vals = values.to(device=self.param.device, dtype=self.param.dtype)
        vals = vals.t() if self.neuron_dim == 1 else vals  # back to the param's layout
        with torch.no_grad():
            self.param.index_copy_(self.neuron_dim, index.to(self.param.device), vals)



def d_mlp_of(model: Any) -> int:
    """The model's MLP width ``d_mlp`` (TransformerLens types it ``int | None``)."""
    d_mlp = getattr(model.cfg, "d_mlp", None)
    if d_mlp is None:
        raise ValueError("the model's config has no d_mlp: value vectors need MLP blocks")
    return int(d_mlp)

def hf_param_names(model: TransformerBridge, trainable_only: bool = True
                   ) -> dict[str, nn.Parameter]:
    """Parameters of ``model.original_model`` under their Hugging Face names.

    ``trainable_only`` keeps only those with ``requires_grad`` (what an optimizer sees).

    The bridge splices its components into the HF module tree, so raw names carry
    ``._original_component`` segments; dropping them gives the canonical HF names (e.g.
    ``"model.layers.3.mlp.down_proj.weight"``), which ``original_model.get_parameter`` resolves.
    Tied parameters appear once.
    """
    out: dict[str, nn.Parameter] = {}
    for name, p in model.original_model.named_parameters():
        if p.requires_grad or not trainable_only:
            out.setdefault(name.replace("._original_component", ""), p)
    return out


def value_vector_params(model: TransformerBridge) -> list[ValueVectorParam]:
    """Locate each layer's MLP output projection (the value vectors) as a real HF parameter.

    Goes through the bridge's own module tree (``blocks[l].mlp.out.original_component``) so it
    works for any architecture TransformerLens maps, not only llama's ``down_proj``.

    Args:
        model: a ``TransformerBridge``.

    Returns:
        One :class:`ValueVectorParam` per layer, in layer order.

    Raises:
        AttributeError: if a block has no single dense MLP output projection (e.g. MoE).
    """
    from transformer_lens.model_bridge.generalized_components.mlp import weight_layout_in_out

    # Frozen layers still have value vectors: look them up among all parameters.
    names = {id(p): n for n, p in hf_param_names(model, trainable_only=False).items()}
    d_mlp, d_model = d_mlp_of(model), int(model.cfg.d_model)
    out: list[ValueVectorParam] = []
    for layer in range(int(model.cfg.n_layers)):
        proj = getattr(model.blocks[layer].mlp, "out", None)
        module = getattr(proj, "original_component", None)
        weight = getattr(module, "weight", None)
        if weight is None or id(weight) not in names:
            raise AttributeError(
                f"blocks[{layer}].mlp has no dense output projection with a weight in "
                "original_model; value vectors are defined for dense MLPs only"
            )
        layout = weight_layout_in_out(proj)  # True: [in, out] (Conv1D), False: [out, in] (Linear)
        if layout is None:
            layout = tuple(weight.shape) == (d_mlp, d_model) and d_mlp != d_model
        neuron_dim = 0 if layout else 1
        if weight.shape[neuron_dim] != d_mlp:
            raise AttributeError(
                f"{names[id(weight)]} has shape {tuple(weight.shape)}; expected d_mlp={d_mlp} "
                f"on axis {neuron_dim}"
            )
        out.append(ValueVectorParam(layer, names[id(weight)], weight, neuron_dim))
    return out


def rank_value_vectors(
    model: TransformerBridge, direction: Tensor, normalize: bool = False
) -> Tensor:
    """Score every value vector against a probe direction (ShaPO Eq. 7).

    ``s[l, j] = |⟨W_out[l, j], p⟩|`` with ``W_out`` the bridge's stacked MLP output weights
    ``[n_layers, d_mlp, d_model]`` (row ``j`` of layer ``l`` is the vector neuron ``j`` writes
    to the residual stream). With ``normalize=True`` the score is the |cosine|
    ``|⟨W_out[l, j], p⟩| / (‖W_out[l, j]‖ ‖p‖)``, which ignores the neurons' norms.

    Args:
        model: a ``TransformerBridge``.
        direction: probe direction ``p``, ``[d_model]`` (any norm; sign irrelevant).
        normalize: return |cosine| instead of the raw |dot product|.

    Returns:
        Scores ``[n_layers, d_mlp]`` (float32, on ``direction``'s device), detached.

    Raises:
        ValueError: if ``direction`` is not ``[d_model]``.

    Examples:
        >>> from safelens.models import load_tiny_model  # doctest: +SKIP
        >>> m = load_tiny_model()  # doctest: +SKIP
        >>> rank_value_vectors(m, torch.ones(m.cfg.d_model)).shape  # doctest: +SKIP
        torch.Size([2, 64])
    """
    d_model = int(model.cfg.d_model)
    if direction.shape != (d_model,):
        raise ValueError(f"direction must be [d_model={d_model}], got {tuple(direction.shape)}")
    with torch.no_grad():
        w_out = model.W_out.detach().float()  # [n_layers, d_mlp, d_model]
        p = direction.detach().to(device=w_out.device, dtype=torch.float32)  # [d_model]
        scores = (w_out @ p).abs()  # [n_layers, d_mlp]
        if normalize:
            # |cosine|: rank by alignment only, not by how large a neuron's output is.
            denom = w_out.norm(dim=-1) * p.norm()
            scores = scores / denom.clamp_min(torch.finfo(torch.float32).tiny)
    return scores.to(direction.device)


def top_k_neurons(scores: Tensor, fraction: float = 0.01, k: int | None = None) -> Tensor:
    """The ``k`` highest-scoring neurons, best first (ShaPO Algorithm 1, line 4).

    Args:
        scores: ``[n_layers, d_mlp]`` from :func:`rank_value_vectors`.
        fraction: share of all ``n_layers·d_mlp`` neurons to keep (used when ``k`` is None;
            at least one neuron is kept). ShaPO keeps the top 1%.
        k: explicit count; overrides ``fraction``.

    Returns:
        ``[k, 2]`` long tensor of ``(layer, neuron)`` pairs in descending score order
        (ties broken by flat index, so the result is deterministic).

    Examples:
        >>> top_k_neurons(torch.tensor([[0.1, 0.9], [0.5, 0.2]]), k=2).tolist()
        [[0, 1], [1, 0]]
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [n_layers, d_mlp], got {tuple(scores.shape)}")
    n_layers, d_mlp = scores.shape
    total = n_layers * d_mlp
    if k is None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        k = max(1, round(fraction * total))
    k = min(int(k), total)
    order = torch.argsort(scores.reshape(-1), descending=True, stable=True)[:k]  # [k]
    return torch.stack([order // d_mlp, order % d_mlp], dim=1).long().cpu()


def random_k_neurons(n_layers: int, d_mlp: int, k: int, seed: int = 0) -> Tensor:
    """``k`` distinct neurons drawn uniformly at random — the Random-K control of ShaPO Fig. 1.

    Args:
        n_layers: number of blocks.
        d_mlp: neurons per block.
        k: how many to draw (capped at ``n_layers·d_mlp``); the first ``k'`` rows of a draw with
            ``k`` are a uniform draw of size ``k'``, so one call serves a whole K grid.
        seed: seeds a private ``torch.Generator`` (the global RNG is untouched).

    Returns:
        ``[k, 2]`` long tensor of ``(layer, neuron)`` pairs.

    Examples:
        >>> random_k_neurons(2, 3, 6, seed=0).shape
        torch.Size([6, 2])
    """
    total = n_layers * d_mlp
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(total, generator=gen)[: min(int(k), total)]
    return torch.stack([order // d_mlp, order % d_mlp], dim=1).long()


def neuron_param_masks(model: TransformerBridge, neurons: Tensor) -> dict[str, Tensor]:
    """Bool masks over the real value-vector parameters that select the given neurons.

    For llama the parameter is ``original_model.model.layers[l].mlp.down_proj.weight``
    ``[d_model, d_mlp]`` and neuron ``j`` is its column ``j``.

    Args:
        model: a ``TransformerBridge``.
        neurons: ``[k, 2]`` ``(layer, neuron)`` pairs.

    Returns:
        ``{param_name: mask}`` (names relative to ``model.original_model``), one entry per layer
        that holds at least one selected neuron, in layer order; each mask has its param's shape.
    """
    if neurons.ndim != 2 or neurons.shape[1] != 2:
        raise ValueError(f"neurons must be [k, 2] (layer, neuron), got {tuple(neurons.shape)}")
    vv = value_vector_params(model)
    masks: dict[str, Tensor] = {}
    neurons = neurons.long().cpu()
    for info in vv:
        cols = neurons[neurons[:, 0] == info.layer, 1]
        if cols.numel() == 0:
            continue
        mask = torch.zeros(info.param.shape, dtype=torch.bool, device=info.param.device)
        index = cols.to(info.param.device)
        if info.neuron_dim == 1:
            mask[:, index] = True
        else:
            mask[index] = True
        masks[info.name] = mask
    bad = neurons[(neurons[:, 0] < 0) | (neurons[:, 0] >= len(vv))]
    if bad.numel():
        raise ValueError(f"neuron layer index out of range [0, {len(vv)}): {bad[0].tolist()}")
    return masks


def uniform_param_masks(model: TransformerBridge) -> dict[str, Tensor | None]:
    """The uniform control: every trainable parameter of ``original_model``, unmasked.

    Returns:
        ``{param_name: None}`` (``None`` = the whole tensor), same interface as
        :func:`neuron_param_masks`.
    """
    return dict.fromkeys(hf_param_names(model))


@dataclass
class Subspace:
    """A set of parameter coordinates: parameters plus one bool mask (or ``None``) each.

    The ShaPO perturbation ``ε_S`` (Eq. 14) and the curvature ``λ_max(H_S)`` (§3.4) live on these
    coordinates. Build one with :meth:`selective` (probe-ranked top fraction of value vectors),
    :meth:`random` (same size, random neurons), :meth:`uniform` (all parameters: plain SAM) or
    :meth:`none` (empty: plain DPO).

    Attributes:
        name: ``"selective"``, ``"random"``, ``"uniform"``, ``"none"`` or a custom label.
        params: the real ``nn.Parameter`` objects (shared with the model, not copies).
        masks: per-param bool mask of the param's shape, or ``None`` for the whole tensor.
        param_names: names inside ``model.original_model``, parallel to ``params``.
        neurons: ``[k, 2]`` ``(layer, neuron)`` pairs for neuron subspaces, else ``None``.
    """

    name: str
    params: list[nn.Parameter]
    masks: list[Tensor | None]
    param_names: list[str] = field(default_factory=list)
    neurons: Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.params) != len(self.masks):
            raise ValueError(f"{len(self.masks)} masks for {len(self.params)} params")
        for i, (p, m) in enumerate(zip(self.params, self.masks, strict=True)):
            if m is not None and m.shape != p.shape:
                raise ValueError(f"mask {i} has shape {tuple(m.shape)}, param has {tuple(p.shape)}")

    @property
    def numel(self) -> int:
        """Number of coordinates ``dim(S)``."""
        return sum(
            p.numel() if m is None else int(m.sum())
            for p, m in zip(self.params, self.masks, strict=True)
        )

    def __len__(self) -> int:
        return len(self.params)

    def masked(self, tensors: Sequence[Tensor | None]) -> list[Tensor | None]:
        """Zero every entry outside the subspace (e.g. gradients → ``g_S`` of ShaPO Eq. 13).

        Args:
            tensors: one tensor (or ``None``) per param, shaped like it.

        Returns:
            New tensors, equal to the input on the masks and 0 elsewhere; ``None`` passes through.
        """
        out: list[Tensor | None] = []
        for t, m in zip(tensors, self.masks, strict=True):
            if t is None or m is None:
                out.append(t)
            else:
                out.append(t * m.to(device=t.device, dtype=t.dtype))
        return out

    def grads(self) -> list[Tensor | None]:
        """The current ``.grad`` of each param restricted to the subspace (``g_S``)."""
        return self.masked([p.grad for p in self.params])

    @classmethod
    def from_neurons(cls, model: TransformerBridge, neurons: Tensor, name: str) -> Subspace:
        """Subspace of the value vectors of the given ``[k, 2]`` neurons."""
        masks = neuron_param_masks(model, neurons)
        named = hf_param_names(model)
        names = list(masks)
        return cls(
            name=name,
            params=[named[n] for n in names],
            masks=[masks[n] for n in names],
            param_names=names,
            neurons=neurons.long().cpu(),
        )

    @classmethod
    def selective(
        cls,
        model: TransformerBridge,
        direction: Tensor,
        fraction: float = 0.01,
        k: int | None = None,
        normalize: bool = False,
    ) -> Subspace:
        """ShaPO's safety-critical subspace: value vectors of the top neurons by Eq. 7.

        Args:
            model: a ``TransformerBridge``.
            direction: probe direction ``[d_model]``.
            fraction: top share of neurons (ShaPO: 1%); ignored when ``k`` is given.
            k: explicit neuron count.
            normalize: rank by |cosine| instead of |dot product|.
        """
        scores = rank_value_vectors(model, direction, normalize=normalize)
        return cls.from_neurons(model, top_k_neurons(scores, fraction=fraction, k=k), "selective")

    @classmethod
    def random(
        cls,
        model: TransformerBridge,
        k: int | None = None,
        fraction: float | None = None,
        seed: int = 0,
    ) -> Subspace:
        """Random-K control: the value vectors of ``k`` (or ``fraction`` of all) random neurons."""
        n_layers, d_mlp = int(model.cfg.n_layers), d_mlp_of(model)
        if k is None:
            if fraction is None:
                raise ValueError("Subspace.random needs k or fraction")
            k = max(1, round(fraction * n_layers * d_mlp))
        return cls.from_neurons(model, random_k_neurons(n_layers, d_mlp, k, seed), "random")

    @classmethod
    def uniform(cls, model: TransformerBridge) -> Subspace:
        """All trainable parameters, unmasked (uniform geometry control, i.e. plain SAM)."""
        named = hf_param_names(model)
        names = list(named)
        return cls("uniform", [named[n] for n in names], [None] * len(names), names)

    @classmethod
    def none(cls) -> Subspace:
        """The empty subspace (no perturbation: ShaPO reduces to its base loss)."""
        return cls("none", [], [], [])
