"""From a method name to a config and a method: defaults < preset < overrides.

:mod:`~safelens.training.registry` knows each method's classes and
:mod:`~safelens.training.presets` the named bundles of settings; this module joins them, so
neither of the two imports the other.

Examples:
    >>> resolve_config("dpo", preset="paper").lr
    5e-07
    >>> m = make_method("dpo", preset="quick", beta=0.2)
    >>> m.name, m.config.beta, m.needs_reference
    ('dpo', 0.2, True)
"""

from __future__ import annotations

import warnings
from typing import Any

from safelens.training.config import TrainConfig
from safelens.training.methods.base import Method
from safelens.training.presets import preset_overrides
from safelens.training.registry import get_method


def resolve_config(method: str, preset: str | None = None, base: TrainConfig | None = None,
                   **overrides: Any) -> TrainConfig:
    """The config of ``method``: its defaults (or ``base``), then ``preset``, then ``overrides``.

    Preset keys the method's config lacks are skipped; override keys it lacks raise.
    Overriding a preset value warns that the run no longer is that preset.

    Raises:
        KeyError: unknown method or preset; ValueError: unknown override or invalid value.
    """
    cls = get_method(method).config_cls
    values = base.to_dict() if base is not None else {}
    names = set(cls.field_names())
    from_preset = {k: v for k, v in preset_overrides(preset, method).items() if k in names}
    values.update(from_preset)
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"method {method!r} has no setting(s) {unknown}; "
                         f"its settings: {sorted(names)}")
    changed = sorted(k for k, v in overrides.items() if k in from_preset and from_preset[k] != v
                     and k not in ("max_steps", "progress", "log_every", "save_every", "device"))
    if changed:
        warnings.warn(f"overriding preset {preset!r} settings {changed}: results are no longer "
                      "those the preset was tuned for", stacklevel=2)
    values.update(overrides)
    # a config may fill settings from elsewhere (zo-refine: from its --from run); explicit win
    resolve = getattr(cls, "resolve_values", None)
    if resolve is not None:
        values = resolve(values, set(overrides))
    return cls.from_dict(values)


def make_method(name: str, config: TrainConfig | None = None, preset: str | None = None,
                **overrides: Any) -> Method:
    """Build method ``name`` from a config, or from its defaults + ``preset`` + ``overrides``.

    Examples:
        >>> m = make_method("dpo", preset="quick", beta=0.2)
        >>> m.name, m.config.beta, m.needs_reference
        ('dpo', 0.2, True)
    """
    spec = get_method(name)
    if config is None:
        config = resolve_config(name, preset=preset, **overrides)
    elif overrides or preset:
        raise ValueError("pass either a config or preset/overrides, not both")
    if not isinstance(config, spec.config_cls):
        raise TypeError(f"method {name!r} needs a {spec.config_cls.__name__}, "
                        f"got {type(config).__name__}")
    method = spec.method_cls(config)
    method.name = name
    return method
