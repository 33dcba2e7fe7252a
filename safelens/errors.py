"""The one error type of safelens, and the checks every entry point shares.

Every validation in the package raises :class:`SafelensError` (a ``ValueError``, so callers that
catch ``ValueError`` keep working) with a one-line message that names the file, row or setting
that is wrong and what was expected, e.g. ``"row 17 of train.jsonl: 'chosen' is empty"``. The
command line (:func:`safelens.cli.main.main`) prints such an error as one line,
``safelens: error: ...``, and exits with status 2.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any


class SafelensError(ValueError):
    """Bad input or a refused operation; the message names the thing and what was expected.

    Examples:
        >>> raise SafelensError("--limit must be >= 1, got -1")
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: --limit must be >= 1, got -1
    """


def one_line(message: object) -> str:
    """``message`` as a single line (newlines and runs of blanks collapsed).

    Examples:
        >>> one_line("a\\n  b")
        'a b'
    """
    return " ".join(str(message).split())


def check_number(value: Any, setting: str, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False, high_open: bool = False,
                 integer: bool = False) -> None:
    """Raise :class:`SafelensError` unless ``value`` is a finite number in the given range.

    Examples:
        >>> check_number(0.9, "--top-p", low=0, high=1, low_open=True)
        >>> check_number(5.0, "--top-p", low=0, high=1, low_open=True)
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: --top-p must be a number in (0, 1], got 5.0
    """
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    kind = "an integer" if integer else "a number"
    if lo and hi:
        expected = f"{kind} in {lo}, {hi}"
    elif lo:
        expected = f"{kind} {'>' if low_open else '>='} {low:g}"
    elif hi:
        expected = f"{kind} {'<' if high_open else '<='} {high:g}"
    else:
        expected = f"a finite {kind[2:] if integer else 'number'}"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (isinstance(value, int) if integer else True) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise SafelensError(f"{setting} must be {expected}, got {value!r}")


def check_output_dir(directory: str | os.PathLike[str], setting: str = "--out") -> Path:
    """Create ``directory`` if needed and make sure a file can be written there.

    Raises:
        SafelensError: the path (or one of its parents) is a file, or it is not writable
            (read-only disk, no permission, disk full); the message names the path.
    """
    directory = Path(directory)
    for parent in (directory, *directory.parents):
        if parent.exists() and not parent.is_dir():
            raise SafelensError(f"{setting} {directory}: {parent} is a file; expected a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".safelens-write-check") as handle:
            handle.write(b"0")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise SafelensError(f"{setting} {directory} is not writable ({err.strerror or err}); "
                            "expected a writable directory") from None
    return directory


def check_device(device: str | None, setting: str = "--device") -> None:
    """Raise :class:`SafelensError` unless ``device`` is ``None`` or usable on this machine.

    Examples:
        >>> check_device("cpu")
        >>> check_device("gpu0")
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: --device 'gpu0' is not a device name; expected cpu, cuda, cuda:N, mps, ...
    """
    if device is None:
        return
    import torch

    try:
        wanted = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SafelensError(f"{setting} {device!r} is not a device name; expected cpu, cuda, "
                            "cuda:N, mps, ...") from None
    if wanted.type == "cpu" or wanted.type == "meta":
        return
    module = getattr(torch, wanted.type, None)
    available = getattr(module, "is_available", None)
    if available is None or not available():
        raise SafelensError(f"{setting} {device!r}: no {wanted.type} device is available on this "
                            "machine; expected cpu (or run where that device exists)")
    count = getattr(module, "device_count", None)
    if wanted.index is not None and count is not None and wanted.index >= count():
        raise SafelensError(f"{setting} {device!r}: this machine has {count()} {wanted.type} "
                            f"device(s); expected an index below {count()}")
