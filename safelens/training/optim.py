"""Optimizer, learning-rate schedule and the optimizer-wrapper hook point.

The trainer never calls ``loss.backward()`` or ``optimizer.step()`` itself. Each step it builds
a *loss closure* and hands it to ``wrapper.step(closure)``:

``closure(backward=True) -> StepOutput``
    zeroes the gradients of the trainable parameters, runs every micro-batch of the step
    (forward, loss, NaN/inf check, ``(loss / n_micro).backward()``), averages the gradients
    over processes, and returns the mean loss and metrics. ``closure(backward=False)`` does
    the forward passes only, under ``torch.no_grad()``. The closure reads the parameters as
    they are when it is called, so a wrapper may move them between calls.

:class:`DefaultStep` — one closure call, gradient clipping, ``optimizer.step()`` — is what every
first-order method uses. Later optimizers are wrappers with the same two methods:

* **subspace SAM (ShaPO)**: ``out = closure()``; ``g_S`` = the gradients masked to the
  safety subspace S; ``e = rho * g_S / (||g_S|| + 1e-12)``; add ``e`` to the parameters;
  ``out = closure()`` again (the gradient at the perturbed point); subtract ``e``; clip;
  ``optimizer.step()``. Every ``tau`` steps only (the seed's Algorithm 1) — the wrapper counts
  its calls and keeps the count in ``state_dict()`` so resume stays exact.
* **zeroth-order refinement (SPSA / MeZO)**: draw ``z`` from a seeded generator, perturb
  ``theta + eps z``, ``l+ = closure(backward=False).loss``, ``theta - eps z``, ``l- = ...``,
  restore, then set ``p.grad = (l+ - l-) / (2 eps) * z`` and ``optimizer.step()`` (or update
  in place); no backward pass at all. Layer-wise sensitivities ride along in its state.
  Implemented as :class:`safelens.training.zo.ZerothOrderStep` (the ``zo-refine`` method,
  :mod:`safelens.training.methods.zo_refine`).

A method supplies its wrapper through ``Method.optimizer_wrapper`` (ShaPO = a DPO-family loss
+ the SAM wrapper), or a caller passes ``Trainer(optimizer_wrapper=factory)`` to apply one to
any method (zeroth-order refinement after any first-order alignment). The loop is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from safelens.training.config import TrainConfig


class NonFiniteLossError(FloatingPointError):
    """The loss (or the gradient norm) became NaN/inf; no update was applied.

    Attributes:
        step: the 1-based optimizer step that failed (filled in by the trainer).
        what: ``"loss"`` or ``"gradient norm"``.
        value: the offending value.
        checkpoint: the kept checkpoint directory and its step, when one exists.
    """

    def __init__(self, what: str, value: float, step: int | None = None) -> None:
        self.what, self.value, self.step = what, value, step
        self.checkpoint: tuple[str, int] | None = None
        super().__init__(what)

    def __str__(self) -> str:
        where = f"at step {self.step}" if self.step is not None else ""
        kept = (f"; the last good checkpoint (step {self.checkpoint[1]}) is kept in "
                f"{self.checkpoint[0]}" if self.checkpoint else "; no checkpoint was written yet")
        return (f"the {self.what} became {self.value} {where}, so training stopped before "
                f"updating the weights{kept}. Lower the learning rate, check the data, or "
                "use --precision fp32.")


@dataclass
class StepOutput:
    """What a closure (and then a wrapper) returns for one optimizer step."""

    loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    grad_norm: float | None = None


LossClosure = Callable[..., StepOutput]


@runtime_checkable
class OptimizerWrapper(Protocol):
    """Turns a loss closure into one parameter update (see the module docstring)."""

    def step(self, closure: LossClosure) -> StepOutput:
        ...

    def state_dict(self) -> dict[str, Any]:
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...


class DefaultStep:
    """Backward once, clip the gradient norm, ``optimizer.step()``.

    Args:
        optimizer: the torch optimizer.
        params: the trainable parameters (for clipping).
        max_grad_norm: clip to this norm; ``None`` or 0 only measures it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                 max_grad_norm: float | None = 1.0) -> None:
        self.optimizer, self.params, self.max_grad_norm = optimizer, params, max_grad_norm

    def step(self, closure: LossClosure) -> StepOutput:
        out = closure()
        out.grad_norm = clip_gradients(self.params, self.max_grad_norm)
        self.optimizer.step()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def clip_gradients(params: list[torch.nn.Parameter], max_grad_norm: float | None) -> float:
    """Clip the total gradient norm (if ``max_grad_norm``) and return it (before clipping).

    Raises:
        NonFiniteLossError: the norm is NaN/inf (nothing is updated).
    """
    with_grad = [p for p in params if p.grad is not None]
    limit = max_grad_norm if max_grad_norm else math.inf
    norm = float(torch.nn.utils.clip_grad_norm_(with_grad, limit)) if with_grad else 0.0
    if not math.isfinite(norm):
        raise NonFiniteLossError("gradient norm", norm)
    return norm


def build_optimizer(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``params`` with the config's lr, betas, eps and weight decay."""
    return torch.optim.AdamW(
        params, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps,
        weight_decay=config.weight_decay, foreach=True,
    )


def warmup_steps(config: TrainConfig, total_steps: int) -> int:
    """Warmup length: ``warmup_steps`` if set, else ``ceil(warmup_ratio * total_steps)``."""
    if config.warmup_steps is not None:
        return min(config.warmup_steps, total_steps)
    return math.ceil(config.warmup_ratio * total_steps)


def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    """Learning-rate multiplier after ``step`` optimizer steps (HF ``get_scheduler`` shapes).

    Linear warmup from ``1/(warmup+1)`` (the first step already moves the weights), then
    linear decay to 0, half-cosine decay to 0, or constant.

    Examples:
        >>> [round(lr_factor(s, 2, 6, "linear"), 3) for s in range(6)]
        [0.333, 0.667, 1.0, 0.75, 0.5, 0.25]
    """
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown scheduler {kind!r}; expected linear, cosine or constant")


class _Factor:
    """Picklable-free callable for LambdaLR (its state is just the three numbers)."""

    def __init__(self, warmup: int, total: int, kind: str) -> None:
        self.warmup, self.total, self.kind = warmup, total, kind

    def __call__(self, step: int) -> float:
        return lr_factor(step, self.warmup, self.total, self.kind)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup + linear / cosine / constant schedule over ``total_steps`` optimizer steps."""
    if config.scheduler not in ("linear", "cosine", "constant"):
        raise ValueError(f"unknown scheduler {config.scheduler!r}; "
                         "expected linear, cosine or constant")
    fn = _Factor(warmup_steps(config, total_steps), total_steps, config.scheduler)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
