"""Figure conventions every safelens plot shares, so figures go into a paper as they are.

- :func:`save_figure` — one call writes PNG (for notebooks and READMEs), PDF and SVG (vector,
  for papers), with the legend that sits outside the axes included.
- :func:`series_style` — a distinct line style and marker per series, so curves that coincide
  stay visible (a dashed line over a solid one, different markers).
- :func:`overlap_labels` — legend labels noting ``(overlaps X)`` where a series equals an
  earlier one point for point.
- :func:`seed_band` — mean over seeds as a line, the spread over seeds (± 1 s.d.) as a band.
- :func:`legend_outside` — the legend right of (or below) the data area.
- :func:`integer_ticks` — integer ticks on step / epoch / position / layer axes.

Examples:
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> labels = overlap_labels({"DPO": [1, 2], "IPO": [1, 2], "SFT": [3, 1]})
    >>> labels["IPO"]
    'IPO (overlaps DPO)'
    >>> for i, (name, y) in enumerate({"DPO": [1, 2], "IPO": [1, 2]}.items()):
    ...     _ = ax.plot([0, 1], y, label=labels[name], **series_style(i))
    >>> _ = legend_outside(ax)
    >>> paths = save_figure(fig, __import__("tempfile").mkdtemp() + "/fig")
    >>> [p.suffix for p in paths]
    ['.png', '.pdf', '.svg']
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from safelens.errors import SafelensError

__all__ = [
    "FORMATS",
    "integer_ticks",
    "legend_outside",
    "overlap_labels",
    "save_figure",
    "seed_band",
    "series_style",
]

#: What :func:`save_figure` writes by default: raster for screens, vector for papers.
FORMATS: tuple[str, ...] = ("png", "pdf", "svg")
_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def save_figure(
    fig: Any, path_stem: str | Path, formats: Sequence[str] = FORMATS, dpi: int = 200
) -> list[Path]:
    """Write ``fig`` as ``path_stem.png``, ``.pdf`` and ``.svg`` (``formats``), tight-cropped.

    Args:
        fig: a matplotlib ``Figure``.
        path_stem: the path without a suffix (a ``.png``/``.pdf``/``.svg`` suffix is dropped);
            missing folders are made.
        formats: file types to write.
        dpi: resolution of raster formats.

    Returns:
        The paths written, in ``formats`` order.

    Raises:
        SafelensError: ``formats`` is empty or holds a type matplotlib cannot write.
    """
    supported = fig.canvas.get_supported_filetypes()
    if not formats:
        raise SafelensError(f"formats is empty; expected some of {', '.join(FORMATS)}")
    bad = [f for f in formats if f not in supported]
    if bad:
        raise SafelensError(f"formats {bad} cannot be written; expected some of "
                            f"{', '.join(sorted(supported))}")
    stem = Path(path_stem)
    if stem.suffix.lstrip(".") in supported:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        # "tight" keeps a legend placed outside the axes inside the file.
        fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    return paths


def series_style(i: int) -> dict[str, Any]:
    """Line style and marker of the ``i``-th series: no two of the first 8 look alike.

    Examples:
        >>> series_style(0), series_style(1)
        ({'linestyle': '-', 'marker': 'o'}, {'linestyle': '--', 'marker': 's'})
    """
    return {"linestyle": _LINESTYLES[i % len(_LINESTYLES)], "marker": _MARKERS[i % len(_MARKERS)]}


def _values(y: Any) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    return np.asarray(y, dtype=np.float64).reshape(-1)


def overlap_labels(
    series: Mapping[str, Any], rtol: float = 1e-6, atol: float = 1e-9
) -> dict[str, str]:
    """Legend labels with ``(overlaps X)`` added where a series equals an earlier series ``X``.

    Args:
        series: ``{label: y}`` in drawing order (``y`` of any shape; NaNs equal NaNs); series
            drawn on different x values should include x in ``y`` (e.g. ``(x, y)``).
        rtol: relative tolerance of "equal".
        atol: absolute tolerance of "equal".

    Returns:
        ``{label: legend label}``.
    """
    out: dict[str, str] = {}
    seen: list[tuple[str, np.ndarray]] = []
    for label, y in series.items():
        v = _values(y)
        same = [
            name for name, w in seen
            if w.shape == v.shape and np.allclose(w, v, rtol=rtol, atol=atol, equal_nan=True)
        ]
        out[label] = f"{label} (overlaps {', '.join(same)})" if same else label
        seen.append((label, v))
    return out


def seed_band(
    ax: Any, x: Any, per_seed: Any, label: str, color: Any = None, **line: Any
) -> Any:
    """Mean over seeds as a line and its spread (mean ± 1 s.d. over seeds) as a band.

    Args:
        ax: matplotlib axes.
        x: ``[K]`` x values.
        per_seed: ``[S, K]`` values, one row per seed (NaN: missing at that x).
        label: legend label of the line (``(mean ± 1 s.d., S seeds)`` is added for S > 1).
        color: line and band colour (default: the axes' next colour).
        **line: further ``ax.plot`` arguments (line style, marker).

    Returns:
        The ``Line2D`` of the mean.

    Raises:
        SafelensError: ``per_seed`` is not ``[S, K]`` with ``K = len(x)``.
    """
    xs = _values(x)
    if hasattr(per_seed, "detach"):
        per_seed = per_seed.detach().cpu().numpy()
    v = np.atleast_2d(np.asarray(per_seed, dtype=np.float64))  # [S, K]
    if v.ndim != 2 or v.shape[1] != len(xs):
        raise SafelensError(f"per_seed must be [seeds, K={len(xs)}], got {v.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        mean = np.nanmean(v, axis=0)  # [K]
        std = np.nanstd(v, axis=0, ddof=1) if len(v) > 1 else np.zeros_like(mean)  # [K]
    spread = f" (mean ± 1 s.d., {len(v)} seeds)" if len(v) > 1 else ""
    (handle,) = ax.plot(xs, mean, label=label + spread, color=color, **line)
    if len(v) > 1:
        ax.fill_between(xs, mean - std, mean + std, color=handle.get_color(), alpha=0.15, lw=0)
    return handle


def legend_outside(ax: Any, where: str = "right", fontsize: float = 8, **kwargs: Any) -> Any:
    """Put ``ax``'s legend outside the data area: ``right`` of it or ``below`` it.

    Returns:
        The ``Legend`` (``None`` when nothing has a label).

    Raises:
        SafelensError: ``where`` is neither ``right`` nor ``below``.
    """
    if where not in ("right", "below"):
        raise SafelensError(f"where must be 'right' or 'below', got {where!r}")
    handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return None
    if where == "right":
        place = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    else:
        # Low enough to clear (rotated) tick labels and the x label under the axes.
        place = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.34), "borderaxespad": 0.0,
                 "ncol": min(3, len(handles))}
    return ax.legend(fontsize=fontsize, **{**place, **kwargs})


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Only integer ticks on ``axis`` (``x``, ``y`` or ``both``): steps, epochs, positions."""
    from matplotlib.ticker import MaxNLocator

    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{name}axis").set_major_locator(MaxNLocator(integer=True))
