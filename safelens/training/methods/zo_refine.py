"""``zo-refine`` (seed 002): zeroth-order refinement of a first-order safety-aligned run.

The loss is a registered first-order method's own ``compute_loss`` (``objective``: ``sft``,
``dpo``, ``npo``, ...; built with ``make_method``'s config class, never a copy of its formula);
the optimizer is :class:`~safelens.training.zo.ZerothOrderStep` (SPSA / MeZO two-point
estimates, no backward pass; layer-wise sensitivity and ``top:K`` layers — see
:mod:`safelens.training.zo`).

``safelens align --method zo-refine --from RUN_DIR --out DIR`` starts from a finished run::

    model             <- RUN_DIR/model
    objective         <- RUN_DIR/config.json's method (and, for that method, its own settings
                         such as beta or rpo_alpha, kept in ``objective_options``)
    data and shape    <- RUN_DIR/config.json: train_file / dataset (unless either is given),
                         dataset_split, dataset_path, default_harmful, max_train_rows, balance,
                         harmful_fraction, domains, flip_rate, max_length, freeze,
                         batch_size, grad_accum_steps, seed, prefix_cache, prefix_cache_gb
    from_run_sha256   <- sha256 of RUN_DIR/model/*.safetensors (recorded in DIR/config.json)

Explicit flags win over the source run's values. Refining a ``zo-refine`` run continues with
its objective. A reference-based objective (DPO family, NPO) takes the source run's model as its
reference, so the refinement stays anchored to the aligned model.

Defaults (MeZO's: eps 1e-3, SGD, constant learning rate, no clipping): ``zo_eps`` 1e-3,
``lr`` 1e-6 (MeZO's range is 1e-7..1e-6 for SGD at eps 1e-3; our 135M default model trains
its upper half, and 1e-6 moves it by ~lr |g| sqrt(d) ~ 1e-2 per step in a random direction),
200 steps (a few hundred, the seed's "a few steps" after alignment), one direction per
step, a layer probe at steps 1, 101 (``probe_every`` 100). Untuned: no GPU sweep has been run.

Precision is **fp32**, not the source run's: a ZO step reads a difference of two losses
2·eps·(∇L·z) apart, and bf16 autocast rounds each loss by more than that at eps 1e-3
(``benchmarks/zo_precision.py`` on the default model: directional derivative +6.30, fp32
estimate +6.30, bf16 +8.77; for one z, -0.46 vs +2.02). bf16 is refused below eps 1e-2.

Presets are first-order settings: ``--preset quick`` would set lr 7e-5, which is far too large
for ZO-SGD. Give zo-refine no preset.

Examples:
    >>> from safelens.training import make_method
    >>> m = make_method("zo-refine", objective="dpo", objective_options='{"beta": 0.2}')
    >>> m.objective.name, m.objective.config.beta, m.columns, m.config.zo_eps, m.config.lr
    ('dpo', 0.2, ('chosen', 'rejected'), 0.001, 1e-06)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from safelens.errors import SafelensError
from safelens.training.batch import Logps, TrainBatch
from safelens.training.config import TrainConfig, _help
from safelens.training.methods.base import Method, TrainContext
from safelens.training.registry import available_methods, get_method, register_method
from safelens.training.rundir import run_is_finished
from safelens.training.zo import ZO_RESTORES, ZO_UPDATES, ZerothOrderStep, parse_layers

#: Settings taken from the ``--from`` run unless given explicitly.
INHERITED = ("train_file", "dataset", "dataset_split", "dataset_path", "default_harmful",
             "max_train_rows", "balance", "harmful_fraction", "domains",
             "flip_rate", "max_length", "freeze", "batch_size", "grad_accum_steps",
             "seed", "prefix_cache", "prefix_cache_gb")
#: Where the rows come from: one explicit setting of these replaces all of the run's.
DATA_SOURCE = ("train_file", "dataset", "dataset_split", "dataset_path")
#: The smallest ``zo_eps`` at which a bf16 forward's rounding leaves the two-point estimate
#: usable (``benchmarks/zo_precision.py``: at eps 1e-3 bf16 autocast is off by ~2.5 against a
#: directional derivative of ~6 on the default model; fp32 by < 0.01).
BF16_MIN_EPS = 1e-2


def check_source_run(path: str | Path) -> Path:
    """``path`` as a Path; raises unless it is a finished safelens run (config.json + model/).

    Raises:
        SafelensError: one line naming the path and what was expected.
    """
    run = Path(path)
    expected = ("expected the --out directory of a finished `safelens align` run "
                "(config.json + model/)")
    if not run.is_dir():
        raise SafelensError(f"--from {run}: no such directory; {expected}")
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise SafelensError(f"--from {run} is not a safelens run: it has no config.json; "
                            f"{expected}")
    try:
        saved = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SafelensError(f"--from {cfg_path} is not valid JSON ({err}); {expected}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("method"), str):
        raise SafelensError(f"--from {run} is not a safelens run: its config.json names no "
                            f"'method' (a model folder?); {expected}")
    if not sorted((run / "model").glob("*.safetensors")):
        raise SafelensError(f"--from {run} has no trained model: {run / 'model'} holds no "
                            f"*.safetensors; {expected}")
    if not run_is_finished(run):
        raise SafelensError(f"--from {run} is not finished (its checkpoint is short of the last "
                            "step); resume it with `safelens align --resume` first")
    return run


def weights_sha256(model_dir: str | Path) -> str:
    """sha256 over the names and bytes of ``model_dir/*.safetensors`` (sorted)."""
    h = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        h.update(path.name.encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _own_fields(method: str) -> list[str]:
    """The settings of ``method``'s config that are not shared :class:`TrainConfig` fields."""
    shared = set(TrainConfig.field_names())
    return [n for n in get_method(method).config_cls.field_names() if n not in shared]


def _parse_options(text: str | None, setting: str = "ZORefineConfig.objective_options"
                   ) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise SafelensError(f"{setting} must be a JSON object such as '{{\"beta\": 0.2}}', "
                            f"got {text!r} (--objective-options)")
    return value


@dataclass
class ZORefineConfig(TrainConfig):
    """Zeroth-order (SPSA/MeZO) refinement of a first-order aligned run (seed 002)."""

    from_run: str | None = _help(
        None, "finished safelens run directory to refine (--from): its model/ is the start, its "
              "method the objective, its data settings the defaults")
    from_run_sha256: str | None = _help(
        None, "sha256 of the --from run's model weights; filled in from --from (give it to "
              "refuse a source that changed)")
    objective: str | None = _help(
        None, "first-order method whose loss is refined (sft, dpo, npo, ...); default: the "
              "--from run's method, else sft")
    objective_options: str | None = _help(
        None, "JSON object of the objective's own settings, e.g. '{\"beta\": 0.2}'; default: "
              "the --from run's values")
    zo_eps: float = _help(1e-3, "SPSA/MeZO perturbation scale eps (theta +- eps z)")
    n_directions: int = _help(1, "random directions z averaged per step (2 evaluations each)")
    zo_update: Literal["sgd", "optimizer"] = _help(
        "sgd", "sgd: MeZO's in-place theta -= lr (g z + wd theta); optimizer: p.grad = g z and "
               "AdamW")
    zo_restore: Literal["copy", "regenerate"] = _help(
        "copy", "copy: restore theta bit-exactly from a copy; regenerate: MeZO's +-eps z "
                "(no copy, ~1 ulp drift)")
    layers: str = _help(
        "all", "all, or top:K: update only the K layers of largest probed sensitivity")
    probe_every: int = _help(
        100, "probe the layer-wise sensitivity every N steps from step 1 (1 + 2 x layers "
             "evaluations; 0 = never); top:K re-ranks after each probe")
    sensitivity_decay: float = _help(
        0.5, "EMA decay of the layer sensitivity across probes, in [0, 1)")
    # ZO defaults for shared settings (MeZO: constant lr, no clipping)
    precision: Literal["fp32", "bf16", "auto"] = _help(
        "fp32", "forward precision of the loss evaluations: fp32 (default; bf16 rounding swamps "
                "a difference of losses at eps < 1e-2), bf16 or auto")
    lr: float = _help(1e-6, "learning rate (zo-refine: of the ZO-SGD update, MeZO 1e-7..1e-6)")
    max_steps: int | None = _help(200, "optimizer steps to run; overrides epochs")
    scheduler: Literal["linear", "cosine", "constant"] = _help(
        "constant", "learning-rate decay after warmup: linear, cosine or constant")
    warmup_ratio: float = _help(0.0, "fraction of the steps used for linear warmup")
    max_grad_norm: float | None = _help(
        None, "clip the gradient norm to this; None or 0 = no clipping")

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__

        def bad(field_name: str, expected: str) -> SafelensError:
            flag = "--" + field_name.replace("_", "-")
            return SafelensError(f"{name}.{field_name} must be {expected}, "
                                 f"got {getattr(self, field_name)!r} ({flag})")

        if self.from_run is not None:
            check_source_run(self.from_run)
        if self.objective is None:
            self.objective = "sft"
        choices = [m for m in available_methods()
                   if m != "zo-refine"
                   and get_method(m).method_cls.optimizer_wrapper is Method.optimizer_wrapper]
        if self.objective not in choices:
            raise bad("objective", f"a first-order method ({', '.join(choices)})")
        options = _parse_options(self.objective_options, f"{name}.objective_options")
        foreign = sorted(set(options) - set(_own_fields(self.objective)))
        if foreign:
            raise bad("objective_options", f"settings of {self.objective!r} "
                      f"({', '.join(_own_fields(self.objective)) or 'it has none'}); "
                      f"unknown {foreign}")
        if not (isinstance(self.zo_eps, int | float) and self.zo_eps > 0
                and math.isfinite(self.zo_eps)):
            raise bad("zo_eps", "a finite number > 0")
        if self.precision != "fp32" and self.zo_eps < BF16_MIN_EPS:
            raise bad("precision", f"fp32 at zo_eps {self.zo_eps:g}: bf16 rounding swamps the "
                      f"loss difference below zo_eps {BF16_MIN_EPS:g} (benchmarks/zo_precision.py)")
        for f, low in (("n_directions", 1), ("probe_every", 0)):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise bad(f, f"an integer >= {low}")
        if self.zo_update not in ZO_UPDATES:
            raise bad("zo_update", f"one of {ZO_UPDATES}")
        if self.zo_restore not in ZO_RESTORES:
            raise bad("zo_restore", f"one of {ZO_RESTORES}")
        try:
            top_k = parse_layers(self.layers)
        except SafelensError:
            raise bad("layers", "'all' or 'top:K' with an integer K >= 1") from None
        if top_k is not None and self.probe_every < 1:
            raise bad("probe_every", f"an integer >= 1 with layers={self.layers!r} (the ranking "
                      "comes from the probes)")
        if not 0.0 <= self.sensitivity_decay < 1.0:
            raise bad("sensitivity_decay", "in [0, 1)")
        self.objective_config()  # the objective's own validation of its settings

    def objective_config(self) -> TrainConfig:
        """The objective's config: the shared settings of this one + ``objective_options``."""
        spec = get_method(self.objective or "sft")
        shared = {k: v for k, v in self.to_dict().items() if k in TrainConfig.field_names()}
        options = _parse_options(self.objective_options)
        return spec.config_cls.from_dict({**shared, **options}, strict=False)

    @classmethod
    def resolve_values(cls, values: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        """Fill settings from the ``--from`` run (called by ``resolve_config``).

        Args:
            values: the settings so far (preset + overrides; defaults left out).
            explicit: the names given explicitly (they win over the source run).

        Raises:
            SafelensError: ``--from`` is not a finished run, ``--model`` names another model,
                or ``from_run_sha256`` differs from the source's weights.
        """
        if values.get("from_run") is None:
            return values
        run = check_source_run(values["from_run"])
        saved = json.loads((run / "config.json").read_text())
        out = dict(values)
        own_source = any(key in explicit for key in DATA_SOURCE)
        for key in INHERITED:
            if key not in explicit and key in saved and not (own_source and key in DATA_SOURCE):
                out[key] = saved[key]
        model = run / "model"
        if "model" in explicit and Path(values["model"]).resolve() != model.resolve():
            raise SafelensError(f"--model {values['model']} and --from {run} both name the "
                                f"starting model; drop --model (--from starts from {model})")
        out["model"] = str(model)
        src_method = saved["method"]
        src_objective = saved.get("objective") if src_method == "zo-refine" else src_method
        objective = values.get("objective") if "objective" in explicit else src_objective
        out["objective"] = objective
        options: dict[str, Any] = {}
        if objective == src_objective and objective in available_methods():
            if src_method == "zo-refine":
                options = _parse_options(saved.get("objective_options"))
            else:
                options = {k: saved[k] for k in _own_fields(objective) if k in saved}
        if "objective_options" in explicit:
            options.update(_parse_options(values.get("objective_options")))
        out["objective_options"] = json.dumps(options, sort_keys=True) if options else None
        sha = weights_sha256(model)
        if "from_run_sha256" in explicit and values.get("from_run_sha256") != sha:
            raise SafelensError(f"--from-run-sha256 {values.get('from_run_sha256')} does not "
                                f"match {model} (sha256 {sha}): the source run changed")
        out["from_run_sha256"] = sha
        out["from_run"] = str(run)
        return out


class ZORefine(Method):
    """The objective's loss and hooks, delegated; :class:`ZerothOrderStep` as the optimizer."""

    def __init__(self, config: ZORefineConfig) -> None:
        super().__init__(config)
        spec = get_method(config.objective or "sft")
        self.objective: Method = spec.method_cls(config.objective_config())
        self.objective.name = spec.name
        for attr in ("columns", "needs_reference", "average_logps", "needs_token_logps",
                     "needs_logits"):
            setattr(self, attr, getattr(self.objective, attr))

    def prepare(self, rows: list[dict[str, Any]], ctx: TrainContext) -> list[dict[str, Any]]:
        rows = self.objective.prepare(rows, ctx)
        # one version of the rows per epoch (the deep methods' resample_prefix)
        self.rows_per_epoch = self.objective.rows_per_epoch
        return rows

    def build_batch(self, rows: Sequence[dict[str, Any]], index: torch.Tensor,
                    tokenizer: Any) -> TrainBatch:
        return self.objective.build_batch(rows, index, tokenizer)

    def compute_loss(self, policy: Logps, ref: Logps | None, batch: TrainBatch
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.objective.compute_loss(policy, ref, batch)

    def cache_key(self) -> dict[str, Any]:
        return self.objective.cache_key()

    def reference_model(self, ctx: TrainContext) -> Any:
        return self.objective.reference_model(ctx)

    def reference_topk(self) -> int:
        return self.objective.reference_topk()

    def reference_logits_max_gb(self) -> float:
        return self.objective.reference_logits_max_gb()

    def optimizer_wrapper(self, optimizer: torch.optim.Optimizer,
                          params: list[torch.nn.Parameter], ctx: TrainContext
                          ) -> ZerothOrderStep:
        cfg = self.config
        by_id = {id(p): n for n, p in ctx.named_params}
        return ZerothOrderStep(
            optimizer, params, [by_id[id(p)] for p in params], eps=cfg.zo_eps,
            n_directions=cfg.n_directions, seed=cfg.seed, update=cfg.zo_update,
            weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm, layers=cfg.layers,
            probe_every=cfg.probe_every, sensitivity_decay=cfg.sensitivity_decay,
            restore=cfg.zo_restore)


register_method("zo-refine", ZORefineConfig, ZORefine)
