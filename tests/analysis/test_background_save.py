"""Figures saved by forked children (sweeplab.analysis.background_save): the same files as
saved in place, every failure named, no half-written file, no fork beside threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from sweeplab.analysis import background_save as bs
from sweeplab.analysis.style import new_figure, save_figure

pytestmark = pytest.mark.skipif(bs.usable_cores() < 2, reason="one core: figures save in place")


def _figure(seed: int):
    fig, ax = new_figure()
    rng = np.random.default_rng(seed)
    ax.plot(np.cumsum(rng.standard_normal(200)), label=f"run {seed}")
    ax.set_title(r"angle to $w_{\mathrm{svm}}$")
    ax.legend()
    return fig


def test_background_files_equal_those_saved_in_place(tmp_path):
    for seed in range(3):
        save_figure(_figure(seed), tmp_path / "inplace" / f"f{seed}")
    with bs.saving_in_background() as forking:
        assert forking
        paths = [save_figure(_figure(seed), tmp_path / "bg" / f"f{seed}") for seed in range(3)]
    for seed, written in enumerate(paths):
        assert [p.name for p in written] == [f"f{seed}.png", f"f{seed}.pdf"]
        a = np.asarray(Image.open(tmp_path / "inplace" / f"f{seed}.png"))
        b = np.asarray(Image.open(written[0]))
        assert a.shape == b.shape and np.array_equal(a, b)
        assert written[1].read_bytes().startswith(b"%PDF")
    assert not [p for p in (tmp_path / "bg").iterdir() if p.name.startswith(".")]


def test_a_figure_that_cannot_be_written_is_named(tmp_path):
    with pytest.raises(bs.FigureSaveError, match=r"bad \(OSError: disk said no\)"):  # noqa: PT012
        with bs.saving_in_background():
            save_figure(_figure(1), tmp_path / "good")
            broken = _figure(2)
            broken.savefig = _raise  # what a child meets: a writer that fails
            save_figure(broken, tmp_path / "bad")
    assert (tmp_path / "good.png").is_file() and (tmp_path / "good.pdf").is_file()
    assert not list(tmp_path.glob("bad*")) and not list(tmp_path.glob(".bad*"))


def _raise(*args, **kwargs):
    raise OSError("disk said no")


def test_no_fork_while_other_threads_run(tmp_path):
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        with bs.saving_in_background() as forking:
            assert not forking
            (path, _) = save_figure(_figure(0), tmp_path / "f")
            assert path.is_file()  # written in place, before the context ends
    finally:
        stop.set()
        worker.join()
