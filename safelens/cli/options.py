"""Command-line flags turned into the package's config objects (shared by commands and checks).

Examples:
    >>> import argparse
    >>> args = argparse.Namespace(max_new_tokens=8, batch_size=2, sample=False, temperature=1.0,
    ...                           top_p=1.0, seed=0, precision="fp32")
    >>> generation_config(args).max_new_tokens
    8
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator

from safelens.eval.generation import GenerationConfig
from safelens.models.precision import PRECISIONS

__all__ = ["HelpFormatter", "add_device_precision_args", "generation_config", "iter_parsers",
           "warn_deprecated_flags"]

PRECISION_HELP = ("numeric precision: fp32, bf16 (autocast; weights stay fp32) or auto (bf16 "
                  "where the CPU/GPU has native bf16 matmuls, else fp32)")
"""The one help text of ``--precision`` (``safelens align`` takes it from ``TrainConfig``)."""

DEVICE_HELP = "cpu, cuda, cuda:N, mps, ... (default: cuda if available, else cpu)"
"""The one help text of ``--device``."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every flag's default, except where its help already says it or there is none.

    Examples:
        >>> p = argparse.ArgumentParser(formatter_class=HelpFormatter)
        >>> _ = p.add_argument("--n", type=int, default=3, help="how many")
        >>> "how many (default: 3)" in p.format_help()
        True
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or "default:" in text.lower() or action.default is None
                or action.default is argparse.SUPPRESS or action.default is False
                or not action.option_strings):
            return text
        return super()._get_help_string(action)


def iter_parsers(parser: argparse.ArgumentParser,
                 path: str = "safelens") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command path, parser)`` for ``parser`` and every sub-command below it, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from iter_parsers(sub, f"{path} {name}")


def add_device_precision_args(parser: argparse.ArgumentParser, precision: str = "fp32",
                              device: bool = True, dtype: bool = True) -> None:
    """``--device`` and ``--precision`` (one spelling, one help text, in every command that
    has the setting), and the deprecated ``--dtype`` where a command had it."""
    if device:
        parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument("--precision", default=precision, choices=list(PRECISIONS),
                        help=PRECISION_HELP)
    if dtype:
        parser.add_argument("--dtype", default=None,
                            help="deprecated, use --precision; still stores the weights in "
                                 "float32 (default), bfloat16 or float16")


def warn_deprecated_flags(args: argparse.Namespace) -> None:
    """One :class:`FutureWarning` per deprecated flag given (today ``--dtype``).

    ``--dtype`` keeps its meaning (the dtype the weights are stored in, which saves memory on
    large models) instead of being mapped onto ``--precision`` (autocast over float32 weights):
    a mapping would silently change the numbers of existing scripts and their cached
    evaluations.
    """
    if getattr(args, "dtype", None) is not None:
        warnings.warn("--dtype is deprecated: use --precision fp32|bf16|auto (autocast); "
                      "--dtype still sets the dtype the weights are stored in",
                      FutureWarning, stacklevel=2)


def generation_config(args: argparse.Namespace) -> GenerationConfig:
    """The decoding settings of ``--max-new-tokens``, ``--batch-size``, ``--sample``,
    ``--temperature``, ``--top-p``, ``--seed`` and ``--precision``."""
    return GenerationConfig(
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        do_sample=args.sample,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        precision=args.precision,
    )
