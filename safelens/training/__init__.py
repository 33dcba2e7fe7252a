"""Training: method configs + registry, the one trainer, checkpoints, optimizer wrappers.

Every method — SFT, DPO, IPO, cDPO, rDPO, Dr.DPO, NPO, reward-level, and later ShaPO, DOOR,
constrained SFT, zeroth-order refinement — runs through :class:`Trainer`. How a later method
plugs in without touching the loop:

* a new **loss** (constrained SFT, CSFT+PA, W-DOOR): one file with a ``TrainConfig`` subclass
  (the method's config, beside it) and a :class:`Method` subclass (``compute_loss`` calling
  :mod:`safelens.losses`; set ``needs_token_logps = True`` for per-token reference log-probs)
  and a ``register_method`` call;
* a new **batch construction** (safety-recovery augmentation, DOOR's harmful prefixes):
  override ``Method.build_batch`` (deterministic per row: the reference cache is keyed by rows);
* a new **optimizer** (ShaPO's subspace SAM, zeroth-order SPSA): an object with
  ``step(closure)`` / ``state_dict`` / ``load_state_dict`` (:mod:`safelens.training.optim`),
  returned by ``Method.optimizer_wrapper`` or passed as ``Trainer(optimizer_wrapper=...)``;
  ``Method.prepare`` computes what it needs once (e.g. the safety-subspace masks).

Examples:
    >>> from safelens.training import available_methods, resolve_config
    >>> {"sft", "dpo", "ipo", "cdpo", "rdpo", "drdpo", "npo", "reward-level"} <= set(available_methods())
    True
    >>> resolve_config("ipo", preset="paper").lr
    5e-07
"""

from safelens.training import methods as _methods  # noqa: F401  (registers built-ins)
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig
from safelens.training.methods.base import Method, TrainContext, preference_metrics
from safelens.training.methods.npo import NPOConfig
from safelens.training.methods.preference import (
    CDPOConfig,
    DPOConfig,
    DrDPOConfig,
    IPOConfig,
    RDPOConfig,
)
from safelens.training.methods.reward_level import RewardLevelConfig
from safelens.training.methods.sft import SFTConfig
from safelens.training.optim import (
    DefaultStep,
    NonFiniteLossError,
    OptimizerWrapper,
    StepOutput,
)
from safelens.training.presets import PRESETS, available_presets
from safelens.training.registry import MethodSpec, available_methods, get_method, register_method
from safelens.training.resolve import make_method, resolve_config
from safelens.training.runs import RunRecord, aligned_baseline, train_or_reuse
from safelens.training.trainer import Trainer, TrainResult, align
from safelens.training.zo import ZerothOrderStep, layer_sensitivity, refinement_cost

__all__ = [
    "PRESETS",
    "RunRecord",
    "CDPOConfig",
    "DPOConfig",
    "DefaultStep",
    "DrDPOConfig",
    "IPOConfig",
    "Logps",
    "Method",
    "MethodSpec",
    "NPOConfig",
    "NonFiniteLossError",
    "OptimizerWrapper",
    "RDPOConfig",
    "RewardLevelConfig",
    "SFTConfig",
    "StepOutput",
    "TrainBatch",
    "TrainConfig",
    "TrainContext",
    "TrainResult",
    "Trainer",
    "ZerothOrderStep",
    "align",
    "aligned_baseline",
    "available_methods",
    "available_presets",
    "get_method",
    "layer_sensitivity",
    "make_method",
    "preference_metrics",
    "refinement_cost",
    "register_method",
    "resolve_config",
    "train_or_reuse",
]
