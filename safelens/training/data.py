"""Training rows: source, seeded subsample, label flips (training rows only), data order.

Order of operations (all seeded by ``config.seed``): read rows → keep ``domains`` → subsample
(``max_train_rows``, optionally ``balance``d: a ``harmful_fraction`` of harmful rows) →
flip labels on a ``flip_rate`` fraction of THESE rows (:func:`safelens.data.flip_labels`;
evaluation data is never touched) → the method's ``prepare``. The data order is a pure
function of (seed, step), so a resumed run sees exactly the batches the uninterrupted run
would have.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from safelens.data import load_builtin
from safelens.data.formats import load_preference_dataset, read_preference_file
from safelens.data.transforms import flip_labels
from safelens.errors import SafelensError
from safelens.training.config import TrainConfig


def load_train_rows(config: TrainConfig) -> tuple[list[dict[str, Any]], str]:
    """``(rows, source)`` from ``config.train_file``, ``config.dataset`` or the built-in split.

    ``train_file`` and ``dataset`` take our JSONL or TRL's formats with optional metadata
    (defaults: :mod:`safelens.data.formats`; rows without a harm label get
    ``config.default_harmful``).
    """
    if config.train_file:
        rows = read_preference_file(config.train_file, harmful=config.default_harmful)
        if not rows:
            raise SafelensError(f"train_file {config.train_file} holds no preference rows; "
                                "expected one JSON object per line")
        return rows, str(config.train_file)
    if config.dataset:
        rows = load_preference_dataset(config.dataset, config.dataset_split,
                                       path=config.dataset_path, harmful=config.default_harmful)
        source = f"dataset:{config.dataset}[{config.dataset_split}]"
        if config.dataset_path:
            source += f"@{config.dataset_path}"
        if not rows:
            raise SafelensError(f"dataset {config.dataset!r} (split {config.dataset_split!r}) "
                                "holds no preference rows; expected at least one")
        return rows, source
    return load_builtin("preferences", "train"), "builtin:preferences/train"


def rows_sha256(rows: Sequence[dict[str, Any]]) -> str:
    """16 hex digits identifying training rows (ids and texts, in order).

    Recorded as ``train_data_sha256`` in a run's ``config.json``; :func:`safelens.training.runs.
    train_or_reuse` retrains a finished run whose rows differ from the ones its config would
    select now (regenerated built-in data, an edited ``train_file``).

    Examples:
        >>> rows_sha256([{"id": "a", "prompt": "p", "chosen": "c", "rejected": "r"}])
        '7784d6c3aef5a337'
    """
    keys = ("id", "prompt", "chosen", "rejected")
    payload = json.dumps([[row.get(k) for k in keys] for row in rows], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def subsample(rows: list[dict[str, Any]], n: int | None, seed: int, balance: bool = False,
              harmful_fraction: float = 0.5) -> list[dict[str, Any]]:
    """A seeded subsample of ``n`` rows, in data order (all rows when ``n`` is None or too large).

    With ``balance`` a ``harmful_fraction`` share of the rows is harmful and the rest is not
    (benign and look-alike rows in their natural proportion), as far as the data allows.

    Examples:
        >>> rows = [{"id": i, "harmful": i < 8} for i in range(10)]
        >>> sum(r["harmful"] for r in subsample(rows, 4, seed=0, balance=True))
        2
    """
    rng = np.random.default_rng([seed, 1])
    if n is None or n >= len(rows):
        if balance and rows:
            share = sum(r.get("harmful") is True for r in rows) / len(rows)
            if abs(share - harmful_fraction) > 0.02:
                warnings.warn(f"balance: max_train_rows={n} keeps all {len(rows)} rows, so the "
                              f"harmful share is {share:.2f}, not harmful_fraction="
                              f"{harmful_fraction}; ask for fewer rows to get that share",
                              stacklevel=2)
        return list(rows)
    if not balance:
        keep = np.sort(rng.choice(len(rows), n, replace=False))
        return [rows[i] for i in keep]
    harmful = [i for i, r in enumerate(rows) if r.get("harmful") is True]
    other = [i for i, r in enumerate(rows) if r.get("harmful") is not True]
    n_h = min(len(harmful), round(n * harmful_fraction))
    n_o = min(len(other), n - n_h)
    n_h = min(len(harmful), n - n_o)
    keep = list(rng.choice(harmful, n_h, replace=False)) + list(rng.choice(other, n_o, replace=False))
    return [rows[i] for i in sorted(keep)]


def select_domains(rows: list[dict[str, Any]], domains: str | None) -> list[dict[str, Any]]:
    """The rows whose ``domain`` is one of the comma-separated ``domains`` (all when None).

    Raises:
        ValueError: no row has any of those domains (the message lists the domains present).

    Examples:
        >>> rows = [{"domain": "direct"}, {"domain": "roleplay"}, {"domain": "indirect"}]
        >>> len(select_domains(rows, "direct, indirect"))
        2
    """
    if domains is None:
        return list(rows)
    wanted = {d.strip() for d in domains.split(",") if d.strip()}
    kept = [r for r in rows if r.get("domain") in wanted]
    if not kept:
        present = sorted({str(r.get("domain")) for r in rows})
        raise ValueError(f"domains={domains!r} keeps no training row; the rows' domains are "
                         f"{present}")
    return kept


def prepare_rows(rows: list[dict[str, Any]], config: TrainConfig) -> list[dict[str, Any]]:
    """Keep ``config.domains``, subsample, then flip labels (training rows only), seeded."""
    rows = select_domains(rows, config.domains)
    rows = subsample(rows, config.max_train_rows, config.seed, config.balance,
                     config.harmful_fraction)
    if config.flip_rate > 0:
        rows = flip_labels(rows, config.flip_rate, seed=config.seed)
    return rows


class DataOrder:
    """Seeded order of row indices: a fresh permutation each epoch, consumed batch by batch.

    Step ``s`` takes stream positions ``[s * B, (s + 1) * B)``; position ``p`` is row
    ``perm(epoch = p // N)[p % N]``. With ``per_epoch_rows`` the training rows hold one
    version of the N rows per epoch, epoch-major (a method that redraws something per epoch,
    such as the harmful-prefix length of :mod:`safelens.training.methods.deep`), and position
    ``p`` is row ``epoch * N + perm(epoch)[p % N]``: the same permutations, each epoch's own
    version of every row.

    Examples:
        >>> order = DataOrder(4, 3, seed=0)
        >>> order.epochs_started(3)  # 9 positions over 4 rows: 3 epochs, the last partial
        3
        >>> [i // 4 for i in DataOrder(4, 3, 0, per_epoch_rows=True).batch(1)]  # positions 3-5
        [0, 1, 1]
    """

    def __init__(self, n_rows: int, batch_size: int, seed: int,
                 per_epoch_rows: bool = False) -> None:
        if n_rows < 1:
            raise ValueError("no training rows")
        self.n, self.batch_size, self.seed = n_rows, batch_size, seed
        self.per_epoch_rows = per_epoch_rows
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms[epoch] = np.random.default_rng([self.seed, 2, epoch]).permutation(self.n)
        return self._perms[epoch]

    def batch(self, step: int) -> list[int]:
        """Row indices of optimizer step ``step`` (0-based)."""
        start = step * self.batch_size
        out = []
        for p in range(start, start + self.batch_size):
            epoch = p // self.n
            out.append(int(self._perm(epoch)[p % self.n])
                       + (epoch * self.n if self.per_epoch_rows else 0))
        return out

    def epoch(self, step: int) -> float:
        """Fractional epoch reached after ``step`` steps."""
        return step * self.batch_size / self.n

    def epochs_started(self, total_steps: int) -> int:
        """Epochs that ``total_steps`` steps start (the last one possibly partial)."""
        return max(1, math.ceil(total_steps * self.batch_size / self.n))


def drop_identical_pairs(rows: list[dict[str, Any]], columns: Sequence[str],
                         source: str | None = None) -> list[dict[str, Any]]:
    """Drop pairs whose ``chosen`` equals ``rejected`` (a preference loss learns nothing there).

    Only methods that train on both columns are affected. A few such rows are skipped with a
    warning that counts them; when every row is such a pair the data cannot train anything and
    an error names the file.

    Raises:
        SafelensError: every row has ``chosen == rejected``.

    Examples:
        >>> rows = [{"id": "a", "chosen": "x", "rejected": "x"}, {"id": "b", "chosen": "x", "rejected": "y"}]
        >>> import warnings; warnings.simplefilter("ignore")
        >>> [r["id"] for r in drop_identical_pairs(rows, ("chosen", "rejected"))]
        ['b']
    """
    if not {"chosen", "rejected"} <= set(columns):
        return rows
    same = [i for i, r in enumerate(rows) if r["chosen"].strip() == r["rejected"].strip()]
    if not same:
        return rows
    where = source or "the training rows"
    if len(same) == len(rows):
        raise SafelensError(
            f"{where}: 'chosen' equals 'rejected' on all {len(rows)} training rows; expected "
            "pairs with different responses (a preference loss learns nothing from them)")
    ids = [str(rows[i].get("id", i)) for i in same[:5]]
    warnings.warn(f"{where}: skipping {len(same)} of {len(rows)} rows whose 'chosen' equals "
                  f"'rejected' (e.g. ids {ids})", UserWarning, stacklevel=2)
    drop = set(same)
    return [r for i, r in enumerate(rows) if i not in drop]
