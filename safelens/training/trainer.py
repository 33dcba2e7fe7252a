"""The one training loop that every method runs through.

Per run::

    rows   = subsample + label flips (train rows only) + method.prepare(rows)
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

from safelens.models.logprobs import response_logps
from safelens.models.precision import autocast as precision_autocast
from safelens.models.precision import resolve_precision
from safelens.training import checkpoint as ckpt
from safelens.training import reference as refmod
from safelens.training.batch import Logps
from safelens.training.config import TrainConfig
from safelens.training.data import (
    DataOrder,
    drop_identical_pairs,
    load_train_rows,
    prepare_rows,
    rows_sha256,
)
from safelens.training.methods.base import Method, TrainContext
from safelens.training.optim import (
    NonFiniteLossError,
    StepOutput,
    build_optimizer,
    build_scheduler,
)
from safelens.training.prefix import FrozenPrefixCache

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


def named_trainable_parameters(model: Any, freeze: str | None = None
                               ) -> list[tuple[str, torch.nn.Parameter]]:
    """``[(hf_name, parameter)]`` of a bridged model, deduplicated, in HF state-dict order.

    The bridge aliases each parameter under several module paths; the canonical Hugging Face
    names (:func:`safelens.models.loading.hf_state_dict`) are used instead, so names are stable
    across runs and match the saved checkpoint. Parameters whose name matches ``freeze`` (a
    regex) get ``requires_grad = False`` and are left out; tied weights appear once.
    """
    from safelens.models.loading import hf_state_dict

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


def _has_accelerator_device() -> bool:
    """Whether torch sees a GPU-like device (CUDA, XPU, MPS, ...), as Accelerate would pick."""
    probe = getattr(getattr(torch, "accelerator", None), "is_available", None)
    return bool(probe()) if probe is not None else torch.cuda.is_available()


def launched_world_size(env: dict[str, str] | None = None) -> int:
    """How many processes the launcher (``accelerate launch``, ``torchrun``, MPI) started."""
    import os

    env = os.environ if env is None else env
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        if env.get(name):
            return int(env[name])
    return 1


def wants_cpu(device: str | None, has_accelerator: bool | None = None) -> bool:
    """The ``cpu`` flag for ``Accelerator``: an explicit ``"cpu"``, or no GPU-like device.

    Accelerate 1.x forms a CPU process group (gloo) only when told ``cpu=True``; without it a
    2-process launch on a CPU-only machine runs two independent single-process trainings that
    race on the same run directory.
    """
    if device is not None:
        return torch.device(device).type == "cpu"
    return not (_has_accelerator_device() if has_accelerator is None else has_accelerator)


def make_accelerator(device: str | None) -> Any:
    """``Accelerator`` for ``config.device``; raises if it missed the launcher's processes."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=wants_cpu(device))
    launched = launched_world_size()
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(
            f"the launcher started {launched} processes but Accelerate formed a group of "
            f"{accelerator.num_processes} (device={device!r}, distributed type "
            f"{accelerator.distributed_type}); refusing to run independent trainings into one "
            "directory. On CPU pass --device cpu.")
    return accelerator


def resolve_device(device: str | None, accelerator_device: torch.device) -> torch.device:
    """The device to train on: Accelerate's (this process's GPU) unless another is named.

    ``"cuda"`` without an index means this process's GPU, so several processes never pile
    onto ``cuda:0``; an indexed device (``"cuda:1"``) is taken as given.

    Examples:
        >>> resolve_device("cuda", torch.device("cuda", 1))
        device(type='cuda', index=1)
        >>> resolve_device(None, torch.device("cpu")), resolve_device("cuda:0", torch.device("cpu"))
        (device(type='cpu'), device(type='cuda', index=0))
    """
    if device is None:
        return accelerator_device
    wanted = torch.device(device)
    if wanted.index is None and wanted.type == accelerator_device.type:
        return accelerator_device
    return wanted


class Trainer:
    """Train a policy with one registered method.

    Args:
        method: a :class:`~safelens.training.methods.base.Method` (see ``make_method``) or a
            registered name (then built from ``preset`` and ``overrides``).
        out_dir: the run directory (``model/``, ``checkpoint/``, ``log.jsonl``,
            ``config.json``, ``reference/``).
        model: the policy (a ``TransformerBridge``); default ``load_model(config.model)``.
            It is trained in place.
        rows: training preference rows; default ``config.train_file`` or the built-in split.
        data_source: how ``rows`` were obtained, for ``config.json``.
        preset: the preset name, for ``config.json`` (and to build ``method`` from a name).
        reward_model: a scorer for ``reward-level`` (``.score(prompts, responses)``).
        optimizer_wrapper: ``factory(optimizer, params, ctx)`` overriding the method's wrapper.
        callbacks: ``fn(trainer, step, record)`` called after every step.
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
            from safelens.training.registry import make_method

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
        self.rows = list(rows) if rows is not None else None
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
            for part in ("model", "checkpoint", ckpt.STAGING):
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
        import safelens

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
        from accelerate.utils import set_seed

        cfg, method = self.config, self.method
        accelerator = make_accelerator(cfg.device)
        is_main, world, rank = (
            accelerator.is_main_process,
            accelerator.num_processes,
            accelerator.process_index,
        )
        if is_main:
            resume_step = self._prepare_dir()
        accelerator.wait_for_everyone()
        if not is_main:
            resume_step = (
                (ckpt.read_trainer_state(self.out_dir) or {}).get("step") if self.resume else None
            )
        set_seed(cfg.seed)
        device = resolve_device(cfg.device, accelerator.device)

        # -- model ----------------------------------------------------------------------
        if self.model is None:
            from safelens.models import load_model

            self.model = load_model(cfg.model, device=device)
        elif next(self.model.parameters()).device != device:
            self.model.to(device)
        model = self.model
        tokenizer = model.tokenizer
        named = named_trainable_parameters(model, cfg.freeze)
        param_names = [n for n, _ in named]
        params = [p for _, p in named]
        self.precision = resolve_precision(cfg.precision, device)
        autocast = precision_autocast(self.precision, device)

        # -- data -----------------------------------------------------------------------
        if self.rows is None:
            rows, source = load_train_rows(cfg)
            self.data_source = self.data_source or source
        else:
            rows = self.rows
            self.data_source = self.data_source or "rows passed to Trainer"
        rows = drop_identical_pairs(prepare_rows(rows, cfg), method.columns, self.data_source)
        self.train_data_sha256 = rows_sha256(rows)
        cache_dir = Path(cfg.reference_cache_dir or self.out_dir / "reference")
        ctx = TrainContext(model, tokenizer, accelerator, self.out_dir, cache_dir, named)
        rows = method.prepare(rows, ctx)
        if not rows:
            raise ValueError(f"method {method.name!r} kept no training rows")
        self.train_rows = rows
        micro_size = cfg.batch_size // cfg.grad_accum_steps  # pairs per micro-batch, all processes
        if micro_size % world:
            raise ValueError(
                f"batch_size / grad_accum_steps = {micro_size} pairs per "
                f"micro-batch is not divisible by {world} processes"
            )
        total_steps = cfg.max_steps or math.ceil(cfg.epochs * len(rows) / cfg.batch_size)
        order = DataOrder(len(rows), cfg.batch_size, cfg.seed)

        truncated = {"rows": 0, "cut": 0}

        def build(chunk: Sequence[dict[str, Any]], index: torch.Tensor):
            # encode() warns per batch about cut responses; count them and warn once instead.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*were truncated to max_length")
                batch = method.build_batch(chunk, index, tokenizer)
            truncated["rows"] += len(batch.chat)
            truncated["cut"] += int(batch.chat.truncated.sum())
            return batch

        # -- frozen-prefix cache (the frozen blocks' output, once per row) ------------------
        self.prefix = None
        if cfg.prefix_cache:
            self.prefix = FrozenPrefixCache.for_model(model, named, cfg.prefix_cache_gb)
        if self.prefix is not None:
            def encode_only(chunk: Sequence[dict[str, Any]], index: torch.Tensor):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return method.build_batch(chunk, index, tokenizer)

            self.prefix.reserve(rows, encode_only, int(model.original_model.config.hidden_size))
            probe = encode_only(rows[:2], torch.arange(min(2, len(rows))))
            probe.chat = probe.chat.to(device)
            if not self.prefix.check(model, probe, autocast):
                self.prefix = None

        # -- reference log-probs (initial weights, before any resume weights are loaded) ---
        if method.needs_reference:
            ref_model = method.reference_model(ctx)
            ref_prefix = self.prefix if ref_model is model else None
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
            with accelerator.main_process_first():
                self.reference = refmod.load_or_compute(
                    cache_dir,
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
                        progress=cfg.progress and is_main,
                        prefix=ref_prefix,
                        logits_topk=topk,
                        logits_max_gb=method.reference_logits_max_gb(),
                    ),
                    method.columns,
                    is_main=is_main,
                )

        # -- optimizer, schedule, wrapper, resume ----------------------------------------
        optimizer = build_optimizer(params, cfg)
        scheduler = build_scheduler(optimizer, cfg, total_steps)
        factory = self.wrapper_factory or method.optimizer_wrapper
        wrapper = factory(optimizer, params, ctx)
        start = 0
        if resume_step is not None:
            ckpt.load_weights_into(model, self.out_dir / "model")
            meta = ckpt.load_checkpoint(self.out_dir, optimizer, scheduler, wrapper, param_names)
            start = int(meta["step"])
            if is_main:
                self._truncate_log(start)
        if is_main:
            self._write_config(len(rows), total_steps, accelerator)
        last_saved = start if resume_step is not None else None

        # -- loop -------------------------------------------------------------------------
        model.train()
        n_micro = cfg.grad_accum_steps
        t0 = time.time()
        bar = None
        if cfg.progress and is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_steps, initial=start, desc=f"align {method.name}")
        log_path = self.out_dir / "log.jsonl"
        for step in range(start, total_steps):
            global_idx = order.batch(step)
            mine = global_idx[rank::world]
            micro = [mine[i::n_micro] for i in range(n_micro)]
            progress = {"step": step, "total_steps": total_steps, "epoch": order.epoch(step),
                        "max_epoch": order.epoch(total_steps)}
            closure = self._make_closure(micro, rows, build, params, device, autocast,
                                         accelerator, n_micro, progress)
            lr = scheduler.get_last_lr()[0]
            try:
                out = wrapper.step(closure)
            except NonFiniteLossError as err:
                err.step = step + 1
                if last_saved is not None:
                    err.checkpoint = (str(self.out_dir / "checkpoint"), last_saved)
                if bar is not None:
                    bar.close()
                raise
            scheduler.step()
            self.step = step + 1
            record = {"step": step + 1, "epoch": round(order.epoch(step + 1), 4),
                      "loss": out.loss, **out.metrics, "lr": lr, "grad_norm": out.grad_norm,
                      "time": round(time.time() - t0, 3)}
            self.history.append(record)
            if is_main and ((step + 1) % cfg.log_every == 0 or step + 1 == total_steps):
                with log_path.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{out.loss:.4f}")
            if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < total_steps:
                self._save(model, step + 1, total_steps, param_names, optimizer, scheduler,
                           wrapper, accelerator)
                last_saved = step + 1
            for callback in self.callbacks:
                callback(self, step + 1, record)
        if bar is not None:
            bar.close()
        if truncated["cut"]:
            warnings.warn(f"{truncated['cut']} of {truncated['rows']} encoded responses were cut "
                          f"to max_length={cfg.max_length} tokens", stacklevel=2)
        if last_saved != total_steps:
            self._save(model, total_steps, total_steps, param_names, optimizer, scheduler,
                       wrapper, accelerator)
        model.eval()
        return TrainResult(model, self.out_dir, total_steps, self.history,
                           self.reference.hit if self.reference is not None else None)

    def _save(self, model, step, total, names, optimizer, scheduler, wrapper, accelerator):
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            ckpt.save_checkpoint(self.out_dir, model, step, total, names,
                                 optimizer if step < total else None, scheduler,
                                 wrapper, extra={"method": self.method.name,
                                                 "precision": self.precision})
        accelerator.wait_for_everyone()

    def _make_closure(self, micro, rows, build, params, device, autocast, accelerator,
                      n_micro, progress=None) -> Callable[..., StepOutput]:
        method, reference, prefix = self.method, self.reference, self.prefix
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
