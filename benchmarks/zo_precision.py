"""Is a zeroth-order (MeZO / SPSA) two-point estimate usable under bf16 autocast?

``zo-refine`` reads (L(θ+εz) − L(θ−εz)) / 2ε, which should equal the directional derivative
∇L·z up to O(ε²) curvature. Each loss is rounded by the forward's precision; when that rounding
is comparable to 2ε·∇L·z the estimate is noise. For several ε and directions z this prints the
exact directional derivative (fp32 backward) beside the two-point estimate in fp32 and in bf16,
on a batch of the built-in training pairs (the SFT loss, mean per response token) and the
blocks the aligned baseline trains (15-29 of the default model).

Usage::

    python benchmarks/zo_precision.py --json benchmarks/results/zo_precision.json
    python benchmarks/zo_precision.py --model tiny --directions 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict:
    import torch

    from safelens.data.builtin import load_builtin
    from safelens.models import load_model, load_tiny_model
    from safelens.models.chat import encode
    from safelens.models.logprobs import response_logps
    from safelens.models.precision import autocast

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct", help="a model, or 'tiny'")
    ap.add_argument("--eps", default="1e-3,1e-2", help="comma-separated perturbation scales")
    ap.add_argument("--directions", type=int, default=3, help="random directions z per eps")
    ap.add_argument("--rows", type=int, default=8, help="training pairs in the batch")
    ap.add_argument("--first-block", type=int, default=15, help="perturb blocks from this one")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    model = load_tiny_model(0) if args.model == "tiny" else load_model(args.model)
    rows = load_builtin("preferences", "train")[: args.rows]
    batch = encode(model.tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows],
                   max_length=128, on_overlong="truncate")
    n_layers = int(model.cfg.n_layers)
    first = min(args.first_block, n_layers - 1)
    params = [p for n, p in model.original_model.named_parameters()
              if any(f".layers.{i}." in n for i in range(first, n_layers))]

    def loss(precision: str) -> float:
        with torch.no_grad(), autocast(precision):
            mean, _ = response_logps(model, batch, average=True)
        return -float(mean.float().mean())

    for p in params:
        p.requires_grad_(True)
    mean, _ = response_logps(model, batch, average=True)
    grads = torch.autograd.grad(-mean.mean(), params)
    results = []
    for eps in (float(e) for e in args.eps.split(",")):
        for k in range(args.directions):
            gen = torch.Generator().manual_seed(k)
            zs = [torch.randn(p.shape, generator=gen) for p in params]
            exact = float(sum((g * z).sum() for g, z in zip(grads, zs, strict=True)))
            row = {"eps": eps, "direction": k, "exact": exact}
            for precision in ("fp32", "bf16"):
                with torch.no_grad():
                    for p, z in zip(params, zs, strict=True):
                        p.add_(eps * z)
                    plus = loss(precision)
                    for p, z in zip(params, zs, strict=True):
                        p.add_(-2 * eps * z)
                    minus = loss(precision)
                    for p, z in zip(params, zs, strict=True):
                        p.add_(eps * z)
                row[precision] = (plus - minus) / (2 * eps)
            results.append(row)
            print(f"eps {eps:g}  z{k}:  exact {exact:+8.3f}   fp32 {row['fp32']:+8.3f}   "
                  f"bf16 {row['bf16']:+8.3f}")
    out = {"model": args.model, "rows": args.rows, "blocks": [first, n_layers - 1],
           "params_m": sum(p.numel() for p in params) / 1e6, "torch": torch.__version__,
           "results": results}
    for eps in sorted({r["eps"] for r in results}):
        mine = [r for r in results if r["eps"] == eps]
        for precision in ("fp32", "bf16"):
            err = max(abs(r[precision] - r["exact"]) for r in mine)
            out[f"max_abs_error/{precision}/eps={eps:g}"] = err
            print(f"eps {eps:g}: max |estimate - exact| {precision} {err:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
