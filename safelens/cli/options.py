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

from safelens.eval.generation import GenerationConfig

__all__ = ["generation_config"]


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
