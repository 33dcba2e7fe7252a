"""🤗 Accelerate for the trainer: the process group, and the device each process trains on.

``batch_size`` is the global batch; the trainer splits it over the processes that the launcher
(``accelerate launch``, ``torchrun``, MPI) started. These helpers make sure Accelerate really
joined them: on a GPU-less machine it forms a CPU (gloo) group only when told ``cpu=True``,
and a launch it failed to join is refused instead of running N independent trainings into one
run directory. See ``safelens/training/AGENTS.md`` for the launch commands that work.

Examples:
    >>> launched_world_size({"WORLD_SIZE": "2"}), wants_cpu("cpu")
    (2, True)
    >>> placement_device("cuda", torch.device("cuda", 1))
    device(type='cuda', index=1)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch


def _has_accelerator_device() -> bool:
    """Whether torch sees a GPU-like device (CUDA, XPU, MPS, ...), as Accelerate would pick."""
    probe = getattr(getattr(torch, "accelerator", None), "is_available", None)
    return bool(probe()) if probe is not None else torch.cuda.is_available()


def launched_world_size(env: Mapping[str, str] | None = None) -> int:
    """How many processes the launcher (``accelerate launch``, ``torchrun``, MPI) started.

    Args:
        env: the environment to read (default ``os.environ``).
    """
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

    Args:
        device: ``config.device`` (``None``: what Accelerate picks).
        has_accelerator: whether a GPU-like device exists (default: ask torch).
    """
    if device is not None:
        return torch.device(device).type == "cpu"
    return not (_has_accelerator_device() if has_accelerator is None else has_accelerator)


def make_accelerator(device: str | None) -> Any:
    """``Accelerator`` for ``config.device``; raises if it missed the launcher's processes.

    Raises:
        RuntimeError: the launcher started more processes than Accelerate joined.
    """
    from accelerate import Accelerator  # heavy: imported only when a run starts

    accelerator = Accelerator(cpu=wants_cpu(device))
    launched = launched_world_size()
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(
            f"the launcher started {launched} processes but Accelerate formed a group of "
            f"{accelerator.num_processes} (device={device!r}, distributed type "
            f"{accelerator.distributed_type}); refusing to run independent trainings into one "
            "directory. On CPU pass --device cpu.")
    kind = getattr(accelerator.distributed_type, "name", str(accelerator.distributed_type))
    if kind in ("FSDP", "DEEPSPEED"):
        # the model is never passed to accelerator.prepare (see trainer.py): no sharding
        warnings.warn(f"the Accelerate config asks for {kind}, but the safelens trainer does not "
                      "shard: every process holds the whole model and the trainer all-reduces the "
                      "gradients (data parallel); for a model that does not fit one device use "
                      "--peft lora", stacklevel=2)
    return accelerator


def placement_device(device: str | None, accelerator_device: torch.device) -> torch.device:
    """The device to train on: Accelerate's (this process's GPU) unless another is named.

    ``"cuda"`` without an index means this process's GPU, so several processes never pile
    onto ``cuda:0``; an indexed device (``"cuda:1"``) is taken as given.

    Examples:
        >>> placement_device("cuda", torch.device("cuda", 1))
        device(type='cuda', index=1)
        >>> placement_device(None, torch.device("cpu")), placement_device("cuda:0", torch.device("cpu"))
        (device(type='cpu'), device(type='cuda', index=0))
    """
    if device is None:
        return accelerator_device
    wanted = torch.device(device)
    if wanted.index is None and wanted.type == accelerator_device.type:
        return accelerator_device
    return wanted
