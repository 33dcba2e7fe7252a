"""Toy next-token models of seed 001's pre-experiments: an LSTM with a fully connected head.

One class, :class:`LSTMLanguageModel`, covers the four architectures of seed 001 (§5.1, §5.2);
the factories fix each one's shape:

| factory | seed's words | here |
|---|---|---|
| :func:`pre1_policy` | "LSTM with a single fully connected layer" | 1-layer LSTM → Linear(d, V) |
| :func:`pre1_reference` | "LSTM with multiple fully connected layers and residual connections, about twice as many parameters" | 1-layer LSTM → 2 residual blocks h + W₂ relu(W₁ h) (inner width 2d) → Linear(d, V) |
| :func:`pre2_policy` | "two-layer LSTM and width-preserving fully connected layers" | 2-layer LSTM → 2 × (Linear(d, d), ReLU) → Linear(d, V) |
| :func:`pre2_reference` | "three-layer LSTM and dimension-expanded fully connected layers" | 3-layer LSTM → Linear(d, 2d), ReLU → Linear(2d, 4d), ReLU → Linear(4d, V) |

With the defaults (V = 48, d_embed = 32, d_hidden = 64) the pre-experiment-1 reference has
2.11× the policy's parameters (62 896 vs 29 744). The seed gives no sizes; ours are chosen so
a run fits in seconds on one CPU thread.

``forward(ids [B, T]) -> logits [B, T, V]`` gives next-token logits: ``logits[:, t]`` is the
distribution of token ``t + 1`` given tokens ``0..t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "LSTMLanguageModel",
    "n_parameters",
    "pre1_policy",
    "pre1_reference",
    "pre2_policy",
    "pre2_reference",
]


class _ResidualBlock(nn.Module):
    """h + W₂ relu(W₁ h): keeps the width, adds an inner layer of width ``inner``."""

    def __init__(self, width: int, inner: int) -> None:
        super().__init__()
        self.up = nn.Linear(width, inner)
        self.down = nn.Linear(inner, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [..., width] -> [..., width]
        return h + self.down(torch.relu(self.up(h)))


class LSTMLanguageModel(nn.Module):
    """Embedding → LSTM → fully connected layers → Linear to the vocabulary.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> m = LSTMLanguageModel(vocab=10, d_embed=4, d_hidden=8, fc_widths=(16,), residual=True)
        >>> m(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 10])

    Args:
        vocab: vocabulary size V.
        d_embed: embedding width.
        d_hidden: LSTM hidden width d.
        n_layers: stacked LSTM layers.
        fc_widths: widths of the hidden fully connected layers after the LSTM, in order. Without
            ``residual`` they form a chain Linear(d, w₁), ReLU, Linear(w₁, w₂), ReLU, ...; the
            output layer then maps the last width to V. With ``residual`` each width is the inner
            width of a block h + W₂ relu(W₁ h) that keeps width d.
        residual: use residual blocks (see ``fc_widths``).
    """

    def __init__(
        self,
        vocab: int,
        d_embed: int,
        d_hidden: int,
        n_layers: int = 1,
        fc_widths: Sequence[int] = (),
        residual: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("vocab", vocab), ("d_embed", d_embed), ("d_hidden", d_hidden),
                            ("n_layers", n_layers), *(("fc_widths[]", w) for w in fc_widths)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.vocab = int(vocab)
        self.embed = nn.Embedding(vocab, d_embed)
        self.lstm = nn.LSTM(d_embed, d_hidden, num_layers=n_layers, batch_first=True)
        layers: list[nn.Module] = []
        width = d_hidden
        for w in fc_widths:
            if residual:
                layers.append(_ResidualBlock(d_hidden, int(w)))
            else:
                layers += [nn.Linear(width, int(w)), nn.ReLU()]
                width = int(w)
        self.fc = nn.Sequential(*layers)
        self.out = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, V]
        """Next-token logits: ``logits[:, t]`` predicts token ``t + 1``."""
        if ids.dim() != 2:
            raise ValueError(f"ids must be [B, T] token ids, got shape {tuple(ids.shape)}")
        h, _ = self.lstm(self.embed(ids))  # [B, T, d_hidden]
        return self.out(self.fc(h))  # [B, T, V]


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Examples:
        >>> n_parameters(torch.nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def pre1_policy(vocab: int = 48, d_embed: int = 32, d_hidden: int = 64) -> LSTMLanguageModel:
    """Pre-experiment 1 policy π_θ: a 1-layer LSTM and a single fully connected (output) layer.

    Examples:
        >>> n_parameters(pre1_policy())
        29744
    """
    return LSTMLanguageModel(vocab, d_embed, d_hidden, n_layers=1)


def pre1_reference(vocab: int = 48, d_embed: int = 32, d_hidden: int = 64) -> LSTMLanguageModel:
    """Pre-experiment 1 reference π_aligned: 1-layer LSTM, 2 residual FC blocks (inner 2d).

    About twice the parameters of :func:`pre1_policy` with the same sizes.

    Examples:
        >>> round(n_parameters(pre1_reference()) / n_parameters(pre1_policy()), 2)
        2.11
    """
    return LSTMLanguageModel(vocab, d_embed, d_hidden, n_layers=1,
                             fc_widths=(2 * d_hidden, 2 * d_hidden), residual=True)


def pre2_policy(vocab: int = 48, d_embed: int = 32, d_hidden: int = 64) -> LSTMLanguageModel:
    """Pre-experiment 2 policy π_θ: 2-layer LSTM, two width-preserving FC layers (d → d → d).

    Examples:
        >>> n_parameters(pre2_policy())
        71344
    """
    return LSTMLanguageModel(vocab, d_embed, d_hidden, n_layers=2,
                             fc_widths=(d_hidden, d_hidden))


def pre2_reference(vocab: int = 48, d_embed: int = 32, d_hidden: int = 64) -> LSTMLanguageModel:
    """Pre-experiment 2 reference π_aligned: 3-layer LSTM, expanding FC layers (d → 2d → 4d).

    Examples:
        >>> n_parameters(pre2_reference())
        146864
    """
    return LSTMLanguageModel(vocab, d_embed, d_hidden, n_layers=3,
                             fc_widths=(2 * d_hidden, 4 * d_hidden))
