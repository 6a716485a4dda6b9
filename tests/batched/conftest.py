"""Fixtures of the batched-trainer tests: one torch thread, run directories with contexts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeplab.core.checkpoint import checkpoint_path, load_checkpoint
from sweeplab.core.config import StudyConfig
from sweeplab.core.context import RunContext
from sweeplab.core.experiment import make_experiment_dir
from sweeplab.core.threads import limit_threads
from sweeplab.track.local import run_context


class ToyConfig(StudyConfig):
    """A run's identity for its RunContext (the trainer reads save_interval from it)."""

    seed: int = 0


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One torch thread: the numbers compared here must not depend on the thread count
    of a shared machine, and more threads only oversubscribe it."""
    limit_threads(1)


@pytest.fixture
def contexts(tmp_path):
    """``contexts(tag, n, save_interval=0)``: n fresh RunContexts under tmp_path/tag;
    ``contexts.resume(dirs)`` reopens runs from their checkpoints. All closed at the end."""
    opened: list[RunContext] = []

    def make(tag: str, n: int, save_interval: int = 0) -> list[RunContext]:
        dirs = [make_experiment_dir(tmp_path / tag, str(i)) for i in range(n)]
        ctxs = [run_context(d, ToyConfig(seed=i, save_interval=save_interval))
                for i, d in enumerate(dirs)]
        opened.extend(ctxs)
        return ctxs

    def resume(ctxs: list[RunContext]) -> list[RunContext]:
        fresh = []
        for ctx in ctxs:
            ctx.close()
            saved = load_checkpoint(checkpoint_path(ctx.run_dir))
            fresh.append(run_context(Path(ctx.run_dir), ctx.config, resume=saved))
        opened.extend(fresh)
        return fresh

    make.resume = resume
    yield make
    for ctx in opened:
        ctx.close()
