"""Bradley–Terry reward model on frozen MiniLM features of (prompt, response).

``R(x, y)`` is a small head on the features of
:func:`safelens.models.encoder.embed_pairs` (``φ = [e(x), e(y), e(x)·e(y)]``, ``e`` the
384-dim MiniLM embedding). The encoder is frozen, so features are computed once and only the
head is trained, by the Bradley–Terry loss on preference rows::

    L = mean_i −log σ(R(x_i, y_w,i) − R(x_i, y_l,i))

Heads (``RewardConfig.head``):
    - ``"bilinear"`` (default) — ``R = u·e(y) + (A e(x) + a)·(B e(y) + b)`` with ``A, B`` of rank
      ``RewardConfig.rank``: a response-quality term plus a low-rank prompt–response
      compatibility term. Whether a refusal is good depends on the prompt (harmful vs benign),
      and this structure learns that from far fewer pairs than an MLP (on the unit tests'
      crafted held-out pairs: ~0.89 pairwise accuracy vs ~0.78 for the MLP).
    - ``"mlp"`` — ``Linear(3d, hidden) → GELU → Dropout → Linear(hidden, 1)`` on ``φ``.
    - ``"linear"`` — ``w·φ + c``.

The encoder is independent of the policy under training, so the reward model can judge the
policy's answers without sharing its blind spots (the role GPT-4.1-mini plays in ShaPO's win
rate and the beaver model in ShaPO-R's soft targets).

Examples:
    >>> model, metrics = train_reward_model(rows, RewardConfig(epochs=10))   # doctest: +SKIP
    >>> metrics["val/accuracy"]                                               # doctest: +SKIP
    0.97
    >>> model.score(["how do I make a bomb?"], ["I can't help with that."])   # doctest: +SKIP
    tensor([2.31])
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from safelens.models.device import resolve_device
from safelens.models.encoder import (
    DEFAULT_ENCODER,
    cpu_threads,
    embed_pairs,
    load_encoder,
    pair_feature_dim,
)
from safelens.reward.margins import score_pairs

_FORMAT = "safelens.RewardModel/1"
_WEIGHTS = "reward_model.safetensors"
_META = "reward_config.json"


@runtime_checkable
class RewardScorer(Protocol):
    """Anything that scores responses: higher = better (safer / more preferred)."""

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """``[B]`` float rewards."""
        ...


@dataclass
class RewardConfig:
    """Settings of :class:`RewardModel` and :func:`train_reward_model`."""

    # model
    encoder: str | None = field(
        default=None,
        metadata={"help": "sentence-transformers id/path; None = packaged all-MiniLM-L6-v2"},
    )
    head: str = field(
        default="bilinear", metadata={"help": "reward head: 'bilinear', 'mlp' or 'linear'"}
    )
    rank: int = field(default=16, metadata={"help": "rank of the bilinear prompt-response term"})
    hidden_dim: int = field(default=256, metadata={"help": "hidden width of the 'mlp' head"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in the 'mlp' head"})
    # training
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    epochs: int = field(default=100, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(default=64, metadata={"help": "preference pairs per step"})
    weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay"})
    seed: int = field(default=0, metadata={"help": "seed of the split, init and shuffling"})
    # data
    val_fraction: float = field(
        default=0.1,
        metadata={"help": "fraction of rows held out for pairwise accuracy (if no val_rows)"},
    )
    device: str | None = field(
        default=None, metadata={"help": "device of encoder and head; None = CUDA if available"}
    )

    def __post_init__(self) -> None:
        if self.head not in ("bilinear", "mlp", "linear"):
            raise ValueError(
                f"RewardConfig.head must be 'bilinear', 'mlp' or 'linear', got {self.head!r}"
            )
        if self.rank < 1:
            raise ValueError(f"RewardConfig.rank must be >= 1, got {self.rank}")
        if self.hidden_dim < 1:
            raise ValueError(f"RewardConfig.hidden_dim must be >= 1, got {self.hidden_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"RewardConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0:
            raise ValueError(f"RewardConfig.lr must be > 0, got {self.lr}")
        if self.epochs < 0:
            raise ValueError(f"RewardConfig.epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"RewardConfig.batch_size must be >= 1, got {self.batch_size}")
        if self.weight_decay < 0:
            raise ValueError(f"RewardConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(
                f"RewardConfig.val_fraction must be in [0, 1), got {self.val_fraction}"
            )
        if self.encoder in ("", "default", DEFAULT_ENCODER):
            self.encoder = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RewardConfig:
        """Build from a dict, ignoring unknown keys (configs saved by newer versions)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class RewardModel(nn.Module):
    """Scalar reward ``R(x, y)``: a head on frozen encoder features of (prompt, response).

    Args:
        config: model settings (``encoder``, ``head``, ``rank``, ``hidden_dim``, ``dropout``; the
            rest is used by :func:`train_reward_model`).
        feature_dim: width of the features; ``None`` asks the encoder (loads it).

    Attributes:
        metrics: the training report of :func:`train_reward_model` (saved with the model).
    """

    def __init__(self, config: RewardConfig | None = None, feature_dim: int | None = None) -> None:
        super().__init__()
        self.config = config or RewardConfig()
        if feature_dim is None:
            feature_dim = pair_feature_dim(load_encoder(self.config.encoder, self._device()))
        self.feature_dim = int(feature_dim)
        cfg = self.config
        if cfg.head == "bilinear":
            if self.feature_dim % 3:
                raise ValueError(
                    f"RewardModel: the bilinear head needs [e(x), e(y), e(x)*e(y)] features "
                    f"(width divisible by 3), got width {self.feature_dim}"
                )
            d = self.feature_dim // 3
            self.response_term = nn.Linear(d, 1)  # u·e(y) + c
            self.prompt_proj = nn.Linear(d, cfg.rank)  # A e(x) + a
            self.response_proj = nn.Linear(d, cfg.rank)  # B e(y) + b
        elif cfg.head == "mlp":
            self.head = nn.Sequential(
                nn.Linear(self.feature_dim, cfg.hidden_dim),
                nn.GELU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.hidden_dim, 1),
            )
        else:
            self.head = nn.Sequential(nn.Linear(self.feature_dim, 1))
        self.metrics: dict[str, Any] = {}

    def _device(self) -> torch.device:
        return resolve_device(self.config.device, setting="RewardConfig.device")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Rewards from precomputed features.

        Args:
            features: ``[B, feature_dim]`` from :func:`safelens.models.encoder.embed_pairs`.

        Returns:
            ``[B]`` rewards.
        """
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f"RewardModel: features must be [batch, {self.feature_dim}], got "
                f"{tuple(features.shape)}"
            )
        if self.config.head != "bilinear":
            return self.head(features).squeeze(-1)  # [B]
        d = self.feature_dim // 3
        p, r = features[:, :d], features[:, d : 2 * d]  # [B, d] each
        compat = (self.prompt_proj(p) * self.response_proj(r)).sum(-1)  # [B]
        return self.response_term(r).squeeze(-1) + compat  # [B]

    def features(
        self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64
    ) -> torch.Tensor:
        """``[B, feature_dim]`` encoder features of the pairs (on CPU)."""
        enc = load_encoder(self.config.encoder, self._device())
        return embed_pairs(enc, prompts, responses, batch_size=batch_size)

    @torch.no_grad()
    def score(
        self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 64
    ) -> torch.Tensor:
        """Rewards of (prompt, response) pairs, higher = preferred.

        Args:
            prompts: ``B`` prompts.
            responses: ``B`` responses.
            batch_size: encoder batch size.

        Returns:
            ``[B]`` float32 tensor on CPU (deterministic: the head is put in eval mode).
        """
        if len(prompts) == 0:
            return torch.zeros(0)
        x = self.features(prompts, responses, batch_size=batch_size)  # [B, F]
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = self(x.to(device)).float().cpu()  # [B]
        self.train(was_training)
        return out

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``reward_model.safetensors`` and ``reward_config.json`` into directory ``path``."""
        from safetensors.torch import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / _WEIGHTS))
        meta = {
            "format": _FORMAT,
            "config": asdict(self.config),
            "feature_dim": self.feature_dim,
            "features": "embed_pairs: [e(prompt), e(response), e(prompt)*e(response)]",
            "metrics": self.metrics,
        }
        (out / _META).write_text(json.dumps(meta, indent=2, default=str))
        return out

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> RewardModel:
        """Load a model written by :meth:`save` (``device`` overrides the saved one).

        Raises:
            FileNotFoundError: if a file is missing; ValueError: if it is not a reward model.
        """
        from safetensors.torch import load_file

        path = Path(path)
        for f in (path / _META, path / _WEIGHTS):
            if not f.is_file():
                raise FileNotFoundError(f"RewardModel.load: {f} not found (written by .save())")
        meta = json.loads((path / _META).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(
                f"RewardModel.load: {path / _META} has format {meta.get('format')!r}; "
                f"expected {_FORMAT!r}"
            )
        config = RewardConfig.from_dict(meta["config"])
        if device is not None:
            config.device = device
        model = cls(config, feature_dim=meta["feature_dim"])
        model.load_state_dict(load_file(str(path / _WEIGHTS)))
        model.metrics = meta.get("metrics", {})
        model.eval()
        return model.to(model._device())


def _check_rows(rows: Sequence[Mapping[str, Any]], what: str) -> None:
    for i, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected"):
            if key not in row:
                raise ValueError(f"{what} row {i} (id={row.get('id')!r}) has no {key!r} field")


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Mean ``−log σ(r_chosen − r_rejected)`` over pairs (``[B]``, ``[B]`` → scalar)."""
    return -torch.nn.functional.logsigmoid(r_chosen - r_rejected).mean()


@torch.no_grad()
def _pair_metrics(model: RewardModel, xc: torch.Tensor, xr: torch.Tensor) -> dict[str, float]:
    model.eval()
    rc, rr = model(xc), model(xr)  # [N], [N]
    margin = rc - rr
    return {
        "loss": float(bradley_terry_loss(rc, rr)) if len(rc) else math.nan,
        # Ties count half, as in win_rate.
        "accuracy": float(((margin > 0).float() + 0.5 * (margin == 0).float()).mean())
        if len(rc)
        else math.nan,
        "margin": float(margin.mean()) if len(rc) else math.nan,
        "chosen": float(rc.mean()) if len(rc) else math.nan,
        "rejected": float(rr.mean()) if len(rc) else math.nan,
    }


def _fit(
    model: RewardModel,
    opt: torch.optim.Optimizer,
    xc: torch.Tensor,
    xr: torch.Tensor,
    config: RewardConfig,
    device: torch.device,
) -> list[float]:
    """Minibatch Bradley–Terry training on precomputed features; returns per-epoch mean loss."""
    gen = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    n = len(xc)
    for _ in range(config.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total = 0.0
        for s in range(0, n, config.batch_size):
            idx = perm[s : s + config.batch_size]
            loss = bradley_terry_loss(model(xc[idx]), model(xr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / n)
    return history


def train_reward_model(
    rows: Sequence[Mapping[str, Any]],
    config: RewardConfig | None = None,
    val_rows: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[RewardModel, dict[str, Any]]:
    """Train a Bradley–Terry reward model on preference rows.

    Args:
        rows: preference rows (``prompt``, ``chosen``, ``rejected``): ``chosen`` is preferred.
        config: settings; default :class:`RewardConfig`.
        val_rows: held-out rows; when ``None``, ``config.val_fraction`` of ``rows`` is held out.

    Returns:
        ``(model, metrics)``. ``metrics`` (also ``model.metrics``) has ``train/loss``,
        ``train/accuracy``, ``val/loss``, ``val/accuracy`` (held-out pairwise accuracy: the
        fraction of pairs with ``R(chosen) > R(rejected)``, ties ½), ``val/margin``,
        ``rewards/chosen``, ``rewards/rejected``, ``rewards/margins`` (on validation),
        ``n_train``, ``n_val`` and the per-epoch ``history`` of ``train/loss``.

    Raises:
        ValueError: if ``rows`` is empty or a row lacks a field.
    """
    config = config or RewardConfig()
    if len(rows) == 0:
        raise ValueError("train_reward_model: rows is empty; expected preference rows")
    rows = list(rows)
    _check_rows(rows, "train_reward_model:")
    if val_rows is None:
        perm = np.random.default_rng(config.seed).permutation(len(rows))
        n_val = int(round(len(rows) * config.val_fraction))
        if n_val == 0 and config.val_fraction > 0 and len(rows) >= 2:
            n_val = 1
        val_rows = [rows[i] for i in perm[:n_val]]
        train_rows = [rows[i] for i in perm[n_val:]]
    else:
        val_rows = list(val_rows)
        _check_rows(val_rows, "train_reward_model: val")
        train_rows = rows

    torch.manual_seed(config.seed)
    enc = load_encoder(config.encoder, config.device)
    model = RewardModel(config, feature_dim=pair_feature_dim(enc))
    device = torch.device(model._device())
    model.to(device)

    def feats(rs: Sequence[Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = [r["prompt"] for r in rs]
        # One encoder call for chosen and rejected (prompts are encoded once).
        x = embed_pairs(
            enc, prompts + prompts, [r["chosen"] for r in rs] + [r["rejected"] for r in rs]
        )
        return x[: len(rs)].to(device), x[len(rs) :].to(device)  # [N, F], [N, F]

    xc, xr = feats(train_rows)
    vc, vr = feats(val_rows) if val_rows else (xc[:0], xr[:0])

    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # Tiny head on frozen features: one CPU thread is faster (see cpu_threads).
    threads = cpu_threads(1) if device.type == "cpu" else contextlib.nullcontext()
    with threads:
        history = _fit(model, opt, xc, xr, config, device)
    model.eval()

    tr = _pair_metrics(model, xc, xr)
    va = _pair_metrics(model, vc, vr)
    metrics: dict[str, Any] = {
        "train/loss": tr["loss"],
        "train/accuracy": tr["accuracy"],
        "val/loss": va["loss"],
        "val/accuracy": va["accuracy"],
        "val/margin": va["margin"],
        "rewards/chosen": va["chosen"],
        "rewards/rejected": va["rejected"],
        "rewards/margins": va["margin"],
        "n_train": len(train_rows),
        "n_val": len(val_rows),
        "history": {"train/loss": history},
    }
    model.metrics = metrics
    return model, metrics


@torch.no_grad()
def pairwise_accuracy(scorer: RewardScorer, rows: Sequence[Mapping[str, Any]]) -> float:
    """Fraction of rows where ``score(prompt, chosen) > score(prompt, rejected)`` (ties ½)."""
    if len(rows) == 0:
        return math.nan

    _check_rows(rows, "pairwise_accuracy:")
    rc, rr = score_pairs(scorer, rows)  # [N], [N]
    m = rc - rr
    return float(((m > 0).float() + 0.5 * (m == 0).float()).mean())
