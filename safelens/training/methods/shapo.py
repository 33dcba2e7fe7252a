"""ShaPO (seed 000): ``shapo-t`` (token level) and ``shapo-r`` (reward level).

Both are an existing loss + the subspace-SAM wrapper (:class:`~safelens.training.sam.SubspaceSAM`):

``shapo-t``
    any DPO-family loss (``--base-loss dpo|ipo|cdpo|rdpo|drdpo``, Eq. 8). The loss is the
    registered base method's own ``compute_loss`` (built from this config), never a copy.
``shapo-r``
    the ``reward-level`` method (Eq. 9-12: soft targets ``t = sigmoid(beta_r (R_w - R_l))``,
    ``beta_r = 10``, reward scores cached once per dataset) — a subclass of it.

The subspace S (Algorithm 1, step 0) is built once in ``prepare``, before the reference pass:

``selective``
    a probe (:func:`~safelens.geometry.probes.probe_direction`, final ``hook_resid_post``)
    is trained on the training rows' harmful (chosen = safe, rejected = unsafe) responses —
    after label flips, as those are the rows the run sees — and the value vectors of the top
    ``top_fraction`` of all MLP neurons by ``|<v_j, p>|`` (Eq. 7) form S;
``random``
    the same number of neurons drawn with ``config.seed``;
``uniform``
    every trainable parameter (plain SAM);
``none``
    empty: no perturbation, the run equals the base method exactly.

A run writes its S to ``RUN/subspace.json`` (:func:`save_subspace`), so measurements on its
checkpoint, or on another method's, use the same coordinates (:func:`load_subspace`).

Neurons of frozen layers (``--freeze``) are not eligible: S is chosen among trainable value
vectors, with the size still ``top_fraction`` of all neurons (capped at the trainable ones).

Examples:
    >>> from safelens.training import make_method
    >>> m = make_method("shapo-t", base_loss="ipo", subspace="random", rho=0.1)
    >>> m.base.name, m.average_logps, m.config.sam_every
    ('ipo', True, 5)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from safelens.data.jsonfile import cached_json, rows_key, write_json
from safelens.errors import SafelensError
from safelens.geometry.probes import probe_direction
from safelens.geometry.value_vectors import (
    Subspace,
    random_k_neurons,
    rank_value_vectors,
    top_k_neurons,
    value_vector_params,
)
from safelens.models.fingerprint import model_fingerprint
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig, _help
from safelens.training.methods.base import Method, TrainContext
from safelens.training.methods.preference import DPOConfig
from safelens.training.methods.reward_level import RewardLevel, RewardLevelConfig
from safelens.training.registry import get_method, register_method
from safelens.training.sam import SAM_MODES, SubspaceSAM

logger = logging.getLogger(__name__)

SUBSPACES = ("selective", "random", "uniform", "none")
BASE_LOSSES = ("dpo", "ipo", "cdpo", "rdpo", "drdpo")


# ------------------------------------------------------------------------------ configs


@dataclass
class SAMConfig(TrainConfig):
    """Subspace-SAM settings shared by ShaPO-T and ShaPO-R (not registered on its own)."""

    subspace: Literal["selective", "random", "uniform", "none"] = _help(
        "selective", "SAM subspace: selective (probe top value vectors), random (same size), "
                     "uniform (all parameters) or none (plain base method)")
    rho: float = _help(0.05, "SAM radius rho: the norm of the subspace perturbation eps_S "
                             "(with sam_target_gap: the largest radius a step may use)")
    sam_target_gap: float | None = _help(
        None, "hold the first-order perturbed-loss gap at this many nats: each SAM step's "
              "radius is min(rho, gap / ||g_S||) (None: fixed rho, as in the seed)")
    sam_every: int = _help(5, "SAM every tau optimizer steps (seed: 5); other steps are plain")
    sam_mode: Literal["exact", "reuse"] = _help(
        "exact", "exact: two passes on SAM steps; reuse: perturb with the previous step's "
                 "subspace gradient, one pass per step")
    top_fraction: float = _help(
        0.01, "share of all MLP neurons whose value vectors form the selective/random subspace")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.subspace not in SUBSPACES:
            raise ValueError(f"{name}.subspace must be one of {SUBSPACES}, got {self.subspace!r}")
        if not (isinstance(self.rho, int | float) and self.rho > 0 and math.isfinite(self.rho)):
            raise ValueError(f"{name}.rho must be a finite number > 0, got {self.rho!r}")
        gap = self.sam_target_gap
        if gap is not None and not (isinstance(gap, int | float) and not isinstance(gap, bool)
                                    and gap > 0 and math.isfinite(gap)):
            raise ValueError(f"{name}.sam_target_gap must be None or a finite number > 0 "
                             f"nats, got {gap!r}")
        if (not isinstance(self.sam_every, int) or isinstance(self.sam_every, bool)
                or self.sam_every < 1):
            raise ValueError(f"{name}.sam_every must be an integer >= 1, got {self.sam_every!r}")
        if self.sam_mode not in SAM_MODES:
            raise ValueError(f"{name}.sam_mode must be one of {SAM_MODES}, got {self.sam_mode!r}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError(f"{name}.top_fraction must be in (0, 1], got {self.top_fraction!r}")


@dataclass
class ShaPOTConfig(SAMConfig, DPOConfig):
    """ShaPO-T: a DPO-family loss (--base-loss) trained with subspace SAM (seed 000, Eq. 8)."""

    base_loss: Literal["dpo", "ipo", "cdpo", "rdpo", "drdpo"] = _help(
        "dpo", "the DPO-family loss ShaPO-T wraps: dpo, ipo, cdpo, rdpo or drdpo")
    eps: float = _help(0.1, "label-flip rate eps of cdpo/rdpo (base_loss cdpo or rdpo)")
    beta_prime: float = _help(1.0, "Dr.DPO temperature beta' (base_loss drdpo)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.base_loss not in BASE_LOSSES:
            raise ValueError(f"ShaPOTConfig.base_loss must be one of {BASE_LOSSES}, "
                             f"got {self.base_loss!r}")
        self.base_config()  # validates eps / beta_prime with the base loss's own rules

    def base_config(self) -> TrainConfig:
        """The base method's config: every shared field copied from this one."""
        return get_method(self.base_loss).config_cls.from_dict(self.to_dict(), strict=False)


@dataclass
class ShaPORConfig(SAMConfig, RewardLevelConfig):
    """ShaPO-R: the reward-level loss (soft targets sigmoid(beta_r dR)) with subspace SAM."""


# ------------------------------------------------------------------------------ subspace


@contextlib.contextmanager
def _all_params_visible(model: Any) -> Iterator[None]:
    """Temporarily mark every parameter trainable, then restore the flags.

    ``value_vector_params`` (and so ``Subspace.from_neurons``) only sees parameters with
    ``requires_grad``; with ``--freeze`` some MLP output projections have it off.
    """
    flags = [(p, p.requires_grad) for p in model.original_model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _trainable_layers(model: Any) -> list[int]:
    """Layers whose value-vector parameter is trainable (not frozen)."""
    trainable = {id(p) for p in model.original_model.parameters() if p.requires_grad}
    with _all_params_visible(model):
        return [info.layer for info in value_vector_params(model) if id(info.param) in trainable]


def build_subspace(model: Any, rows: list[dict[str, Any]], config: SAMConfig,
                   cache_dir: str | Path | None = None) -> Subspace:
    """ShaPO's subspace S for ``config.subspace`` (Algorithm 1 step 0; see the module docstring).

    Args:
        model: the policy (``TransformerBridge``) with its frozen parameters already marked
            ``requires_grad = False``.
        rows: the training rows (their harmful rows train the probe for ``selective``).
        config: a ShaPO config (``subspace``, ``top_fraction``, ``seed``, ``max_length``).
        cache_dir: keep the selective subspace's neurons here (a JSON file per model weights,
            rows, seed, length, size and trainable blocks), so runs that share them (other arms
            and settings of one seed) train the probe once; ``None``: no cache.

    Returns:
        The :class:`Subspace` (its ``neurons`` hold the chosen ``(layer, neuron)`` pairs).

    Raises:
        ValueError: ``selective``/``random`` with every value-vector parameter frozen, or no
            harmful training row for the probe.
    """
    kind = config.subspace
    if kind == "none":
        return Subspace.none()
    if kind == "uniform":
        return Subspace.uniform(model)
    n_layers, d_mlp = int(model.cfg.n_layers), int(model.cfg.d_mlp)
    layers = _trainable_layers(model)
    if not layers:
        raise ValueError(f"subspace {kind!r}: every value-vector parameter is frozen "
                         "(--freeze); use uniform or unfreeze some MLP output projections")
    k = min(max(1, round(config.top_fraction * n_layers * d_mlp)), len(layers) * d_mlp)
    if kind == "selective":
        def compute() -> list[list[int]]:
            probe = probe_direction(model, rows, seed=config.seed, max_length=config.max_length)
            logger.info("ShaPO probe: train acc %.3f, val acc %.3f on %d examples",
                        probe.accuracy_train, probe.accuracy_val, probe.n_train + probe.n_val)
            scores = rank_value_vectors(model, probe.direction).clone()  # [n_layers, d_mlp]
            frozen = [layer for layer in range(n_layers) if layer not in layers]
            scores[frozen] = -math.inf  # frozen neurons cannot be perturbed by the optimizer
            return top_k_neurons(scores, k=k).tolist()

        key = {"format": "safelens.selective-subspace/1", "model": model_fingerprint(model),
               "rows": rows_key(rows, ("prompt", "chosen", "rejected", "harmful"))[:20],
               "seed": config.seed, "max_length": config.max_length, "k": k, "layers": layers}
        path = None
        if cache_dir is not None:
            digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
            path = Path(cache_dir) / f"subspace-{digest}.json"
        neurons = torch.tensor(cached_json(path, key, compute), dtype=torch.long)  # [k, 2]
    else:
        picked = random_k_neurons(len(layers), d_mlp, k, seed=config.seed)  # [k, 2] over trainable
        neurons = torch.stack([torch.tensor(layers)[picked[:, 0]], picked[:, 1]], dim=1)
    with _all_params_visible(model):
        sub = Subspace.from_neurons(model, neurons, kind)
    logger.info("ShaPO %s subspace: %d neurons, %d coordinates in %d parameters",
                kind, len(neurons), sub.numel, len(sub))
    return sub


SUBSPACE_FILE = "subspace.json"


def save_subspace(subspace: Subspace, run_dir: str | Path) -> Path:
    """Write S's name, size and ``(layer, neuron)`` pairs to ``RUN/subspace.json``."""
    return write_json(Path(run_dir) / SUBSPACE_FILE, {
        "name": subspace.name, "coordinates": subspace.numel, "param_names": subspace.param_names,
        "neurons": None if subspace.neurons is None else subspace.neurons.tolist()})


def load_subspace(model: Any, path: str | Path) -> Subspace:
    """The neuron subspace a run saved (a run directory or its ``subspace.json``), on ``model``.

    Raises:
        SafelensError: no such file, or a subspace that is not a set of neurons (``uniform``,
            ``none``: rebuild those with :func:`build_subspace`).
    """
    file = Path(path)
    file = file / SUBSPACE_FILE if file.is_dir() else file
    if not file.is_file():
        raise SafelensError(f"{file}: no such file; expected the subspace.json a ShaPO run "
                            "writes (selective or random subspace)")
    saved = json.loads(file.read_text(encoding="utf-8"))
    if not saved.get("neurons"):
        raise SafelensError(f"{file}: subspace {saved.get('name')!r} has no neurons; expected "
                            "a selective or random subspace")
    with _all_params_visible(model):
        return Subspace.from_neurons(model, torch.tensor(saved["neurons"]), saved["name"])


class SubspaceSAMMixin:
    """``prepare`` builds S once; ``optimizer_wrapper`` returns the :class:`SubspaceSAM`."""

    config: SAMConfig
    subspace: Subspace | None = None

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        rows = super().prepare(rows, ctx)  # type: ignore[misc]
        self.subspace = build_subspace(ctx.model, rows, self.config, cache_dir=ctx.cache_dir)
        if ctx.out_dir is not None and getattr(ctx.accelerator, "is_main_process", True):
            save_subspace(self.subspace, ctx.out_dir)
        return rows

    def optimizer_wrapper(self, optimizer: torch.optim.Optimizer,
                          params: list[torch.nn.Parameter], ctx: TrainContext) -> SubspaceSAM:
        cfg = self.config
        if self.subspace is None:
            if cfg.subspace not in ("none", "uniform"):  # these two need no rows
                raise RuntimeError(f"the {cfg.subspace!r} subspace is built in prepare(); "
                                   "call it before optimizer_wrapper")
            self.subspace = build_subspace(ctx.model, [], cfg)
        return SubspaceSAM(optimizer, params, self.subspace, rho=cfg.rho, every=cfg.sam_every,
                           mode=cfg.sam_mode, max_grad_norm=cfg.max_grad_norm,
                           target_gap=cfg.sam_target_gap)


# ------------------------------------------------------------------------------ methods


class ShaPOT(SubspaceSAMMixin, Method):
    """ShaPO-T: the base DPO-family method's loss, delegated; subspace SAM as the optimizer."""

    columns = ("chosen", "rejected")
    needs_reference = True

    def __init__(self, config: ShaPOTConfig) -> None:
        super().__init__(config)
        spec = get_method(config.base_loss)
        self.base: Method = spec.method_cls(config.base_config())
        self.base.name = config.base_loss
        # IPO trains on length-normalised log-probs; the trainer reads these from this method
        self.average_logps = self.base.average_logps
        self.needs_token_logps = self.base.needs_token_logps
        self.columns = tuple(self.base.columns)

    def compute_loss(
        self, policy: Logps, ref: Logps | None, batch: TrainBatch
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.base.compute_loss(policy, ref, batch)

    def cache_key(self) -> dict[str, Any]:
        return self.base.cache_key()


class ShaPOR(SubspaceSAMMixin, RewardLevel):
    """ShaPO-R: the ``reward-level`` method (its scores, cache and loss) with subspace SAM."""


register_method("shapo-t", ShaPOTConfig, ShaPOT)
register_method("shapo-r", ShaPORConfig, ShaPOR)
