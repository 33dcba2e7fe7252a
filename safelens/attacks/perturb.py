"""Post-alignment perturbation attacks (seed 002): Gaussian parameter noise and activation noise.

Seed 002 ("Aligned but Fragile") says that "lightweight post-alignment manipulations, such as
parameter noise, activation noise, or quantization, can easily weaken the intended safety
behavior". This module holds the two noise attacks; weight quantization lives in
:mod:`safelens.attacks.quantize` and the strength sweeps in :mod:`safelens.attacks.curves`.

Both noises are *relative*, so one strength ``sigma`` means the same on every tensor:

* **parameter noise** — per parameter tensor ``W``: ``eps = sigma * ||W|| * z / ||z||`` with
  ``z ~ N(0, I)``, so ``||eps|| = sigma * ||W||`` exactly (Frobenius norms). With a subspace mask
  ``M`` only the masked coordinates move and ``||eps|| = sigma * ||W ⊙ M||``. ``z`` comes from a
  ``torch.Generator`` seeded from ``(seed, parameter name)`` (:func:`tensor_seed`), so a tensor's
  noise does not depend on which other tensors are targeted.
* **activation noise** — per position of a hooked activation ``a`` ``[batch, pos, d]``:
  ``delta = sigma * ||a|| * z / ||z||`` over ``d`` (TransformerLens hooks
  ``blocks.{l}.hook_resid_post`` / ``blocks.{l}.hook_mlp_out`` …, :data:`ACTIVATION_SITES`).

Pure functions return the noise (:func:`relative_gaussian`, :func:`parameter_noise`,
:func:`relative_position_noise`); the context managers :func:`parameter_noise_applied` and
:func:`activation_noise` apply it and undo it on exit (parameters are restored bit-exactly).

Examples:
    >>> import torch
    >>> from safelens.models import load_tiny_model
    >>> model = load_tiny_model()
    >>> w = model.original_model.model.norm.weight
    >>> before = w.detach().clone()
    >>> with parameter_noise_applied(model, 0.1, seed=0):
    ...     bool((w != before).any())
    True
    >>> torch.equal(w, before)
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from safelens.errors import SafelensError
from safelens.geometry.value_vectors import Subspace, hf_param_names

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge


__all__ = ["ACTIVATION_SITES", "activation_hook_name", "activation_noise",
           "activation_noise_hooks", "check_layer", "check_sigma", "parameter_noise",
           "parameter_noise_applied", "relative_gaussian", "relative_position_noise",
           "target_parameters", "tensor_seed"]

#: Activation sites the activation noise can hit, and their TransformerLens 4.x bridge hooks.
ACTIVATION_SITES: dict[str, str] = {
    "resid_post": "blocks.{layer}.hook_resid_post",  # residual stream after the block
    "resid_pre": "blocks.{layer}.hook_resid_pre",    # residual stream entering the block
    "mlp_out": "blocks.{layer}.hook_mlp_out",        # the MLP's output (before the residual add)
    "attn_out": "blocks.{layer}.hook_attn_out",      # the attention output
}

_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")


# ------------------------------------------------------------------------------ checks
def check_sigma(sigma: Any, setting: str = "sigma") -> float:
    """``sigma`` as a float; raises unless it is a finite number >= 0.

    Examples:
        >>> check_sigma(0.01)
        0.01
        >>> check_sigma(-1)
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: sigma must be a finite number >= 0, got -1
    """
    ok = isinstance(sigma, int | float) and not isinstance(sigma, bool)
    if not (ok and math.isfinite(sigma) and sigma >= 0):
        raise SafelensError(f"{setting} must be a finite number >= 0, got {sigma!r}")
    return float(sigma)


def check_layer(layer: Any, n_layers: int, setting: str = "layer") -> int:
    """``layer`` as an int; raises unless it is an integer in ``0..n_layers-1``.

    Examples:
        >>> check_layer(5, 2)
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: layer 5 is out of range; expected an integer in 0..1 (the model has 2 layers)
    """
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_layers:
        raise SafelensError(f"{setting} {layer!r} is out of range; expected an integer in "
                            f"0..{n_layers - 1} (the model has {n_layers} layers)")
    return layer


def tensor_seed(seed: int, name: str) -> int:
    """The generator seed of one tensor: a hash of ``(seed, name)`` (63 bits).

    Examples:
        >>> tensor_seed(0, "model.norm.weight") == tensor_seed(0, "model.norm.weight")
        True
        >>> tensor_seed(0, "a") != tensor_seed(1, "a")
        True
    """
    digest = hashlib.sha256(f"{int(seed)}|{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


# ------------------------------------------------------------------------------ pure noise
def relative_gaussian(weight: Tensor, sigma: float, generator: torch.Generator,
                      mask: Tensor | None = None) -> Tensor:
    """Gaussian noise with norm ``sigma * ||weight||`` (on ``mask``'s coordinates only).

    Args:
        weight: any-shape tensor ``W``.
        sigma: relative scale (>= 0).
        generator: the source of ``z ~ N(0, I)`` (CPU generator; drawn in float32 on the CPU so
            the same seed gives the same noise on every device).
        mask: optional bool tensor of ``weight``'s shape; noise is 0 outside it and its norm is
            ``sigma * ||W ⊙ mask||``.

    Returns:
        ``eps`` shaped and typed like ``weight``, ``||eps|| = sigma * ||W (⊙ mask)||``.

    Examples:
        >>> w = torch.ones(4, 4)
        >>> eps = relative_gaussian(w, 0.5, torch.Generator().manual_seed(0))
        >>> round(float(eps.norm() / w.norm()), 6)
        0.5
    """
    z = torch.randn(weight.shape, generator=generator, dtype=torch.float32)  # like W
    w = weight.detach().float().cpu()
    if mask is not None:
        m = mask.detach().cpu().bool()
        z, w = z * m, w * m
    z_norm = z.norm()
    if sigma == 0 or z_norm == 0:
        return torch.zeros_like(weight)
    eps = z * (sigma * w.norm() / z_norm)
    return eps.to(device=weight.device, dtype=weight.dtype)


def relative_position_noise(act: Tensor, sigma: float,
                            generator: torch.Generator | None = None) -> Tensor:
    """Per-position Gaussian noise ``delta = sigma * ||a|| * z / ||z||`` over the last axis.

    Args:
        act: activations ``[..., d]`` (e.g. ``[batch, pos, d_model]``).
        sigma: relative scale (>= 0).
        generator: source of ``z`` (a generator on ``act``'s device; None = the global RNG).

    Returns:
        ``delta`` like ``act``, with ``||delta[..., :]|| = sigma * ||act[..., :]||`` per position.

    Examples:
        >>> a = torch.randn(2, 3, 8)
        >>> d = relative_position_noise(a, 0.1, torch.Generator().manual_seed(0))
        >>> torch.allclose(d.norm(dim=-1), 0.1 * a.norm(dim=-1))
        True
    """
    z = torch.randn(act.shape, generator=generator, device=act.device,
                    dtype=torch.float32)  # [..., d]
    scale = sigma * act.detach().float().norm(dim=-1, keepdim=True)  # [..., 1]
    z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return (scale * z).to(act.dtype)


# ------------------------------------------------------------------------------ targets
def _layer_of(name: str) -> int | None:
    found = _LAYER.search(name)
    return int(found.group(1)) if found else None


def target_parameters(
    model: TransformerBridge,
    *,
    layer: int | None = None,
    subspace: Subspace | Mapping[str, Tensor | bool | None] | None = None,
) -> dict[str, tuple[torch.nn.Parameter, Tensor | None]]:
    """The parameters an attack touches: ``{HF name: (parameter, mask or None)}``.

    Args:
        model: a ``TransformerBridge``.
        layer: only block ``layer``'s parameters (names ``…layers.{layer}.…``).
        subspace: only these coordinates: a :class:`safelens.geometry.Subspace` (as ShaPO builds
            it: ``Subspace.selective`` / ``.random`` / ``build_subspace``) or a
            ``{param_name: bool mask | True | None}`` mapping such as
            :func:`safelens.geometry.value_vectors.neuron_param_masks` returns (``None`` /
            ``True`` = the whole tensor). Names are HF names (``model.layers.0.mlp.down_proj.weight``).

    With neither, every parameter (tied ones once), norms and embeddings included.

    Raises:
        SafelensError: ``layer`` out of range, both ``layer`` and ``subspace``, an unknown
            parameter name or a mask of the wrong shape.
    """
    named = hf_param_names(model, trainable_only=False)
    if layer is not None and subspace is not None:
        raise SafelensError("layer and subspace were both given; expected one target")
    if subspace is None:
        if layer is not None:
            check_layer(layer, int(model.cfg.n_layers))
        return {n: (p, None) for n, p in named.items()
                if layer is None or _layer_of(n) == layer}
    if isinstance(subspace, Subspace):
        by_id = {id(p): n for n, p in named.items()}
        pairs = []
        for i, (p, m) in enumerate(zip(subspace.params, subspace.masks, strict=True)):
            name = subspace.param_names[i] if i < len(subspace.param_names) else by_id.get(id(p))
            pairs.append((name or by_id.get(id(p)), m))
    else:
        pairs = list(subspace.items())
    out: dict[str, tuple[torch.nn.Parameter, Tensor | None]] = {}
    for name, mask in pairs:
        if name not in named:
            raise SafelensError(f"subspace names parameter {name!r}, which the model lacks; "
                                f"expected HF names such as {next(iter(named))!r}")
        p = named[name]
        if mask is True or mask is None:
            out[name] = (p, None)
            continue
        if mask is False:
            continue
        if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(p.shape):
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise SafelensError(f"subspace mask of {name} has shape {shape}; expected a bool "
                                f"tensor of the parameter's shape {tuple(p.shape)}")
        out[name] = (p, mask.bool())
    return out


def parameter_noise(
    model: TransformerBridge,
    sigma: float,
    seed: int = 0,
    *,
    layer: int | None = None,
    subspace: Subspace | Mapping[str, Tensor | bool | None] | None = None,
) -> dict[str, Tensor]:
    """The noise tensors of a parameter-noise attack (nothing is changed).

    Args:
        model: a ``TransformerBridge``.
        sigma: relative scale: ``||eps_W|| = sigma * ||W||`` per tensor (``W ⊙ mask`` with a
            subspace).
        seed: the attack's seed; tensor ``name`` draws from ``tensor_seed(seed, name)``.
        layer, subspace: the target (:func:`target_parameters`); default every parameter.

    Returns:
        ``{HF parameter name: eps}``, each shaped like its parameter.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> model = load_tiny_model()
        >>> eps = parameter_noise(model, 0.01, layer=1)
        >>> sorted({n.split(".")[2] for n in eps})
        ['1']
    """
    sigma = check_sigma(sigma)
    out = {}
    for name, (param, mask) in target_parameters(model, layer=layer, subspace=subspace).items():
        gen = torch.Generator().manual_seed(tensor_seed(seed, name))
        out[name] = relative_gaussian(param, sigma, gen, mask)
    return out


@contextlib.contextmanager
def parameter_noise_applied(
    model: TransformerBridge,
    sigma: float,
    seed: int = 0,
    *,
    layer: int | None = None,
    subspace: Subspace | Mapping[str, Tensor | bool | None] | None = None,
) -> Iterator[dict[str, Tensor]]:
    """Add :func:`parameter_noise` to the model's parameters in place; restore them on exit.

    The originals are copied before the noise is added and copied back on exit (also on an
    exception), so the weights afterwards are bit-for-bit the weights before.

    Yields:
        The noise ``{name: eps}`` that was added.
    """
    noise = parameter_noise(model, sigma, seed, layer=layer, subspace=subspace)

    named = hf_param_names(model, trainable_only=False)
    saved = {name: named[name].detach().clone() for name in noise}
    try:
        with torch.no_grad():
            for name, eps in noise.items():
                named[name].add_(eps)
        yield noise
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                named[name].copy_(original)


# ------------------------------------------------------------------------------ activations
def activation_hook_name(site: str, layer: int) -> str:
    """The bridge hook of an activation site at ``layer``.

    Examples:
        >>> activation_hook_name("mlp_out", 3)
        'blocks.3.hook_mlp_out'
    """
    if site not in ACTIVATION_SITES:
        raise SafelensError(f"activation site {site!r} is unknown; expected one of "
                            f"{', '.join(ACTIVATION_SITES)}")
    return ACTIVATION_SITES[site].format(layer=layer)


def activation_noise_hooks(
    model: TransformerBridge,
    sigma: float,
    seed: int = 0,
    *,
    layers: Sequence[int] | int | None = None,
    sites: Sequence[str] = ("resid_post",),
) -> list[tuple[str, Callable[..., Tensor]]]:
    """``[(hook_name, fn)]`` adding :func:`relative_position_noise` at each (site, layer).

    Each hook owns a generator seeded from ``(seed, hook name)`` that advances with every call,
    so the same prompts, batches and seed give the same noise; the noise of a call depends on
    how many forward passes came before it through that hook (prefill, then one per decoded
    token), not on the tokens.

    Args:
        model: a ``TransformerBridge`` (its ``cfg.n_layers`` bounds ``layers``).
        sigma: relative scale (>= 0; 0 attaches hooks that return the activation unchanged).
        seed: the attack's seed.
        layers: block indices (default every layer).
        sites: keys of :data:`ACTIVATION_SITES` (``resid_post``, ``mlp_out``, ...).

    Raises:
        SafelensError: a bad ``sigma``, layer or site.
    """
    sigma = check_sigma(sigma)
    n_layers = int(model.cfg.n_layers)
    if layers is None:
        layers = range(n_layers)
    elif isinstance(layers, int):
        layers = [layers]
    if not sites:
        raise SafelensError(f"activation sites are empty; expected some of "
                            f"{', '.join(ACTIVATION_SITES)}")
    device = next(model.original_model.parameters()).device
    hooks = []
    for site in sites:
        for layer in layers:
            name = activation_hook_name(site, check_layer(layer, n_layers))
            gen = torch.Generator(device=device).manual_seed(tensor_seed(seed, name))

            def hook(act: Tensor, hook: Any = None, gen: torch.Generator = gen) -> Tensor:
                if sigma == 0 or not isinstance(act, Tensor):
                    return act
                return act + relative_position_noise(act, sigma, gen)  # new tensor, no in-place

            hooks.append((name, hook))
    return hooks


@contextlib.contextmanager
def activation_noise(
    model: TransformerBridge,
    sigma: float,
    seed: int = 0,
    *,
    layers: Sequence[int] | int | None = None,
    sites: Sequence[str] = ("resid_post",),
) -> Iterator[list[str]]:
    """Attach :func:`activation_noise_hooks` for the ``with`` body; detach them on exit.

    While they are attached every forward pass and ``generate`` of the bridge runs through the
    hooked module (:func:`safelens.models.plain.fast_module` sees the hooks), so
    :func:`safelens.eval.generation.generate` answers under the noise.

    Yields:
        The hook names in use.

    Examples:
        >>> from safelens.models import load_tiny_model
        >>> from safelens.models.plain import fast_module, plain_view
        >>> model = load_tiny_model()
        >>> with activation_noise(model, 0.1, layers=[0], sites=["mlp_out"]) as names:
        ...     names, fast_module(model) is plain_view(model)
        (['blocks.0.hook_mlp_out'], False)
    """
    hooks = activation_noise_hooks(model, sigma, seed, layers=layers, sites=sites)
    with model.hooks(fwd_hooks=hooks):
        yield [name for name, _ in hooks]
