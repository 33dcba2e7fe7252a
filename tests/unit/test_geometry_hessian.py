"""hessian_lambda_max against dense Hessians on small problems."""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny_rows import one_thread  # noqa: F401, E402  (autouse: one torch thread)

from safelens.geometry import HVPOperator, Subspace, hessian_lambda_max

METHODS = ["lanczos", "power"]


def _quadratic(eigenvalues: torch.Tensor, seed: int = 0):
    """0.5 wᵀ A w with A = Q diag(eigenvalues) Qᵀ, so the Hessian is A everywhere."""
    gen = torch.Generator().manual_seed(seed)
    n = eigenvalues.numel()
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    a = (q * eigenvalues) @ q.T
    w = torch.randn(n, generator=gen, dtype=torch.float64).requires_grad_(True)
    return w, a, (lambda: 0.5 * w @ a @ w)


@pytest.mark.parametrize("method", METHODS)
def test_quadratic_known_spectrum(method):
    ev = torch.linspace(0.1, 2.0, 40, dtype=torch.float64)
    ev[-1] = 5.0
    w, a, f = _quadratic(ev)
    lam, info = hessian_lambda_max(f, [w], method=method, tol=1e-6, iters=500, return_info=True)
    assert lam == pytest.approx(5.0, rel=1e-4)
    top = torch.linalg.eigh(a).eigenvectors[:, -1]
    assert abs(float(info.eigenvector[0] @ top)) > 0.99
    assert info.n_hvp > 0 and info.n_dims == 40 and info.converged


@pytest.mark.parametrize("method", METHODS)
def test_largest_magnitude_negative_returns_top_algebraic(method):
    # Most negative eigenvalue dominates in magnitude: plain power iteration would return -10.
    ev = torch.linspace(-1.0, 1.0, 30, dtype=torch.float64)
    ev[0], ev[-1] = -10.0, 3.0
    w, _, f = _quadratic(ev, seed=1)
    lam, info = hessian_lambda_max(f, [w], method=method, tol=1e-7, iters=2000, return_info=True)
    assert lam == pytest.approx(3.0, rel=1e-3)
    if method == "power":
        # The first (unshifted) stage found the dominant-magnitude eigenvalue, then shifted.
        assert info.largest_magnitude == pytest.approx(-10.0, rel=1e-3)


def test_all_negative_spectrum():
    ev = -torch.linspace(1.0, 4.0, 10, dtype=torch.float64)
    w, _, f = _quadratic(ev, seed=2)
    for method in METHODS:
        lam = hessian_lambda_max(f, [w], method=method, tol=1e-8, iters=3000)
        assert lam == pytest.approx(-1.0, rel=1e-3)


def _mlp_problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(16, 1, generator=gen, dtype=torch.float64)
    shapes = [(4, 3), (4,), (1, 4)]
    params = [
        (0.8 * torch.randn(s, generator=gen, dtype=torch.float64)).requires_grad_(True)
        for s in shapes
    ]

    def loss_of(w1, b1, w2):
        return ((torch.tanh(x @ w1.T + b1) @ w2.T - y) ** 2).mean()

    def dense_hessian():
        sizes = [p.numel() for p in params]
        flat = torch.cat([p.detach().reshape(-1) for p in params])

        def f(v):
            parts = torch.split(v, sizes)
            return loss_of(*(t.reshape(s) for t, s in zip(parts, shapes, strict=True)))

        return torch.autograd.functional.hessian(f, flat)

    return params, (lambda: loss_of(*params)), dense_hessian()


@pytest.mark.parametrize("method", METHODS)
def test_tiny_mlp_matches_dense(method):
    params, f, h = _mlp_problem()
    expected = float(torch.linalg.eigvalsh(h)[-1])
    lam = hessian_lambda_max(f, params, method=method, tol=1e-8, iters=3000)
    assert lam == pytest.approx(expected, rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_masks_over_several_params_match_dense_submatrix(method):
    params, f, h = _mlp_problem(seed=3)
    gen = torch.Generator().manual_seed(7)
    masks = [torch.rand(p.shape, generator=gen) < 0.5 for p in params]
    masks[1] = None  # the whole bias vector
    flat_mask = torch.cat(
        [
            (torch.ones_like(p, dtype=torch.bool) if m is None else m).reshape(-1)
            for p, m in zip(params, masks, strict=True)
        ]
    )
    sub = h[flat_mask][:, flat_mask]
    expected = float(torch.linalg.eigvalsh(sub)[-1])
    lam, info = hessian_lambda_max(
        f, params, masks, method=method, tol=1e-8, iters=3000, return_info=True
    )
    assert lam == pytest.approx(expected, rel=1e-4, abs=1e-8)
    assert info.n_dims == int(flat_mask.sum())
    for vec, m in zip(info.eigenvector, masks, strict=True):
        if m is not None:
            assert torch.all(vec[~m] == 0)
    # The eigenvector satisfies H_S v = λ v on the subspace.
    v = torch.cat([t.reshape(-1) for t in info.eigenvector])[flat_mask]
    assert torch.allclose(sub @ v, lam * v, atol=1e-4)


def test_full_dense_hvp_operator_matches():
    params, f, h = _mlp_problem(seed=4)
    op = HVPOperator(f, params)
    cols = torch.stack([op.matvec(e) for e in torch.eye(op.n, dtype=torch.float64)], 1)
    assert torch.allclose(cols, h, atol=1e-10)
    assert op.n_hvp == op.n


def test_reuse_graph_false_same_answer_and_recomputes():
    params, f, _ = _mlp_problem(seed=5)
    calls = {"n": 0}

    def counted():
        calls["n"] += 1
        return f()

    a = hessian_lambda_max(counted, params, tol=1e-8, iters=500)
    n_reuse = calls["n"]
    b, info = hessian_lambda_max(
        counted, params, tol=1e-8, iters=500, reuse_graph=False, return_info=True
    )
    assert n_reuse == 1
    assert calls["n"] - n_reuse == info.n_hvp
    assert a == pytest.approx(b, rel=1e-6)


def test_deterministic_for_seed():
    params, f, _ = _mlp_problem(seed=6)
    assert hessian_lambda_max(f, params, seed=3) == hessian_lambda_max(f, params, seed=3)


def test_untouched_param_and_tiny_subspace():
    w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    unused = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    lam = hessian_lambda_max(lambda: (w**2).sum() * 1.5, [w, unused])
    assert lam == pytest.approx(3.0)
    # n <= 2 coordinates is solved densely (ARPACK needs k < n).
    assert hessian_lambda_max(lambda: (w**2).sum() * 1.5, [w]) == pytest.approx(3.0)


def test_errors():
    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="no coordinates"):
        hessian_lambda_max(lambda: (w**2).sum(), [w], [torch.zeros(3, dtype=torch.bool)])
    with pytest.raises(ValueError, match="shape"):
        hessian_lambda_max(lambda: (w**2).sum(), [w], [torch.ones(2, dtype=torch.bool)])
    with pytest.raises(ValueError, match="method"):
        hessian_lambda_max(lambda: (w**2).sum(), [w], method="arnoldi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        hessian_lambda_max(lambda: (w**2).sum(), Subspace.none())


@pytest.fixture(scope="module")
def tiny():
    from safelens.models import load_tiny_model
    from safelens.models.chat import encode

    model = load_tiny_model(seed=0)
    batch = encode(model.tokenizer, ["How do I pick a lock?"], ["I can't help with that."])
    return model, batch


def test_subspace_on_tiny_model_matches_dense_from_hvps(tiny):
    from safelens.models.logprobs import response_logps

    model, batch = tiny
    sub = Subspace.from_neurons(model, torch.tensor([[0, 3], [1, 7]]), "two-neurons")

    def loss_fn():
        return -response_logps(model, batch)[0].mean()

    op = HVPOperator(loss_fn, sub.params, sub.masks)
    dense = torch.stack([op.matvec(e) for e in torch.eye(op.n, dtype=torch.float64)], 1)
    dense = 0.5 * (dense + dense.T)  # float32 HVPs are symmetric only up to round-off
    expected = float(torch.linalg.eigvalsh(dense)[-1])
    lam = hessian_lambda_max(loss_fn, sub, method="lanczos", tol=1e-6)
    assert lam == pytest.approx(expected, rel=1e-3, abs=1e-6)
    # Power iteration returns a Rayleigh quotient: never above λ_max, however far it got.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lam_power = hessian_lambda_max(loss_fn, sub, method="power", tol=1e-4, iters=100)
    assert lam_power <= expected * (1 + 1e-4) + 1e-9
