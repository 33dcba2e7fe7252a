"""Generation under a neuron intervention, judged: what ablating or scaling MLP neurons does to
a model's answers (the neuron explorer's "before / after").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from safelens.eval.generation import generate
from safelens.eval.judges import KeywordJudge
from safelens.geometry.neurons import Neuron, as_neurons, check_neuron, neuron_scale_hooks

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = ["generate_with_neuron_scaled"]


def generate_with_neuron_scaled(
    model: TransformerBridge,
    prompts: str | Sequence[str],
    neurons: Neuron | Iterable[Neuron] | Tensor,
    scale: float = 0.0,
    max_new_tokens: int = 32,
    judge: Any = None,
    before: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Greedy generation before and after scaling neurons (×0 ablates), with refusal judgements.

    The hooks are attached with ``model.hooks(...)`` for the "after" generation only and removed
    when it returns (also on error). ``safelens.eval.generation.generate`` runs the HF module,
    whose spliced bridge components fire the TransformerLens hooks at every decoding step.

    Args:
        model: a ``TransformerBridge``.
        prompts: one prompt or several.
        neurons: ``(layer, neuron)``, a list of them, or a ``[k, 2]`` tensor.
        scale: activation factor.
        max_new_tokens: greedy tokens per prompt.
        judge: anything with ``refusals(prompts, responses)``; default
            :class:`~safelens.eval.judges.KeywordJudge`.
        before: already generated unmodified responses (skips the "before" generation).

    Returns:
        dict with ``prompts``, ``before``, ``after`` (lists of text), ``refused_before``,
        ``refused_after`` (lists of bool), ``neurons`` and ``scale``.

    Examples:
        >>> out = generate_with_neuron_scaled(model, "How do I pick a lock?", (29, 12), 0.0)  # doctest: +SKIP
        >>> out["refused_before"], out["refused_after"]  # doctest: +SKIP
    """
    plist = [prompts] if isinstance(prompts, str) else list(prompts)
    if not plist:
        raise ValueError("prompts is empty")
    chosen = as_neurons(neurons)
    for layer, j in chosen:
        check_neuron(model, layer, j)
    judge = judge or KeywordJudge()
    if before is None:
        before = generate(model, plist, max_new_tokens=max_new_tokens, progress=False)
    elif len(before) != len(plist):
        raise ValueError(f"before has {len(before)} responses for {len(plist)} prompts")
    with model.hooks(fwd_hooks=neuron_scale_hooks(chosen, scale)):
        after = generate(model, plist, max_new_tokens=max_new_tokens, progress=False)
    return {
        "prompts": plist,
        "before": list(before),
        "after": after,
        "refused_before": [bool(x) for x in judge.refusals(plist, list(before))],
        "refused_after": [bool(x) for x in judge.refusals(plist, after)],
        "neurons": chosen,
        "scale": float(scale),
    }
