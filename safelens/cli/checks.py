"""Checks of command-line settings that run before any model loads.

Each raises :class:`safelens.errors.SafelensError` naming the flag (or file) and what was
expected, so a mistyped judge or an unwritable ``--out`` is reported in a second, not after
every response was generated.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from safelens.attacks.perturb import ACTIVATION_SITES, check_layer, check_sigma
from safelens.attacks.quantize import check_format
from safelens.cli.options import generation_config
from safelens.data.eval_sets import EVAL_SETS
from safelens.errors import SafelensError, check_device, check_number, check_output_dir
from safelens.eval.checks import check_generation_config
from safelens.eval.judges import check_judge_name as _check_judge_name
from safelens.eval.judges import get_judge
from safelens.models.device import resolve_device
from safelens.models.loading import (
    _DEFAULT_ALIASES,
    _resolve_local_dir,
    check_model_name,
    default_gguf_path,
    resolve_dtype,
)
from safelens.models.precision import resolve_precision


def check_input_file(path: str | Path, setting: str) -> Path:
    """``path`` as a Path; raises unless it is an existing regular file."""
    path = Path(path)
    if not path.exists():
        raise SafelensError(f"{setting} {path}: no such file")
    if not path.is_file():
        raise SafelensError(f"{setting} {path} is a directory; expected a JSONL file")
    return path


def is_eval_set_name(prompts: str | Path) -> bool:
    """Whether ``--prompts`` names an evaluation set (:data:`safelens.data.EVAL_SETS`) rather
    than a file: a set name that is not also an existing path (a file of that name wins)."""
    return str(prompts) in EVAL_SETS and not Path(prompts).exists()


def check_output_file(path: str | Path, setting: str = "--out",
                      inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """``path`` as a Path; raises if it is a directory, an input file, or not writable."""
    path = Path(path)
    if path.is_dir():
        raise SafelensError(f"{setting} {path} is a directory; expected a file path")
    for other in inputs:
        if other is not None and Path(other).exists() and path.exists() \
                and path.resolve() == Path(other).resolve():
            raise SafelensError(f"{setting} {path} is also an input file; expected a new path "
                                "(the input would be overwritten)")
    check_output_dir(path.parent, setting=f"{setting} {path}: folder")
    return path


def check_judge_name(name: str, setting: str = "--judge") -> None:
    """:func:`safelens.eval.judges.check_judge_name` under a CLI flag's name."""
    _check_judge_name(name, setting)


def check_generation_args(args: argparse.Namespace) -> None:
    """Decoding flags: ``--max-new-tokens``, ``--batch-size``, ``--temperature``, ``--top-p``."""
    check_number(args.max_new_tokens, "--max-new-tokens", low=1, integer=True)
    check_number(args.batch_size, "--batch-size", low=1, integer=True)
    check_number(args.temperature, "--temperature", low=0, low_open=True)
    check_number(args.top_p, "--top-p", low=0, high=1, low_open=True)
    check_number(args.seed, "--seed", low=0, integer=True)
    check_generation_config(generation_config(args))
    try:
        device = resolve_device(getattr(args, "device", None))
    except (RuntimeError, ValueError):
        return  # a bad --device is reported by its own check
    try:
        resolve_precision(args.precision, device)
    except SafelensError as err:
        raise SafelensError(f"--precision: {err}") from None


def check_eval_args(args: argparse.Namespace) -> Any:
    """Every ``safelens eval`` setting, before any model loads; returns the judge."""
    if args.limit is not None:
        check_number(args.limit, "--limit", low=1, integer=True)
    if getattr(args, "subsample", None) is not None:
        check_number(args.subsample, "--subsample", low=1, integer=True)
    check_generation_args(args)
    check_device(args.device)
    try:
        resolve_dtype(args.dtype)
    except ValueError as err:
        raise SafelensError(f"--dtype: {err}") from None
    if is_eval_set_name(args.prompts):
        check_output_file(args.out)
    else:
        check_input_file(args.prompts, "--prompts")
        check_output_file(args.out, inputs=(args.prompts,))
    check_model_name(args.model)
    check_judge_name(args.judge)
    return get_judge(args.judge)


def parse_list(text: str, setting: str, cast: type = str) -> list:
    """``"a,b,c"`` -> ``[cast(a), cast(b), cast(c)]``; raises naming ``setting`` on a bad item.

    Examples:
        >>> parse_list("0,0.01", "--sigmas", float)
        [0.0, 0.01]
    """
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if not items:
        raise SafelensError(f"{setting} {text!r} is empty; expected a comma-separated list")
    out = []
    for item in items:
        try:
            out.append(cast(item))
        except ValueError:
            kind = {float: "numbers", int: "integers"}.get(cast, "names")
            raise SafelensError(f"{setting} {text!r}: {item!r} is not valid; expected "
                                f"comma-separated {kind}") from None
    return out


def model_layer_count(name: str) -> int | None:
    """The number of blocks of model ``name`` read from its config, without loading weights
    (the default model: its GGUF header; a local directory: ``config.json``; a Hub id: the
    cached config). None when it cannot be read cheaply."""
    import json

    try:
        if name.lower() in _DEFAULT_ALIASES:
            import gguf

            reader = gguf.GGUFReader(default_gguf_path())
            arch = reader.fields["general.architecture"].contents()
            return int(reader.fields[f"{arch}.block_count"].contents())
        path = Path(name).expanduser()
        if path.exists():
            config = json.loads((_resolve_local_dir(path) / "config.json").read_text())
        else:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(name).to_dict()
        for key in ("num_hidden_layers", "n_layer", "num_layers"):
            if isinstance(config.get(key), int):
                return int(config[key])
    except (OSError, ValueError, KeyError):
        return None
    return None


def check_perturb_args(args: argparse.Namespace) -> dict[str, Any]:
    """Every ``safelens attack noise|activation|quantize`` setting, before any model loads.

    Returns:
        ``{"judge", "seeds", "sigmas" | "formats", "layer"}`` parsed and checked.
    """
    parsed: dict[str, Any] = {}
    if args.attack_command in ("noise", "activation"):
        parsed["sigmas"] = [check_sigma(s, "--sigmas")
                            for s in parse_list(args.sigmas, "--sigmas", float)]
        parsed["seeds"] = parse_list(args.seeds, "--seeds", int)
        for seed in parsed["seeds"]:
            check_number(seed, "--seeds value", low=0, integer=True)
    else:
        parsed["formats"] = ["none" if f.lower() == "none" else check_format(f, "--formats")
                             for f in parse_list(args.formats, "--formats")]
        if args.embedding_format is not None:
            check_format(args.embedding_format, "--embedding-format")
    if str(args.salad_nll).lower() == "none":
        parsed["salad_nll"] = None
    else:
        parsed["salad_nll"] = parse_list(args.salad_nll, "--salad-nll", float)[0]
        check_number(parsed["salad_nll"], "--salad-nll", low=0, low_open=True)
    if args.attack_command == "activation":
        parsed["sites"] = parse_list(args.sites, "--sites")
        for site in parsed["sites"]:
            if site not in ACTIVATION_SITES:
                raise SafelensError(f"--sites: {site!r} is not an activation site; expected "
                                    f"some of {', '.join(ACTIVATION_SITES)}")
    if str(args.salad_nll).lower() == "none":
        parsed["salad_nll"] = None
    else:
        parsed["salad_nll"] = parse_list(args.salad_nll, "--salad-nll", float)[0]
        check_number(parsed["salad_nll"], "--salad-nll", low=0, low_open=True)
    if getattr(args, "subsample", None) is not None:
        check_number(args.subsample, "--subsample", low=1, integer=True)
    check_generation_args(args)
    check_device(args.device)
    try:
        resolve_dtype(args.dtype)
    except ValueError as err:
        raise SafelensError(f"--dtype: {err}") from None
    if not is_eval_set_name(args.prompts):
        check_input_file(args.prompts, "--prompts")
    check_output_dir(args.out)
    check_model_name(args.model)
    layer = getattr(args, "layer", None)
    if layer is not None:
        n_layers = model_layer_count(args.model)
        if n_layers is None:
            check_number(layer, "--layer", low=0, integer=True)  # the rest when it loads
        else:
            check_layer(layer, n_layers, "--layer")
    parsed["layer"] = layer
    check_judge_name(args.judge)
    parsed["judge"] = get_judge(args.judge)
    return parsed
