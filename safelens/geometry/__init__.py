"""Geometry of safety alignment: probes, value vectors, subspaces, curvature, KL depth.

One part per file:

- ``probes.py`` — linear safety probes on hook activations (ShaPO Eq. 6).
- ``value_vectors.py`` — value-vector ranking (ShaPO Eq. 7), neuron selections and the
  :class:`Subspace` the ShaPO optimizer, the Hessian and the bypass radius share.
- ``worst_case.py`` — cumulative worst-case loss vs K, Top-K vs Random-K (ShaPO Figure 1).
- ``hessian.py`` — ``λ_max(H_S)`` from Hessian-vector products (ShaPO §3.4, Appendix C).
- ``bypass.py`` — predicted and measured bypass radius (ShaPO §3.4, Appendix C.2).
- ``kl_depth.py`` — per-token KL between aligned and base models (Qi et al., Figure 1).
- ``neurons.py`` — one MLP neuron: logit effects of its value vector, activations on prompts,
  scaling hooks (what the neuron explorer shows).

No training loops live here.
"""

from safelens.geometry.bypass import (
    BypassInfo,
    measured_bypass_radius,
    predicted_bypass_radius,
    random_subspace_directions,
)
from safelens.geometry.hessian import HessianInfo, HVPOperator, hessian_lambda_max
from safelens.geometry.kl_depth import kl_depth_profile, next_token_logits
from safelens.geometry.probes import (
    Probe,
    collect_activations,
    probe_all_layers,
    probe_direction,
    probe_examples,
    resid_post_hook,
    train_probe,
)
from safelens.geometry.value_vectors import (
    Subspace,
    ValueVectorParam,
    hf_param_names,
    neuron_param_masks,
    random_k_neurons,
    rank_value_vectors,
    top_k_neurons,
    uniform_param_masks,
    value_vector_params,
)
from safelens.geometry.worst_case import fraction_at, worst_case_curves, worst_case_loss_curve

__all__ = [
    "BypassInfo",
    "HVPOperator",
    "HessianInfo",
    "Probe",
    "Subspace",
    "ValueVectorParam",
    "collect_activations",
    "fraction_at",
    "hessian_lambda_max",
    "hf_param_names",
    "kl_depth_profile",
    "measured_bypass_radius",
    "neuron_param_masks",
    "next_token_logits",
    "predicted_bypass_radius",
    "probe_all_layers",
    "probe_direction",
    "probe_examples",
    "random_k_neurons",
    "random_subspace_directions",
    "rank_value_vectors",
    "resid_post_hook",
    "top_k_neurons",
    "train_probe",
    "uniform_param_masks",
    "value_vector_params",
    "worst_case_curves",
    "worst_case_loss_curve",
]

from safelens.geometry.neurons import (  # noqa: E402 - kept apart from the list above
    mlp_activations,
    mlp_post_hook,
    neuron_activations,
    neuron_logit_effects,
    neuron_scale_hooks,
)

__all__ += ["mlp_activations", "mlp_post_hook", "neuron_activations", "neuron_logit_effects",
            "neuron_scale_hooks"]
