"""Paper style for every figure sweeplab draws, and saving as .png and/or .pdf.

Serif fonts, light grid lines, the Okabe-Ito colour-blind-safe palette (Okabe & Ito,
"Color Universal Design", 2008) and a single-column figure size, applied through a
matplotlib rc context so a user's own matplotlib settings are left alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
"""Colour-blind-safe palette, in the order lines take it."""

FIG_SIZE = (4.8, 3.2)
"""Default size in inches: one column of a two-column paper, at a readable scale."""

PAPER_RC: dict[str, Any] = {
    "font.family": "serif",
    "font.serif": ["DejaVu Serif", "Times New Roman", "Times"],
    "mathtext.fontset": "dejavuserif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "lines.linewidth": 1.5,
    "figure.figsize": FIG_SIZE,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
}
"""rc parameters of the paper style (TrueType fonts embedded in PDFs)."""


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Context in which new figures get the paper style."""
    with plt.rc_context(PAPER_RC):
        yield


def styled(fn: Callable) -> Callable:
    """Decorator: run a plotting function entirely under :func:`paper_style`.

    Matplotlib resolves fonts and sizes when an artist (legend, label) is created, so the
    style must be active for the whole function, not only when the figure is made.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with paper_style():
            return fn(*args, **kwargs)

    return wrapper


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """``plt.subplots`` under the paper style; returns ``(fig, axes)``."""
    with paper_style():
        size = kwargs.pop("figsize", (FIG_SIZE[0] * ncols, FIG_SIZE[1] * nrows))
        return plt.subplots(nrows, ncols, figsize=size, **kwargs)


FIGURE_FORMATS = ("png", "pdf", "svg")
"""Formats a figure may be saved in."""

_formats: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "sweeplab_figure_formats", default=("png", "pdf"))


@contextlib.contextmanager
def figure_formats(formats: tuple[str, ...] | list[str]) -> Iterator[None]:
    """Context in which :func:`save_figure` writes ``formats`` unless told otherwise.

    A single run's figures are a quick look (png alone: a PDF with embedded TrueType
    fonts costs as much again as the png); the analysis writes both for the paper.
    """
    token = _formats.set(tuple(formats))
    try:
        yield
    finally:
        _formats.reset(token)


def save_figure(
    fig: Any, path: str | Path, formats: tuple[str, ...] | None = None
) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats``; close it; return the paths.

    ``formats`` defaults to those of the enclosing :func:`figure_formats` (png and pdf).
    """
    formats = _formats.get() if formats is None else formats
    base = Path(path)
    if base.suffix.lstrip(".") in formats:
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    out = [base.with_name(f"{base.name}.{fmt}") for fmt in formats]
    with paper_style():
        def write() -> None:
            _write_formats(fig, out, formats)

        from sweeplab.analysis.background_save import save_in_background

        if not save_in_background(write, out):
            write()
    plt.close(fig)
    return out


def _write_formats(fig: Any, targets: list[Path], formats: tuple[str, ...]) -> None:
    """Write ``fig`` to each target (temporary name, then rename).

    The paper style's tight bounding box is measured once for all formats (matplotlib
    would draw the figure once more per file to find it: ~30% of a save).
    """
    bbox = None
    if plt.rcParams["savefig.bbox"] == "tight":
        bbox = fig.get_tightbbox().padded(plt.rcParams["savefig.pad_inches"])
    for target, fmt in zip(targets, formats, strict=True):
        tmp = target.with_name(f".{target.name}.tmp")
        kwargs = {} if bbox is None else {"bbox_inches": bbox}
        fig.savefig(tmp, format=fmt, **kwargs)
        os.replace(tmp, target)
