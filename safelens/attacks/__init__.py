"""Attacks that change the model: fine-tuning attacks (seed 003 Table 4, seed 001 Table 3),
downstream fine-tuning with utility scores (seed 001 Table 4), and post-alignment
perturbations (seed 002): parameter noise, activation noise (``perturb.py``), weight
quantization (``quantize.py``) and their strength sweeps (``curves.py``).

Inference-time attacks (prefilling) live in :mod:`safelens.eval.prefill`.
"""

from safelens.attacks.curves import (
    activation_noise_curve,
    curve_table,
    noise_curve,
    quantization_sweep,
)
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
from safelens.attacks.perturb import (
    ACTIVATION_SITES,
    activation_noise,
    activation_noise_hooks,
    parameter_noise,
    parameter_noise_applied,
    relative_gaussian,
    relative_position_noise,
    target_parameters,
)
from safelens.attacks.quantize import (
    GGML_FORMATS,
    INT_FORMATS,
    QUANT_FORMATS,
    fake_quant_per_channel,
    ggml_round_trip,
    load_gguf,
    quantization_applied,
    quantize_round_trip,
    quantized_weights,
    write_gguf,
)

__all__ = ["DEFENSES", "FinetuneAttackConfig", "attack_eval_sets", "attack_table",
           "evaluate_asr", "evaluate_utility", "paired_defense_table", "rejudge",
           "run_attack_grid", "run_downstream", "run_downstream_grid", "run_finetune_attack",
           "utility_table",
           # seed 002: perturbations
           "ACTIVATION_SITES", "GGML_FORMATS", "INT_FORMATS", "QUANT_FORMATS",
           "activation_noise", "activation_noise_curve", "activation_noise_hooks", "curve_table",
           "fake_quant_per_channel", "ggml_round_trip", "load_gguf", "noise_curve",
           "parameter_noise", "parameter_noise_applied", "quantization_applied",
           "quantization_sweep", "quantize_round_trip", "quantized_weights",
           "relative_gaussian", "relative_position_noise", "target_parameters", "write_gguf"]
