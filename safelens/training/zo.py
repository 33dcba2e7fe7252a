"""Zeroth-order refinement: the SPSA / MeZO optimizer wrapper and the layer-wise sensitivity.

Seed 002 ("Aligned but Fragile", an abstract only) proposes a few zeroth-order (ZO) steps after
first-order safety alignment, to make safety robust to parameter noise, activation noise and
quantization, and uses ZO's own perturbation evaluations to estimate a layer-wise robustness
sensitivity on which the refinement concentrates. :class:`ZerothOrderStep` is that optimizer,
written after MeZO's reference code (``princeton-nlp/MeZO``, ``large_models/trainer.py``:
``zo_perturb_parameters``, ``zo_step``, ``zo_update``).

**Two-point estimate (MeZO / SPSA).** Each step ``t`` draws ``q`` (``n_directions``) directions
``z_j ~ N(0, I)`` over the updated parameters from generators seeded with
:func:`direction_seed` ``(seed, t, "spsa", j)``; ``z`` is never stored, only regenerated from the
seed (perturb, update), parameter by parameter in one fixed order. For each direction::

    theta + eps z  ->  l+ = closure(backward=False).loss
    theta - eps z  ->  l- = closure(backward=False).loss
    restore theta
    g_j = (l+ - l-) / (2 eps)                     # the projected gradient

and the update uses ``g_hat = (1/q) sum_j g_j z_j`` (MeZO divides by the number of ``z``):

``update="sgd"`` (default, MeZO's in-place rule)
    ``theta -= lr * (g_hat + weight_decay * theta)``, weight decay only on matrices (MeZO skips
    biases and layer norms), ``lr`` the optimizer's current (scheduled) learning rate; no
    optimizer state at all.
``update="optimizer"``
    ``p.grad = g_hat`` (clipped to ``max_grad_norm`` if set), ``optimizer.step()`` (MeZO's
    ``zo_torch_optim``; AdamW's own weight decay applies).

``restore="copy"`` (default) keeps a copy of the perturbed parameters for the duration of one
two-point evaluation and writes it back, so the weights after a step with ``lr = 0`` are
bit-identical to before. ``restore="regenerate"`` is MeZO's memory footprint (no copy:
``+eps z``, ``-2 eps z``, ``+eps z``), but float rounding does not undo itself: measured on
N(0, 0.02) float32 weights with eps 1e-3, about 45% of the coordinates end one ulp or so away
from where they started, every step.

**Layer-wise robustness sensitivity (our reading of the seed).** The seed says the perturbation
evaluations ZO already makes give a layer-wise robustness sensitivity; it gives no formula. We
take the sensitivity of a layer (a parameter group, :func:`layer_group`: transformer block
``layers.i`` or another module such as the final norm) to be the curvature of the loss along a
random direction restricted to that layer::

    s_l = (l+_l + l-_l - 2 l0) / eps^2        # z restricted to layer l,  E[s_l] = tr(H_ll)

with ``l0`` the loss at ``theta``. ``eps^2 s_l / 2`` is the expected loss increase when Gaussian
noise of scale ``eps`` hits layer ``l`` alone (a second-order Taylor expansion), which is what
"robust to parameter noise" asks to be small; it is not normalised by the layer's size (noise
on more coordinates does more harm). On a *probe step* (every ``probe_every`` steps, from step
1) the wrapper evaluates ``l0`` once and a two-point estimate per layer (block-by-block SPSA)
instead of one over all parameters: ``1 + 2 G`` loss evaluations for ``G`` layers, against
``2 q`` on an ordinary step. The same evaluations drive that step's update (the sum over the
updated layers of ``g_l z_l`` is an unbiased gradient estimate, like the full one), so probing
costs ``1 + 2 G - 2 q`` evaluations more than an ordinary step and no extra update. The
sensitivity is kept as an exponential moving average over probes (``sensitivity_decay``) in
the wrapper's state; :func:`layer_sensitivity` returns it per layer for a bar chart.

``layers="top:K"`` concentrates the refinement on the K layers with the largest sensitivity
(re-ranked after every probe; the first probe is step 1): ordinary steps perturb and update
only their parameters, so the other layers do not move.

Examples:
    >>> import torch
    >>> from safelens.training.optim import StepOutput
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    >>> closure = lambda backward=True: StepOutput(float((w.detach() ** 2).sum()))
    >>> zo = ZerothOrderStep(torch.optim.SGD([w], lr=0.0), [w], eps=1e-3, n_directions=4)
    >>> before = w.detach().clone()
    >>> out = zo.step(closure)           # lr 0: the weights come back bit for bit
    >>> torch.equal(w.detach(), before), out.metrics["zo/forward_passes"], zo.steps
    (True, 8.0, 1)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from safelens.errors import SafelensError
from safelens.training.checkpoint import load_state
from safelens.training.optim import LossClosure, NonFiniteLossError, StepOutput, clip_gradients
from safelens.training.rundir import read_log

ZO_UPDATES = ("sgd", "optimizer")
ZO_RESTORES = ("copy", "regenerate")
_BLOCK = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def direction_seed(seed: int, step: int, kind: str, index: int) -> int:
    """The seed of one random direction: a hash of the run seed, the step and the direction.

    Steps and directions never share a seed, and a resumed run regenerates the same ``z``.

    Examples:
        >>> direction_seed(0, 1, "spsa", 0) == direction_seed(0, 1, "spsa", 0)
        True
        >>> len({direction_seed(0, t, k, j) for t in (1, 2) for k in ("spsa", "probe")
        ...      for j in (0, 1)})
        8
    """
    text = f"safelens.zo|{seed}|{step}|{kind}|{index}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2**63 - 1)


def layer_group(name: str) -> str:
    """The layer a parameter belongs to: ``layers.i`` for a transformer block, else its module.

    Examples:
        >>> layer_group("model.layers.3.mlp.up_proj.weight"), layer_group("model.norm.weight")
        ('layers.3', 'model.norm')
    """
    match = _BLOCK.search(name)
    if match:
        return f"layers.{match.group(1)}"
    return name.rsplit(".", 1)[0] if "." in name else name


def parse_layers(layers: str, setting: str = "layers") -> int | None:
    """``"all"`` -> ``None``; ``"top:K"`` -> ``K`` (an integer >= 1).

    Examples:
        >>> parse_layers("all"), parse_layers("top:3")
        (None, 3)
        >>> parse_layers("top:0")
        Traceback (most recent call last):
        ...
        safelens.errors.SafelensError: layers must be 'all' or 'top:K' (K >= 1), got 'top:0'
    """
    if layers == "all":
        return None
    head, _, k = str(layers).partition(":")
    if head == "top" and k.isdigit() and int(k) >= 1:
        return int(k)
    raise SafelensError(f"{setting} must be 'all' or 'top:K' (K >= 1), got {layers!r}")


class ZerothOrderStep:
    """SPSA / MeZO optimizer wrapper with layer-wise sensitivity (see the module docstring).

    Args:
        optimizer: the torch optimizer (its param groups' ``lr`` is the scheduled learning rate;
            stepped only with ``update="optimizer"``).
        params: the trainable parameters, in a fixed order (the order ``z`` is drawn in).
        names: their names (HF names: grouped into layers by :func:`layer_group`); default
            ``param0``, ``param1``, ... (one group each).
        eps: perturbation scale ``eps > 0``.
        n_directions: directions ``q >= 1`` averaged per ordinary step.
        seed: the run seed; step ``t``'s directions come from :func:`direction_seed`.
        update: ``"sgd"`` (in place, MeZO) or ``"optimizer"`` (``p.grad`` + ``optimizer.step()``).
        weight_decay: MeZO's decay of the ``sgd`` update (matrices only); >= 0.
        max_grad_norm: clip ``g_hat`` to this norm with ``update="optimizer"``; None = no clip.
        layers: ``"all"`` or ``"top:K"``.
        probe_every: probe the layer sensitivity every N steps from step 1; 0 = never
            (``top:K`` needs >= 1).
        sensitivity_decay: EMA decay in ``[0, 1)`` of the sensitivity across probes (0 = the
            last probe only).
        restore: ``"copy"`` (bit-exact) or ``"regenerate"`` (MeZO, no copy).

    Attributes:
        steps: optimizer steps taken; forwards_total: loss evaluations made (both in
            ``state_dict``); groups: layer name -> parameter indices, in model order;
            active: the layers updated by ordinary steps; sensitivity: the EMA per layer
            (None before the first probe).

    Raises:
        SafelensError: a setting out of range, or ``top:K`` with K above the number of layers.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: Sequence[torch.nn.Parameter],
                 names: Sequence[str] | None = None, *, eps: float = 1e-3,
                 n_directions: int = 1, seed: int = 0, update: str = "sgd",
                 weight_decay: float = 0.0, max_grad_norm: float | None = None,
                 layers: str = "all", probe_every: int = 0, sensitivity_decay: float = 0.5,
                 restore: str = "copy") -> None:
        def bad(what: str, value: Any, expected: str) -> SafelensError:
            return SafelensError(f"ZerothOrderStep {what} must be {expected}, got {value!r}")

        if not (isinstance(eps, int | float) and eps > 0 and math.isfinite(eps)):
            raise bad("eps", eps, "a finite number > 0")
        for what, value, low in (("n_directions", n_directions, 1),
                                 ("probe_every", probe_every, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise bad(what, value, f"an integer >= {low}")
        if update not in ZO_UPDATES:
            raise bad("update", update, f"one of {ZO_UPDATES}")
        if restore not in ZO_RESTORES:
            raise bad("restore", restore, f"one of {ZO_RESTORES}")
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            raise bad("weight_decay", weight_decay, "a finite number >= 0")
        if not 0.0 <= sensitivity_decay < 1.0:
            raise bad("sensitivity_decay", sensitivity_decay, "in [0, 1)")
        self.top_k = parse_layers(layers, "ZerothOrderStep layers")
        if self.top_k is not None and probe_every < 1:
            raise bad("probe_every", probe_every, f"an integer >= 1 with layers={layers!r}")
        self.params = list(params)
        if not self.params:
            raise SafelensError("ZerothOrderStep needs at least one trainable parameter, got none")
        names = list(names) if names is not None else [f"param{i}" for i in
                                                        range(len(self.params))]
        if len(names) != len(self.params):
            raise bad("names", f"{len(names)} names", f"one name per parameter "
                      f"({len(self.params)})")
        self.groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            self.groups.setdefault(layer_group(name), []).append(i)
        if self.top_k is not None and self.top_k > len(self.groups):
            raise bad("layers", layers, f"top:K with K <= {len(self.groups)} (the trainable "
                      "layers)")
        self.optimizer, self.eps, self.q, self.seed = optimizer, float(eps), n_directions, seed
        self.update, self.weight_decay, self.max_grad_norm = update, weight_decay, max_grad_norm
        self.layers, self.probe_every, self.decay, self.restore = (
            layers, probe_every, sensitivity_decay, restore)
        self.steps = 0
        self.forwards_total = 0
        self.probes = 0
        self.active: list[str] = list(self.groups)
        self.sensitivity: dict[str, float] | None = None
        self.last_probe: dict[str, float] | None = None
        self._device = self.params[0].device

    # -- directions --------------------------------------------------------------------------
    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self._device).manual_seed(seed)

    def _draw(self, gen: torch.Generator, p: torch.Tensor) -> torch.Tensor:
        """The next slice of ``z`` for parameter ``p`` (float32, drawn on the first param's
        device so ``z`` does not depend on where each parameter lives)."""
        z = torch.randn(p.shape, generator=gen, device=self._device, dtype=torch.float32)
        return z.to(p.device)

    def _perturb(self, params: list[torch.Tensor], seed: int, scale: float) -> None:
        """``theta += scale * z`` on ``params``, ``z`` regenerated from ``seed``."""
        gen = self._generator(seed)
        with torch.no_grad():
            for p in params:
                p.add_(self._draw(gen, p).to(p.dtype), alpha=scale)

    def _loss(self, closure: LossClosure) -> float:
        self.forwards_total += 1
        value = float(closure(backward=False).loss)
        if not math.isfinite(value):
            raise NonFiniteLossError("loss", value)
        return value

    def _two_point(self, closure: LossClosure, params: list[torch.Tensor],
                   seed: int) -> tuple[float, float]:
        """``(l+, l-)`` at ``theta +- eps z``; ``theta`` is restored also when a pass raises."""
        saved = [p.detach().clone() for p in params] if self.restore == "copy" else None
        offset = 0  # how many eps*z the parameters are away from theta (regenerate mode)
        try:
            self._perturb(params, seed, self.eps)
            offset = 1
            plus = self._loss(closure)
            if saved is not None:
                self._copy_back(params, saved)
                offset = 0
                self._perturb(params, seed, -self.eps)  # theta - eps z with one rounding
            else:
                self._perturb(params, seed, -2.0 * self.eps)
            offset = -1
            minus = self._loss(closure)
        finally:
            if saved is not None:
                self._copy_back(params, saved)
            elif offset:
                self._perturb(params, seed, -offset * self.eps)
        return plus, minus

    @staticmethod
    def _copy_back(params: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, old in zip(params, saved, strict=True):
                p.copy_(old)

    def _group_params(self, names: Sequence[str]) -> list[torch.Tensor]:
        return [self.params[i] for name in names for i in self.groups[name]]

    # -- update ------------------------------------------------------------------------------
    def _apply(self, blocks: list[tuple[list[torch.Tensor], list[tuple[int, float]]]]) -> float:
        """Apply ``sum_j coef_j z_j`` per block of parameters; returns its norm (before clip).

        Each block is ``(params, [(seed_j, coef_j), ...])``: ``z_j`` is regenerated over
        ``params`` in the order it was drawn for the perturbation.
        """
        lr_of = {id(p): float(group["lr"]) for group in self.optimizer.param_groups
                 for p in group["params"]}
        sq = 0.0
        touched: list[torch.Tensor] = []
        with torch.no_grad():
            for params, directions in blocks:
                gens = [self._generator(s) for s, _ in directions]
                for p in params:
                    u = torch.zeros(p.shape, dtype=torch.float32, device=p.device)  # g_hat on p
                    for gen, (_, coef) in zip(gens, directions, strict=True):
                        u.add_(self._draw(gen, p), alpha=coef)
                    sq += float(u.pow(2).sum())
                    if self.update == "sgd":
                        lr = lr_of.get(id(p), 0.0)
                        if lr == 0.0:
                            continue
                        if self.weight_decay and p.ndim >= 2:
                            u.add_(p.detach().float(), alpha=self.weight_decay)
                        p.add_(u.to(p.dtype), alpha=-lr)
                    else:
                        p.grad = u.to(p.dtype)
                        touched.append(p)
        norm = math.sqrt(sq)
        if not math.isfinite(norm):
            raise NonFiniteLossError("gradient norm", norm)
        if self.update == "optimizer":
            clip_gradients(touched, self.max_grad_norm)
        # with "sgd" no parameter has a gradient, so this step changes nothing; it is made so the
        # learning-rate scheduler sees the optimizer step it expects
        self.optimizer.step()
        for p in touched:
            p.grad = None
        return norm

    # -- steps -------------------------------------------------------------------------------
    def _spsa_step(self, closure: LossClosure, t: int) -> StepOutput:
        params = self._group_params(self.active)
        seeds = [direction_seed(self.seed, t, "spsa", j) for j in range(self.q)]
        pairs = [self._two_point(closure, params, s) for s in seeds]
        grads = [(lp - lm) / (2 * self.eps) for lp, lm in pairs]
        norm = self._apply([(params, [(s, g / self.q) for s, g in zip(seeds, grads,
                                                                       strict=True)])])
        return StepOutput(
            sum(lp + lm for lp, lm in pairs) / (2 * self.q),
            {"zo/projected_grad": sum(grads) / self.q,
             "zo/loss_diff": sum(lp - lm for lp, lm in pairs) / self.q,
             "zo/forward_passes": float(2 * self.q),
             "zo/forward_passes_total": float(self.forwards_total),
             "zo/active_layers": float(len(self.active)),
             "zo/probe_step": 0.0},
            grad_norm=norm)

    def _probe_step(self, closure: LossClosure, t: int) -> StepOutput:
        l0 = self._loss(closure)
        seeds, grads, pairs, raw = {}, {}, {}, {}
        for gi, name in enumerate(self.groups):
            seeds[name] = direction_seed(self.seed, t, "probe", gi)
            lp, lm = self._two_point(closure, self._group_params([name]), seeds[name])
            pairs[name] = (lp, lm)
            grads[name] = (lp - lm) / (2 * self.eps)
            raw[name] = (lp + lm - 2 * l0) / self.eps**2
        self.last_probe = raw
        if self.sensitivity is None:
            self.sensitivity = dict(raw)
        else:
            self.sensitivity = {k: self.decay * self.sensitivity[k] + (1 - self.decay) * raw[k]
                                for k in self.groups}
        self.probes += 1
        if self.top_k is not None:
            self.active = rank_layers(self.sensitivity, self.top_k)
        norm = self._apply([(self._group_params([name]), [(seeds[name], grads[name])])
                            for name in self.active])
        n = len(self.active)
        metrics = {"zo/projected_grad": sum(grads[k] for k in self.active) / n,
                   "zo/loss_diff": sum(pairs[k][0] - pairs[k][1] for k in self.active) / n,
                   "zo/loss_at_theta": l0,
                   "zo/forward_passes": float(1 + 2 * len(self.groups)),
                   "zo/forward_passes_total": float(self.forwards_total),
                   "zo/active_layers": float(n),
                   "zo/probe_step": 1.0}
        metrics.update({f"zo/sensitivity/{k}": v for k, v in self.sensitivity.items()})
        loss = sum(pairs[k][0] + pairs[k][1] for k in self.active) / (2 * n)
        return StepOutput(loss, metrics, grad_norm=norm)

    # -- protocol ----------------------------------------------------------------------------
    def step(self, closure: LossClosure) -> StepOutput:
        """One ZO step: a probe step every ``probe_every`` steps, else ``q`` two-point
        estimates over the active layers; then the update (see the module docstring).

        Raises:
            NonFiniteLossError: a loss (or the estimate) is NaN/inf; the weights are restored.
        """
        t = self.steps + 1
        probe = self.probe_every > 0 and (t - 1) % self.probe_every == 0
        out = self._probe_step(closure, t) if probe else self._spsa_step(closure, t)
        self.steps = t
        return out

    def state_dict(self) -> dict[str, Any]:
        names = list(self.groups)
        return {"steps": self.steps, "forwards_total": self.forwards_total,
                "probes": self.probes, "groups": names, "active": list(self.active),
                "sensitivity": (None if self.sensitivity is None
                                else [self.sensitivity[k] for k in names]),
                "last_probe": (None if self.last_probe is None
                               else [self.last_probe[k] for k in names])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = list(self.groups)
        if state.get("groups", names) != names:
            raise SafelensError(f"ZerothOrderStep state holds layers {state.get('groups')}, "
                                f"expected {names} (another model or --freeze?)")
        self.steps = int(state.get("steps", 0))
        self.forwards_total = int(state.get("forwards_total", 0))
        self.probes = int(state.get("probes", 0))
        self.active = list(state.get("active") or names)
        sens, last = state.get("sensitivity"), state.get("last_probe")
        self.sensitivity = None if sens is None else dict(zip(names, map(float, sens),
                                                              strict=True))
        self.last_probe = None if last is None else dict(zip(names, map(float, last),
                                                             strict=True))


def rank_layers(sensitivity: dict[str, float], k: int) -> list[str]:
    """The ``k`` layers with the largest sensitivity, in model (dict) order; ties by order.

    Examples:
        >>> rank_layers({"layers.0": 1.0, "layers.1": 5.0, "layers.2": 3.0}, 2)
        ['layers.1', 'layers.2']
    """
    order = list(sensitivity)
    top = sorted(order, key=lambda n: (-sensitivity[n], order.index(n)))[:k]
    return [n for n in order if n in top]


def layer_sensitivity(source: ZerothOrderStep | str | Path) -> dict[str, float]:
    """The layer-wise robustness sensitivity (EMA of ``s_l``, see the module docstring).

    Args:
        source: a :class:`ZerothOrderStep`, or a ``zo-refine`` run directory (read from its
            last checkpoint's wrapper state).

    Returns:
        ``{layer: sensitivity}`` in model order (``layers.0``, ``layers.1``, ..., then other
        modules), ready for a bar chart.

    Raises:
        SafelensError: no probe was made (``probe_every`` 0) or the run has no wrapper state.
    """
    if isinstance(source, ZerothOrderStep):
        sens = source.sensitivity
        where = "this ZerothOrderStep"
    else:
        ck = Path(source) / "checkpoint"
        if not (ck / "wrapper.json").is_file():
            raise SafelensError(f"{source}: no checkpoint/wrapper.json; expected a zo-refine "
                                "run directory")
        state = load_state(ck, "wrapper")
        names, values = state.get("groups"), state.get("sensitivity")
        sens = None if not names or values is None else dict(zip(names, values, strict=True))
        where = str(source)
    if sens is None:
        raise SafelensError(f"{where} has no layer sensitivity: no probe step ran "
                            "(set probe_every >= 1)")
    return dict(sens)


def refinement_cost(run_dir: str | Path) -> dict[str, Any]:
    """The cost of a ``zo-refine`` run as a ratio to the first-order run it refined.

    Counted in row-forwards (one forward pass of one training row): the ZO run makes
    ``zo/forward_passes_total`` loss evaluations over ``batch_size`` rows, forward only; a
    first-order step is counted as 3 row-forwards per row (forward + backward, the usual
    estimate). Wall-clock seconds (the logs' ``time``) are given too.

    Returns:
        ``{"zo_loss_evaluations", "zo_row_forwards", "first_order_steps",
        "first_order_row_forwards", "ratio_row_forwards", "zo_wall_s", "first_order_wall_s",
        "ratio_wall"}`` (ratios None where the source run is unknown).
    """
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    log = read_log(run_dir)
    evals = next((r["zo/forward_passes_total"] for r in reversed(log)
                  if "zo/forward_passes_total" in r), 0.0)
    out: dict[str, Any] = {"zo_loss_evaluations": int(evals),
                           "zo_row_forwards": int(evals) * int(cfg["batch_size"]),
                           "zo_wall_s": log[-1]["time"] if log else None,
                           "first_order_steps": None, "first_order_row_forwards": None,
                           "ratio_row_forwards": None, "first_order_wall_s": None,
                           "ratio_wall": None}
    source = cfg.get("from_run")
    if source and (Path(source) / "config.json").is_file():
        src = json.loads((Path(source) / "config.json").read_text())
        steps = int(src.get("total_steps") or 0)
        out["first_order_steps"] = steps
        out["first_order_row_forwards"] = 3 * steps * int(src["batch_size"])
        if out["first_order_row_forwards"]:
            out["ratio_row_forwards"] = out["zo_row_forwards"] / out["first_order_row_forwards"]
        src_log = read_log(source)
        if src_log and out["zo_wall_s"] is not None:
            out["first_order_wall_s"] = src_log[-1]["time"]
            if src_log[-1]["time"]:
                out["ratio_wall"] = out["zo_wall_s"] / src_log[-1]["time"]
    return out


def weight_change(before: str | Path, after: str | Path) -> dict[str, Any]:
    """How far training moved the weights: ``||after - before|| / ||before||`` over all tensors
    and per layer group (:func:`layer_group`), read from two model folders' safetensors.

    Puts a refinement beside the perturbation attacks it should resist: a relative change of
    1e-3 is ten times smaller than parameter noise at sigma = 0.01.

    Returns:
        ``{"total": float, "per_layer": {group: float}, "changed_tensors": int}``.

    Raises:
        SafelensError: a folder has no safetensors, or the two hold other tensors.
    """
    def tensors(folder: str | Path) -> dict[str, torch.Tensor]:
        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise SafelensError(f"{folder}: no *.safetensors weights; expected a model folder")
        out: dict[str, torch.Tensor] = {}
        for file in files:
            out.update(load_file(str(file)))
        return out

    a, b = tensors(before), tensors(after)
    if set(a) != set(b):
        raise SafelensError(f"{before} and {after} hold other tensors "
                            f"(e.g. {sorted(set(a) ^ set(b))[:3]}); expected one architecture")
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    changed = 0
    for name in a:
        x, y = a[name].double(), b[name].double()
        d = float((y - x).pow(2).sum())
        changed += d > 0
        group = layer_group(name)
        num[group] = num.get(group, 0.0) + d
        den[group] = den.get(group, 0.0) + float(x.pow(2).sum())
    total = math.sqrt(sum(num.values()) / max(sum(den.values()), 1e-300))
    return {"total": total, "changed_tensors": changed,
            "per_layer": {g: math.sqrt(num[g] / max(den[g], 1e-300)) for g in num}}
