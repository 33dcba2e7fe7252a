"""Batched generation for evaluation: :func:`generate` and :class:`GenerationConfig`.

They live in :mod:`safelens.models.generation`, below ``training`` (DOOR's ``harmful_source``
generates its harmful continuations there, and ``training`` may not import ``eval``); this is
eval's name for them.
"""

from safelens.models.generation import GenerationConfig, generate

__all__ = ["GenerationConfig", "generate"]
