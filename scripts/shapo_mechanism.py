"""Does ShaPO flatten its subspace, and does λ_max predict where safety breaks? (issue 16, item 4)

For the DPO and ShaPO-T checkpoints of one seed of ``scripts/shapo_power.py`` (read from
``--runs``), on two subspaces of equal size — ShaPO's selective S (the run's own
``subspace.json``) and a random set of as many neurons among the same trainable blocks:

* ``λ_max(H_S)`` of the safety preference loss by Lanczos (``geometry.report.subspace_lambda_max``)
  and the bypass check (``geometry.report.bypass_check``): the seed's predicted radius
  ``sqrt(2 margin / λ_max)`` against the radius measured by line search along the top
  eigenvector, the gradient and random directions in S, for a loss rise of ``--margin`` nats;
* the behavioural radius: in-domain ASR under Gaussian noise restricted to the subspace at
  growing relative scale σ (``attacks.curves.noise_curve``; ``‖ε‖ = σ ‖W ⊙ M‖`` per tensor,
  and the total ``‖ε‖`` is reported so both subspaces read on one axis).

The loss is DPO on ``--pairs`` harmful train pairs with the reference = the checkpoint itself
(``geometry.report.dpo_loss_fn``): ``L = log 2`` at θ, and its rise under a perturbation is how
far the perturbation moves the model's preference for the refusal over the harmful answer.
The training loss (reference = the baseline) is saturated at these checkpoints (margins ≈ 12,
loss ≈ 4e-4), so its Hessian is flat for every method and would say nothing.

    python scripts/shapo_mechanism.py --seed 0
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import torch

from safelens import __version__
from safelens.attacks.curves import noise_curve
from safelens.data import load_builtin
from safelens.data.jsonfile import write_json
from safelens.eval.generation import GenerationConfig
from safelens.eval.power import strided
from safelens.geometry.report import bypass_check, dpo_loss_fn, subspace_lambda_max
from safelens.geometry.value_vectors import Subspace
from safelens.models import load_model
from safelens.models.fingerprint import model_fingerprint
from safelens.training import resolve_config
from safelens.training.methods.shapo import build_subspace, load_subspace
from safelens.training.trainer import named_trainable_parameters

ARMS = ("dpo", "shapo-t")


def subspace_norm(sub: Subspace) -> float:
    """``‖W ⊙ M‖`` over all the subspace's coordinates."""
    total = 0.0
    for p, m in zip(sub.params, sub.masks, strict=True):
        w = p.detach().float()
        total += float((w if m is None else w[m]).pow(2).sum())
    return math.sqrt(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="runs/shapo-power")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=16, help="harmful train pairs of the loss")
    ap.add_argument("--margin", type=float, default=0.05, help="loss rise τ − L(θ), nats")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0, 1, 2, 4, 8])
    ap.add_argument("--n-harmful", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--out", default="results/seed000/shapo_mechanism.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    runs = Path(args.runs)
    cfg = resolve_config("shapo-t", preset="quick", subspace="random", seed=args.seed)
    pairs = [r for r in load_builtin("preferences", "train") if r["harmful"]][: args.pairs]
    test = load_builtin("prompts", "test")
    harmful = strided([r for r in test if r["harmful"]], args.n_harmful)
    gen = GenerationConfig(max_new_tokens=args.tokens, batch_size=32)
    record: dict[str, Any] = {"safelens_version": __version__, "settings": vars(args),
                              "loss": "DPO, reference = the checkpoint, harmful train pairs",
                              "arms": {}}
    for arm in ARMS:
        t1 = time.time()
        model = load_model(str(runs / f"{arm}-seed{args.seed}" / "model"))
        model.eval()
        named_trainable_parameters(model, cfg.freeze)  # the blocks a run could move
        subspaces = {"selective": load_subspace(model, runs / f"shapo-t-seed{args.seed}"),
                     "random": build_subspace(model, [], cfg)}
        loss_fn = dpo_loss_fn(model, pairs, beta=cfg.beta, max_length=cfg.max_length)
        hess = subspace_lambda_max(loss_fn, subspaces)
        entry: dict[str, Any] = {"fingerprint": model_fingerprint(model), "subspaces": {}}
        for name, sub in subspaces.items():
            check = bypass_check(loss_fn, sub, hess[name], tau_margin=args.margin)
            curve = noise_curve(model, harmful, args.sigmas, subspace=sub, gen_config=gen,
                                out=runs / f"mechanism-{arm}-seed{args.seed}-{name}")
            w_norm = subspace_norm(sub)
            entry["subspaces"][name] = {
                "coordinates": sub.numel, "weight_norm": w_norm,
                "lambda_max": hess[name].eigenvalue, "lambda_converged": hess[name].converged,
                "n_hvp": hess[name].n_hvp,
                "bypass": {k: v for k, v in check.items() if k != "directions"},
                "directions": {d: {k: v[k] for k in ("measured", "crossed", "slope",
                                                     "curvature", "quadratic")}
                               for d, v in check["directions"].items()},
                "noise": [{"sigma": c["strength"], "eps_norm": c["strength"] * w_norm,
                           "asr": c["asr"], "degenerate": c["degenerate"]}
                          for c in curve["curve"]],
            }
            print(arm, name, {k: entry["subspaces"][name][k] for k in ("lambda_max",)},
                  "predicted", check["predicted"], "measured",
                  {d: v["measured"] for d, v in check["directions"].items()},
                  [(c["sigma"], c["asr"]["value"] if c["asr"] else None)
                   for c in entry["subspaces"][name]["noise"]], flush=True)
        entry["wall_s"] = round(time.time() - t1, 1)
        record["arms"][arm] = entry
        del model
        write_json(Path(args.out), record)
    record["wall_s"] = round(time.time() - t0, 1)
    write_json(Path(args.out), record)
    print("wrote", args.out, flush=True)


if __name__ == "__main__":
    main()
