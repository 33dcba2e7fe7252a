"""The one device default of safelens: CUDA when available, else CPU.

Every loader (models, encoders, reward models, judges) takes ``device=None`` and resolves it here,
so "which device" is decided in one place. Whether a device supports bf16 is a different question
(:mod:`safelens.models.precision`).
"""

from __future__ import annotations

import torch

from safelens.errors import check_device


def resolve_device(device: str | torch.device | None = None, setting: str = "device"
                   ) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` picks CUDA when available, else CPU.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device(None).type in ("cuda", "cpu")
        True
        >>> resolve_device("gpu0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: device 'gpu0' is not a device name; expected cpu, cuda, ...

    Args:
        device: a device name (``"cpu"``, ``"cuda:1"``, ...), a ``torch.device`` or ``None``.
        setting: the name of the setting, used in the error message.

    Raises:
        SafelensError: a device name torch does not know, or a device this machine lacks.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device(str(device), setting=setting)
    return torch.device(device)
