"""ShaPO at the aligned baseline, before any run (issue 16, items 2 and 6): how far the SAM
perturbation moves the loss, and how concentrated the first-order worst-case loss is.

For each subspace ShaPO can use (selective: the probe's top 1% of value vectors; random: as
many random ones; uniform: every trainable parameter), chosen as a run would choose it (the
quick preset's frozen blocks are not eligible), on N preference pairs of the train split:

* ``‖g_S‖`` and the perturbed-loss gap ``L(θ + ε_S) − L(θ)`` at the default ρ = 0.05;
* the radius ρ that gives each target gap (``safelens.training.sam.rho_for_gap``);
* Fig. 1's shares at K = ``--fractions`` of all neurons (0.1% … 100%), in the joint reading
  (``first_order_share``: ‖g_S‖ / ‖g_all‖) and the additive one (``additive_share``:
  Σ_S ‖g_j‖ / Σ_all ‖g_j‖), for the probe ranking, the oracle ranking (by gradient norm) and a
  random one.

The loss is DPO with the reference = the model at θ (``geometry.report.dpo_loss_fn``: a run's
first step). Writes ``results/seed000/shapo_calibration.json``; ``--fig1-only`` recomputes
Fig. 1's shares and keeps the file's subspace calibration (refused if the baseline changed).

    python scripts/shapo_calibration.py [--pairs 32] [--out results/seed000/shapo_calibration.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from safelens import __version__
from safelens.data import load_builtin
from safelens.data.jsonfile import write_json
from safelens.geometry.probes import probe_direction
from safelens.geometry.report import (
    additive_share,
    dpo_loss_fn,
    first_order_share,
    neuron_gradient_norms,
)
from safelens.geometry.value_vectors import random_k_neurons, rank_value_vectors, top_k_neurons
from safelens.models import load_model
from safelens.models.fingerprint import model_fingerprint
from safelens.training import resolve_config
from safelens.training.methods.shapo import build_subspace
from safelens.training.runs import aligned_baseline
from safelens.training.sam import rho_for_gap, sam_gap
from safelens.training.trainer import named_trainable_parameters

GAPS = (0.05, 0.1, 0.5)
FRACTIONS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=32, help="preference pairs of the loss")
    ap.add_argument("--out", default="results/seed000/shapo_calibration.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe-rows", type=int, default=320,
                    help="train rows whose harmful pairs train the probe (a quick run's rows)")
    ap.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS),
                    help="Fig. 1: top-K as fractions of all MLP neurons")
    ap.add_argument("--fig1-only", action="store_true",
                    help="recompute Fig. 1's shares only; keep the file's subspace calibration")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    base = aligned_baseline().model_dir
    model = load_model(str(base))
    model.eval()
    cfg = resolve_config("shapo-t", preset="quick", subspace="selective")
    named_trainable_parameters(model, cfg.freeze)  # frozen blocks are not eligible, as in a run
    train = load_builtin("preferences", "train")
    harmful = [r for r in train if r["harmful"]][: args.pairs // 2]
    benign = [r for r in train if not r["harmful"]][: args.pairs - len(harmful)]
    rows = harmful + benign
    loss_fn = dpo_loss_fn(model, rows, beta=cfg.beta, max_length=cfg.max_length)
    record = {"model": str(base), "probe_rows": args.probe_rows, "model_fingerprint": model_fingerprint(model),
              "safelens_version": __version__, "pairs": len(rows), "beta": cfg.beta,
              "max_length": cfg.max_length, "freeze": cfg.freeze, "default_rho": cfg.rho,
              "top_fraction": cfg.top_fraction, "subspaces": {}}
    out_path = Path(args.out)
    if args.fig1_only:
        old = json.loads(out_path.read_text(encoding="utf-8")) if out_path.exists() else {}
        if old.get("model_fingerprint") != record["model_fingerprint"]:
            raise SystemExit(f"{out_path} holds no calibration of this baseline (fingerprint "
                             f"{old.get('model_fingerprint')}, expected "
                             f"{record['model_fingerprint']}): run without --fig1-only")
        record["subspaces"] = old["subspaces"]
    for kind in () if args.fig1_only else ("selective", "random", "uniform"):
        t1 = time.time()
        sub = build_subspace(model, train[: args.probe_rows],
                             resolve_config("shapo-t", preset="quick", subspace=kind))
        at_default = sam_gap(loss_fn, sub, cfg.rho)
        entry = {"coordinates": sub.numel, "params": len(sub),
                 "neurons": None if sub.neurons is None else len(sub.neurons),
                 "gap_at_default_rho": at_default, "rho_for_gap": {}}
        for gap in GAPS:
            out = rho_for_gap(loss_fn, sub, gap)
            entry["rho_for_gap"][str(gap)] = {k: out[k] for k in ("rho", "gap", "converged")}
            entry["grad_norm"], entry["loss"] = out["grad_norm"], out["loss"]
        record["subspaces"][kind] = entry
        entry["seconds"] = round(time.time() - t1, 1)
        print(kind, {k: v for k, v in entry.items() if k != "rho_for_gap"},
              entry["rho_for_gap"], flush=True)
    # Fig. 1 shares from one gradient of the same loss over every value vector.
    named_trainable_parameters(model, None)
    g = neuron_gradient_norms(loss_fn, model)  # [n_layers, d_mlp]
    n_layers, d_mlp = g.shape
    ks = [max(1, round(f * n_layers * d_mlp)) for f in args.fractions]
    probe = probe_direction(model, train[: args.probe_rows], seed=0, max_length=cfg.max_length)
    flat = torch.argsort(g.reshape(-1), descending=True)
    rankings = {"probe": top_k_neurons(rank_value_vectors(model, probe.direction),
                                       k=n_layers * d_mlp),
                "oracle (gradient norm)": torch.stack([flat // d_mlp, flat % d_mlp], dim=1),
                "random": random_k_neurons(n_layers, d_mlp, n_layers * d_mlp, seed=0)}
    record["fig1"] = {"ks": ks, "fractions": args.fractions, "probe_val_acc": probe.accuracy_val,
                      "rankings": {name: {"joint": first_order_share(g, r, ks).tolist(),
                                          "additive": additive_share(g, r, ks).tolist()}
                                   for name, r in rankings.items()}}
    print(record["fig1"], flush=True)
    if args.fig1_only:  # the calibration's own time stays; Fig. 1's is logged beside it
        record["wall_s"], record["fig1_wall_s"] = old.get("wall_s"), round(time.time() - t0, 1)
    else:
        record["wall_s"] = round(time.time() - t0, 1)
    write_json(out_path, record)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
