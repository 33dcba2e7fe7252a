"""Weight quantization round trips (seed 002): what an aligned model looks like after a user
quantizes it for deployment.

Two families, each a pure function on a weight tensor plus a context manager that swaps the
round-tripped weights into the model and restores the originals bit-exactly:

* **GGML / llama.cpp block formats** (:data:`GGML_FORMATS`) — quantized and dequantized by the
  installed ``gguf`` package (``gguf.quants.quantize`` / ``gguf.quants.dequantize``, the
  reference implementation shipped with llama.cpp), i.e. exactly the numbers llama.cpp would
  compute with. The package quantizes only some formats: the k-quants (``Q4_K``, ``Q6_K``, ...),
  the i-quants (``IQ*``) and ``Q8_1`` dequantize but do not quantize in gguf 0.19, so they
  raise :class:`~safelens.errors.SafelensError` (:func:`check_format`).
* **per-channel symmetric integer fake quantization** (``int8``, ``int4``):
  :func:`fake_quant_per_channel`.

Which tensors (the llama.cpp rule, as ``llama-quantize --pure`` does it): every 2-D weight —
the linear layers and the token embedding (tied to the LM head in SmolLM2) — is quantized;
1-D tensors (RMSNorm weights, biases) stay float32, as llama.cpp keeps norms in F32.
``embedding_format`` quantizes the embedding with another format, as llama.cpp does for the
output/tied embedding: the shipped default model is ``Q4_1`` with a ``Q8_0`` ``token_embd``.
A GGML block format quantizes a row in blocks of 32 (256 for the ternary ``TQ*``) values; a
tensor whose rows are not a multiple of the block falls back to ``F16``, as llama.cpp falls back
for incompatible tensors; the fallbacks are listed in the report.

The end-to-end path of a user who deploys a GGUF: :func:`write_gguf` writes the model (llama
architecture) with ``gguf.GGUFWriter`` in a chosen format, and :func:`load_gguf` loads it back
the way :mod:`safelens.models.loading` loads the shipped default model (transformers' GGUF
support, which dequantizes with the same ``gguf.quants.dequantize``).

Examples:
    >>> import torch
    >>> w = torch.randn(4, 64)
    >>> err8 = (ggml_round_trip(w, "Q8_0") - w).norm() / w.norm()
    >>> err4 = (ggml_round_trip(w, "Q4_0") - w).norm() / w.norm()
    >>> bool(err8 < err4 < 0.2)
    True
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from safelens.errors import SafelensError
from safelens.geometry.value_vectors import hf_param_names
from safelens.models.loading import hf_state_dict, load_gguf_hf, wrap

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = ["GGML_FORMATS", "INT_FORMATS", "QUANT_FORMATS", "check_format",
           "fake_quant_per_channel", "ggml_round_trip", "gguf_version", "load_gguf",
           "quantization_applied", "quantize_round_trip", "quantized_weights", "write_gguf"]

#: GGML formats that the gguf package (0.19) both quantizes and dequantizes (probed with
#: ``gguf.quants.quantize`` / ``dequantize``; ``tests/unit/test_perturb.py`` re-probes them),
#: roughly from most to least precise. ``TQ1_0`` / ``TQ2_0`` are ternary (BitNet) formats:
#: on an ordinary model they are an extreme, near-destructive setting.
GGML_FORMATS: tuple[str, ...] = ("F16", "BF16", "Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0",
                                 "MXFP4", "TQ2_0", "TQ1_0")
#: Per-output-channel symmetric integer round trips (:func:`fake_quant_per_channel`).
INT_FORMATS: dict[str, int] = {"int8": 8, "int4": 4}
#: Every format :func:`quantize_round_trip` takes.
QUANT_FORMATS: tuple[str, ...] = (*GGML_FORMATS, *INT_FORMATS)
#: Architectures :func:`write_gguf` writes (transformers' GGUF loader maps them back).
GGUF_ARCHITECTURES = ("llama",)


def gguf_version() -> str:
    """The installed ``gguf`` package's version (``"not installed"`` without it)."""
    try:
        return importlib.metadata.version("gguf")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def check_format(fmt: str, setting: str = "format") -> str:
    """``fmt`` in canonical spelling (``q4_0`` → ``Q4_0``); raises unless it is supported.

    Examples:
        >>> check_format("q8_0")
        'Q8_0'
        >>> check_format("Q4_K")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: format 'Q4_K' is not supported: the gguf package ... quantizes only F16, ...
    """
    if not isinstance(fmt, str):
        raise SafelensError(f"{setting} {fmt!r} is not a format name; expected one of "
                            f"{', '.join(QUANT_FORMATS)}")
    name = fmt.strip()
    if name.lower() in INT_FORMATS:
        return name.lower()
    if name.upper() in GGML_FORMATS:
        return name.upper()
    import gguf

    known = name.upper() in gguf.GGMLQuantizationType.__members__
    why = ("dequantizes it but cannot quantize it" if known else "has no such format")
    raise SafelensError(f"{setting} {fmt!r} is not supported: the gguf package "
                        f"{gguf_version()} {why}; this gguf quantizes only "
                        f"{', '.join(GGML_FORMATS)}; besides those: {', '.join(INT_FORMATS)}")


def _block_size(fmt: str) -> int:
    import gguf

    return int(gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[fmt]][0])


# ------------------------------------------------------------------------------ pure round trips
def ggml_round_trip(weight: Tensor, fmt: str) -> Tensor:
    """Quantize ``weight`` to a GGML format and dequantize it again (the gguf package's code).

    Args:
        weight: ``[..., n]`` with ``n`` a multiple of the format's block size (32; 256 for TQ*).
        fmt: one of :data:`GGML_FORMATS`.

    Returns:
        The dequantized tensor, shaped and typed like ``weight``.

    Raises:
        SafelensError: an unsupported format or a row length that is not a multiple of the
            block size.
    """
    import gguf

    fmt = check_format(fmt)
    if fmt in INT_FORMATS:
        raise SafelensError(f"format {fmt!r} is not a GGML format; expected one of "
                            f"{', '.join(GGML_FORMATS)} (use fake_quant_per_channel)")
    block = _block_size(fmt)
    if weight.shape[-1] % block:
        raise SafelensError(f"format {fmt}: rows of {weight.shape[-1]} values are not a multiple "
                            f"of its block size {block}")
    qtype = gguf.GGMLQuantizationType[fmt]
    data = weight.detach().float().cpu().numpy()
    back = gguf.quants.dequantize(gguf.quants.quantize(data, qtype), qtype)
    back = np.asarray(back, dtype=np.float32).reshape(data.shape)
    return torch.from_numpy(back).to(device=weight.device, dtype=weight.dtype)


def fake_quant_per_channel(weight: Tensor, bits: int) -> Tensor:
    """Symmetric per-output-channel integer quantization and back (fake quantization).

    Row ``i`` (an output channel of ``nn.Linear``'s ``[out, in]`` weight) gets the scale
    ``s_i = max|W_i| / q_max`` with ``q_max = 2^(bits-1) - 1`` (127 for int8, 7 for int4) and
    ``Ŵ_i = s_i * clamp(round(W_i / s_i), -q_max, q_max)``, so ``|Ŵ - W| <= s_i / 2`` per entry.

    Why our own: torchao 0.18 (``Int8WeightOnlyConfig``) and optimum-quanto 0.2.7 (``qint8`` /
    ``qint4``) both import and run from their wheels on this CPU build of torch 2.13 without
    compiling, but each would be a new dependency for what is five lines of arithmetic; this is
    the same symmetric per-channel int8 weight-only scheme (int4 here is per channel too, not
    torchao's / quanto's group-wise int4).

    Args:
        weight: ``[out, ...]`` tensor (a 1-D tensor is one channel).
        bits: 2..16.

    Returns:
        ``Ŵ`` like ``weight``.

    Examples:
        >>> w = torch.tensor([[1.0, -0.5, 0.25], [2.0, 0.0, -2.0]])
        >>> fake_quant_per_channel(w, 8)[1].tolist()
        [2.0, 0.0, -2.0]
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise SafelensError(f"bits {bits!r} is out of range; expected an integer in 2..16")
    w = weight.detach().float()
    flat = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)  # [out, in]
    q_max = 2 ** (bits - 1) - 1
    scale = flat.abs().amax(dim=1, keepdim=True) / q_max  # [out, 1]
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(flat / safe), -q_max, q_max)
    return (q * safe).reshape(weight.shape).to(weight.dtype)


def quantize_round_trip(weight: Tensor, fmt: str) -> Tensor:
    """:func:`ggml_round_trip` or :func:`fake_quant_per_channel` by format name."""
    fmt = check_format(fmt)
    if fmt in INT_FORMATS:
        return fake_quant_per_channel(weight, INT_FORMATS[fmt])
    return ggml_round_trip(weight, fmt)


# ------------------------------------------------------------------------------ the model
def _is_embedding(model: TransformerBridge, param: torch.nn.Parameter) -> bool:
    emb = model.original_model.get_input_embeddings()
    return emb is not None and param is emb.weight


def quantized_weights(
    model: TransformerBridge,
    fmt: str,
    *,
    embedding_format: str | None = None,
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The model's 2-D weights after a quantization round trip (nothing is changed).

    Args:
        model: a ``TransformerBridge``.
        fmt: one of :data:`QUANT_FORMATS`.
        embedding_format: another format for the token embedding (default ``fmt``).

    Returns:
        ``({HF name: round-tripped weight}, report)``; the report has ``format``,
        ``embedding_format``, ``tensors`` (``{name: format used}``), ``fallback_f16`` (names
        whose rows do not fit the block), ``kept_f32`` (1-D tensors left alone), ``rel_error``
        (``||Ŵ - W|| / ||W||`` over all quantized tensors) and ``gguf`` (the package version).
    """
    fmt = check_format(fmt)
    emb_fmt = check_format(embedding_format, "embedding_format") if embedding_format else fmt
    out: dict[str, Tensor] = {}
    report: dict[str, Any] = {"format": fmt, "embedding_format": emb_fmt, "tensors": {},
                              "fallback_f16": [], "kept_f32": [], "gguf": gguf_version()}
    err2 = ref2 = 0.0
    for name, p in hf_param_names(model, trainable_only=False).items():
        if p.ndim < 2:
            report["kept_f32"].append(name)
            continue
        use = emb_fmt if _is_embedding(model, p) else fmt
        if use not in INT_FORMATS and p.shape[-1] % _block_size(use):
            report["fallback_f16"].append(name)
            use = "F16"
        new = quantize_round_trip(p, use)
        out[name] = new
        report["tensors"][name] = use
        err2 += float((new.float() - p.detach().float()).pow(2).sum())
        ref2 += float(p.detach().float().pow(2).sum())
    report["rel_error"] = (err2 / ref2) ** 0.5 if ref2 else 0.0
    return out, report


@contextlib.contextmanager
def quantization_applied(
    model: TransformerBridge,
    fmt: str,
    *,
    embedding_format: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Swap the round-tripped weights (:func:`quantized_weights`) into the model; restore the
    originals bit-exactly on exit (also on an exception).

    Yields:
        The report of :func:`quantized_weights`.
    """
    new, report = quantized_weights(model, fmt, embedding_format=embedding_format)
    named = hf_param_names(model, trainable_only=False)
    saved = {name: named[name].detach().clone() for name in new}
    try:
        with torch.no_grad():
            for name, w in new.items():
                named[name].copy_(w)
        yield report
    finally:
        with torch.no_grad():
            for name, w in saved.items():
                named[name].copy_(w)


# ------------------------------------------------------------------------------ GGUF files
def _permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` of q/k rows (transformers' loader reverses it)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _write_tokenizer(writer: Any, tokenizer: Any) -> None:
    """Byte-level BPE (``gpt2``) tokenizer fields, as llama.cpp's converter writes them."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state.get("model", {})
    if model.get("type") != "BPE":
        raise SafelensError(f"write_gguf: the tokenizer is {model.get('type')!r}; expected a "
                            "byte-level BPE tokenizer (the gpt2 GGUF tokenizer model)")
    n = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(n)))
    special = set(tokenizer.all_special_ids) | {
        t["id"] for t in state.get("added_tokens", []) if t.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in special else 1 for i in range(n)])  # 3 = control
    writer.add_token_merges(merges)
    for key, tid in (("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id),
                     ("unk", tokenizer.unk_token_id), ("pad", tokenizer.pad_token_id)):
        if tid is not None:
            getattr(writer, f"add_{key}_token_id")(int(tid))
    writer.add_add_bos_token(bool(getattr(tokenizer, "add_bos_token", False)))
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)


def write_gguf(
    model: TransformerBridge,
    path: str | Path,
    fmt: str = "Q8_0",
    *,
    embedding_format: str | None = None,
    with_tokenizer: bool = True,
) -> dict[str, Any]:
    """Write the model (llama architecture) and its tokenizer to a GGUF file in ``fmt``.

    Tensors follow :func:`quantized_weights`' rule (2-D weights in ``fmt``, the embedding in
    ``embedding_format``, rows that do not fit the block in F16, 1-D tensors in F32); q/k
    projections are permuted as llama.cpp's converter does. ``int8`` / ``int4`` are not GGUF
    formats (GGUF's ``I8`` holds integers without scales): use ``Q8_0`` / ``Q4_0``.
    ``with_tokenizer=False`` leaves the tokenizer out (a weights-only file, read back with
    ``load_gguf(path, tokenizer=...)``): parsing a 49k-token vocabulary from GGUF takes seconds.

    Returns:
        The :func:`quantized_weights` report plus ``path``.

    Raises:
        SafelensError: an architecture other than :data:`GGUF_ARCHITECTURES`, an integer
            format, a non-BPE tokenizer.
    """
    import gguf

    fmt = check_format(fmt)
    if fmt in INT_FORMATS or (embedding_format and check_format(embedding_format)
                              in INT_FORMATS):
        raise SafelensError(f"format {fmt!r}: GGUF files hold the GGML formats only; expected "
                            f"one of {', '.join(GGML_FORMATS)} (Q8_0/Q4_0 for int8/int4)")
    hf = model.original_model
    cfg = hf.config
    if cfg.model_type not in GGUF_ARCHITECTURES:
        raise SafelensError(f"write_gguf: model type {cfg.model_type!r} is not supported; "
                            f"expected {', '.join(GGUF_ARCHITECTURES)}")
    _, report = quantized_weights(model, fmt, embedding_format=embedding_format)

    state = hf_state_dict(hf)
    n_layers = int(cfg.num_hidden_layers)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(str(getattr(cfg, "_name_or_path", "") or "safelens"))
    writer.add_context_length(int(cfg.max_position_embeddings))
    writer.add_embedding_length(int(cfg.hidden_size))
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(int(cfg.intermediate_size))
    writer.add_head_count(int(cfg.num_attention_heads))
    writer.add_head_count_kv(int(cfg.num_key_value_heads))
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", None)
                                    or cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_rope_dimension_count(int(cfg.hidden_size // cfg.num_attention_heads))
    writer.add_vocab_size(int(cfg.vocab_size))
    writer.add_file_type(int(gguf.LlamaFileType[f"MOSTLY_{fmt}"])
                         if f"MOSTLY_{fmt}" in gguf.LlamaFileType.__members__ else 0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if with_tokenizer:
        _write_tokenizer(writer, model.tokenizer)
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for name, tensor in state.items():
        if tied and name == "lm_head.weight":
            continue  # no output.weight: transformers ties the embedding back
        base, _, suffix = name.rpartition(".")
        gguf_base = name_map.get_name(base)
        if gguf_base is None:
            raise SafelensError(f"write_gguf: no GGUF name for tensor {name!r}")
        data = tensor.detach().float().cpu().numpy()
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = cfg.num_attention_heads if "q_proj" in name else cfg.num_key_value_heads
            data = _permute_qk(data, int(heads))
        use = report["tensors"].get(name, "F32")
        qtype = gguf.GGMLQuantizationType[use]
        if use == "F32":
            writer.add_tensor(f"{gguf_base}.{suffix}", data.astype(np.float32))
        else:
            writer.add_tensor(f"{gguf_base}.{suffix}", gguf.quants.quantize(data, qtype),
                              raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {**report, "path": str(path)}


def load_gguf(path: str | Path, device: str | torch.device | None = None, *,
              tokenizer: Any = None) -> TransformerBridge:
    """Load a GGUF file as a bridge, the way the shipped default model is loaded (transformers'
    GGUF support: tokenizer and weights from the file, dequantized to float32).

    ``tokenizer`` (e.g. the original model's) is used instead of the file's own, for a file
    written with ``with_tokenizer=False``.

    Raises:
        SafelensError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise SafelensError(f"GGUF file {path}: no such file")
    hf_model, own = load_gguf_hf(path, tokenizer=tokenizer is None)
    return wrap(hf_model, tokenizer if tokenizer is not None else own, str(path), device=device)
