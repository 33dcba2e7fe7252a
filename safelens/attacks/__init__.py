"""Attacks that change the model: fine-tuning attacks (seed 003 Table 4, seed 001 Table 3)
and downstream fine-tuning with utility scores (seed 001 Table 4).

Inference-time attacks (prefilling) live in :mod:`safelens.eval.prefill`.
"""

from safelens.attacks.downstream import (
    evaluate_utility,
    run_downstream,
    run_downstream_grid,
    utility_table,
)
from safelens.attacks.finetune import (
    DEFENSES,
    FinetuneAttackConfig,
    attack_eval_sets,
    attack_table,
    evaluate_asr,
    paired_defense_table,
    rejudge,
    run_attack_grid,
    run_finetune_attack,
)

__all__ = ["DEFENSES", "FinetuneAttackConfig", "attack_eval_sets", "attack_table",
           "evaluate_asr", "evaluate_utility", "paired_defense_table", "rejudge",
           "run_attack_grid", "run_downstream", "run_downstream_grid", "run_finetune_attack",
           "utility_table"]
