"""The one training loop that every method runs through.

Per run::

    rows   = subsample + label flips (train rows only) + method.prepare(rows)
             (one version of the rows per epoch when the method sets rows_per_epoch)
    ref    = reference log-probs of every row with the initial model (cached on disk)
    for step in range(start, total):                      # resumable
        wrapper.step(closure)                              # default: backward, clip, AdamW
        scheduler.step(); log; checkpoint every save_every steps

The closure runs each micro-batch as ONE forward pass over the method's response columns
(chosen and rejected stacked: 2B rows), checks the loss is finite before any backward pass
(NaN/inf stops the run with :class:`~safelens.training.optim.NonFiniteLossError`, leaving
the last good checkpoint), and averages gradients over processes.

Each forward runs on the model's hook-free plain view in length buckets, under the run's
``precision`` (``auto``: bf16 autocast where the hardware has native bf16 matmuls; master weights,
optimizer state, log-probs and losses stay float32), and — when the lower blocks are frozen —
starts at the first trained block from the frozen-prefix cache
(:mod:`safelens.training.prefix`).

🤗 Accelerate provides the device, the process group (``accelerate launch`` for several
processes/GPUs) and main-process coordination. ``batch_size`` is the global batch (all
processes and accumulation steps): each process takes every ``world``-th pair of the step's
batch, so N processes give the same update as one (checked to ~3e-7 on CPU by
``tests/unit/test_training_multiprocess.py``). Only the main process writes ``DIR``.

Several CPU processes (gloo backend; also what a CPU-only CI can test)::

    accelerate launch --multi_gpu --num_processes 2 --main_process_port 0 -m safelens align ...
    torchrun --nproc_per_node 2 --master_port 29501 -m safelens align ...

``--multi_gpu`` only selects Accelerate's torchrun launcher; without a GPU (or with
``--device cpu``) the trainer asks Accelerate for a CPU process group. Do not use
``accelerate launch --cpu --num_processes 2``: Accelerate 1.x then starts ONE process
(its CPU launcher forks several only through MPI, ``--mpirun_hostfile``).

The model is deliberately not wrapped in DDP:
:func:`~safelens.models.logprobs.response_logps` calls the HF decoder directly (it unembeds
only response positions) and optimizer wrappers such as SAM need several
forward/backward passes per step, so gradients are all-reduced explicitly in the closure
instead (a no-op with one process). Mixed precision is a plain ``torch.autocast``
(:func:`safelens.models.precision.autocast`) rather than Accelerate's ``mixed_precision``, so
that runs with different precisions can share one process (Accelerate's state is a singleton).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import safelens.models
from safelens.data.formats import as_preference_rows
from safelens.errors import SafelensError
from safelens.models import lora
from safelens.models.loading import hf_state_dict
from safelens.models.logprobs import response_logps
from safelens.models.plain import plain_view
from safelens.models.precision import autocast as precision_autocast
from safelens.models.precision import resolve_precision
from safelens.training import checkpoint as ckpt
from safelens.training import reference as refmod
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig
from safelens.training.data import (
    DataOrder,
    drop_identical_pairs,
    load_train_rows,
    prepare_rows,
    rows_sha256,
)

# _has_accelerator_device, launched_world_size, wants_cpu, resolve_device (= placement_device):
# re-export for one release (they moved to safelens.training.distributed)
from safelens.training.distributed import (  # noqa: F401
    _has_accelerator_device,
    launched_world_size,
    make_accelerator,
    placement_device,
    wants_cpu,
)
from safelens.training.distributed import placement_device as resolve_device  # noqa: F401
from safelens.training.methods.base import Method, TrainContext
from safelens.training.optim import (
    NonFiniteLossError,
    StepOutput,
    build_optimizer,
    build_scheduler,
)
from safelens.training.prefix import FrozenPrefixCache
from safelens.training.presets import check_preset_memory
from safelens.training.resolve import make_method
from safelens.training.tracking import Tracker, check_trackers, make_trackers

logger = logging.getLogger(__name__)

Callback = Callable[["Trainer", int, dict[str, Any]], None]
WrapperFactory = Callable[[torch.optim.Optimizer, list, TrainContext], Any]


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns."""

    model: Any
    out_dir: Path
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    reference_cache_hit: bool | None = None


class BatchBuilder:
    """``method.build_batch`` for the run: counts the responses it cuts to ``max_length`` (the
    trainer warns once at the end instead of once per batch).

    Attributes:
        encoded: responses encoded so far (by :meth:`__call__`).
        cut: of those, how many were cut.
    """

    def __init__(self, method: Method, tokenizer: Any) -> None:
        self.method, self.tokenizer = method, tokenizer
        self.encoded = 0
        self.cut = 0

    def __call__(self, chunk: Sequence[dict[str, Any]], index: torch.Tensor) -> TrainBatch:
        """The batch of ``chunk`` (rows number ``index`` ``[b]`` of the training rows)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*were truncated to max_length")
            batch = self.method.build_batch(chunk, index, self.tokenizer)
        self.encoded += len(batch.chat)
        self.cut += int(batch.chat.truncated.sum())
        return batch

    def quiet(self, chunk: Sequence[dict[str, Any]], index: torch.Tensor) -> TrainBatch:
        """The same batch, uncounted and with every warning silenced (cache set-up)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.method.build_batch(chunk, index, self.tokenizer)


@dataclass
class TrainState:
    """One run's moving parts: built by :meth:`Trainer._setup`, advanced by the step loop.

    Attributes:
        accelerator: the 🤗 Accelerate ``Accelerator`` (process group, main process).
        device: where the model trains.
        autocast: the run's precision context (:func:`safelens.models.precision.autocast`).
        model: the policy, trained in place.
        param_names: HF names of the trained parameters, in optimizer order.
        params: the trained parameters, in the same order.
        rows: the training rows (after ``method.prepare``).
        build: the batch builder.
        order: the seeded data order.
        total_steps: optimizer steps of the whole run.
        optimizer: AdamW over ``params``.
        scheduler: its learning-rate schedule.
        wrapper: the optimizer wrapper (``step(closure)``).
        start: the first step to run (the checkpoint's step when resuming).
        last_saved: the step of the newest checkpoint on disk (None: none yet).
        bar: the tqdm progress bar (None: off, or not the main process).
        t0: ``time.time()`` when the step loop began.
    """

    accelerator: Any
    device: torch.device
    autocast: contextlib.AbstractContextManager
    model: Any
    param_names: list[str]
    params: list[torch.nn.Parameter]
    rows: list[dict[str, Any]]
    build: BatchBuilder
    order: DataOrder
    total_steps: int
    optimizer: torch.optim.Optimizer
    scheduler: Any
    wrapper: Any
    start: int = 0
    last_saved: int | None = None
    bar: Any = None
    t0: float = 0.0

    @property
    def is_main(self) -> bool:
        """Whether this is the process that writes the run directory."""
        return bool(self.accelerator.is_main_process)

    @property
    def world(self) -> int:
        """Number of processes."""
        return int(self.accelerator.num_processes)

    @property
    def rank(self) -> int:
        """This process's index."""
        return int(self.accelerator.process_index)


def named_trainable_parameters(model: Any, freeze: str | None = None
                               ) -> list[tuple[str, torch.nn.Parameter]]:
    """``[(hf_name, parameter)]`` of a bridged model, deduplicated, in HF state-dict order.

    The bridge aliases each parameter under several module paths; the canonical Hugging Face
    names (:func:`safelens.models.loading.hf_state_dict`) are used instead, so names are stable
    across runs and match the saved checkpoint. Parameters whose name matches ``freeze`` (a
    regex) get ``requires_grad = False`` and are left out; tied weights appear once.
    """
    hf = getattr(model, "original_model", model)
    by_ptr = {p.data_ptr(): p for p in hf.parameters()}
    pattern = re.compile(freeze) if freeze else None
    out, seen = [], set()
    for name, tensor in hf_state_dict(hf).items():
        ptr = tensor.data_ptr()
        if ptr in seen or ptr not in by_ptr:
            continue
        seen.add(ptr)
        param = by_ptr[ptr]
        if pattern is not None and pattern.search(name):
            param.requires_grad_(False)
            continue
        param.requires_grad_(True)
        out.append((name, param))
    if not out:
        raise ValueError(f"freeze={freeze!r} leaves no parameter to train")
    return out


def activation_checkpointing(model: Any, on: bool) -> None:
    """Turn HF gradient (activation) checkpointing on or off for the module training runs on:
    the bridge's plain view (:mod:`safelens.models.plain`), not the hooked ``original_model``.

    Non-reentrant (``use_reentrant=False``): it needs no input that requires grad, so it also
    works with LoRA adapters and the frozen-prefix cache.
    """
    view = plain_view(model)
    if hasattr(view, "activation_checkpointing_enable"):  # transformers >= 5.23
        if on:
            view.activation_checkpointing_enable({"use_reentrant": False})
        else:
            view.activation_checkpointing_disable()
    elif on:
        view.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        view.gradient_checkpointing_disable()


class Trainer:
    """Train a policy with one registered method.

    Args:
        method: a :class:`~safelens.training.methods.base.Method` (see ``make_method``) or a
            registered name (then built from ``preset`` and ``overrides``).
        out_dir: the run directory (``model/``, ``checkpoint/``, ``log.jsonl``,
            ``config.json``, ``reference/``).
        model: the policy (a ``TransformerBridge``); default ``load_model(config.model)``.
            It is trained in place.
        rows: training preference rows: ours, TRL's standard or conversational format (list of
            dicts) or a ``datasets.Dataset`` (:func:`safelens.data.formats.as_preference_rows`);
            default ``config.train_file`` / ``config.dataset`` or the built-in split.
        data_source: how ``rows`` were obtained, for ``config.json``.
        preset: the preset name, for ``config.json`` (and to build ``method`` from a name).
        reward_model: a scorer for ``reward-level`` (``.score(prompts, responses)``).
        optimizer_wrapper: ``factory(optimizer, params, ctx)`` overriding the method's wrapper.
        callbacks: ``fn(trainer, step, record)`` called after every optimizer step, on every
            process, with the 1-based ``step`` and that step's record (the ``log.jsonl`` names:
            ``loss``, ``rewards/margins``, ``lr``, ``grad_norm``, ...; written to ``log.jsonl``
            and the ``report_to`` trackers only every ``log_every`` steps). ``trainer.step`` is
            the same step; raising stops the run (the last checkpoint is kept).
        resume: continue from ``out_dir/checkpoint``.
        overwrite: start over in an ``out_dir`` that already holds a run (the reference cache
            is kept).
        **overrides: config overrides when ``method`` is a name.

    Examples:
        >>> result = Trainer("dpo", "runs/dpo-quick", preset="quick").train()   # doctest: +SKIP
        >>> result.history[-1]["rewards/accuracies"]                           # doctest: +SKIP
        1.0
    """

    def __init__(
        self,
        method: Method | str,
        out_dir: str | Path,
        *,
        model: Any = None,
        rows: Sequence[dict[str, Any]] | None = None,
        data_source: str | None = None,
        preset: str | None = None,
        reward_model: Any = None,
        optimizer_wrapper: WrapperFactory | None = None,
        callbacks: Sequence[Callback] = (),
        resume: bool = False,
        overwrite: bool = False,
        **overrides: Any,
    ) -> None:
        if isinstance(method, str):
            method = make_method(method, preset=preset, **overrides)
        elif overrides:
            raise ValueError("config overrides go into the method's config when passing a Method")
        if not isinstance(method, Method):
            raise TypeError(f"method must be a Method or a registered name, got {method!r}")
        self.method = method
        self.config: TrainConfig = method.config
        self.out_dir = Path(out_dir)
        self.model = model
        # What config.json calls the base model: the config's name, or the passed model's.
        self.base_model = (self.config.model if model is None else
                           str(getattr(getattr(model, "cfg", None), "model_name", "<in-memory>")))
        # A datasets.Dataset or TRL-format rows become ours; our own rows pass as they are.
        self.rows = (as_preference_rows(rows, harmful=self.config.default_harmful)
                     if rows is not None else None)
        self.data_source = data_source
        self.preset = preset
        if reward_model is not None:
            if not hasattr(method, "reward_scorer"):
                raise ValueError(f"method {method.name!r} does not use a reward model")
            method.reward_scorer = reward_model
        self.wrapper_factory = optimizer_wrapper
        self.callbacks = list(callbacks)
        self.resume, self.overwrite = resume, overwrite
        self.history: list[dict[str, Any]] = []
        self.reference: refmod.ReferenceCache | None = None
        self.prefix: FrozenPrefixCache | None = None
        self.precision: str | None = None
        self.step = 0
        self.trackers: list[Tracker] = []
        # optional packages are checked before any model loads
        check_trackers(self.config.report_to)
        if self.config.peft == "lora":
            lora.require_peft("TrainConfig.peft='lora' (--peft lora)")
            if resume:
                raise SafelensError("resume=True (--resume) with peft='lora' is not supported; "
                                    "expected a new run (--overwrite) or peft='none'")
            if type(method).optimizer_wrapper is not Method.optimizer_wrapper:
                # SubspaceSAM (shapo) and ZerothOrderStep (zo-refine) act on the weights
                raise SafelensError(f"method {method.name!r} updates the weights through its own "
                                    "optimizer wrapper, which peft='lora' (--peft lora) does not "
                                    "support; expected peft='none'")

    # ------------------------------------------------------------------ setup helpers
    def _prepare_dir(self) -> int | None:
        """Check the run directory; returns the checkpoint step to resume from."""
        ckpt.check_run_dir(self.out_dir)  # a file or a model folder is refused
        state = ckpt.read_trainer_state(self.out_dir) if self.out_dir.exists() else None
        if self.resume:
            if state is None:
                raise FileNotFoundError(
                    f"cannot resume: {self.out_dir / 'checkpoint'} does not exist (no run was "
                    "checkpointed there); drop --resume to start a new run")
            ckpt.verify_checkpoint(self.out_dir)  # a damaged file is named before any work
            self._check_resume_config()
            return int(state["step"])
        if state is not None or (self.out_dir / "log.jsonl").exists():
            if not self.overwrite:
                raise FileExistsError(
                    f"{self.out_dir} already holds a run"
                    + (f" (checkpoint at step {state['step']})" if state else "")
                    + "; pass resume=True (--resume) to continue it or overwrite=True "
                    "(--overwrite) to start over")
            for part in ("model", "checkpoint", ckpt.STAGING, "adapter", "tensorboard"):
                shutil.rmtree(self.out_dir / part, ignore_errors=True)
            for part in ("log.jsonl", "config.json"):
                (self.out_dir / part).unlink(missing_ok=True)
        return None

    def _check_resume_config(self) -> None:
        path = self.out_dir / "config.json"
        if not path.is_file():
            return
        saved = ckpt.read_json(path)
        if saved.get("method") not in (None, self.method.name):
            raise ValueError(f"{self.out_dir} was trained with method {saved.get('method')!r}, "
                             f"not {self.method.name!r}")
        ckpt.refuse_changed_settings(self.out_dir, saved, self.config.to_dict())

    def _write_config(self, n_rows: int, total_steps: int, accelerator: Any) -> None:
        record = {
            "method": self.method.name,
            **self.config.to_dict(),
            "base_model": self.base_model,
            "preset": self.preset,
            "data_source": self.data_source,
            "train_data_sha256": getattr(self, "train_data_sha256", None),
            "n_train_rows": n_rows,
            "total_steps": total_steps,
            "num_processes": accelerator.num_processes,
            "columns": list(self.method.columns),
            "average_logps": self.method.average_logps,
            "precision_resolved": self.precision,
            "prefix_cache_layer": self.prefix.layer if self.prefix is not None else None,
            "safelens_version": safelens.__version__,
            "torch_version": torch.__version__,
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.out_dir / "config.json.tmp"
        tmp.write_text(json.dumps(record, indent=2, default=str))
        tmp.replace(self.out_dir / "config.json")

    def _truncate_log(self, step: int) -> None:
        """Drop log records after ``step`` (written after the last checkpoint, before a crash)."""
        path = self.out_dir / "log.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            if rec.get("step", 0) <= step:
                keep.append(line)
        path.write_text("".join(k + "\n" for k in keep))
        self.history = [json.loads(k) for k in keep]

    # ------------------------------------------------------------------ main
    def train(self) -> TrainResult:
        """Run (or resume) training; returns the trained model and the log records.

        Raises:
            NonFiniteLossError: the loss or gradient norm became NaN/inf (message names the
                step and the kept checkpoint).
            FileExistsError: ``out_dir`` holds a run and neither resume nor overwrite is set.
        """
        try:
            state = self._setup()
            self._run_steps(state)
            return self._finish(state)
        finally:
            for tracker in self.trackers:
                tracker.close()
            self.trackers = []
            if self.model is not None:  # a failed LoRA run: the bridge gets what was trained
                lora.merge_lora(self.model)

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> TrainState:
        """Everything before the first step, in a fixed order (it decides the RNG stream):
        process group and run directory, seed, model, rows, frozen-prefix cache, reference
        log-probs, optimizer, and last the checkpoint's states when resuming."""
        from accelerate.utils import set_seed  # heavy: imported only when a run starts

        cfg, method = self.config, self.method
        accelerator = make_accelerator(cfg.device)
        resume_step = self._open_run_dir(accelerator)
        set_seed(cfg.seed)
        device = placement_device(cfg.device, accelerator.device)
        model = self._place_model(device)
        named = self._trainable(model)
        params = [p for _, p in named]
        if self.preset is not None:
            check_preset_memory(self.preset, sum(p.numel() for p in model.original_model.parameters()),
                                sum(p.numel() for p in params), device)
        if cfg.gradient_checkpointing:
            activation_checkpointing(model, True)
        self.precision = resolve_precision(cfg.precision, device)
        autocast = precision_autocast(self.precision, device)

        rows = self._load_rows()
        cache_dir = Path(cfg.reference_cache_dir or self.out_dir / "reference")
        world = accelerator.num_processes
        ctx = TrainContext(model, model.tokenizer, accelerator, self.out_dir, cache_dir, named,
                           epochs_for=lambda n: DataOrder(n, cfg.batch_size, cfg.seed)
                           .epochs_started(self._total_steps(n, world)))
        method.rows_per_epoch = None  # prepare sets it when it makes one version per epoch
        rows = method.prepare(rows, ctx)
        if not rows:
            raise ValueError(f"method {method.name!r} kept no training rows")
        self.train_rows = rows
        n_rows = self._rows_per_epoch(rows, ctx)
        total_steps = self._total_steps(n_rows, world)
        build = BatchBuilder(method, model.tokenizer)
        self.prefix = self._prefix_cache(model, named, rows, build, device, autocast)
        if method.needs_reference:
            self.reference = self._reference(ctx, rows, build, device, autocast)

        optimizer = build_optimizer(params, cfg)
        scheduler = build_scheduler(optimizer, cfg, total_steps)
        factory = self.wrapper_factory or method.optimizer_wrapper
        state = TrainState(
            accelerator, device, autocast, model, [n for n, _ in named], params, rows, build,
            DataOrder(n_rows, cfg.batch_size, cfg.seed,
                      per_epoch_rows=method.rows_per_epoch is not None),
            total_steps, optimizer, scheduler, factory(optimizer, params, ctx))
        if resume_step is not None:
            self._restore(state)
        if state.is_main:
            self._write_config(n_rows, total_steps, accelerator)
            self.trackers = make_trackers(cfg.report_to, self.out_dir,
                                          {"method": method.name, "preset": self.preset,
                                           **cfg.to_dict()})
        return state

    def _trainable(self, model: Any) -> list[tuple[str, torch.nn.Parameter]]:
        """``[(name, parameter)]`` to train: the model's weights (HF names, minus ``freeze``),
        or with ``peft='lora'`` the LoRA adapters injected now (minus those ``freeze`` names)."""
        cfg = self.config
        if cfg.peft != "lora":
            return named_trainable_parameters(model, cfg.freeze)
        targets = [t.strip() for t in cfg.lora_target_modules.split(",")]
        named = lora.add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, targets)
        if cfg.freeze:
            pattern = re.compile(cfg.freeze)
            for name, param in named:
                if pattern.search(name):
                    param.requires_grad_(False)
            named = [(n, p) for n, p in named if p.requires_grad]
        if not named:
            raise SafelensError(f"TrainConfig.freeze={cfg.freeze!r} leaves no LoRA adapter to "
                                "train; expected a regex that keeps some (--freeze)")
        return named

    def _open_run_dir(self, accelerator: Any) -> int | None:
        """The main process checks (or clears) the run directory; every process learns the
        checkpoint step to resume from (None: a new run)."""
        resume_step = self._prepare_dir() if accelerator.is_main_process else None
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            resume_step = (
                (ckpt.read_trainer_state(self.out_dir) or {}).get("step") if self.resume else None
            )
        return resume_step

    def _place_model(self, device: torch.device) -> Any:
        """The policy on ``device``: ``load_model(config.model)`` unless one was passed."""
        if self.model is None:
            # looked up on the package at call time, where tests substitute a model
            self.model = safelens.models.load_model(self.config.model, device=device)
        elif next(self.model.parameters()).device != device:
            self.model.to(device)
        return self.model

    def _load_rows(self) -> list[dict[str, Any]]:
        """The training rows before ``method.prepare``: subsample, flips, identical pairs out."""
        cfg = self.config
        if self.rows is None:
            rows, source = load_train_rows(cfg)
            self.data_source = self.data_source or source
        else:
            rows = self.rows
            self.data_source = self.data_source or "rows passed to Trainer"
        rows = drop_identical_pairs(prepare_rows(rows, cfg), self.method.columns,
                                    self.data_source)
        self.train_data_sha256 = rows_sha256(rows)
        return rows

    def _rows_per_epoch(self, rows: list[dict[str, Any]], ctx: TrainContext) -> int:
        """Rows per epoch: all of them, or the method's ``rows_per_epoch`` when ``prepare``
        made one version per epoch (checked: one version for every epoch the run starts)."""
        n = self.method.rows_per_epoch
        if n is None:
            return len(rows)
        if not (isinstance(n, int) and n >= 1 and len(rows) == n * ctx.epochs_for(n)):
            raise ValueError(
                f"method {self.method.name!r}: prepare returned {len(rows)} rows with "
                f"rows_per_epoch={n!r}; expected rows_per_epoch x epochs_for(rows_per_epoch)")
        return n

    def _total_steps(self, n_rows: int, world: int) -> int:
        """Optimizer steps of the run; checks that each process gets whole micro-batches."""
        cfg = self.config
        micro_size = cfg.batch_size // cfg.grad_accum_steps  # pairs per micro-batch, all processes
        if micro_size % world:
            raise ValueError(
                f"batch_size / grad_accum_steps = {micro_size} pairs per "
                f"micro-batch is not divisible by {world} processes"
            )
        return cfg.max_steps or math.ceil(cfg.epochs * n_rows / cfg.batch_size)

    def _prefix_cache(self, model: Any, named: list[tuple[str, torch.nn.Parameter]],
                      rows: list[dict[str, Any]], build: BatchBuilder, device: torch.device,
                      autocast: contextlib.AbstractContextManager) -> FrozenPrefixCache | None:
        """The frozen blocks' output once per row, or None (off, nothing frozen, or it failed
        its check against a full forward)."""
        if not self.config.prefix_cache:
            return None
        prefix = FrozenPrefixCache.for_model(model, named, self.config.prefix_cache_gb)
        if prefix is None:
            return None
        prefix.reserve(rows, build.quiet, int(model.original_model.config.hidden_size))
        probe = build.quiet(rows[:2], torch.arange(min(2, len(rows))))
        probe.chat = probe.chat.to(device)
        return prefix if prefix.check(model, probe, autocast) else None

    def _reference(self, ctx: TrainContext, rows: list[dict[str, Any]], build: BatchBuilder,
                   device: torch.device, autocast: contextlib.AbstractContextManager
                   ) -> refmod.ReferenceCache:
        """Reference log-probs of every row with the initial weights (before any resume
        weights are loaded), from the cache on disk or computed now by the main process first."""
        cfg, method, accelerator = self.config, self.method, ctx.accelerator
        world = accelerator.num_processes
        ref_model = method.reference_model(ctx)
        ref_prefix = self.prefix if ref_model is ctx.model else None
        topk = method.reference_topk() if method.needs_logits else None
        key = refmod.reference_key(
            rows,
            method.columns,
            refmod.model_fingerprint(ref_model),
            cfg.max_length,
            method.needs_token_logps,
            self.precision,
            method.cache_key(),
        )
        micro_size = cfg.batch_size // cfg.grad_accum_steps
        with accelerator.main_process_first():
            return refmod.load_or_compute(
                ctx.cache_dir,
                key,
                lambda: refmod.compute_reference(
                    ref_model,
                    rows,
                    build,
                    method.columns,
                    cfg.ref_batch_size or micro_size // world,
                    method.needs_token_logps,
                    device,
                    autocast,
                    progress=cfg.progress and accelerator.is_main_process,
                    prefix=ref_prefix,
                    logits_topk=topk,
                    logits_max_gb=method.reference_logits_max_gb(),
                ),
                method.columns,
                is_main=accelerator.is_main_process,
            )

    def _restore(self, state: TrainState) -> None:
        """Load the checkpoint's weights and optimizer / scheduler / wrapper / RNG states."""
        ckpt.load_weights_into(state.model, self.out_dir / "model")
        meta = ckpt.load_checkpoint(self.out_dir, state.optimizer, state.scheduler,
                                    state.wrapper, state.param_names)
        state.start = state.last_saved = int(meta["step"])
        if state.is_main:
            self._truncate_log(state.start)

    # ------------------------------------------------------------------ step loop
    def _run_steps(self, state: TrainState) -> None:
        """Steps ``state.start`` .. ``state.total_steps - 1``."""
        state.model.train()
        state.t0 = time.time()
        if self.config.progress and state.is_main:
            state.bar = tqdm(total=state.total_steps, initial=state.start,
                             desc=f"align {self.method.name}")
        for step in range(state.start, state.total_steps):
            self._train_step(state, step)
        if state.bar is not None:
            state.bar.close()

    def _train_step(self, state: TrainState, step: int) -> None:
        """One optimizer step (0-based ``step``): update, log, checkpoint, callbacks."""
        cfg, n_micro = self.config, self.config.grad_accum_steps
        mine = state.order.batch(step)[state.rank::state.world]
        micro = [mine[i::n_micro] for i in range(n_micro)]
        progress = {"step": step, "total_steps": state.total_steps,
                    "epoch": state.order.epoch(step), "max_epoch": state.order.epoch(state.total_steps)}
        closure = self._make_closure(state, micro, progress)
        lr = state.scheduler.get_last_lr()[0]
        try:
            out = state.wrapper.step(closure)
        except NonFiniteLossError as err:
            err.step = step + 1
            if state.last_saved is not None:
                err.checkpoint = (str(self.out_dir / "checkpoint"), state.last_saved)
            if state.bar is not None:
                state.bar.close()
            raise
        state.scheduler.step()
        self.step = step + 1
        record = {"step": step + 1, "epoch": round(state.order.epoch(step + 1), 4),
                  "loss": out.loss, **out.metrics, "lr": lr, "grad_norm": out.grad_norm,
                  "time": round(time.time() - state.t0, 3)}
        self.history.append(record)
        if state.is_main and ((step + 1) % cfg.log_every == 0 or step + 1 == state.total_steps):
            with (self.out_dir / "log.jsonl").open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            for tracker in self.trackers:
                tracker.log(step + 1, record)
        if state.bar is not None:
            state.bar.update(1)
            state.bar.set_postfix(loss=f"{out.loss:.4f}")
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < state.total_steps:
            self._save(state, step + 1)
            state.last_saved = step + 1
        for callback in self.callbacks:
            callback(self, step + 1, record)

    def _finish(self, state: TrainState) -> TrainResult:
        """Warn about cut responses, save the final checkpoint and model, return the result."""
        if state.build.cut:
            warnings.warn(f"{state.build.cut} of {state.build.encoded} encoded responses were cut "
                          f"to max_length={self.config.max_length} tokens",
                          stacklevel=3)  # the caller of train()
        if state.last_saved != state.total_steps:
            self._save(state, state.total_steps)
        if self.config.gradient_checkpointing:
            activation_checkpointing(state.model, False)
        # the bridge's hooked modules never saw the adapters: fold them into its weights
        lora.merge_lora(state.model)
        state.model.eval()
        return TrainResult(state.model, self.out_dir, state.total_steps, self.history,
                           self.reference.hit if self.reference is not None else None)

    def _save(self, state: TrainState, step: int) -> None:
        """Checkpoint at ``step`` (the final one without optimizer state); main process only."""
        accelerator = state.accelerator
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            ckpt.save_checkpoint(self.out_dir, state.model, step, state.total_steps,
                                 state.param_names,
                                 state.optimizer if step < state.total_steps else None,
                                 state.scheduler, state.wrapper,
                                 extra={"method": self.method.name, "precision": self.precision})
            if lora.has_lora(state.model):
                staging = self.out_dir / "adapter.staging"
                shutil.rmtree(staging, ignore_errors=True)
                lora.save_adapter(state.model, staging, self.base_model)
                shutil.rmtree(self.out_dir / "adapter", ignore_errors=True)
                staging.replace(self.out_dir / "adapter")
        accelerator.wait_for_everyone()

    def _make_closure(self, state: TrainState, micro: list[list[int]],
                      progress: dict[str, Any] | None = None) -> Callable[..., StepOutput]:
        """The step's ``closure(backward=True) -> StepOutput`` over this process's micro-batches."""
        method, reference, prefix = self.method, self.reference, self.prefix
        rows, build, params = state.rows, state.build, state.params
        device, autocast, accelerator = state.device, state.autocast, state.accelerator
        n_micro = self.config.grad_accum_steps
        world = accelerator.num_processes

        def closure(backward: bool = True) -> StepOutput:
            if backward:
                for p in params:
                    p.grad = None
            losses: list[float] = []
            sums: dict[str, float] = {}
            grad_ctx = contextlib.nullcontext() if backward else torch.no_grad()
            with grad_ctx:
                for idx in micro:
                    index = torch.tensor(idx, dtype=torch.long)
                    batch = build([rows[i] for i in idx], index)
                    batch.chat = batch.chat.to(device)
                    batch.extras.update(progress or {})
                    start = (prefix.lookup(batch, self.model, autocast)
                             if prefix is not None else None)
                    with autocast:
                        out = response_logps(self.model, batch.chat, average=method.average_logps,
                                             start=start, return_logits=method.needs_logits)
                    policy = Logps(batch.columns, out[0], out[1], batch.chat.response_mask,
                                   out[2] if method.needs_logits else None)
                    ref = (reference.lookup(batch, average=method.average_logps,
                                            per_token=method.needs_token_logps,
                                            logits=method.needs_logits)
                           if reference is not None else None)
                    loss, metrics = method.compute_loss(policy, ref, batch)
                    value = float(loss.detach())
                    bad = not math.isfinite(value)
                    if world > 1:
                        flag = accelerator.reduce(torch.tensor([float(bad)], device=device), "sum")
                        bad = bool(flag.item() > 0)
                    if bad:
                        raise NonFiniteLossError("loss", value)
                    if backward:
                        (loss / n_micro).backward()
                    losses.append(value)
                    for k, v in metrics.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
            if backward and world > 1:
                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
                reduced = accelerator.reduce(grads, reduction="mean")
                for p, g in zip(params, reduced, strict=True):
                    p.grad = g
            names = sorted(sums)
            values = torch.tensor([sum(losses) / len(losses)]
                                  + [sums[k] / len(losses) for k in names], device=device)
            if world > 1:
                values = accelerator.reduce(values, reduction="mean")
            values = values.tolist()
            return StepOutput(values[0], dict(zip(names, values[1:], strict=True)))

        return closure


def align(method: str | Method, out_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Train and save in one call: ``Trainer(method, out_dir, **kwargs).train()``."""
    return Trainer(method, out_dir, **kwargs).train()
