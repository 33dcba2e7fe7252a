"""Command-line flags generated from the method config dataclasses (for ``safelens align``).

Every field of every registered method's config becomes one flag (``beta_prime`` →
``--beta-prime``), typed from its annotation (``bool`` → ``--x/--no-x``, ``Literal`` →
choices, ``X | None`` accepts ``none``), with the field's help text and, when only some methods
have it, the list of those methods. A method registered later gets its flags for free.
Flags default to "not given", so only explicit flags override the preset and defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from safelens.training.checkpoint import read_json
from safelens.training.config import config_fields
from safelens.training.registry import available_methods, get_method
from safelens.training.resolve import resolve_config

#: Extra spellings of some flags.
ALIASES = {"train_file": ["--train"], "from_run": ["--from"], "dataset_split": ["--split"]}


def _parse_optional(inner: Any) -> Any:
    def parse(text: str) -> Any:
        if text.lower() == "none":
            return None
        return inner(text)

    parse.__name__ = getattr(inner, "__name__", "value")
    return parse


def _argument_kwargs(tp: Any) -> dict[str, Any]:
    """argparse kwargs for a field annotated ``tp``."""
    origin = typing.get_origin(tp)
    optional = False
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0] if len(args) == 1 else str
        origin = typing.get_origin(tp)
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        return {"choices": list(typing.get_args(tp)), "type": str}
    base = tp if tp in (int, float, str) else str
    return {"type": _parse_optional(base) if optional else base}


def config_flag_table() -> dict[str, tuple[Any, str, list[str]]]:
    """``{field: (annotation, help, methods having it)}`` over all registered methods."""
    table: dict[str, tuple[Any, str, list[str]]] = {}
    for name in available_methods():
        for f, tp in config_fields(get_method(name).config_cls):
            if f.name in table:
                table[f.name][2].append(name)
            else:
                table[f.name] = (tp, f.metadata.get("help", ""), [name])
    return table


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def config_defaults() -> dict[str, str]:
    """``{field: shown default}``: the one default of the methods having it, or a note when
    their defaults differ (what ``safelens align --help`` shows; a preset may change it)."""
    seen: dict[str, list[Any]] = {}
    for name in available_methods():
        for f in dataclasses.fields(get_method(name).config_cls):
            value = _field_default(f)
            if value not in seen.setdefault(f.name, []):
                seen[f.name].append(value)
    return {k: (str(v[0]) if len(v) == 1 else "depends on --method") for k, v in seen.items()}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per config field of every registered method to ``parser``."""
    all_methods = set(available_methods())
    defaults = config_defaults()
    group = parser.add_argument_group(
        "training settings (override the preset; the defaults shown are the methods' own, "
        "before --preset)")
    for name, (tp, help_text, methods) in config_flag_table().items():
        kwargs = _argument_kwargs(tp)
        if set(methods) != all_methods:
            help_text += f" [{', '.join(methods)}]"
        if "default:" not in help_text.lower():
            help_text = f"{help_text} (default: {defaults[name]})"
        help_text = help_text.replace("%", "%%")
        flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, [])]
        group.add_argument(*flags, dest=name, default=argparse.SUPPRESS, help=help_text,
                           **kwargs)


def format_config(method: str, preset: str | None, config: Any) -> str:
    """The resolved config as ``safelens align --print-config`` prints it: JSON, one field per
    line, ``method`` and ``preset`` first.

    Examples:
        >>> from safelens.training.resolve import resolve_config
        >>> text = format_config("dpo", None, resolve_config("dpo", beta=0.2))
        >>> text.splitlines()[1:3], '"beta": 0.2' in text
        (['  "method": "dpo",', '  "preset": null,'], True)
    """
    return json.dumps({"method": method, "preset": preset, **config.to_dict()}, indent=2,
                      ensure_ascii=False, default=str)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given explicitly on the command line."""
    table = config_flag_table()
    return {k: v for k, v in vars(args).items() if k in table}


def resolve_cli_config(method: str | None, preset: str | None, out_dir: str | Path,
                       resume: bool, overrides: dict[str, Any]):
    """``(method_name, preset, config)`` for ``safelens align``.

    On ``resume`` the run's ``config.json`` is the base (its method and preset are reused
    unless given) and only explicit flags change it.

    Raises:
        ValueError: no method, an unknown method, or a flag the method does not have.
    """
    base = None
    saved_path = Path(out_dir) / "config.json"
    if resume and saved_path.is_file():
        saved = read_json(saved_path)
        if method is not None and method != saved.get("method"):
            raise ValueError(f"{out_dir} was trained with --method {saved.get('method')}, "
                             f"not {method}")
        method = saved.get("method")
        preset = preset or saved.get("preset")
        base = saved
    if method is None:
        raise ValueError(f"--method is required; available: {', '.join(available_methods())}")
    try:
        spec = get_method(method)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    names = set(spec.config_cls.field_names())
    foreign = sorted(k for k in overrides if k not in names)
    if foreign:
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise ValueError(f"{flags} do(es) not apply to method {method!r}")
    if base is not None:
        # Overrides go in before validation: a saved device='cuda' resumed with --device cpu.
        cfg = spec.config_cls.from_dict({**base, **overrides}, strict=False)
    else:
        cfg = resolve_config(method, preset=preset, **overrides)
    return method, preset, cfg
