"""Built-in training methods; importing this package registers them.

One file per family: ``preference.py`` (dpo, ipo, cdpo, rdpo, drdpo), ``sft.py``, ``npo.py``,
``reward_level.py``, ``shapo.py`` (shapo-t, shapo-r), ``deep.py`` (augmented-sft,
constrained-sft, door, w-door), ``csft_pa.py`` (csft-pa, seed 001), ``zo_refine.py``
(zo-refine, seed 002). A new method is one more file here (or anywhere) that subclasses
:class:`~safelens.training.methods.base.Method` and calls
:func:`~safelens.training.registry.register_method`.
"""

from safelens.training.methods import (  # noqa: F401
    csft_pa,
    deep,
    npo,
    preference,
    reward_level,
    sft,
    shapo,
    zo_refine,
)
from safelens.training.methods.base import Method, TrainContext, preference_metrics

__all__ = ["Method", "TrainContext", "preference_metrics"]
