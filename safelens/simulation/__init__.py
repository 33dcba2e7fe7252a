"""Toy token-sequence simulations of seed 001's pre-experiments (CSFT + PA, §5.1-5.2).

One part per file:

- ``task.py`` — the seeded HMM token source, its samples, its exact next-token distributions.
- ``models.py`` — :class:`LSTMLanguageModel` and the four architectures of the seed
  (``pre1_policy``, ``pre1_reference``, ``pre2_policy``, ``pre2_reference``).
- ``metrics.py`` — pure distribution-alignment metrics on ``[N, V]`` probabilities (KL,
  per-token probability difference, cosine, Pearson, overlap, KL similarity, probability
  alignment), each with our reading of the seed.
- ``experiments.py`` — configs (``Pre1Config``, ``Pre2Config``), one seed's run
  (``run_pre1``, ``run_pre2``), many seeds with paired statistics (``run_many``,
  ``cached_run_many``).

The losses come from :mod:`safelens.losses.token` (``sft_loss``, ``constrained_sft_loss``,
``pa_loss``, ``pa_delta_schedule``); nothing here defines a loss. No LLM is loaded.
"""

from safelens.simulation.experiments import (
    Pre1Config,
    Pre2Config,
    cached_run_many,
    delta_schedule,
    format_summary,
    paired_difference,
    run_many,
    run_pre1,
    run_pre2,
    t_interval,
)
from safelens.simulation.metrics import (
    METRIC_DIRECTIONS,
    alignment_metrics,
    argmax_agreement,
    cosine_similarity,
    data_token_prob_difference,
    distribution_overlap,
    kl_divergence,
    kl_similarity,
    pearson_correlation,
    probability_alignment,
    token_prob_difference,
)
from safelens.simulation.models import (
    LSTMLanguageModel,
    n_parameters,
    pre1_policy,
    pre1_reference,
    pre2_policy,
    pre2_reference,
)
from safelens.simulation.task import (
    HMMSource,
    make_source,
    sample_sequences,
    source_next_token_probs,
)

__all__ = [
    "HMMSource",
    "LSTMLanguageModel",
    "METRIC_DIRECTIONS",
    "Pre1Config",
    "Pre2Config",
    "alignment_metrics",
    "argmax_agreement",
    "cached_run_many",
    "cosine_similarity",
    "data_token_prob_difference",
    "delta_schedule",
    "format_summary",
    "distribution_overlap",
    "kl_divergence",
    "kl_similarity",
    "make_source",
    "n_parameters",
    "paired_difference",
    "pearson_correlation",
    "pre1_policy",
    "pre1_reference",
    "pre2_policy",
    "pre2_reference",
    "probability_alignment",
    "run_many",
    "run_pre1",
    "run_pre2",
    "sample_sequences",
    "source_next_token_probs",
    "t_interval",
    "token_prob_difference",
]
