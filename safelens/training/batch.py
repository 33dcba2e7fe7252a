"""What a method sees each step: the batch and the policy/reference log-probs.

A method names the response columns it needs (``("chosen", "rejected")`` for the DPO family,
``("chosen",)`` for SFT, ``("rejected",)`` for NPO). All of them are encoded into ONE
right-padded :class:`~safelens.models.chat.ChatBatch` of ``R * B`` rows, column-major
(rows ``[0, B)`` are the first column, ``[B, 2B)`` the second, ...), so one forward pass
serves every column; :class:`Logps` slices the result back per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from safelens.models.chat import (
    ChatBatch,
    concat_columns,  # noqa: F401 (re-exported for one release)
)


@dataclass
class TrainBatch:
    """``B`` training rows and their encoding.

    Attributes:
        rows: the ``B`` source rows (dicts; methods may read extra columns such as rewards).
        index: ``[B]`` positions of the rows in the training set (keys of the reference cache).
        columns: response columns encoded, in order.
        chat: ``[R * B, T]`` encoded (prompt, response) rows, column-major.
    """

    rows: list[dict[str, Any]]
    index: torch.Tensor
    columns: tuple[str, ...]
    chat: ChatBatch
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[B]`` tensor of a numeric row column (e.g. ``reward_chosen``).

        Raises:
            KeyError: a row lacks the column (the message names the row id).
        """
        values = []
        for row in self.rows:
            if name not in row:
                raise KeyError(f"row {row.get('id', '?')!r} has no column {name!r}")
            values.append(float(row[name]))
        return torch.tensor(values, dtype=dtype, device=self.chat.input_ids.device)

    def flags(self, name: str) -> torch.Tensor:
        """``[B]`` bool tensor of a boolean row column (missing = False)."""
        return torch.tensor([bool(r.get(name, False)) for r in self.rows],
                            device=self.chat.input_ids.device)


@dataclass
class Logps:
    """Log-probs of every encoded row, sliced per response column.

    Attributes:
        columns: column names in encoding order.
        summed: ``[R * B]`` summed (or, for ``average=True`` methods, mean) response log-probs.
        per_token: ``[R * B, T]`` per-token log-probs (0 off the response), or None when the
            method did not ask for them (reference side).
        mask: ``[R * B, T]`` response mask (1 on response tokens).
        logits: ``[N, V]`` next-token logits (reference side: log-probs) at the N response
            positions of all rows, row-major (the order of ``per_token[mask.bool()]``), or None
            when the method did not ask for them (``needs_logits``).
    """

    columns: tuple[str, ...]
    summed: torch.Tensor
    per_token: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    logits: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return self.summed.shape[0] // len(self.columns)

    def _slice(self, name: str) -> slice:
        try:
            k = self.columns.index(name)
        except ValueError:
            raise KeyError(f"column {name!r} was not encoded; columns: {self.columns}") from None
        return slice(k * self.n, (k + 1) * self.n)

    def __getitem__(self, name: str) -> torch.Tensor:
        """``[B]`` summed log-probs of column ``name``."""
        return self.summed[self._slice(name)]

    def tokens(self, name: str) -> torch.Tensor:
        """``[B, T]`` per-token log-probs of column ``name``."""
        if self.per_token is None:
            raise ValueError("per-token log-probs were not computed (set needs_token_logps)")
        return self.per_token[self._slice(name)]

    def token_logits(self, name: str) -> torch.Tensor:
        """``[N_c, V]`` logits at the response positions of column ``name`` (row-major)."""
        if self.logits is None or self.mask is None:
            raise ValueError("logits were not computed (set needs_logits)")
        part = self._slice(name)
        start = int(self.mask[: part.start].sum())
        return self.logits[start: start + int(self.mask[part].sum())]

    def token_mask(self, name: str) -> torch.Tensor:
        """``[B, T]`` response mask of column ``name``."""
        if self.mask is None:
            raise ValueError("no response mask attached")
        return self.mask[self._slice(name)]
