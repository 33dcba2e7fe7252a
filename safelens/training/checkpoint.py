"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A run directory holds

* ``model/`` — the policy as an ordinary Hugging Face safetensors checkpoint + tokenizer
  (:func:`safelens.models.save_model`), so ``load_model(DIR)`` and ``safelens eval --model DIR``
  read it;
* ``checkpoint/`` — ``trainer_state.json`` (step, parameter names, format), and for each of
  ``optimizer``, ``scheduler``, ``rng`` and ``wrapper`` a pair ``NAME.safetensors`` (every tensor
  or numpy array of the state, under its path) + ``NAME.json`` (the rest of the structure,
  tensors replaced by ``{"__tensor__": key}``). Loading reads JSON and safetensors only:
  nothing is ever unpickled.

Saving is atomic: both directories are written under ``DIR/.staging/``, a ``COMPLETE`` marker
is written last, and only then are they moved into place. A crash before the marker leaves
the previous checkpoint untouched; a crash during the move is finished by :func:`recover`,
which every load calls first.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from safelens.errors import SafelensError, check_output_dir
from safelens.models import save_model
from safelens.models.loading import hf_state_dict

FORMAT = "safelens.checkpoint/1"
STAGING = ".staging"
_PARTS = ("model", "checkpoint")


# ------------------------------------------------------------------------------ tree <-> files


def flatten_state(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, tensors, numpy arrays, scalars) in two.

    Returns:
        ``(tree, tensors)``: ``tree`` is JSON-ready (dicts become ``{"__dict__": [[k, v], ...]}``
        so integer keys survive, tuples ``{"__tuple__": [...]}``, tensors
        ``{"__tensor__": key}``, numpy arrays ``{"__ndarray__": key, "dtype", "shape"}`` stored
        as their raw bytes); ``tensors`` maps each key to a contiguous CPU tensor.

    Examples:
        >>> tree, tensors = flatten_state({0: {"step": torch.tensor(3.0)}, "lr": 0.1})
        >>> sorted(tensors), unflatten_state(tree, tensors)[0]["step"].item()
        (['0.step'], 3.0)
    """
    tensors: dict[str, torch.Tensor] = {}

    def enc(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            key = path or "value"
            tensors[key] = x.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(x, np.ndarray):
            key = path or "value"
            arr = np.ascontiguousarray(x)
            tensors[key] = torch.from_numpy(arr.view(np.uint8).reshape(-1).copy())
            return {"__ndarray__": key, "dtype": arr.dtype.str, "shape": list(arr.shape)}
        if isinstance(x, dict):
            items = []
            for k, v in x.items():
                if not isinstance(k, str | int) or isinstance(k, bool):
                    raise TypeError(f"state key {k!r} at {path or '<root>'} must be str or int")
                items.append([k, enc(v, f"{path}.{k}" if path else str(k))])
            return {"__dict__": items}
        if isinstance(x, tuple):
            return {"__tuple__": [enc(v, f"{path}.{i}" if path else str(i))
                                  for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [enc(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(x)]
        if isinstance(x, np.generic):
            return x.item()
        if x is None or isinstance(x, bool | int | float | str):
            return x
        raise TypeError(f"cannot store {type(x).__name__} at {path or '<root>'} without pickle")

    return enc(obj, ""), tensors


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__ndarray__" in tree:
            raw = tensors[tree["__ndarray__"]].numpy()
            return raw.view(np.dtype(tree["dtype"])).reshape(tree["shape"]).copy()
        if "__dict__" in tree:
            return {k: unflatten_state(v, tensors) for k, v in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(unflatten_state(v, tensors) for v in tree["__tuple__"])
        raise ValueError(f"unknown state node {sorted(tree)}")
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    return tree


def save_state(directory: str | Path, name: str, state: Any) -> None:
    """Write ``NAME.json`` + ``NAME.safetensors`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tree, tensors = flatten_state(state)
    save_file(tensors, str(directory / f"{name}.safetensors"))
    (directory / f"{name}.json").write_text(json.dumps(tree))


def load_state(directory: str | Path, name: str) -> Any:
    """Read what :func:`save_state` wrote (JSON + safetensors; no pickle).

    Raises:
        FileNotFoundError: a file is missing; CheckpointError: a file is damaged or truncated.
    """
    directory = Path(directory)
    for suffix in (".json", ".safetensors"):
        if not (directory / f"{name}{suffix}").is_file():
            raise FileNotFoundError(f"checkpoint file {directory / (name + suffix)} is missing")
    tensors = _load_safetensors(directory / f"{name}.safetensors")
    try:
        return unflatten_state(read_json(directory / f"{name}.json"), tensors)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{directory / (name + '.json')} does not match "
                              f"{name}.safetensors ({err!r}); the checkpoint is damaged") from None


class CheckpointError(SafelensError):
    """A checkpoint or run-directory file is damaged, or the run directory is unusable."""


def read_json(path: Path) -> Any:
    """``json.loads`` of a checkpoint file, naming the file when it does not parse."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is damaged or truncated ({err}); expected the JSON that "
                              "safelens wrote. Start over with --overwrite") from None


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file``, naming the file when it is damaged or truncated."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is damaged or truncated ({err}); expected a complete "
                              "safetensors file. Start over with --overwrite") from None


def _state_names(meta: Any) -> tuple[str, ...]:
    """The states a checkpoint holds: a finished run's has no optimizer (nothing left to train)."""
    finished = (isinstance(meta, dict) and isinstance(meta.get("step"), int)
                and isinstance(meta.get("total_steps"), int)
                and meta["step"] >= meta["total_steps"])
    return ("scheduler", "rng", "wrapper") if finished else \
        ("optimizer", "scheduler", "rng", "wrapper")


def verify_checkpoint(run_dir: str | Path) -> None:
    """Check that every file a resume reads is whole, before any model loads.

    Parses each JSON file and reads each safetensors header (cheap: no tensor data).

    Raises:
        FileNotFoundError: a file is missing; CheckpointError: one is damaged (named).
    """
    run_dir = Path(run_dir)
    ck = run_dir / "checkpoint"
    meta = read_json(ck / "trainer_state.json")
    files = [ck / f"{n}.{ext}" for n in _state_names(meta) for ext in ("json", "safetensors")]
    weights = sorted((run_dir / "model").glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"no *.safetensors weights in {run_dir / 'model'}; cannot resume")
    for path in files + weights:
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file {path} is missing; cannot resume")
        if path.suffix == ".json":
            read_json(path)
            continue
        try:
            with safe_open(str(path), framework="pt") as handle:
                keys = list(handle.keys())
                size = path.stat().st_size
                if keys and size <= 8:
                    raise SafetensorError("empty file")
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path} is damaged or truncated ({err}); expected a complete "
                                  "safetensors file. Start over with --overwrite") from None


def check_run_dir(out_dir: str | Path) -> None:
    """Refuse a run directory that would destroy something: a file, or a model folder.

    ``safelens align --out DIR`` writes ``DIR/config.json``, ``DIR/model`` and more; a Hugging
    Face checkpoint folder (its own ``config.json``, weights at the top level) would stop
    loading, so it is refused even with ``--overwrite``.

    Raises:
        CheckpointError: ``out_dir`` is a file, or holds a model checkpoint (not a safelens run).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CheckpointError(f"--out {out_dir} is a file; expected a run directory")
    if not out_dir.is_dir():
        check_output_dir(out_dir)  # created now: a read-only disk is named before any work
        return
    config = out_dir / "config.json"
    weights = [f.name for pattern in ("*.safetensors", "*.bin", "*.gguf", "*.pt", "*.pth")
               for f in out_dir.glob(pattern)]
    ours = False
    if config.is_file():
        try:
            saved = json.loads(config.read_text(encoding="utf-8"))
            ours = isinstance(saved, dict) and "method" in saved and "model_type" not in saved
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            ours = False
    if weights or (config.is_file() and not ours):
        what = f"model weights ({', '.join(sorted(weights)[:2])})" if weights else \
            "a config.json that safelens did not write"
        raise CheckpointError(
            f"--out {out_dir} holds {what}: it looks like a model folder, and a run would "
            "overwrite its files; expected a new or a safelens run directory (e.g. "
            f"{out_dir / 'run'})")
    check_output_dir(out_dir)


#: Settings that do not change what a run computes (ignored when comparing configs).
RUN_ONLY_SETTINGS = frozenset({"progress", "log_every", "save_every", "device", "ref_batch_size",
                               "reference_cache_dir", "report_to", "gradient_checkpointing"})


def config_changes(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Settings whose saved value differs from the wanted one (run-only settings ignored).

    Examples:
        >>> config_changes({"lr": 1e-4, "progress": True}, {"lr": 7e-5, "progress": False})
        ['lr']
    """
    return sorted(k for k, v in wanted.items()
                  if k not in RUN_ONLY_SETTINGS and k in saved and saved[k] != v)


def refuse_changed_settings(run_dir: str | Path, saved: dict[str, Any],
                            wanted: dict[str, Any]) -> None:
    """Refuse to resume ``run_dir`` with settings that change what the run computes.

    The optimizer and learning-rate schedule are restored from the checkpoint, so a new
    ``lr``, ``max_steps`` (or any other setting) would not be applied as asked (the new steps
    would run past the saved schedule, at learning rate 0). Run-only settings (progress,
    logging, saving, device, reference batch size) may change.

    Raises:
        CheckpointError: naming each changed setting, its saved and its new value.
    """
    diff = config_changes(saved, wanted)
    if diff:
        shown = ", ".join(f"{k} {saved[k]!r} -> {wanted[k]!r}" for k in diff[:6])
        raise CheckpointError(
            f"cannot resume {run_dir} with changed settings ({shown}): the checkpoint's "
            "optimizer and learning-rate schedule belong to the saved settings; expected the "
            "same settings as the run (drop those flags), or start over with --overwrite")


def check_finite_parameters(model: Any, step: int) -> None:
    """Raise before saving weights that hold NaN/inf (a broken model must never be written).

    Raises:
        NonFiniteParametersError: naming the step and the first bad tensors.
    """
    hf = getattr(model, "original_model", model)
    bad = [name for name, t in hf_state_dict(hf).items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise NonFiniteParametersError(
            f"after step {step}, {len(bad)} weight tensor(s) hold NaN/inf (e.g. "
            f"{', '.join(bad[:3])}), so nothing was saved; the previous checkpoint, if any, is "
            "kept. Expected finite weights: lower the learning rate or check --max-grad-norm")


class NonFiniteParametersError(SafelensError):
    """The trained weights hold NaN/inf; nothing was saved."""


# ------------------------------------------------------------------------------ RNG


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU + CUDA) generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------ run directories


def recover(run_dir: str | Path) -> None:
    """Finish or discard an interrupted save in ``run_dir`` (idempotent).

    With the ``COMPLETE`` marker the staged state is whole: its parts are moved into place.
    Without it the staged state is partial and is deleted; the previous one is intact.
    """
    run_dir = Path(run_dir)
    staging = run_dir / STAGING
    if not staging.exists():
        return
    if (staging / "COMPLETE").is_file():
        for part in _PARTS:
            src = staging / part
            if src.exists():
                dst = run_dir / part
                if dst.exists():
                    shutil.rmtree(dst)
                src.replace(dst)
    shutil.rmtree(staging, ignore_errors=True)


def save_checkpoint(
    run_dir: str | Path,
    model: Any,
    step: int,
    total_steps: int,
    param_names: list[str],
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    wrapper: Any,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Atomically write ``run_dir/model`` and ``run_dir/checkpoint`` for ``step``.

    ``optimizer=None`` leaves the optimizer state out: the trainer does so for the last step,
    since a finished run is never resumed and the AdamW moments are twice the model's size
    (the save itself briefly holds two copies of everything, which matters on a small disk).
    """
    run_dir = Path(run_dir)
    check_finite_parameters(model, step)
    recover(run_dir)
    staging = run_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    save_model(model, staging / "model")
    ck = staging / "checkpoint"
    ck.mkdir(parents=True)
    if optimizer is not None:
        save_state(ck, "optimizer", optimizer.state_dict())
    save_state(ck, "scheduler", scheduler.state_dict())
    save_state(ck, "rng", rng_state())
    save_state(ck, "wrapper", wrapper.state_dict() if hasattr(wrapper, "state_dict") else {})
    meta = {"format": FORMAT, "step": step, "total_steps": total_steps,
            "param_names": param_names, **(extra or {})}
    (ck / "trainer_state.json").write_text(json.dumps(meta, indent=1))
    (staging / "COMPLETE").write_text(str(step))
    recover(run_dir)
    return run_dir / "checkpoint"


def read_trainer_state(run_dir: str | Path) -> dict[str, Any] | None:
    """``checkpoint/trainer_state.json`` of a run, or None when it has no checkpoint."""
    run_dir = Path(run_dir)
    recover(run_dir)
    path = run_dir / "checkpoint" / "trainer_state.json"
    if not path.is_file():
        return None
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format "
                              f"{meta.get('format') if isinstance(meta, dict) else meta!r}; "
                              f"expected {FORMAT!r}")
    for key, kind in (("step", int), ("total_steps", int), ("param_names", list)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise CheckpointError(f"{path}: {key!r} is {meta.get(key)!r}; expected "
                                  f"{'an integer' if kind is int else 'a list'}")
    return meta


def load_checkpoint(
    run_dir: str | Path,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    wrapper: Any,
    param_names: list[str],
) -> dict[str, Any]:
    """Restore optimizer, scheduler, wrapper and RNG states; returns ``trainer_state.json``.

    The model weights are read separately (``DIR/model``).

    Raises:
        FileNotFoundError: no checkpoint; ValueError: parameters differ from the saved run.
    """
    meta = read_trainer_state(run_dir)
    if meta is None:
        raise FileNotFoundError(f"no checkpoint to resume in {Path(run_dir) / 'checkpoint'}")
    if meta["param_names"] != param_names:
        missing = sorted(set(meta["param_names"]) ^ set(param_names))[:5]
        raise CheckpointError(f"the trainable parameters differ from the checkpoint's in {run_dir} "
                         f"(e.g. {missing}); resume with the same model and freeze setting")
    ck = Path(run_dir) / "checkpoint"
    if "optimizer" in _state_names(meta):
        optimizer.load_state_dict(load_state(ck, "optimizer"))
    scheduler.load_state_dict(load_state(ck, "scheduler"))
    if hasattr(wrapper, "load_state_dict"):
        wrapper.load_state_dict(load_state(ck, "wrapper"))
    set_rng_state(load_state(ck, "rng"))
    return meta


def load_weights_into(model: Any, model_dir: str | Path) -> None:
    """Copy the HF safetensors weights in ``model_dir`` into ``model`` (a bridge) in place."""
    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {model_dir}")
    live = hf_state_dict(getattr(model, "original_model", model))
    loaded = 0
    with torch.no_grad():
        for f in files:
            for name, value in _load_safetensors(f).items():
                if name not in live:
                    raise CheckpointError(f"{f}: tensor {name!r} does not exist in the model")
                if live[name].shape != value.shape:
                    raise CheckpointError(f"{f}: tensor {name!r} has shape {tuple(value.shape)}; "
                                          f"expected {tuple(live[name].shape)}")
                live[name].copy_(value)
                loaded += 1
    if not loaded:
        raise CheckpointError(f"no weights loaded from {model_dir}")
