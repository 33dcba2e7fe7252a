"""The :class:`Method` interface every training method implements.

The trainer owns the loop (data order, reference cache, forward passes, accumulation,
optimizer, checkpoints, logging); a method only says

* which response columns it trains on (``columns``) and whether it needs reference
  log-probs (``needs_reference``), length-normalised log-probs (``average_logps``) or
  per-token reference log-probs (``needs_token_logps``);
* how to turn policy/reference log-probs into a loss (``compute_loss``) — by calling the
  pure functions of :mod:`safelens.losses`, never by re-deriving a formula here.

Optional hooks, each with a do-nothing default, let later methods plug in without touching
the loop:

* ``prepare(rows, ctx)`` — once, before the reference pass: filter rows, attach per-row
  constants (reward scores), or inspect the model (a safety-subspace mask for ShaPO). It may
  return one version of the rows per epoch (the deep-alignment methods redraw their
  harmful-prefix lengths each epoch): ``ctx.epochs_for(n)`` says how many epochs the run
  starts over ``n`` rows, and setting ``rows_per_epoch = n`` tells the trainer that the
  returned rows are that many versions, epoch-major; every per-row cache (reference
  log-probs, frozen prefix) then covers each version;
* ``build_batch(rows, index, tokenizer)`` — how rows become a :class:`TrainBatch` (DOOR's
  harmful-prefix augmentation encodes ``prefixes=``; it must be deterministic per row,
  because the reference cache is keyed by the rows);
* ``optimizer_wrapper(optimizer, params, ctx)`` — the object whose ``step(closure)`` updates
  the weights (subspace SAM, zeroth-order SPSA; see :mod:`safelens.training.optim`);
* ``cache_key()`` — extra settings that change the reference log-probs;
* ``reference_model(ctx)`` — the model the reference pass runs (default: the initial policy);
  with ``needs_logits``, ``reference_topk()`` / ``reference_logits_max_gb()`` size its cached
  next-token distributions.

Each batch's ``extras`` carry the run's progress: ``step`` (0-based), ``total_steps``,
``epoch`` (fractional epochs done before this step) and ``max_epoch`` (the run's length in
epochs), for schedules such as seed 001's delta_epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from safelens.models.chat import encode
from safelens.training.batch import Logps, TrainBatch, concat_columns
from safelens.training.config import TrainConfig
from safelens.training.optim import DefaultStep, OptimizerWrapper


@dataclass
class TrainContext:
    """What ``prepare`` and ``optimizer_wrapper`` may look at.

    Attributes:
        model: the policy (a ``TransformerBridge``), before any update.
        tokenizer: its tokenizer.
        accelerator: the 🤗 Accelerate ``Accelerator`` of the run.
        out_dir: the run directory.
        cache_dir: where per-dataset caches (reference log-probs, reward scores) go.
        named_params: ``[(hf_name, parameter)]`` of the trainable parameters, in optimizer order.
        epochs_for: ``epochs_for(n)`` = the epochs the run starts over ``n`` rows per epoch
            (the last one possibly partial; from ``epochs`` or ``max_steps`` and
            ``batch_size``), for a ``prepare`` that makes one version of the rows per epoch.
    """

    model: Any
    tokenizer: Any
    accelerator: Any
    out_dir: Any
    cache_dir: Any
    named_params: list[tuple[str, torch.nn.Parameter]]
    epochs_for: Callable[[int], int] = lambda n: 1


class Method:
    """Base class of a training method (see the module docstring)."""

    #: set by the registry (``make_method``)
    name: str = ""
    #: response columns encoded and forwarded together, in this order
    columns: tuple[str, ...] = ("chosen", "rejected")
    needs_reference: bool = True
    #: mean instead of summed response log-probs (IPO)
    average_logps: bool = False
    #: cache per-token reference log-probs too (token-level losses)
    needs_token_logps: bool = False
    #: full next-token logits at the response positions: the policy's from its forward
    #: (``Logps.logits``), the reference's top-k from the cache (:meth:`reference_topk`)
    needs_logits: bool = False
    #: set by ``prepare`` when its rows are one version per epoch, epoch-major: row i of
    #: epoch e at ``rows[e * rows_per_epoch + i]``, for each of ``ctx.epochs_for(rows_per_epoch)``
    #: epochs; None: the same rows every epoch
    rows_per_epoch: int | None = None

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    # -- hooks ------------------------------------------------------------------------------
    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        """Called once before the reference pass; returns the rows to train on (one version
        per epoch when it sets ``rows_per_epoch``)."""
        return rows

    def build_batch(
        self, rows: Sequence[dict[str, Any]], index: torch.Tensor, tokenizer: Any
    ) -> TrainBatch:
        """Encode ``rows`` (all of ``self.columns``) into one :class:`TrainBatch`."""
        prompts, responses = concat_columns(rows, self.columns)
        chat = encode(tokenizer, prompts, responses, max_length=self.config.max_length)
        return TrainBatch(list(rows), index, tuple(self.columns), chat)

    def compute_loss(
        self, policy: Logps, ref: Logps | None, batch: TrainBatch
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(scalar loss, metrics)``; metrics are floats or 0-d tensors (TRL's names)."""
        raise NotImplementedError

    def optimizer_wrapper(
        self, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
        ctx: TrainContext,
    ) -> OptimizerWrapper:
        """The object that turns a loss closure into a parameter update (default: plain)."""
        return DefaultStep(optimizer, params, max_grad_norm=self.config.max_grad_norm)

    def cache_key(self) -> dict[str, Any]:
        """Settings of ``build_batch`` that change the reference log-probs."""
        return {}

    def reference_model(self, ctx: TrainContext) -> Any:
        """The model whose log-probs are the reference (default: the initial policy)."""
        return ctx.model

    def reference_topk(self) -> int:
        """With ``needs_logits``: reference log-probs kept per position (0 = all V)."""
        return 0

    def reference_logits_max_gb(self) -> float:
        """Memory bound (GiB) of the cached reference logits."""
        return 2.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self.config!r})"


def preference_metrics(
    pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, beta: float
) -> dict[str, torch.Tensor]:
    """TRL's logged names for a pair batch; rewards are ``beta * (policy - ref)``.

    Args:
        pc, pr: ``[B]`` policy log-probs of chosen / rejected.
        rc, rr: ``[B]`` reference log-probs of chosen / rejected.
        beta: the method's beta.
    """
    with torch.no_grad():
        chosen = beta * (pc - rc)  # [B]
        rejected = beta * (pr - rr)  # [B]
        return {
            "rewards/chosen": chosen.mean(),
            "rewards/rejected": rejected.mean(),
            "rewards/margins": (chosen - rejected).mean(),
            "rewards/accuracies": (chosen > rejected).float().mean(),
            "logps/chosen": pc.mean(),
            "logps/rejected": pr.mean(),
        }
