"""The token-sequence task of the simulations: a seeded random hidden Markov model (HMM).

Seed 001 does not describe its pre-experiments' data. Ours is a small HMM over ``vocab``
tokens: token 0 is BOS (never emitted); each of ``n_states`` hidden states moves to
``k_trans`` random successor states and emits one of ``k_emit`` random tokens, both with
Dirichlet(``concentration``) weights (small concentration → peaked rows). Emission supports of
different states overlap, so the next token depends on the whole history through the belief
over hidden states — something an LSTM must learn and no model of finite size learns exactly.

Roles (our reading of seed 001 §5.1–5.2):

* **π_aligned (reference)** is trained first, with cross-entropy, on its own sample of the
  source (``n_ref_train`` sequences). It differs from the policy in architecture and, having
  learnt from finite data, does not match the source exactly (``source_next_token_probs``
  gives the exact conditionals, so the gap is measured, not assumed).
* **π_θ (policy)** is then trained on a *separate* sample of the **source** data (the
  fine-tuning set), while the frozen reference supplies logits for PA (and log-probs for
  CSFT). We do not train the policy on samples of the reference: then CE alone would already
  pull it toward the reference and both groups would target the same distribution. On the
  source data, CE pulls the policy toward the data and PA toward the reference's preferences —
  the seed's setting of a model that learns from fine-tuning data while PA keeps the aligned
  model's preferred tokens.
* Metrics are read on a third, held-out sample, at every position of every sequence.

Sequences are ``[n, length + 1]`` ids with BOS in column 0; a model reads ``ids[:, :-1]`` and
predicts ``ids[:, 1:]`` (``length`` predicted tokens per sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["BOS", "HMMSource", "make_source", "sample_sequences", "source_next_token_probs"]

BOS = 0


@dataclass(frozen=True)
class HMMSource:
    """A hidden Markov model over tokens ``1..V-1`` (0 is BOS).

    Attributes:
        init: ``[H]`` initial hidden-state distribution.
        trans: ``[H, H]`` transitions, ``trans[i, j] = P(s' = j | s = i)``.
        emit: ``[H, V]`` emissions, column 0 (BOS) is zero.
    """

    init: torch.Tensor  # [H]
    trans: torch.Tensor  # [H, H]
    emit: torch.Tensor  # [H, V]

    @property
    def vocab(self) -> int:
        return int(self.emit.shape[1])


def _sparse_rows(rows: int, cols: int, k: int, concentration: float,
                 rng: np.random.Generator, offset: int = 0) -> torch.Tensor:  # [rows, offset+cols]
    """Each row: ``k`` random columns with Dirichlet(concentration) weights, the rest zero."""
    out = np.zeros((rows, offset + cols))
    for r in range(rows):
        idx = rng.choice(cols, size=k, replace=False) + offset
        out[r, idx] = rng.dirichlet(np.full(k, float(concentration)))
    return torch.from_numpy(out)


def make_source(
    vocab: int = 48,
    n_states: int = 12,
    k_trans: int = 3,
    k_emit: int = 4,
    concentration: float = 0.5,
    seed: int = 0,
) -> HMMSource:
    """A random sparse HMM, the same for the same arguments.

    Examples:
        >>> src = make_source(vocab=10, n_states=4, k_trans=2, k_emit=3, seed=1)
        >>> src.emit.shape, bool(torch.allclose(src.trans.sum(-1), torch.ones(4, dtype=src.trans.dtype)))
        (torch.Size([4, 10]), True)
        >>> float(src.emit[:, 0].sum())  # BOS is never emitted
        0.0

    Args:
        vocab: V, including BOS (so V - 1 emitted tokens).
        n_states: H hidden states.
        k_trans: successors per state.
        k_emit: tokens each state can emit.
        concentration: Dirichlet concentration of the non-zero weights (< 1: peaked).
        seed: seed of the draw.

    Returns:
        The :class:`HMMSource` (float64 tensors).

    Raises:
        ValueError: on sizes that cannot form such an HMM.
    """
    if vocab < 3 or n_states < 1 or not 1 <= k_trans <= n_states or not 1 <= k_emit < vocab:
        raise ValueError(
            f"need vocab >= 3, n_states >= 1, 1 <= k_trans <= n_states, 1 <= k_emit < vocab; got "
            f"vocab={vocab}, n_states={n_states}, k_trans={k_trans}, k_emit={k_emit}")
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0, got {concentration!r}")
    rng = np.random.default_rng(int(seed))
    init = torch.full((n_states,), 1.0 / n_states, dtype=torch.float64)
    trans = _sparse_rows(n_states, n_states, k_trans, concentration, rng)
    emit = _sparse_rows(n_states, vocab - 1, k_emit, concentration, rng, offset=1)
    return HMMSource(init, trans, emit)


def sample_sequences(source: HMMSource, n: int, length: int,
                     generator: torch.Generator) -> torch.Tensor:  # [n, length + 1]
    """``n`` sequences of ``length`` tokens, each preceded by BOS.

    Examples:
        >>> src = make_source(vocab=10, n_states=4, k_trans=2, k_emit=3, seed=1)
        >>> ids = sample_sequences(src, 3, 5, torch.Generator().manual_seed(0))
        >>> ids.shape, ids[:, 0].tolist(), bool((ids[:, 1:] > 0).all())
        (torch.Size([3, 6]), [0, 0, 0], True)
    """
    if n < 1 or length < 1:
        raise ValueError(f"n and length must be >= 1, got n={n}, length={length}")
    ids = torch.full((n, length + 1), BOS, dtype=torch.long)
    state = torch.multinomial(source.init.expand(n, -1), 1, generator=generator)[:, 0]  # [n]
    for t in range(1, length + 1):
        ids[:, t] = torch.multinomial(source.emit[state], 1, generator=generator)[:, 0]
        state = torch.multinomial(source.trans[state], 1, generator=generator)[:, 0]
    return ids


def source_next_token_probs(source: HMMSource,
                            ids: torch.Tensor) -> torch.Tensor:  # [n, L + 1] -> [n, L, V]
    """Exact next-token distributions of the source at every predicted position.

    ``out[:, t]`` is P(token t + 1 | tokens 1..t) by the forward (filtering) recursion, aligned
    with a model's ``logits[:, t]`` on ``ids[:, :-1]``.

    Examples:
        >>> src = make_source(vocab=10, n_states=4, k_trans=2, k_emit=3, seed=1)
        >>> ids = sample_sequences(src, 2, 4, torch.Generator().manual_seed(0))
        >>> p = source_next_token_probs(src, ids)
        >>> p.shape, bool(torch.allclose(p.sum(-1), torch.ones(2, 4, dtype=p.dtype)))
        (torch.Size([2, 4, 10]), True)
    """
    n, L1 = ids.shape
    belief = source.init.expand(n, -1).clone()  # [n, H] P(s_t | tokens < t)
    out = []
    for t in range(1, L1):
        out.append(belief @ source.emit)  # [n, V]
        post = belief * source.emit[:, ids[:, t]].T  # [n, H] P(s_t, token t | tokens < t)
        post = post / post.sum(-1, keepdim=True).clamp_min(1e-300)
        belief = post @ source.trans  # [n, H]
    return torch.stack(out, dim=1)  # [n, L, V]
