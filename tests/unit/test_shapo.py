"""ShaPO on the tiny model: the subspace-SAM wrapper (perturbation, restore, tau, modes) and the
``shapo-t`` / ``shapo-r`` methods (train, ``none`` == plain DPO, config validation)."""

from __future__ import annotations

import pytest
import torch
from tiny_rows import make_rows, one_thread, params_of  # noqa: F401  (one_thread is autouse)

from safelens.geometry.value_vectors import Subspace
from safelens.models import load_tiny_model
from safelens.training import Trainer, make_method
from safelens.training.methods.shapo import ShaPORConfig, ShaPOTConfig, build_subspace
from safelens.training.optim import StepOutput
from safelens.training.sam import SubspaceSAM, subspace_grad_norm

FAST = dict(batch_size=4, max_steps=3, lr=1e-3, max_length=64, progress=False, warmup_steps=0)


@pytest.fixture(scope="module")
def _tiny():
    model = load_tiny_model(seed=0)
    return model, params_of(model)


@pytest.fixture
def fresh(_tiny):
    """The module's tiny model with its initial weights put back (loading one costs ~1 s)."""
    from safelens.models.loading import hf_state_dict

    model, initial = _tiny
    with torch.no_grad():
        for name, tensor in hf_state_dict(model.original_model).items():
            tensor.copy_(initial[name])
    for p in model.original_model.parameters():
        p.grad = None
    return model


class Recorder:
    """A loss closure on the tiny model that snapshots every parameter at each pass."""

    def __init__(self, model, params):
        self.model, self.params = model, params
        self.snapshots: list[list[torch.Tensor]] = []
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, int(model.cfg.d_vocab), (2, 12), generator=gen)  # [B, T]

    def __call__(self, backward: bool = True) -> StepOutput:
        self.snapshots.append([p.detach().clone() for p in self.params])
        for p in self.params:
            p.grad = None
        logits = self.model.original_model(self.ids).logits  # [B, T, V]
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), self.ids[:, 1:].reshape(-1))
        loss.backward()
        return StepOutput(float(loss.detach()))


def setup_sam(model, subspace_kind="random", **kw):
    from safelens.training.trainer import named_trainable_parameters

    params = [p for _, p in named_trainable_parameters(model)]
    cfg = ShaPOTConfig(subspace=subspace_kind, top_fraction=0.05, progress=False)
    sub = build_subspace(model, [], cfg)
    opt = torch.optim.SGD(params, lr=1e-2)
    return SubspaceSAM(opt, params, sub, **kw), params, sub


def masks_by_param(params, sub):
    """For each trainable param: bool mask of its subspace coordinates (all False if outside)."""
    where = {id(p): m for p, m in zip(sub.params, sub.masks, strict=True)}
    out = []
    for p in params:
        if id(p) not in where:
            out.append(torch.zeros_like(p, dtype=torch.bool))
        else:
            m = where[id(p)]
            out.append(torch.ones_like(p, dtype=torch.bool) if m is None else m)
    return out


def test_sam_step_perturbs_only_the_subspace_by_rho_and_restores(fresh):
    sam, params, sub = setup_sam(fresh, "random", rho=0.05, every=1, max_grad_norm=None)
    assert 0 < sub.numel < sum(p.numel() for p in params)
    rec = Recorder(fresh, params)
    sam.step(rec)
    assert sam.passes == 2 and len(rec.snapshots) == 2
    theta, perturbed = rec.snapshots
    masks = masks_by_param(params, sub)
    eps_sq = 0.0
    for t, q, m in zip(theta, perturbed, masks, strict=True):
        assert torch.equal(t[~m], q[~m])  # outside S: bit-identical during the perturbed pass
        eps_sq += float(((q - t)[m].double()) .pow(2).sum())
    assert any(not torch.equal(t[m], q[m]) for t, q, m in zip(theta, perturbed, masks,
                                                               strict=True))
    assert abs(eps_sq ** 0.5 - 0.05) < 1e-5
    assert abs(sam.last_eps_norm - 0.05) < 1e-5


def test_first_sam_pass_computes_subspace_gradients_only(fresh):
    sam, params, sub = setup_sam(fresh, "random", rho=0.05, every=1, max_grad_norm=None)
    in_s = {id(p) for p in sub.params}
    rec = Recorder(fresh, params)
    seen = []

    def closure(backward=True):
        out = rec(backward)
        seen.append([p.grad is not None for p in params])
        return out

    sam.step(closure)
    first, second = seen
    assert first == [id(p) in in_s for p in params]  # pass 1: g_S only
    assert all(second)  # the perturbed pass: every gradient
    assert all(p.requires_grad for p in params)  # trainable again afterwards


def test_subspace_only_first_pass_gives_the_full_pass_update(fresh):
    """The update equals SAM computed by hand from a full first backward pass."""
    from safelens.training.sam import SAM_EPS

    sam, params, sub = setup_sam(fresh, "random", rho=0.05, every=1, max_grad_norm=None)
    start = [p.detach().clone() for p in params]
    masks = masks_by_param(params, sub)
    rec = Recorder(fresh, params)
    rec()  # full backward at theta
    g_s = [p.grad[m] for p, m in zip(params, masks, strict=True)]
    scale = 0.05 / (float(torch.linalg.vector_norm(torch.cat(g_s))) + SAM_EPS)
    with torch.no_grad():
        for p, m in zip(params, masks, strict=True):
            p[m] += p.grad[m] * scale
    rec()  # gradient at theta + eps_S
    grads = [p.grad.clone() for p in params]
    expected = [s - 1e-2 * g for s, g in zip(start, grads, strict=True)]  # SGD, lr 1e-2
    with torch.no_grad():
        for p, s in zip(params, start, strict=True):
            p.copy_(s)
    sam.step(rec)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-6)


def test_parameters_restored_bit_exactly_after_perturbed_pass(fresh):
    # lr = 0: the update is a no-op, so the parameters must be exactly theta again
    sam, params, _ = setup_sam(fresh, "uniform", rho=0.5, every=1)
    for group in sam.optimizer.param_groups:
        group["lr"] = 0.0
    before = [p.detach().clone() for p in params]
    rec = Recorder(fresh, params)
    sam.step(rec)
    assert not all(torch.equal(a, b) for a, b in zip(before, rec.snapshots[1], strict=True))
    assert all(torch.equal(a, p.detach()) for a, p in zip(before, params, strict=True))


def test_restored_even_when_the_perturbed_pass_raises(fresh):
    sam, params, _ = setup_sam(fresh, "random", every=1)
    before = [p.detach().clone() for p in params]
    rec = Recorder(fresh, params)

    def closure(backward=True):
        out = rec(backward)
        if len(rec.snapshots) == 2:
            raise FloatingPointError("boom")
        return out

    with pytest.raises(FloatingPointError):
        sam.step(closure)
    assert all(torch.equal(a, p.detach()) for a, p in zip(before, params, strict=True))


@pytest.mark.parametrize("mode,every,expected", [("exact", 2, [1, 2, 1, 2, 1, 2]),
                                                 ("exact", 3, [1, 1, 2, 1, 1, 2]),
                                                 ("reuse", 2, [1] * 6),
                                                 ("reuse", 1, [2, 1, 1, 1, 1, 1])])
def test_tau_and_passes_per_step(fresh, mode, every, expected):
    sam, params, _ = setup_sam(fresh, "random", every=every, mode=mode)
    rec = Recorder(fresh, params)
    counts = []
    for _ in range(6):
        before = sam.passes
        sam.step(rec)
        counts.append(sam.passes - before)
    assert counts == expected
    assert sam.sam_steps == 6 // every
    assert sam.state_dict()["steps"] == 6


def test_reuse_perturbs_only_subspace_with_one_pass(fresh):
    sam, params, sub = setup_sam(fresh, "random", every=2, mode="reuse", max_grad_norm=None)
    rec = Recorder(fresh, params)
    sam.step(rec)  # plain: saves g_S
    saved_norm = subspace_grad_norm(sam._saved)
    theta = [p.detach().clone() for p in params]
    out = sam.step(rec)  # SAM with the saved gradient, one pass
    perturbed = rec.snapshots[-1]
    for t, q, m in zip(theta, perturbed, masks_by_param(params, sub), strict=True):
        assert torch.equal(t[~m], q[~m])
    assert abs(sam.last_eps_norm - sam.rho) < 1e-5 and sam.passes == 2
    # no pass at theta: the gap logged is the first-order one, rho ||g_S|| of the reused g_S
    assert "sam/loss_perturbed" not in out.metrics
    assert out.metrics["sam/gap_first_order"] == pytest.approx(sam.rho * saved_norm, rel=1e-6)


def test_none_subspace_equals_plain_dpo_exactly(tmp_path):
    a, b = load_tiny_model(seed=0), load_tiny_model(seed=0)
    Trainer(make_method("dpo", **FAST), tmp_path / "dpo", model=a, rows=make_rows()).train()
    Trainer(make_method("shapo-t", subspace="none", sam_every=1, **FAST), tmp_path / "none",
            model=b, rows=make_rows()).train()
    pa, pb = params_of(a), params_of(b)
    assert pa.keys() == pb.keys()
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("name,extra", [
    ("shapo-t", dict(subspace="selective", base_loss="dpo")),
    ("shapo-t", dict(subspace="random", base_loss="ipo", sam_mode="reuse")),
    ("shapo-t", dict(subspace="uniform", base_loss="drdpo")),
    ("shapo-r", dict(subspace="selective")),
])
def test_shapo_trains_and_changes_parameters(name, extra, fresh, tmp_path):
    before = params_of(fresh)
    method = make_method(name, sam_every=2, top_fraction=0.05, **extra, **FAST)
    trainer = Trainer(method, tmp_path, model=fresh, rows=make_rows())
    result = trainer.train()
    assert result.step == 3 and len(result.history) == 3
    after = params_of(fresh)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values())
    assert method.subspace is not None and method.subspace.name == extra["subspace"]
    if extra.get("sam_mode", "exact") == "exact":
        assert "sam/loss_perturbed" in result.history[1]  # step 2 is the SAM step (tau = 2)
    assert all("rewards/margins" in r for r in result.history)


def test_selective_subspace_respects_freeze(fresh, tmp_path):
    method = make_method("shapo-t", top_fraction=0.05, freeze=r"layers\.0\.", **FAST)
    Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    assert method.subspace is not None and len(method.subspace) > 0
    assert all(".layers.0." not in n for n in method.subspace.param_names)
    assert all(p.requires_grad for p in method.subspace.params)


@pytest.mark.parametrize("cls", [ShaPOTConfig, ShaPORConfig])
@pytest.mark.parametrize("bad", [dict(rho=0.0), dict(rho=-1.0), dict(sam_every=0),
                                 dict(subspace="everything"), dict(sam_mode="lazy"),
                                 dict(top_fraction=0.0), dict(sam_target_gap=0.0),
                                 dict(sam_target_gap=float("nan"))])
def test_bad_config_raises(cls, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        cls(**bad)


def test_bad_base_loss_and_wrapper_args_raise(fresh):
    with pytest.raises(ValueError, match="base_loss"):
        ShaPOTConfig(base_loss="kto")
    with pytest.raises(ValueError, match="eps"):
        ShaPOTConfig(base_loss="rdpo", eps=0.5)  # rdpo's own rule: eps < 0.5
    for kw in (dict(rho=0.0), dict(every=0), dict(mode="lazy"), dict(target_gap=-0.1)):
        with pytest.raises(ValueError):
            setup_sam(fresh, "random", **kw)
    outside = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="not among the trainable"):
        SubspaceSAM(torch.optim.SGD([outside], lr=1.0), [],
                    Subspace("x", [outside], [None]))


def test_resume_gives_the_same_weights_in_reuse_mode(tmp_path, interrupt_after):
    # tau = 2 and a checkpoint at step 3: step 4 is a SAM step that needs step 3's saved g_S
    cfg = {**FAST, "max_steps": 6, "save_every": 3, "subspace": "random",
           "top_fraction": 0.05, "sam_every": 2, "sam_mode": "reuse"}
    rows = make_rows()
    straight = load_tiny_model(seed=0)
    Trainer(make_method("shapo-t", **cfg), tmp_path / "a", model=straight, rows=rows).train()

    with pytest.raises(KeyboardInterrupt):
        Trainer(make_method("shapo-t", **cfg), tmp_path / "b", model=load_tiny_model(seed=0),
                rows=rows, callbacks=[interrupt_after(3)]).train()
    resumed = load_tiny_model(seed=0)
    Trainer(make_method("shapo-t", **cfg), tmp_path / "b", model=resumed, rows=rows,
            resume=True).train()
    a, b = params_of(straight), params_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_align_shapo_flags(tmp_path):
    import json

    from safelens.cli.main import main
    from safelens.data import write_jsonl
    from safelens.models import save_model

    base = tmp_path / "base"
    save_model(load_tiny_model(0), base)
    write_jsonl(tmp_path / "train.jsonl", make_rows(8))
    out = tmp_path / "run"
    argv = ["align", "--method", "shapo-t", "--model", str(base), "--out", str(out),
            "--train", str(tmp_path / "train.jsonl"), "--max-steps", "2", "--batch-size", "4",
            "--max-length", "64", "--lr", "1e-3", "--base-loss", "cdpo", "--eps", "0.2",
            "--subspace", "random", "--rho", "0.1", "--sam-every", "1", "--sam-mode", "reuse",
            "--top-fraction", "0.05", "--no-progress"]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["method"], cfg["base_loss"], cfg["eps"], cfg["subspace"], cfg["rho"],
            cfg["sam_every"], cfg["sam_mode"], cfg["top_fraction"]) == \
        ("shapo-t", "cdpo", 0.2, "random", 0.1, 1, "reuse", 0.05)
    assert len((out / "log.jsonl").read_text().splitlines()) == 2


def test_rho_for_gap_matches_subspaces_at_the_same_perturbed_loss_gap(tiny_model):
    """Selective-sized random and uniform subspaces calibrated to one gap: each measured gap is
    on target, the radii differ, and the model is left bit-exactly as it was."""
    from tiny_rows import make_rows, params_of

    from safelens.geometry.report import dpo_loss_fn
    from safelens.geometry.value_vectors import Subspace, random_k_neurons
    from safelens.training.sam import rho_for_gap, sam_gap

    before = params_of(tiny_model)
    loss_fn = dpo_loss_fn(tiny_model, make_rows(4), max_length=48)
    n_layers, d_mlp = int(tiny_model.cfg.n_layers), int(tiny_model.cfg.d_mlp)
    subspaces = {"random": Subspace.from_neurons(
                     tiny_model, random_k_neurons(n_layers, d_mlp, max(1, n_layers * d_mlp // 100)),
                     "random"),
                 "uniform": Subspace.uniform(tiny_model)}
    rhos = {}
    for name, sub in subspaces.items():
        out = rho_for_gap(loss_fn, sub, target=0.02)
        assert out["converged"] and abs(out["gap"] - 0.02) <= 0.002, (name, out["history"])
        assert sam_gap(loss_fn, sub, out["rho"]) == pytest.approx(out["gap"], rel=1e-4)
        rhos[name] = out["rho"]
    assert rhos["random"] != pytest.approx(rhos["uniform"], rel=0.1)
    # A gap the small subspace cannot reach at any radius is reported, not faked.
    far = rho_for_gap(loss_fn, subspaces["random"], target=5.0, max_iters=4)
    assert not far["converged"] and len(far["history"]) == 4
    after = params_of(tiny_model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="empty"):
        rho_for_gap(loss_fn, Subspace.none(), target=0.1)


def test_target_gap_sets_the_radius_to_gap_over_subspace_gradient_norm_capped_at_rho(fresh):
    """Gap-held radius: eps_S has norm min(rho, gap / ||g_S||), so the first-order gap
    rho * ||g_S|| is the target; the realised gap is logged and close to it for a small gap."""

    params0 = [p.detach().clone() for p in fresh.original_model.parameters()]
    sam, params, sub = setup_sam(fresh, "random", rho=100.0, every=1, max_grad_norm=None,
                                 target_gap=1e-3)
    rec = Recorder(fresh, params)
    g_norm = None

    def closure(backward: bool = True) -> StepOutput:
        nonlocal g_norm
        out = rec(backward)
        if g_norm is None:  # the first (subspace) pass: g_S at theta
            g_norm = subspace_grad_norm(sam._grads_s())
        return out

    out = sam.step(closure)
    assert sam.last_rho == pytest.approx(1e-3 / g_norm, rel=1e-6)
    assert sam.last_eps_norm == pytest.approx(sam.last_rho, rel=1e-4)
    assert out.metrics["sam/rho"] == sam.last_rho
    assert out.metrics["sam/gap_first_order"] == pytest.approx(1e-3, rel=1e-6)  # = target
    gap = out.metrics["sam/loss_perturbed"] - out.loss
    assert gap == pytest.approx(1e-3, rel=0.2)  # first order holds at a 1e-3-nat gap
    # a cap below gap / ||g_S|| binds
    with torch.no_grad():
        for p, p0 in zip(fresh.original_model.parameters(), params0, strict=True):
            p.copy_(p0)
    capped, params, _ = setup_sam(fresh, "random", rho=1e-6, every=1, max_grad_norm=None,
                                  target_gap=1e-3)
    capped.step(Recorder(fresh, params))
    assert capped.last_rho == 1e-6


def test_target_gap_reaches_the_wrapper_from_the_config(fresh, tmp_path):
    method = make_method("shapo-t", subspace="random", top_fraction=0.05, rho=1e4, sam_every=1,
                         sam_target_gap=0.05, **FAST)
    res = Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    radii = [h["sam/rho"] for h in res.history]
    assert len(radii) == 3 and all(0 < r < 1e4 for r in radii)
    assert len(set(radii)) > 1  # the radius follows ||g_S|| step by step


def test_run_saves_its_subspace_and_load_subspace_rebuilds_it(fresh, tmp_path):
    from safelens.errors import SafelensError
    from safelens.training.methods.shapo import load_subspace

    method = make_method("shapo-t", subspace="random", top_fraction=0.05, **FAST)
    Trainer(method, tmp_path, model=fresh, rows=make_rows()).train()
    again = load_subspace(fresh, tmp_path)
    assert again.name == "random" and again.numel == method.subspace.numel
    assert torch.equal(again.neurons, method.subspace.neurons)
    for a, b in zip(again.masks, method.subspace.masks, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(SafelensError, match="no such file"):
        load_subspace(fresh, tmp_path / "nowhere")


def test_selective_subspace_is_cached_per_model_rows_and_seed(fresh, tmp_path, monkeypatch):
    """A second build with the same weights, rows and settings reads the neurons back (no probe
    is trained); another seed trains its own probe."""
    import safelens.training.methods.shapo as shapo_mod

    cfg = ShaPOTConfig(top_fraction=0.05, max_length=64)
    rows = make_rows()
    first = build_subspace(fresh, rows, cfg, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("subspace-*.json"))) == 1

    def no_probe(*args, **kwargs):
        raise AssertionError("the probe was trained again")

    monkeypatch.setattr(shapo_mod, "probe_direction", no_probe)
    again = build_subspace(fresh, rows, cfg, cache_dir=tmp_path)
    assert torch.equal(again.neurons, first.neurons) and again.numel == first.numel
    with pytest.raises(AssertionError, match="trained again"):
        build_subspace(fresh, rows, ShaPOTConfig(top_fraction=0.05, max_length=64, seed=1),
                       cache_dir=tmp_path)
