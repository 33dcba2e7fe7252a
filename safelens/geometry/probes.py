"""Linear safety probes on residual-stream activations (ShaPO §3.2, Eq. 6).

A probe ``p ∈ R^d`` is trained by logistic regression to tell a *safe* response (label 1: the
``chosen`` refusal of a harmful preference row) from an *unsafe* one (label 0: the ``rejected``
compliant answer of the same row), from the representation ``h`` of the (prompt, response) pair
at a TransformerLens hook — by default ``blocks.{n_layers-1}.hook_resid_post``, the final layer's
residual stream as in the seed. ``h`` pools the sequence either at the last real token
(``"last"``) or as the mean over response tokens (``"mean"``). The unit direction
``p/‖p‖`` then feeds :func:`~safelens.geometry.value_vectors.rank_value_vectors` (Eq. 7).
Only harmful rows are used; benign and look-alike rows carry no safe/unsafe contrast.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from safelens.models.chat import ChatBatch, encode

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge


__all__ = [
    "Probe",
    "probe_examples",
    "collect_activations",
    "train_probe",
    "probe_direction",
    "probe_all_layers",
    "resid_post_hook",
]

Pooling = Literal["last", "mean"]


def resid_post_hook(layer: int) -> str:
    """Name of the residual stream hook after block ``layer``."""
    return f"blocks.{layer}.hook_resid_post"


@dataclass
class Probe:
    """A trained linear probe; ``logit(h) = scale · ⟨direction, h⟩ + bias`` (1 = safe).

    Attributes:
        direction: unit vector ``p/‖p‖`` ``[d]`` (float32, CPU), pointing towards "safe".
        bias: intercept in the original feature space.
        scale: ``‖p‖``, the norm of the weight vector in the original feature space.
        accuracy_train: accuracy on the training split.
        accuracy_val: accuracy on the held-out split (``nan`` when ``val_fraction == 0``).
        hook_name: the hook the features came from (``None`` for raw features).
        n_train: number of training examples.
        n_val: number of validation examples.
    """

    direction: Tensor
    bias: float
    scale: float
    accuracy_train: float
    accuracy_val: float
    hook_name: str | None = None
    n_train: int = 0
    n_val: int = 0

    def logits(self, features: Tensor) -> Tensor:
        """Probe logits ``[N]`` for features ``[N, d]`` (positive = predicted safe)."""
        d = self.direction.to(device=features.device, dtype=torch.float64)
        return self.scale * (features.double() @ d) + self.bias

    def predict(self, features: Tensor) -> Tensor:
        """Predicted labels ``[N]`` (1 = safe, 0 = unsafe)."""
        return (self.logits(features) > 0).long()


def probe_examples(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[list[str], list[str], Tensor]:
    """Turn harmful preference rows into labelled (prompt, response) probe examples.

    Args:
        rows: preference rows (``prompt``, ``chosen``, ``rejected``, ``harmful``; see
            ``safelens/AGENTS.md``). Rows with ``harmful`` false are skipped.

    Returns:
        ``(prompts, responses, labels)``: two examples per harmful row, the ``chosen`` refusal
        labelled 1 (safe) and the ``rejected`` compliance labelled 0 (unsafe); labels ``[N]`` long.

    Raises:
        ValueError: if a row lacks a field or no row is harmful.
    """
    prompts: list[str] = []
    responses: list[str] = []
    labels: list[int] = []
    for i, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected", "harmful"):
            if key not in row:
                raise ValueError(f"row {i} (id={row.get('id')!r}): missing {key!r}")
        if not row["harmful"]:
            continue
        prompts += [row["prompt"], row["prompt"]]
        responses += [row["chosen"], row["rejected"]]
        labels += [1, 0]
    if not labels:
        raise ValueError("no harmful rows: probes need (refusal, compliance) pairs of harmful rows")
    return prompts, responses, torch.tensor(labels, dtype=torch.long)


def _pool(acts: Tensor, attention_mask: Tensor, response_mask: Tensor, pooling: Pooling) -> Tensor:
    """``[b, T, d]`` activations → ``[b, d]`` by the last real token or the response mean."""
    if pooling == "last":
        positions = torch.arange(acts.shape[1], device=acts.device)  # [T]
        last = (attention_mask.to(acts.device).long() * positions).argmax(1)  # [b]
        return acts[torch.arange(acts.shape[0], device=acts.device), last]  # [b, d]
    if pooling == "mean":
        m = response_mask.to(device=acts.device, dtype=acts.dtype).unsqueeze(-1)  # [b, T, 1]
        return (acts * m).sum(1) / m.sum(1).clamp_min(1.0)  # [b, d]
    raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")


def collect_activations(
    model: TransformerBridge,
    batch: ChatBatch,
    hook_names: Sequence[str] | str | None = None,
    pooling: Pooling = "last",
    batch_size: int = 8,
) -> dict[str, Tensor]:
    """Pooled activations at TransformerLens hooks, one forward per mini-batch for all hooks.

    Args:
        model: a ``TransformerBridge``.
        batch: right-padded :class:`~safelens.models.chat.ChatBatch` ``[N, T]``.
        hook_names: hook name(s) (any hook of the bridge); default
            ``blocks.{n_layers-1}.hook_resid_post``.
        pooling: ``"last"`` (last non-pad token) or ``"mean"`` (mean over response tokens).
        batch_size: rows per forward.

    Returns:
        ``{hook_name: features [N, d]}`` (float32, CPU).
    """
    if isinstance(hook_names, str):
        hook_names = [hook_names]
    if hook_names is None:
        hook_names = [resid_post_hook(int(model.cfg.n_layers) - 1)]
    names = list(hook_names)
    if pooling not in ("last", "mean"):
        raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
    device = next(model.original_model.parameters()).device
    # Hooks inside blocks only: stop after the deepest one (no later blocks, no unembedding).
    layers = [re.match(r"blocks\.(\d+)\.", n) for n in names]
    stop = (max(int(m.group(1)) for m in layers if m is not None) + 1
            if all(m is not None for m in layers) else None)
    extra: dict[str, Any] = {"stop_at_layer": stop} if stop is not None and stop < int(model.cfg.n_layers) else {}
    parts: dict[str, list[Tensor]] = {n: [] for n in names}
    n = len(batch)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            sub = batch.select(slice(start, min(start + batch_size, n))).to(device)
            # Right padding: causal attention keeps real positions independent of the pads.
            _, cache = model.run_with_cache(
                sub.input_ids,
                names_filter=names,
                attention_mask=sub.attention_mask,
                return_type="logits",
                **extra,
            )
            for name in names:
                acts = cache[name]  # [b, T, d]
                pooled = _pool(acts, sub.attention_mask, sub.response_mask, pooling)
                parts[name].append(pooled.float().cpu())
            del cache
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def _split(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Stratified seeded train/val index split."""
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    for cls in labels.unique(sorted=True):
        idx = (labels == cls).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = int(math.floor(val_fraction * len(idx)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def train_probe(
    features: Tensor,
    labels: Tensor,
    seed: int = 0,
    l2: float = 1e-3,
    val_fraction: float = 0.2,
    max_iter: int = 200,
    hook_name: str | None = None,
) -> Probe:
    """Fit a logistic-regression probe (ShaPO Eq. 6) with full-batch L-BFGS.

    Minimises ``mean log(1 + exp(−y (⟨w, z⟩ + b))) + ½ l2 ‖w‖²`` with ``y = ±1`` on standardised
    features ``z = (h − μ)/σ`` (μ, σ from the training split; standardising conditions L-BFGS
    against the few huge residual dimensions), then maps ``(w, b)`` back to the original space.
    Zero initialisation and full-batch L-BFGS make the fit deterministic; ``seed`` only picks
    the stratified train/validation split.

    Args:
        features: ``[N, d]``.
        labels: ``[N]`` in {0, 1} (1 = safe).
        seed: seed of the split.
        l2: ridge strength on the standardised weights.
        val_fraction: held-out share per class (0 = train on everything).
        max_iter: L-BFGS iterations.
        hook_name: recorded on the returned probe.

    Returns:
        A :class:`Probe` with unit ``direction`` ``[d]`` in the original feature space.

    Examples:
        >>> h = torch.tensor([[2.0, 0.0], [1.5, 1.0], [-2.0, 0.5], [-1.0, -1.0]])
        >>> probe = train_probe(h, torch.tensor([1, 1, 0, 0]), val_fraction=0.0)
        >>> probe.accuracy_train, probe.direction[0].item() > 0
        (1.0, True)
    """
    if features.ndim != 2:
        raise ValueError(f"features must be [N, d], got {tuple(features.shape)}")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels must be [N={features.shape[0]}], got {tuple(labels.shape)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    x = features.detach().to("cpu", torch.float64)  # [N, d]
    y = labels.detach().to("cpu").long()
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("labels must be 0 (unsafe) or 1 (safe)")
    tr, va = _split(y, val_fraction, seed)
    if y[tr].unique().numel() < 2:
        raise ValueError("the training split needs both safe (1) and unsafe (0) examples")
    mu = x[tr].mean(0)  # [d]
    sd = x[tr].std(0, unbiased=False)  # [d]
    sd = torch.where(sd > 1e-8 * sd.max().clamp_min(1e-30), sd, torch.ones_like(sd))
    z = (x - mu) / sd  # [N, d]
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-10,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    zt, yt = z[tr], y[tr].double()

    def closure() -> Tensor:
        opt.zero_grad()
        # BCE with y ∈ {0,1} equals Eq. 6's log(1 + exp(−y⟨p, h⟩)) with y ∈ {±1}.
        loss = F.binary_cross_entropy_with_logits(zt @ w + b, yt) + 0.5 * l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        w_orig = w / sd  # [d]
        b_orig = float(b - w_orig @ mu)
        scale = float(w_orig.norm())
        if scale == 0.0:
            warnings.warn(
                "probe weights are zero: features do not separate", RuntimeWarning, stacklevel=2
            )
        direction = (w_orig / max(scale, 1e-300)).float()  # [d]
        pred = ((x @ w_orig + b_orig) > 0).long()  # [N]

    def acc(idx: Tensor) -> float:
        return float((pred[idx] == y[idx]).double().mean()) if len(idx) else float("nan")

    return Probe(
        direction=direction,
        bias=b_orig,
        scale=scale,
        accuracy_train=acc(tr),
        accuracy_val=acc(va),
        hook_name=hook_name,
        n_train=len(tr),
        n_val=len(va),
    )


def _encode_rows(
    model: TransformerBridge, rows: Iterable[Mapping[str, Any]], max_length: int
) -> tuple[ChatBatch, Tensor]:

    prompts, responses, labels = probe_examples(rows)
    return encode(model.tokenizer, prompts, responses, max_length=max_length), labels


def probe_direction(
    model: TransformerBridge,
    rows: Iterable[Mapping[str, Any]],
    hook_name: str | None = None,
    pooling: Pooling = "last",
    seed: int = 0,
    l2: float = 1e-3,
    val_fraction: float = 0.2,
    batch_size: int = 8,
    max_length: int = 512,
) -> Probe:
    """Train ShaPO's safety probe at one hook (default: final ``hook_resid_post``), Eq. 6.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        rows: preference rows; the harmful ones give (chosen=1, rejected=0) examples.
        hook_name: any hook of the bridge; default ``blocks.{n_layers-1}.hook_resid_post``.
        pooling: ``"last"`` or ``"mean"`` (see :func:`collect_activations`).
        seed, l2, val_fraction: see :func:`train_probe`.
        batch_size: rows per forward.
        max_length: token budget per (prompt, response) pair.

    Returns:
        The trained :class:`Probe`; ``probe.direction`` is the ``p`` of Eq. 7.

    Examples:
        >>> rows = load_builtin("preferences", "train")  # doctest: +SKIP
        >>> probe = probe_direction(model, rows[:64])  # doctest: +SKIP
        >>> Subspace.selective(model, probe.direction, fraction=0.01)  # doctest: +SKIP
    """
    hook_name = hook_name or resid_post_hook(int(model.cfg.n_layers) - 1)
    batch, labels = _encode_rows(model, rows, max_length)
    feats = collect_activations(model, batch, [hook_name], pooling, batch_size)[hook_name]
    return train_probe(
        feats, labels, seed=seed, l2=l2, val_fraction=val_fraction, hook_name=hook_name
    )


def probe_all_layers(
    model: TransformerBridge,
    rows: Iterable[Mapping[str, Any]],
    pooling: Pooling = "last",
    seed: int = 0,
    l2: float = 1e-3,
    val_fraction: float = 0.2,
    batch_size: int = 8,
    max_length: int = 512,
) -> list[Probe]:
    """One probe per layer's ``hook_resid_post``, from a single forward with all hooks.

    Args:
        model: a ``TransformerBridge`` with ``.tokenizer``.
        rows: preference rows (harmful ones are used).
        pooling, seed, l2, val_fraction, batch_size, max_length: as in :func:`probe_direction`.

    Returns:
        ``n_layers`` probes, layer order; ``[-1]`` is ShaPO's final-layer probe.

    Examples:
        >>> probes = probe_all_layers(model, rows[:64])  # doctest: +SKIP
        >>> [round(p.accuracy_val, 2) for p in probes]  # where safety becomes decodable  # doctest: +SKIP
    """
    names = [resid_post_hook(layer) for layer in range(int(model.cfg.n_layers))]
    batch, labels = _encode_rows(model, rows, max_length)
    feats = collect_activations(model, batch, names, pooling, batch_size)
    return [
        train_probe(feats[n], labels, seed=seed, l2=l2, val_fraction=val_fraction, hook_name=n)
        for n in names
    ]
