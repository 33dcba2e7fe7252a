"""Training configs: :class:`TrainConfig`, the settings every method shares.

Each method's own config extends it and lives beside the method (``SFTConfig`` in
``methods/sft.py``, ``DPOConfig`` .. ``DrDPOConfig`` in ``methods/preference.py``, ...).
Every field has a default and a one-line ``metadata["help"]``; ``safelens align`` builds its
command-line flags from these fields (``beta_prime`` → ``--beta-prime``), so a new method's
fields appear on the command line without touching the CLI. ``__post_init__`` validates every
field and names the field and the expected range in the error.

Defaults are the ShaPO seed's App. D.3 setting (β = 0.1, lr = 5e-7, Dr.DPO β' = 1); presets
(:mod:`safelens.training.presets`) override them, and explicit overrides win over presets.

Examples:
    >>> from safelens.training.methods.preference import DPOConfig
    >>> cfg = DPOConfig(beta=0.2, max_steps=10)
    >>> cfg.beta, cfg.lr
    (0.2, 5e-07)
    >>> DPOConfig(lr=-1.0)
    Traceback (most recent call last):
    ...
    safelens.errors.SafelensError: DPOConfig.lr must be > 0, got -1.0 (--lr)
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from safelens.errors import SafelensError, check_device
from safelens.models.loading import DEFAULT_MODEL
from safelens.models.lora import LLAMA_TARGETS
from safelens.models.precision import PRECISIONS

SCHEDULERS = ("linear", "cosine", "constant")
PEFT_KINDS = ("none", "lora")
#: Where ``report_to`` can send the log records (``none``: log.jsonl only).
REPORTERS = ("none", "tensorboard", "wandb")


def _help(default: Any, text: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": text, **kw})


@dataclass
class TrainConfig:
    """Settings shared by every method (model / data / optimisation / run)."""

    # ---------------------------------------------------------------- model
    model: str = _help(DEFAULT_MODEL, "base model: the default's name, an HF id or a directory")
    precision: Literal["fp32", "bf16", "auto"] = _help(
        "auto", "fp32, bf16 (autocast; weights, optimizer state and losses stay fp32) or auto "
                "(bf16 where the CPU/GPU has native bf16 matmuls, else fp32)")
    device: str | None = _help(None, "cpu, cuda, ...; default: what Accelerate picks")
    freeze: str | None = _help(
        None, "regex of HF parameter names to keep frozen (e.g. 'embed_tokens'); None = train all "
              "(with peft='lora': regex of adapter names to keep frozen)")
    peft: Literal["none", "lora"] = _help(
        "none", "none (train the weights) or lora (train only LoRA adapters through the optional "
                "peft package, pip install 'safelens[scale]'; saved as OUT/adapter, merged into "
                "OUT/model)")
    lora_r: int = _help(8, "LoRA rank (with peft='lora')")
    lora_alpha: float = _help(16.0, "LoRA alpha; the update is scaled by lora_alpha / lora_r")
    lora_dropout: float = _help(0.0, "dropout on the LoRA adapters' input, in [0, 1)")
    lora_target_modules: str = _help(
        ",".join(LLAMA_TARGETS), "comma-separated names of the linear layers that get LoRA "
                                 "adapters (default: every llama-style attention and MLP linear)")
    gradient_checkpointing: bool = _help(
        False, "recompute each block's activations in the backward pass (HF "
               "gradient_checkpointing_enable, non-reentrant): less activation memory, one more "
               "forward per block, the same losses")
    # ---------------------------------------------------------------- data
    train_file: str | None = _help(
        None, "preference file to train on: our JSONL, or TRL's prompt/chosen/rejected (text "
              "or single-turn conversations) as .jsonl/.json/.csv/.parquet, metadata optional; "
              "None = the built-in preferences/train split (or --dataset)")
    dataset: str | None = _help(
        None, "preference data set by name instead of train_file: pku-saferlhf, hh-rlhf (public "
              "loaders), a local file or folder, or a Hub id (offline: the local HF cache only)")
    dataset_split: str = _help("train", "split of --dataset")
    dataset_path: str | None = _help(
        None, "local copy to read --dataset from (a public loader's file or folder)")
    default_harmful: bool = _help(
        False, "harm label of rows that carry neither 'harmful' nor 'kind' (TRL-format data): "
               "false = benign, true = harmful (a refusal-only set)")
    max_train_rows: int | None = _help(
        None, "use a seeded subsample of this many training rows (None = all)")
    balance: bool = _help(
        False, "subsample harmful and benign/look-alike rows in the ratio harmful_fraction "
               "(with max_train_rows)")
    harmful_fraction: float = _help(
        0.5, "share of harmful rows in a balanced subsample (the rest benign/look-alike)")
    domains: str | None = _help(
        None, "keep only training rows of these comma-separated domains, e.g. 'direct' "
              "(cross-domain studies: train on one domain, test on the others); None = all")
    flip_rate: float = _help(
        0.0, "fraction of TRAINING pairs whose chosen/rejected are swapped (seeded label noise)")
    max_length: int = _help(512, "maximum tokens per (prompt + response) row; longer responses are cut")
    # ---------------------------------------------------------------- optimisation
    lr: float = _help(5e-7, "peak learning rate of AdamW")
    weight_decay: float = _help(0.0, "AdamW weight decay")
    adam_beta1: float = _help(0.9, "AdamW beta1")
    adam_beta2: float = _help(0.999, "AdamW beta2")
    adam_eps: float = _help(1e-8, "AdamW epsilon")
    batch_size: int = _help(
        32, "preference pairs per optimizer step, over all processes and accumulation steps")
    grad_accum_steps: int = _help(
        1, "micro-batches per optimizer step (batch_size must divide evenly)")
    epochs: float = _help(1.0, "passes over the training rows (ignored when max_steps is set)")
    max_steps: int | None = _help(None, "optimizer steps to run; overrides epochs")
    scheduler: Literal["linear", "cosine", "constant"] = _help(
        "linear", "learning-rate decay after warmup: linear, cosine or constant")
    warmup_ratio: float = _help(0.1, "fraction of the steps used for linear warmup")
    warmup_steps: int | None = _help(None, "warmup steps; overrides warmup_ratio")
    max_grad_norm: float | None = _help(1.0, "clip the gradient norm to this; None or 0 = no clipping")
    seed: int = _help(0, "seed of the data order, label flips, subsampling and torch/numpy/random")
    # ---------------------------------------------------------------- run
    prefix_cache: bool = _help(
        True, "compute the output of the frozen lower blocks once per row and start every "
              "training forward at the first trained block (same losses, less compute)")
    prefix_cache_gb: float = _help(
        4.0, "memory bound of the frozen-prefix cache in GiB; a larger cache is an error")
    ref_batch_size: int | None = _help(
        None, "pairs per forward when precomputing reference log-probs (default: micro-batch)")
    reference_cache_dir: str | None = _help(
        None, "where reference log-probs are cached; None = OUT/reference")
    log_every: int = _help(1, "write a log.jsonl record every N steps")
    save_every: int = _help(0, "write a checkpoint every N steps (0 = only at the end)")
    progress: bool = _help(True, "show a tqdm progress bar")
    report_to: str = _help(
        "none", "also log every log.jsonl record to: none, tensorboard (OUT/tensorboard), wandb "
                "(offline unless WANDB_MODE is set; OUT/wandb), or both comma-separated "
                "(pip install 'safelens[tracking]')")

    def __post_init__(self) -> None:
        name = type(self).__name__

        def bad(field_name: str, expected: str) -> SafelensError:
            flag = "--" + field_name.replace("_", "-")
            return SafelensError(f"{name}.{field_name} must be {expected}, "
                                 f"got {getattr(self, field_name)!r} ({flag})")

        for f in dataclasses.fields(self):  # NaN slips through every range comparison
            v = getattr(self, f.name)
            if isinstance(v, float) and math.isnan(v):
                raise bad(f.name, "a number, not NaN")
        if not isinstance(self.model, str) or not self.model:
            raise bad("model", "a non-empty model name or path")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"one of {PRECISIONS}")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"one of {SCHEDULERS}")
        for f in ("lr", "adam_eps"):
            if not (isinstance(getattr(self, f), int | float) and getattr(self, f) > 0
                    and math.isfinite(getattr(self, f))):
                raise bad(f, "> 0")
        for f in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, f) < 1.0:
                raise bad(f, "in [0, 1)")
        if self.peft not in PEFT_KINDS:
            raise bad("peft", f"one of {PEFT_KINDS}")
        if not isinstance(self.lora_r, int) or self.lora_r < 1:
            raise bad("lora_r", "an integer >= 1")
        if not (self.lora_alpha > 0 and math.isfinite(self.lora_alpha)):
            raise bad("lora_alpha", "a finite number > 0")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise bad("lora_dropout", "in [0, 1)")
        if not self.lora_target_modules or not all(
                t.strip() for t in str(self.lora_target_modules).split(",")):
            raise bad("lora_target_modules", "comma-separated module names, e.g. 'q_proj,v_proj'")
        reporters = [r.strip() for r in str(self.report_to).split(",")]
        if not all(r in REPORTERS for r in reporters) or (
                "none" in reporters and len(reporters) > 1):
            raise bad("report_to", f"'none' or comma-separated names from {REPORTERS[1:]}")
        if self.weight_decay < 0:
            raise bad("weight_decay", ">= 0")
        if not 0.0 <= self.harmful_fraction <= 1.0:
            raise bad("harmful_fraction", "in [0, 1]")
        if not 0.0 <= self.flip_rate <= 1.0:
            raise bad("flip_rate", "in [0, 1]")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise bad("warmup_ratio", "in [0, 1)")
        for f in ("batch_size", "grad_accum_steps", "max_length", "log_every"):
            if not isinstance(getattr(self, f), int) or getattr(self, f) < 1:
                raise bad(f, "an integer >= 1")
        for f in ("max_steps", "max_train_rows", "ref_batch_size"):
            v = getattr(self, f)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise bad(f, "None or an integer >= 1")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise bad("warmup_steps", "None or >= 0")
        if self.save_every < 0:
            raise bad("save_every", ">= 0")
        if not (self.prefix_cache_gb > 0 and math.isfinite(self.prefix_cache_gb)):
            raise bad("prefix_cache_gb", "> 0")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise bad("epochs", "a finite number > 0")
        if self.max_grad_norm is not None and not (
                self.max_grad_norm >= 0 and math.isfinite(self.max_grad_norm)):
            raise bad("max_grad_norm", "None or a finite number >= 0")
        if not math.isfinite(self.weight_decay):
            raise bad("weight_decay", "a finite number >= 0")
        if self.freeze is not None:
            try:
                re.compile(self.freeze)
            except re.error as err:
                raise bad("freeze", f"a valid regular expression ({err})") from None
        check_device(self.device, setting=f"{name}.device (--device)")
        if self.train_file and self.dataset:
            raise SafelensError(f"{name}: train_file={self.train_file!r} and dataset="
                                f"{self.dataset!r} are both set; expected one of --train-file "
                                "and --dataset")
        if self.dataset_path and not self.dataset:
            raise bad("dataset_path", "None unless dataset (--dataset) is set")
        if self.batch_size % self.grad_accum_steps:
            raise SafelensError(f"{name}.batch_size={self.batch_size} is not divisible by "
                             f"grad_accum_steps={self.grad_accum_steps}")

    # -- helpers --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], strict: bool = True) -> TrainConfig:
        """Build from a dict; unknown keys raise (``strict``) or are dropped."""
        names = set(cls.field_names())
        unknown = sorted(set(values) - names)
        if unknown and strict:
            raise SafelensError(f"{cls.__name__} has no field(s) {unknown}; "
                             f"known fields: {sorted(names)}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` applied (unknown names raise)."""
        return type(self).from_dict({**self.to_dict(), **changes})


# ------------------------------------------------------------------------------ introspection


def config_fields(cls: type[TrainConfig]) -> list[tuple[dataclasses.Field, Any]]:
    """``(field, resolved type)`` pairs of a config class (for CLI generation)."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


#: Method configs that moved beside their methods, by name -> module (re-exported by
#: :func:`__getattr__` for one release).
_MOVED = {
    "SFTConfig": "safelens.training.methods.sft",
    "DPOConfig": "safelens.training.methods.preference",
    "IPOConfig": "safelens.training.methods.preference",
    "CDPOConfig": "safelens.training.methods.preference",
    "RDPOConfig": "safelens.training.methods.preference",
    "DrDPOConfig": "safelens.training.methods.preference",
    "NPOConfig": "safelens.training.methods.npo",
    "RewardLevelConfig": "safelens.training.methods.reward_level",
}


def __getattr__(name: str) -> Any:
    """The method configs of :data:`_MOVED`: re-export for one release. A plain import here
    would be a loop (every method module imports this one), so they are looked up on access."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
