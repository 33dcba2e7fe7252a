"""Seed 001's pre-experiments on toy models: PA vs cross-entropy (pre-1), CSFT + PA vs CSFT (pre-2).

One run (:func:`run_pre1` / :func:`run_pre2`, one seed) does, in order:

1. draws the task from ``seed`` (:mod:`safelens.simulation.task`): a random HMM source and
   three samples of it — the reference's training set, the policy's fine-tuning set, a
   held-out set;
2. trains the reference π_aligned on its set with cross-entropy, then freezes it;
3. builds the policy π_θ once and trains a copy of that **same initialisation**, on the
   **same batches in the same order**, under each group's loss:

   ======== ====================================== =========================================
   exp.     Group 1 (baseline)                     Group 2
   ======== ====================================== =========================================
   pre-1    CE: ``sft_loss`` (token-mean NLL)      CE + δ_epoch · ``pa_loss``
   pre-2    CSFT: ``constrained_sft_loss`` with    CSFT + δ_epoch · ``pa_loss``
            ``constrained_sft_betas_for_mask``
   ======== ====================================== =========================================

4. reads every metric of :mod:`safelens.simulation.metrics` on the held-out set (all positions
   of all sequences) before training and after each epoch.

Readings of seed 001 (§5.1-5.2) that the code fixes:

* Pre-1's Group 2, "training with PA loss", is CE + δ_epoch · L_PA (the seed's Eq. 1 with CE in
  place of CSFT): PA alone has no term that fits the data (it is log 2 with zero gradient
  wherever the argmaxes agree), so it cannot be trained on alone.
* δ_epoch = :func:`~safelens.losses.token.pa_delta_schedule` ``(epoch, epochs)`` with the
  **0-based** epoch index: 0.1 in the first epoch, rising by 0.2 / epochs per epoch, never
  quite 0.3.
* μ_t = KL(π_θ ‖ π_aligned) is **not** detached (the seed's appendix differentiates through
  it; ``detach_mu=True`` changes that) and is clamped at ``max_mu`` (the seed's bounded-KL
  assumption); the run counts the clamped positions.
* The whole sequence is the "response": the mask is all ones, so CSFT's β_t schedule counts
  from the first predicted token (β = 0.5, then 2.0 for tokens 2-5, then 0.1).
* Both groups use Adam with a constant learning rate; the seed gives no optimiser.

:func:`run_many` repeats a run over seeds and reports, per metric, each group's mean with a
95% t-interval over seeds and the paired difference Group 2 − Group 1 with its t-interval and
a paired t-test p-value; :func:`cached_run_many` keeps that summary in a JSON file keyed by
the experiment, its configuration and the seeds.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safelens.losses.token import (
    constrained_sft_betas_for_mask,
    constrained_sft_loss,
    kl_adaptive_weights,
    pa_delta_schedule,
    pa_loss,
    sft_loss,
)
from safelens.simulation.metrics import METRIC_DIRECTIONS, alignment_metrics
from safelens.simulation.models import (
    n_parameters,
    pre1_policy,
    pre1_reference,
    pre2_policy,
    pre2_reference,
)
from safelens.simulation.task import make_source, sample_sequences, source_next_token_probs

__all__ = [
    "Pre1Config",
    "Pre2Config",
    "SIMULATION_VERSION",
    "cached_run_many",
    "delta_schedule",
    "format_summary",
    "paired_difference",
    "run_many",
    "run_pre1",
    "run_pre2",
    "t_interval",
]

#: Bumped whenever a change to this package changes results; part of the cache key.
SIMULATION_VERSION = 2  # 2: PA's soft argmax (the seed appendix's reading) by default

#: Sizes that ``quick=True`` puts in place of the full ones (a seed in about 2 s).
QUICK_SIZES: dict[str, int] = {
    "n_ref_train": 300, "n_train": 100, "n_eval": 100, "ref_epochs": 6, "epochs": 4,
}


def _f(default: Any, help: str) -> Any:  # noqa: A002 - TRL's metadata key
    return field(default=default, metadata={"help": help})


@dataclass
class Pre1Config:
    """Pre-experiment 1 (Table 2, Fig. 2): CE vs CE + PA. Sizes are ours; the seed gives none.

    ``quick=True`` replaces the sizes in :data:`QUICK_SIZES` (a smoke test for notebook CI);
    assign fields after construction to change them further.

    Examples:
        >>> Pre1Config(quick=True).epochs
        4
    """

    # task
    vocab: int = _f(48, "vocabulary size V, BOS included")
    n_states: int = _f(12, "hidden states of the HMM source")
    k_trans: int = _f(3, "successor states per hidden state")
    k_emit: int = _f(4, "tokens each hidden state can emit")
    concentration: float = _f(0.5, "Dirichlet concentration of the HMM's rows (< 1: peaked)")
    seq_len: int = _f(20, "predicted tokens per sequence")
    n_ref_train: int = _f(2000, "sequences the reference is trained on")
    n_train: int = _f(400, "sequences the policy is fine-tuned on (a separate sample)")
    n_eval: int = _f(400, "held-out sequences the metrics are read on")
    # models
    d_embed: int = _f(32, "embedding width of both models")
    d_hidden: int = _f(64, "LSTM hidden width of both models")
    # training
    ref_epochs: int = _f(15, "epochs of the reference's cross-entropy training")
    epochs: int = _f(40, "epochs of the policy's training (max_epoch of delta_epoch); by 40 "
                     "the held-out NLL of both groups has stopped falling")
    batch_size: int = _f(50, "sequences per batch")
    lr: float = _f(3e-3, "Adam learning rate of the policy")
    ref_lr: float = _f(3e-3, "Adam learning rate of the reference")
    max_mu: float | None = _f(10.0, "clamp of PA's mu_t (seed's bounded-KL assumption)")
    detach_mu: bool = _f(False, "treat mu_t as a constant in PA's gradient")
    pa_argmax: str = _f("soft", "argmax tokens of PA: softened (seed appendix) or hard")
    pa_temperature: float = _f(0.1, "temperature of PA's softened argmax")
    quick: bool = _f(False, "smoke-test sizes (QUICK_SIZES)")

    def __post_init__(self) -> None:
        if self.quick:
            for k, v in QUICK_SIZES.items():
                setattr(self, k, v)
        for k in ("vocab", "seq_len", "n_ref_train", "n_train", "n_eval", "d_embed", "d_hidden",
                  "epochs", "batch_size"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{type(self).__name__}.{k} must be >= 1, got {getattr(self, k)!r}")
        if self.ref_epochs < 0:
            raise ValueError(f"{type(self).__name__}.ref_epochs must be >= 0")
        if not (self.lr > 0 and self.ref_lr > 0):
            raise ValueError(f"{type(self).__name__}: lr and ref_lr must be > 0")
        if self.max_mu is not None and not self.max_mu > 0:
            raise ValueError(f"{type(self).__name__}.max_mu must be > 0 or None, got {self.max_mu!r}")


@dataclass
class Pre2Config(Pre1Config):
    """Pre-experiment 2 (Figs. 3-5): CSFT vs CSFT + PA; same fields as :class:`Pre1Config`.

    Examples:
        >>> Pre2Config().n_train
        400
    """


# --------------------------------------------------------------------------- statistics


def _clean(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def t_interval(values: Sequence[float], alpha: float = 0.05) -> dict[str, Any]:
    """Mean with a two-sided (1 − alpha) Student-t interval over independent values (seeds).

    ``ci_low``/``ci_high`` are None with fewer than 2 values.

    Examples:
        >>> r = t_interval([1.0, 2.0, 3.0])
        >>> r["value"], round(r["ci_low"], 3), round(r["ci_high"], 3), r["n"]
        (2.0, -0.484, 4.484, 3)
    """
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    n = int(x.size)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = float(x.mean())
    if n < 2:
        return {"value": mean, "ci_low": None, "ci_high": None, "n": n, "sd": None}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    return {"value": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n, "sd": sd}


def paired_difference(baseline: Sequence[float], treated: Sequence[float],
                      alpha: float = 0.05) -> dict[str, Any]:
    """Paired difference treated − baseline over seeds: mean, t-interval, paired t-test p.

    Also ``mde80``: the smallest true difference this design detects with 80% power at
    level alpha, (t₁₋α/₂ + t₀.₈) · sd / √n, from the observed sd of the differences.

    Examples:
        >>> d = paired_difference([1.0, 2.0, 3.0], [0.5, 1.6, 2.4])
        >>> round(d["value"], 3), d["n"], d["p_value"] < 0.05
        (-0.5, 3, True)
    """
    from scipy import stats

    a = np.asarray(list(baseline), dtype=float)
    b = np.asarray(list(treated), dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"baseline and treated need one value per seed each, got {a.size} and "
                         f"{b.size}")
    out = t_interval(b - a, alpha)
    p = mde = None
    n = out["n"]
    if n >= 2 and out["sd"] and out["sd"] > 0:
        p = _clean(float(stats.ttest_rel(b, a).pvalue))
        mde = float(stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * out["sd"] \
            / math.sqrt(n)
    return {**out, "p_value": p, "mde80": mde}


# --------------------------------------------------------------------------- training


def delta_schedule(epochs: int) -> list[float]:
    """δ_epoch for each 0-based epoch of a run of ``epochs`` epochs (seed 001, Eq. 7).

    Examples:
        >>> delta_schedule(4)
        [0.1, 0.15000000000000002, 0.2, 0.25]
    """
    return [pa_delta_schedule(e, epochs) for e in range(epochs)]


LossFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]


def _tok_logps(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # -> [B, T]
    return F.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _pa_term(pl: torch.Tensor, rl: torch.Tensor, mask: torch.Tensor,
             cfg: Pre1Config) -> tuple[torch.Tensor, dict[str, float]]:
    loss = pa_loss(pl, rl, mask, detach_mu=cfg.detach_mu, max_mu=cfg.max_mu,
                   argmax=cfg.pa_argmax, temperature=cfg.pa_temperature)
    mu = kl_adaptive_weights(pl, rl, detach=True)[mask.bool()]  # [N], for the record only
    clipped = int((mu > cfg.max_mu).sum()) if cfg.max_mu is not None else 0
    disagree = int((pl.argmax(-1) != rl.argmax(-1))[mask.bool()].sum())
    return loss, {"pa": loss.item(), "mu_sum": float(mu.sum()), "mu_max": float(mu.max()),
                  "mu_clipped": clipped, "positions": int(mu.numel()), "disagree": disagree}


def _ce_loss(pl, rl, targets, mask, delta, cfg):  # noqa: ANN001 - internal LossFn
    return sft_loss(_tok_logps(pl, targets), mask), {}


def _ce_pa_loss(pl, rl, targets, mask, delta, cfg):  # noqa: ANN001
    pa, info = _pa_term(pl, rl, mask, cfg)
    return sft_loss(_tok_logps(pl, targets), mask) + delta * pa, info


def _csft(pl, rl, targets, mask):  # noqa: ANN001
    tok_ref = _tok_logps(rl, targets)  # rl carries no gradient
    return constrained_sft_loss(_tok_logps(pl, targets), tok_ref, mask,
                                constrained_sft_betas_for_mask(mask))


def _csft_loss(pl, rl, targets, mask, delta, cfg):  # noqa: ANN001
    return _csft(pl, rl, targets, mask), {}


def _csft_pa_loss(pl, rl, targets, mask, delta, cfg):  # noqa: ANN001
    pa, info = _pa_term(pl, rl, mask, cfg)
    return _csft(pl, rl, targets, mask) + delta * pa, info


def _batches(n: int, batch_size: int, g: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=g)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def _train_ce(model: nn.Module, ids: torch.Tensor, epochs: int, lr: float, batch_size: int,
              g: torch.Generator) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in _batches(ids.shape[0], batch_size, g):
            x, y = ids[idx, :-1], ids[idx, 1:]  # [b, L]
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


@torch.no_grad()
def _logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:  # [n, L+1] -> [n, L, V]
    model.eval()
    return model(ids[:, :-1])


def _evaluate(policy: nn.Module, ref_logits: torch.Tensor, ids: torch.Tensor) -> dict[str, float]:
    pl = _logits(policy, ids)  # [n, L, V]
    out = alignment_metrics(pl, ref_logits, ids[:, 1:])
    out["heldout_nll"] = float(F.cross_entropy(pl.flatten(0, 1), ids[:, 1:].flatten()))
    return out


def _run(experiment: str, cfg: Pre1Config, seed: int,
         make_policy: Callable[..., nn.Module], make_reference: Callable[..., nn.Module],
         groups: Mapping[str, LossFn]) -> dict[str, Any]:
    t0 = time.perf_counter()
    seed = int(seed)
    sizes = {"vocab": cfg.vocab, "d_embed": cfg.d_embed, "d_hidden": cfg.d_hidden}
    # 1. task
    source = make_source(cfg.vocab, cfg.n_states, cfg.k_trans, cfg.k_emit, cfg.concentration,
                         seed=seed)
    g = torch.Generator().manual_seed(seed)
    ref_ids = sample_sequences(source, cfg.n_ref_train, cfg.seq_len, g)  # [n_ref, L+1]
    train_ids = sample_sequences(source, cfg.n_train, cfg.seq_len, g)  # [n_train, L+1]
    eval_ids = sample_sequences(source, cfg.n_eval, cfg.seq_len, g)  # [n_eval, L+1]
    # 2. reference
    torch.manual_seed(seed * 7919 + 1)
    reference = make_reference(**sizes)
    _train_ce(reference, ref_ids, cfg.ref_epochs, cfg.ref_lr, cfg.batch_size,
              torch.Generator().manual_seed(seed * 7919 + 2))
    ref_params = n_parameters(reference)
    for p in reference.parameters():
        p.requires_grad_(False)
    ref_train = _logits(reference, train_ids)  # [n_train, L, V]
    ref_eval = _logits(reference, eval_ids)  # [n_eval, L, V]
    src_eval = source_next_token_probs(source, eval_ids)  # [n_eval, L, V] float64
    y_eval = eval_ids[:, 1:]
    src_logp = src_eval.clamp_min(1e-300).log()
    ref_logp = F.log_softmax(ref_eval.double(), -1)
    ref_info = {
        "params": ref_params,
        "heldout_nll": float(-ref_logp.gather(-1, y_eval.unsqueeze(-1)).mean()),
        "source_heldout_nll": float(-src_logp.gather(-1, y_eval.unsqueeze(-1)).mean()),
        "kl_source_reference": float((torch.special.xlogy(src_eval, src_eval)
                                      - src_eval * ref_logp).sum(-1).mean()),
    }
    # 3. policy: one initialisation, one batch order, every group
    torch.manual_seed(seed * 7919 + 3)
    init_state = copy.deepcopy(make_policy(**sizes).state_dict())
    deltas = delta_schedule(cfg.epochs)
    out_groups: dict[str, Any] = {}
    for name, loss_fn in groups.items():
        policy = make_policy(**sizes)
        policy.load_state_dict(init_state)
        opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
        order = torch.Generator().manual_seed(seed * 7919 + 4)
        first = _evaluate(policy, ref_eval, eval_ids)
        curves = {k: [v] for k, v in first.items()}
        losses: list[float] = []
        tally = {"positions": 0, "mu_clipped": 0, "disagree": 0, "mu_sum": 0.0, "mu_max": 0.0}
        for epoch in range(cfg.epochs):
            policy.train()
            total, steps = 0.0, 0
            for idx in _batches(cfg.n_train, cfg.batch_size, order):
                x, y = train_ids[idx, :-1], train_ids[idx, 1:]  # [b, L]
                mask = torch.ones_like(y)
                loss, info = loss_fn(policy(x), ref_train[idx], y, mask, deltas[epoch], cfg)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
                for k in ("positions", "mu_clipped", "disagree", "mu_sum"):
                    tally[k] += info.get(k, 0)
                tally["mu_max"] = max(tally["mu_max"], info.get("mu_max", 0.0))
            losses.append(total / steps)
            for k, v in _evaluate(policy, ref_eval, eval_ids).items():
                curves[k].append(v)
        pa_used = tally["positions"] > 0
        out_groups[name] = {
            "final": {k: v[-1] for k, v in curves.items()},
            "curves": curves,
            "train_loss": losses,
            "delta": deltas if pa_used else None,
            "mu": {
                "positions": tally["positions"],
                "clipped": tally["mu_clipped"],
                "max": tally["mu_max"],
                "mean": tally["mu_sum"] / tally["positions"] if pa_used else None,
                "disagree_share": tally["disagree"] / tally["positions"] if pa_used else None,
            } if pa_used else None,
        }
    return {
        "experiment": experiment,
        "seed": seed,
        "config": asdict(cfg),
        "groups": list(groups),
        "params": {"policy": n_parameters(make_policy(**sizes)), "reference": ref_info["params"]},
        "reference": ref_info,
        "results": out_groups,
        "seconds": time.perf_counter() - t0,
    }


def run_pre1(cfg: Pre1Config | None = None, seed: int = 0) -> dict[str, Any]:
    """Pre-experiment 1 for one seed: groups ``"CE"`` and ``"CE+PA"`` (seed 001, Table 2).

    Policy :func:`~safelens.simulation.models.pre1_policy`, reference
    :func:`~safelens.simulation.models.pre1_reference`; see the module docstring for the
    procedure.

    Returns:
        ``{"experiment", "seed", "config", "groups", "params", "reference", "results",
        "seconds"}``; ``results[group]`` holds ``final`` (metric → value on the held-out set),
        ``curves`` (metric → values before training and after each epoch), ``train_loss`` per
        epoch, ``delta`` (δ_epoch per epoch, PA groups) and ``mu`` (μ_t statistics over all
        training positions: count, clamped count, max, mean, share where the argmaxes differ).
    """
    cfg = cfg or Pre1Config()
    return _run("pre1", cfg, seed, pre1_policy, pre1_reference,
                {"CE": _ce_loss, "CE+PA": _ce_pa_loss})


def run_pre2(cfg: Pre2Config | None = None, seed: int = 0) -> dict[str, Any]:
    """Pre-experiment 2 for one seed: groups ``"CSFT"`` and ``"CSFT+PA"`` (seed 001, Figs. 3-5).

    Policy :func:`~safelens.simulation.models.pre2_policy`, reference
    :func:`~safelens.simulation.models.pre2_reference`; returns what :func:`run_pre1` does.
    """
    cfg = cfg or Pre2Config()
    return _run("pre2", cfg, seed, pre2_policy, pre2_reference,
                {"CSFT": _csft_loss, "CSFT+PA": _csft_pa_loss})


# --------------------------------------------------------------------------- many seeds


def run_many(fn: Callable[[Any, int], dict[str, Any]], cfg: Any,
             seeds: Sequence[int]) -> dict[str, Any]:
    """Run ``fn(cfg, seed)`` per seed and aggregate Group 2 against Group 1.

    Returns:
        ``{"experiment", "version", "config", "seeds", "groups", "summary", "curves",
        "reference", "mu", "params", "per_seed", "seconds", "provenance"}`` where
        ``summary[metric]`` = ``{group: t_interval, "diff": paired_difference (Group 2 −
        Group 1), "rel_change_pct": 100 (mean₂ − mean₁) / |mean₁|, "direction": ±1}`` and
        ``curves[metric][group]`` = ``{"value", "ci_low", "ci_high"}`` lists over epochs
        (index 0 = before training). Strict JSON (no NaN).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run_many needs at least one seed")
    t0 = time.perf_counter()
    runs = [fn(cfg, s) for s in seeds]
    g1, g2 = runs[0]["groups"]
    metrics = list(runs[0]["results"][g1]["final"])
    summary: dict[str, Any] = {}
    for m in metrics:
        a = [r["results"][g1]["final"][m] for r in runs]
        b = [r["results"][g2]["final"][m] for r in runs]
        s1, s2 = t_interval(a), t_interval(b)
        summary[m] = {g1: s1, g2: s2, "diff": paired_difference(a, b),
                      "rel_change_pct": _clean(100 * (s2["value"] - s1["value"])
                                               / abs(s1["value"])) if s1["value"] else None,
                      "direction": METRIC_DIRECTIONS.get(m, -1)}
    curves: dict[str, Any] = {}
    for m in metrics:
        curves[m] = {}
        for grp in (g1, g2):
            per_epoch = np.array([r["results"][grp]["curves"][m] for r in runs])  # [S, E+1]
            cols = [t_interval(per_epoch[:, e]) for e in range(per_epoch.shape[1])]
            curves[m][grp] = {k: [c[k] for c in cols] for k in ("value", "ci_low", "ci_high")}
    ref = {k: t_interval([r["reference"][k] for r in runs])
           for k in ("heldout_nll", "source_heldout_nll", "kl_source_reference")}
    mu = runs[0]["results"][g2]["mu"]
    mu_all = None
    if mu is not None:
        mus = [r["results"][g2]["mu"] for r in runs]
        mu_all = {"positions": sum(x["positions"] for x in mus),
                  "clipped": sum(x["clipped"] for x in mus),
                  "max": max(x["max"] for x in mus),
                  "mean": float(np.mean([x["mean"] for x in mus])),
                  "disagree_share": float(np.mean([x["disagree_share"] for x in mus]))}
    out = {
        "experiment": runs[0]["experiment"],
        "version": SIMULATION_VERSION,
        "config": asdict(cfg),
        "seeds": seeds,
        "groups": [g1, g2],
        "summary": summary,
        "curves": curves,
        "reference": ref,
        "mu": mu_all,
        "params": runs[0]["params"],
        "per_seed": [{k: r[k] for k in ("seed", "reference", "seconds")}
                     | {"final": {g: r["results"][g]["final"] for g in (g1, g2)},
                        "mu": r["results"][g2]["mu"]} for r in runs],
        "seconds": time.perf_counter() - t0,
        "provenance": {"safelens_simulation_version": SIMULATION_VERSION,
                       "torch": torch.__version__, "python": platform.python_version(),
                       "torch_threads": torch.get_num_threads()},
    }
    return _strict(out)


def _strict(x: Any) -> Any:
    """NaN / inf → None, recursively (strict JSON)."""
    if isinstance(x, float):
        return _clean(x)
    if isinstance(x, Mapping):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def cached_run_many(path: str | Path, fn: Callable[[Any, int], dict[str, Any]], cfg: Any,
                    seeds: Sequence[int]) -> dict[str, Any]:
    """:func:`run_many`, reusing ``path`` when it holds the same experiment, version, config
    and seeds; otherwise runs and (re)writes it.

    Returns:
        The :func:`run_many` dict, with ``"cached": True`` when read from ``path``.
    """
    path = Path(path)
    key = {"version": SIMULATION_VERSION, "config": asdict(cfg), "seeds": [int(s) for s in seeds]}
    if path.exists():
        stored = json.loads(path.read_text())
        same = all(stored.get(k) == v for k, v in key.items())
        if same and stored.get("experiment") == _experiment_name(fn):
            return {**stored, "cached": True}
    result = run_many(fn, cfg, seeds)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    return {**result, "cached": False}


def _experiment_name(fn: Callable[..., Any]) -> str:
    return {"run_pre1": "pre1", "run_pre2": "pre2"}.get(getattr(fn, "__name__", ""), "")


def _fmt_ci(stat: Mapping[str, Any], digits: int) -> str:
    v, lo, hi = stat["value"], stat.get("ci_low"), stat.get("ci_high")
    if lo is None or hi is None:
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_summary(result: Mapping[str, Any], metrics: Sequence[str] | None = None,
                   digits: int = 4,
                   reported: Mapping[str, Sequence[float]] | None = None) -> list[dict[str, Any]]:
    """Rows of a results table: per metric each group's mean [95% CI], the paired difference.

    Examples:
        >>> s = {"value": 1.0, "ci_low": 0.5, "ci_high": 1.5}
        >>> d = {**s, "p_value": 0.01, "mde80": 0.2}
        >>> res = {"groups": ["A", "B"], "seeds": [0, 1],
        ...        "summary": {"kl": {"A": s, "B": s, "diff": d, "rel_change_pct": 0.0}}}
        >>> format_summary(res, digits=1)[0]["A"]
        '1.0 [0.5, 1.5]'

    Args:
        result: :func:`run_many` output.
        metrics: rows, in order (default: every metric of the result).
        digits: decimals.
        reported: optional ``{metric: [group 1, group 2]}`` values the seed reports, added as
            columns ``seed: <group>`` and ``seed: change (%)``.

    Returns:
        One dict per metric: ``metric``, one column per group, ``change (%)`` (100 (mean₂ −
        mean₁) / |mean₁|), ``diff [95% CI]``, ``p (paired t)``, ``MDE80`` (smallest difference
        detectable with 80% power), ``seeds``; plus the ``seed:`` columns.
    """
    g1, g2 = result["groups"]
    rows = []
    for m in metrics or list(result["summary"]):
        s = result["summary"][m]
        row: dict[str, Any] = {"metric": m}
        if reported and m in reported:
            a, b = reported[m]
            row |= {f"seed: {g1}": a, f"seed: {g2}": b,
                    "seed: change (%)": round(100 * (b - a) / abs(a), 1)}
        d = s["diff"]
        row |= {g1: _fmt_ci(s[g1], digits), g2: _fmt_ci(s[g2], digits),
                "change (%)": None if s["rel_change_pct"] is None else round(s["rel_change_pct"], 1),
                f"{g2} − {g1} [95% CI]": _fmt_ci(d, digits),
                "p (paired t)": None if d.get("p_value") is None else float(f"{d['p_value']:.2g}"),
                "MDE80": None if d.get("mde80") is None else float(f"{d['mde80']:.2g}"),
                "seeds": len(result["seeds"])}
        rows.append(row)
    return rows
