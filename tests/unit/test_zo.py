"""Zeroth-order refinement (seed 002): the SPSA/MeZO wrapper on a quadratic and the tiny model
(estimate, bit-exact restore, seeded z, top:K layers, sensitivity) and the ``zo-refine``
method (CLI from a finished run, resume, ``--from`` errors)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_rows import make_rows, one_thread, params_of  # noqa: F401  (one_thread is autouse)

from safelens.errors import SafelensError
from safelens.models import load_tiny_model
from safelens.training import Trainer, make_method
from safelens.training.optim import NonFiniteLossError, StepOutput
from safelens.training.trainer import named_trainable_parameters
from safelens.training.zo import (
    ZerothOrderStep,
    direction_seed,
    layer_sensitivity,
    refinement_cost,
)

FAST = dict(batch_size=4, max_length=64, progress=False, warmup_steps=0)


# ------------------------------------------------------------------------------ quadratic
def quadratic(d: int = 20, seed: int = 0):
    """f(theta) = 1/2 theta^T A theta - b^T theta with A symmetric positive definite."""
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(d, d, generator=gen, dtype=torch.float64)
    a = m @ m.T / d + torch.eye(d, dtype=torch.float64)  # [d, d]
    b = torch.randn(d, generator=gen, dtype=torch.float64)  # [d]
    theta = torch.nn.Parameter(torch.randn(d, generator=gen, dtype=torch.float64))

    def f() -> float:
        t = theta.detach()
        return float(0.5 * t @ a @ t - b @ t)

    def closure(backward: bool = True) -> StepOutput:
        return StepOutput(f())

    return theta, a, b, f, closure


def test_averaged_estimate_points_along_the_true_gradient():
    theta, a, b, _, closure = quadratic()
    true = (a @ theta.detach() - b)  # [d]
    before = theta.detach().clone()
    zo = ZerothOrderStep(torch.optim.SGD([theta], lr=1.0), [theta], eps=1e-3,
                         n_directions=2000, seed=1)
    out = zo.step(closure)
    estimate = before - theta.detach()  # lr 1: the applied g_hat
    cosine = float(torch.nn.functional.cosine_similarity(estimate, true, dim=0))
    assert cosine > 0.9, cosine
    assert out.metrics["zo/forward_passes"] == 4000
    assert out.grad_norm == pytest.approx(float(estimate.norm()), rel=1e-6)


def test_zo_sgd_descends_the_quadratic():
    theta, _, _, f, closure = quadratic(seed=2)
    start = f()
    zo = ZerothOrderStep(torch.optim.SGD([theta], lr=0.02), [theta], eps=1e-3, seed=0)
    for _ in range(300):
        zo.step(closure)
    assert f() < start - 0.5 * abs(start) or f() < start - 1.0


# ------------------------------------------------------------------------------ tiny model
class Recorder:
    """A forward-only CE loss on the tiny model that snapshots every parameter at each call."""

    def __init__(self, model, params):
        self.model, self.params = model, params
        self.snapshots: list[list[torch.Tensor]] = []
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, int(model.cfg.d_vocab), (2, 12), generator=gen)  # [B, T]
        self.poison = False

    def __call__(self, backward: bool = True) -> StepOutput:
        self.snapshots.append([p.detach().clone() for p in self.params])
        with torch.no_grad():
            logits = self.model.original_model(self.ids).logits  # [B, T, V]
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), self.ids[:, 1:].reshape(-1))
        return StepOutput(float("nan") if self.poison else float(loss))


@pytest.fixture(scope="module")
def _tiny():
    model = load_tiny_model(seed=0)
    return model, params_of(model)


@pytest.fixture
def fresh(_tiny):
    """``(model, names, params)``: the module's tiny model with its initial weights put back."""
    from safelens.models.loading import hf_state_dict

    model, initial = _tiny
    with torch.no_grad():
        for name, tensor in hf_state_dict(model.original_model).items():
            tensor.copy_(initial[name])
    named = named_trainable_parameters(model)
    return model, [n for n, _ in named], [p for _, p in named]


@pytest.mark.parametrize("probe_every", [0, 1])
def test_perturb_and_restore_is_bit_exact(fresh, probe_every):
    model, names, params = fresh
    before = [p.detach().clone() for p in params]
    rec = Recorder(model, params)
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names, eps=1e-3,
                         n_directions=2, probe_every=probe_every)
    zo.step(rec)
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True))
    # the closure saw theta + eps z and theta - eps z (symmetric about theta), never theta
    plus, minus = rec.snapshots[-2], rec.snapshots[-1]
    moved = [i for i, (a, b) in enumerate(zip(plus, before, strict=True)) if not torch.equal(a, b)]
    assert moved
    for i in moved:
        torch.testing.assert_close(plus[i] - before[i], before[i] - minus[i], rtol=0, atol=1e-6)


def test_regenerate_restore_drifts_by_rounding_only(fresh):
    model, names, params = fresh
    before = [p.detach().clone() for p in params]
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names, restore="regenerate")
    zo.step(Recorder(model, params))
    for p, b in zip(params, before, strict=True):
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=1e-6)


def test_update_regenerates_the_perturbation_direction(fresh):
    model, names, params = fresh
    before = [p.detach().clone() for p in params]
    rec = Recorder(model, params)
    lr, eps = 0.1, 1e-3
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=lr), params, names, eps=eps)
    out = zo.step(rec)
    g = out.metrics["zo/projected_grad"]
    assert g != 0.0
    for p, b, plus in zip(params, before, rec.snapshots[0], strict=True):
        z = (plus - b) / eps  # the z of the perturbation, read back from the weights
        # z read back carries the rounding of theta + eps z (~ulp(theta) / eps)
        torch.testing.assert_close(p.detach() - b, -lr * g * z, rtol=1e-3,
                                   atol=1e-4 * lr * abs(g))
    assert math.isfinite(out.loss) and out.metrics["zo/loss_diff"] == pytest.approx(2 * eps * g)


def test_non_finite_loss_raises_and_restores(fresh):
    model, names, params = fresh
    before = [p.detach().clone() for p in params]
    rec = Recorder(model, params)
    rec.poison = True
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=1.0), params, names)
    with pytest.raises(NonFiniteLossError):
        zo.step(rec)
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True))


def test_top_k_moves_only_the_most_sensitive_layers(fresh):
    model, names, params = fresh
    before = [p.detach().clone() for p in params]
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=1e-2), params, names, layers="top:1",
                         probe_every=100, n_directions=2)
    rec = Recorder(model, params)
    outs = [zo.step(rec) for _ in range(3)]
    assert len(zo.active) == 1 and outs[1].metrics["zo/active_layers"] == 1.0
    top = max(zo.sensitivity, key=zo.sensitivity.get)
    assert zo.active == [top]
    moved = {i for i in zo.groups[top]}
    for i, (p, b) in enumerate(zip(params, before, strict=True)):
        assert torch.equal(p.detach(), b) == (i not in moved), names[i]
    # a probe step costs 1 + 2 x layers evaluations, an ordinary one 2 x directions
    assert outs[0].metrics["zo/forward_passes"] == 1 + 2 * len(zo.groups)
    assert outs[1].metrics["zo/forward_passes"] == 4


def test_sensitivity_is_finite_per_layer_and_an_ema(fresh):
    model, names, params = fresh
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names, probe_every=1,
                         sensitivity_decay=0.5)
    rec = Recorder(model, params)
    zo.step(rec)
    first = dict(zo.last_probe)
    sens = layer_sensitivity(zo)
    assert list(sens) == ["model.embed_tokens", "layers.0", "layers.1", "model.norm"]
    assert all(math.isfinite(v) for v in sens.values())
    zo.step(rec)
    for k in sens:
        assert zo.sensitivity[k] == pytest.approx(0.5 * first[k] + 0.5 * zo.last_probe[k])
    with pytest.raises(SafelensError, match="no probe"):
        layer_sensitivity(ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names))


def test_state_dict_round_trips_through_a_checkpoint(fresh, tmp_path):
    from safelens.training.checkpoint import load_state, save_state

    model, names, params = fresh
    zo = ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names, layers="top:2",
                         probe_every=1)
    zo.step(Recorder(model, params))
    save_state(tmp_path, "wrapper", zo.state_dict())
    other = ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names, layers="top:2",
                            probe_every=1)
    other.load_state_dict(load_state(tmp_path, "wrapper"))
    assert (other.steps, other.active, other.sensitivity, other.forwards_total) == \
        (zo.steps, zo.active, zo.sensitivity, zo.forwards_total)


def test_directions_differ_by_step_and_index():
    seeds = {direction_seed(0, t, "spsa", j) for t in range(1, 50) for j in range(4)}
    assert len(seeds) == 49 * 4
    assert direction_seed(0, 1, "spsa", 0) != direction_seed(1, 1, "spsa", 0)


@pytest.mark.parametrize("kw, needle", [
    (dict(eps=0.0), "eps"), (dict(eps=float("nan")), "eps"), (dict(n_directions=0), "n_directions"),
    (dict(update="adam"), "update"), (dict(restore="none"), "restore"),
    (dict(layers="top:2"), "probe_every"), (dict(layers="top:9", probe_every=1), "layers"),
    (dict(layers="best"), "layers"), (dict(sensitivity_decay=1.0), "sensitivity_decay"),
])
def test_wrapper_settings_are_checked(fresh, kw, needle):
    _, names, params = fresh
    with pytest.raises(SafelensError, match=needle):
        ZerothOrderStep(torch.optim.SGD(params, lr=0.0), params, names, **kw)


# ------------------------------------------------------------------------------ zo-refine
def test_zo_refine_resume_gives_the_same_weights(tmp_path, interrupt_after):
    cfg = {**FAST, "objective": "sft", "max_steps": 6, "save_every": 3, "lr": 1e-3,
           "layers": "top:2", "probe_every": 2, "n_directions": 2}
    rows = make_rows(8)
    straight = load_tiny_model(seed=0)
    Trainer(make_method("zo-refine", **cfg), tmp_path / "a", model=straight, rows=rows).train()

    with pytest.raises(KeyboardInterrupt):
        Trainer(make_method("zo-refine", **cfg), tmp_path / "b", model=load_tiny_model(seed=0),
                rows=rows, callbacks=[interrupt_after(3)]).train()
    resumed = load_tiny_model(seed=0)
    Trainer(make_method("zo-refine", **cfg), tmp_path / "b", model=resumed, rows=rows,
            resume=True).train()
    a, b = params_of(straight), params_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], v) for k, v in params_of(load_tiny_model(seed=0)).items())
    assert layer_sensitivity(tmp_path / "a") == layer_sensitivity(tmp_path / "b")


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A finished 2-step SFT run of the tiny model, trained through the CLI."""
    from safelens.cli.main import main
    from safelens.data import write_jsonl
    from safelens.models import save_model

    root = tmp_path_factory.mktemp("zo")
    save_model(load_tiny_model(0), root / "base")
    write_jsonl(root / "train.jsonl", make_rows(8))
    run = root / "sft"
    assert main(["align", "--method", "sft", "--model", str(root / "base"), "--train",
                 str(root / "train.jsonl"), "--out", str(run), "--max-steps", "2",
                 "--batch-size", "4", "--max-length", "48", "--lr", "1e-3",
                 "--no-progress"]) == 0
    return run


def test_cli_zo_refine_from_a_finished_run(source_run, tmp_path):
    from safelens.cli.main import main
    from safelens.models import load_model
    from safelens.training.methods.zo_refine import weights_sha256

    out = tmp_path / "zo"
    assert main(["align", "--method", "zo-refine", "--from", str(source_run), "--out", str(out),
                 "--max-steps", "6", "--lr", "1e-2", "--n-directions", "4", "--probe-every",
                 "5", "--zo-eps", "1e-2", "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    src = json.loads((source_run / "config.json").read_text())
    assert cfg["from_run"] == str(source_run) and cfg["objective"] == "sft"
    assert cfg["from_run_sha256"] == weights_sha256(source_run / "model")
    assert cfg["model"] == str(source_run / "model")
    assert (cfg["max_length"], cfg["batch_size"], cfg["train_file"]) == \
        (48, 4, src["train_file"])  # data settings come from the source run
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    # probe steps 1 and 6: 1 + 2 x 4 layers; the others 2 x 4 directions
    assert [r["zo/forward_passes"] for r in log] == [9, 8, 8, 8, 8, 9]
    assert log[-1]["zo/forward_passes_total"] == 50
    assert all(math.isfinite(r["loss"]) for r in log)
    # the objective at theta, evaluated on probe steps 1 and 6: refinement lowered it
    assert log[-1]["zo/loss_at_theta"] < log[0]["zo/loss_at_theta"]
    a, b = (params_of(load_model(str(source_run / "model"))),
            params_of(load_model(str(out / "model"))))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    sens = layer_sensitivity(out)
    assert "layers.0" in sens and all(math.isfinite(v) for v in sens.values())
    cost = refinement_cost(out)
    assert cost["zo_loss_evaluations"] == 50 and cost["first_order_steps"] == 2
    assert cost["ratio_row_forwards"] == pytest.approx(50 * 4 / (3 * 2 * 4))


def test_zo_refine_takes_the_source_objective_settings(source_run, tmp_path):
    import shutil

    dpo = tmp_path / "dpo"
    shutil.copytree(source_run, dpo)
    cfg = json.loads((dpo / "config.json").read_text())
    cfg.update(method="dpo", beta=0.3, rpo_alpha=1.0)
    (dpo / "config.json").write_text(json.dumps(cfg))
    m = make_method("zo-refine", from_run=str(dpo))
    assert m.config.objective == "dpo" and m.objective.config.beta == 0.3
    assert json.loads(m.config.objective_options) == {"beta": 0.3, "rpo_alpha": 1.0}
    m = make_method("zo-refine", from_run=str(dpo), objective_options='{"beta": 0.1}',
                    max_length=32)
    assert (m.objective.config.beta, m.objective.config.rpo_alpha, m.config.max_length) == \
        (0.1, 1.0, 32)
    m = make_method("zo-refine", from_run=str(dpo), objective="sft")
    assert m.config.objective_options is None and m.columns == ("chosen",)


def test_from_must_be_a_finished_run(source_run, tmp_path, capsys):
    import shutil

    from safelens.cli.main import main

    (tmp_path / "empty").mkdir()
    shutil.copytree(source_run / "model", tmp_path / "hfmodel")  # a model folder, not a run
    shutil.copytree(source_run, tmp_path / "nomodel")
    shutil.rmtree(tmp_path / "nomodel" / "model")
    for where, needle in [("missing", "no such directory"), ("empty", "no config.json"),
                          ("hfmodel", "names no 'method'"), ("nomodel", "no trained model")]:
        with pytest.raises(SafelensError, match=needle):
            make_method("zo-refine", from_run=str(tmp_path / where))
        code = main(["align", "--method", "zo-refine", "--from", str(tmp_path / where),
                     "--out", str(tmp_path / "out"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("error:") == 1 and str(tmp_path / where) in err
    with pytest.raises(SafelensError, match="--model"):
        make_method("zo-refine", from_run=str(source_run), model=str(tmp_path / "hfmodel"))
    with pytest.raises(SafelensError, match="source run changed"):
        make_method("zo-refine", from_run=str(source_run), from_run_sha256="0" * 64)


@pytest.mark.parametrize("kw, needle", [
    (dict(objective="zo-refine"), "objective"), (dict(objective="shapo-t"), "objective"),
    (dict(objective="nope"), "objective"), (dict(objective_options="[1]"), "objective_options"),
    (dict(objective="sft", objective_options='{"beta": 1}'), "objective_options"),
    (dict(objective="dpo", objective_options='{"beta": 0}'), "beta"),
    (dict(zo_eps=0.0), "zo_eps"), (dict(n_directions=0), "n_directions"),
    (dict(layers="top:0"), "layers"), (dict(layers="top:2", probe_every=0), "probe_every"),
    (dict(sensitivity_decay=1.5), "sensitivity_decay"),
])
def test_zo_refine_config_is_checked(kw, needle):
    with pytest.raises(SafelensError, match=needle):
        make_method("zo-refine", **kw)


def test_weight_change_is_relative_per_layer(tmp_path):
    from safelens.models import save_model
    from safelens.training.zo import weight_change

    a = load_tiny_model(0)
    save_model(a, tmp_path / "a")
    with torch.no_grad():
        for name, p in a.original_model.named_parameters():
            if ".layers.1." in name:
                p.mul_(1.1)  # exactly 10% on block 1
    save_model(a, tmp_path / "b")
    change = weight_change(tmp_path / "a", tmp_path / "b")
    assert change["per_layer"]["layers.1"] == pytest.approx(0.1, rel=1e-6)
    assert change["per_layer"]["layers.0"] == 0.0 and 0 < change["total"] < 0.1
    assert weight_change(tmp_path / "a", tmp_path / "a")["changed_tensors"] == 0
    with pytest.raises(SafelensError, match="no \\*.safetensors"):
        weight_change(tmp_path / "a", tmp_path)


def test_zo_refine_runs_in_fp32_and_refuses_bf16_at_small_eps(source_run):
    from safelens.training import make_method
    from safelens.training.resolve import resolve_config

    cfg = resolve_config("zo-refine", preset=None, from_run=str(source_run))
    assert cfg.precision == "fp32"  # never the source run's bf16 / auto
    with pytest.raises(SafelensError, match=r"precision must be fp32 at zo_eps 0.001.*bf16"):
        make_method("zo-refine", precision="auto")
    assert make_method("zo-refine", precision="bf16", zo_eps=1e-2).config.precision == "bf16"
