"""LoRA adapters (🤗 PEFT) on a ``TransformerBridge``'s plain view, and PEFT adapter directories.

Training runs on the hook-free plain view of the bridge (:mod:`safelens.models.plain`), a
fresh HF module whose ``nn.Linear`` weights are the bridge's own parameters. :func:`add_lora`
injects PEFT's LoRA layers into that view (``peft.inject_adapter_in_model``): the base weights
stay the bridge's (frozen) parameters, only ``lora_A`` / ``lora_B`` train, and with
``lora_B = 0`` at the start the adapted model is exactly the base model (so the reference
log-probs of the initial model are the base model's; no second copy is needed). The bridge's
hooked modules never see the adapters, so :func:`merge_lora` folds them into the base weights
(in place: the bridge then computes the trained model) before anything hooks the model.

An adapter directory is PEFT's own format (``adapter_config.json`` +
``adapter_model.safetensors``, keys ``base_model.model.<HF name>.lora_A.weight``), readable by
``peft.PeftModel.from_pretrained``; ``adapter_config.json`` names the base model in
``base_model_name_or_path``. :func:`safelens.models.load_model` loads such a directory as
base + adapter, merged.

peft is optional: ``pip install 'safelens[scale]'`` (or ``pip install peft``).

Examples:
    >>> import torch
    >>> from safelens.models import load_tiny_model
    >>> from safelens.models.plain import plain_view
    >>> bridge = load_tiny_model()
    >>> ids = torch.tensor([[1, 2, 3]])
    >>> before = plain_view(bridge)(ids).logits
    >>> named = add_lora(bridge, r=4)
    >>> named[0][0]
    'model.layers.0.self_attn.q_proj.lora_A.default.weight'
    >>> torch.equal(plain_view(bridge)(ids).logits, before)   # lora_B starts at 0
    True
    >>> merge_lora(bridge); has_lora(bridge)
    False
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from safelens.errors import SafelensError
from safelens.models.plain import cached_view, forget_view, plain_view

#: The linear layers of a llama-style block (attention and MLP): LoRA's default targets.
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: PeftModel's key prefix in a saved adapter (PeftModel -> LoraModel -> the HF model).
_PEFT_PREFIX = "base_model.model."
_ADAPTER = "default"


def require_peft(setting: str = "peft='lora'") -> None:
    """Raise a one-line :class:`SafelensError` when the optional ``peft`` package is missing."""
    if importlib.util.find_spec("peft") is None:
        raise SafelensError(f"{setting} needs the peft package, which is not installed; "
                            "expected `pip install 'safelens[scale]'` (or `pip install peft`)")


def lora_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """``{HF module name: PEFT LoRA layer}`` of the model's plain view (empty: no adapters)."""
    view = cached_view(model)
    if view is None:
        return {}
    return {name: module for name, module in view.named_modules()
            if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")}


def has_lora(model: torch.nn.Module) -> bool:
    """Whether LoRA adapters are injected into ``model``'s plain view (not merged yet)."""
    return bool(lora_layers(model))


def add_lora(model: torch.nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
             target_modules: Sequence[str] = LLAMA_TARGETS) -> list[tuple[str, torch.nn.Parameter]]:
    """Inject LoRA adapters into the bridge's plain view; freeze every base parameter.

    Args:
        model: a ``TransformerBridge``.
        r: adapter rank.
        alpha: LoRA alpha (the update is scaled by ``alpha / r``).
        dropout: dropout on the adapters' input.
        target_modules: names (suffixes) of the linear layers to adapt.

    Returns:
        ``[(name, parameter)]`` of the adapter weights (``...q_proj.lora_A.default.weight``),
        every one trainable, in module order.

    Raises:
        SafelensError: peft is not installed, the model already has adapters, or no module
            matches ``target_modules``.
    """
    require_peft()
    from peft import LoraConfig, inject_adapter_in_model  # optional package

    if has_lora(model):
        raise SafelensError("add_lora: the model already has LoRA adapters; expected a model "
                            "without them (merge_lora first)")
    view = plain_view(model)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                        target_modules=list(target_modules))
    try:
        inject_adapter_in_model(config, view, adapter_name=_ADAPTER)
    except ValueError as err:
        raise SafelensError(f"lora_target_modules={','.join(target_modules)!r} matched no "
                            f"linear layer of the model; expected names such as "
                            f"{','.join(LLAMA_TARGETS)} ({str(err).splitlines()[0]})") from None
    view._safelens_lora_config = config  # what save_adapter writes
    for param in getattr(model, "original_model", model).parameters():
        param.requires_grad_(False)
    named = [(n, p) for n, p in view.named_parameters() if "lora_" in n]
    for _, param in named:
        param.requires_grad_(True)
    return named


def merged_state(model: torch.nn.Module, state: dict[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]:
    """``state`` (HF names) with each adapted linear's weight replaced by base + LoRA delta.

    The model is not changed: a checkpoint written from this state is the trained model while
    training goes on with the adapters. Without adapters ``state`` is returned as it is.
    """
    layers = lora_layers(model)
    if not layers:
        return state
    out = dict(state)
    with torch.no_grad():
        for name, layer in layers.items():
            key = f"{name}.weight"
            if key not in out:
                raise RuntimeError(f"merged_state: no base weight {key!r} for LoRA layer {name!r}")
            delta = layer.get_delta_weight(_ADAPTER)
            out[key] = (out[key] + delta.to(out[key].dtype)).detach()
    return out


def merge_lora(model: torch.nn.Module) -> None:
    """Fold the adapters into the bridge's base weights, in place, and drop them.

    The plain view is rebuilt without adapters on its next use; the base parameters become
    trainable again (as after loading). A model without adapters is left as it is.
    """
    layers = lora_layers(model)
    if not layers:
        return
    with torch.no_grad():
        for layer in layers.values():
            weight = layer.base_layer.weight  # the bridge's own parameter
            weight.add_(layer.get_delta_weight(_ADAPTER).to(weight.dtype))
    forget_view(model)
    for param in getattr(model, "original_model", model).parameters():
        param.requires_grad_(True)


def save_adapter(model: torch.nn.Module, out_dir: str | Path, base_model: str) -> Path:
    """Write the adapters as a PEFT adapter directory naming ``base_model``; returns it.

    Raises:
        SafelensError: the model has no adapters.
    """
    layers = lora_layers(model)
    if not layers:
        raise SafelensError("save_adapter: the model has no LoRA adapters; expected one "
                            "trained with peft='lora'")
    view = cached_view(model)
    config = view._safelens_lora_config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, layer in layers.items():
        for part in ("lora_A", "lora_B"):
            weight = getattr(layer, part)[_ADAPTER].weight
            tensors[f"{_PEFT_PREFIX}{name}.{part}.weight"] = weight.detach().cpu().contiguous()
    save_file(tensors, str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    config.base_model_name_or_path = base_model
    config.task_type = "CAUSAL_LM"
    config.save_pretrained(str(out))
    return out


def is_adapter_dir(path: str | Path) -> bool:
    """Whether ``path`` is a PEFT adapter directory (``adapter_config.json`` + safetensors)."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and (path / ADAPTER_WEIGHTS).is_file()


def adapter_base(path: str | Path) -> str:
    """The base model an adapter directory names (``base_model_name_or_path``).

    Raises:
        SafelensError: the config names none.
    """
    config_path = Path(path) / ADAPTER_CONFIG
    try:
        base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except json.JSONDecodeError as err:
        raise SafelensError(f"{config_path}: not valid JSON ({err}); expected PEFT's "
                            "adapter config") from None
    if not isinstance(base, str) or not base:
        raise SafelensError(f"{config_path}: no base_model_name_or_path; expected the base "
                            "model's name or directory (or pass base= to load_model)")
    return base


def apply_adapter(hf_model: Any, path: str | Path) -> Any:
    """``hf_model`` (a plain HF causal LM) with the adapter at ``path`` merged in.

    Raises:
        SafelensError: peft is not installed.
    """
    require_peft(f"loading the adapter {path}")
    from peft import PeftModel  # optional package

    peft_model = PeftModel.from_pretrained(hf_model, str(path), adapter_name=_ADAPTER)
    return peft_model.merge_and_unload()
