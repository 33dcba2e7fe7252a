"""Method registry: name → (config class, method class).

Building a method from a name (defaults < preset < overrides) is
:func:`safelens.training.resolve.make_method`.

Adding a method is one file that defines a config (a :class:`~safelens.training.config.TrainConfig`
subclass) and a :class:`~safelens.training.methods.base.Method` subclass and calls
:func:`register_method`. Registering a taken name raises, so two files cannot silently shadow
each other.

Examples:
    >>> from safelens.training import available_methods, get_method
    >>> "dpo" in available_methods()
    True
    >>> get_method("dpo").config_cls.__name__
    'DPOConfig'
    >>> get_method("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    KeyError: "unknown training method 'nope'; available: ..."
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from safelens.training.config import TrainConfig

if TYPE_CHECKING:
    from safelens.training.methods.base import Method


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, config class and method class."""

    name: str
    config_cls: type[TrainConfig]
    method_cls: type[Method]
    help: str = ""


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(
    name: str, config_cls: type[TrainConfig], method_cls: type[Method], help: str = ""
) -> MethodSpec:
    """Register a training method under ``name``.

    Args:
        name: the name ``safelens align --method`` takes (lower case, ``-`` allowed).
        config_cls: its config dataclass (a ``TrainConfig`` subclass).
        method_cls: its method class; built as ``method_cls(config)``.
        help: one line for ``safelens align --help`` (default: the config's docstring).

    Raises:
        ValueError: the name is taken, or the classes are of the wrong kind.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"method name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"training method {name!r} is already registered "
                         f"(by {_REGISTRY[name].method_cls.__module__}); pick another name")
    if not (isinstance(config_cls, type) and issubclass(config_cls, TrainConfig)):
        raise ValueError(f"config_cls of {name!r} must subclass TrainConfig, got {config_cls!r}")
    if not isinstance(method_cls, type):
        raise ValueError(f"method_cls of {name!r} must be a class, got {method_cls!r}")
    doc = help or (config_cls.__doc__ or "").strip().splitlines()[0]
    spec = MethodSpec(name, config_cls, method_cls, doc)
    _REGISTRY[name] = spec
    return spec


def available_methods() -> list[str]:
    """Registered method names, sorted."""
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` registered as ``name``.

    Raises:
        KeyError: unknown name; the message lists the available ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown training method {name!r}; available: "
                       f"{', '.join(available_methods())}") from None
