"""Runs trained together (``batched.run_batch``) leave what each leaves alone.

Every test compares a batch with the same runs executed one by one (``execute_run``):
metric rows (same epochs, same keys, values equal to floating-point summation order),
final dicts, directions, data, checkpoints. Batches mix lr, p / beta, seed, init_scale
and data; a diverging run fails alone; an interrupted batch resumes run by run.
"""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

from sweeplab.core.checkpoint import checkpoint_path, load_checkpoint
from sweeplab.core.context import RunInterrupted
from sweeplab.core.experiment import make_experiment_dir
from sweeplab.core.registry import get_study
from sweeplab.errors import NonFiniteError
from sweeplab.execute.single import execute_run
from sweeplab.studies.implicit_bias.batched import batch_key, run_batch
from sweeplab.studies.implicit_bias.batched_train import data_layout
from sweeplab.track.local import read_metrics, run_context

STUDY = get_study("implicit-bias")
RTOL = ATOL = 1e-9
ANGLE_ATOL = 1e-7
"""Degrees: arccos near 0 turns a 1e-16 difference of a cosine into up to ~1e-7 degrees."""


def _cfg(**overrides):
    return STUDY.config.from_mapping({"epochs": 200, "plots": False, **overrides})


def _batch(tmp_path, cfgs, hook=None):
    dirs = [make_experiment_dir(tmp_path / "batch", str(i)) for i in range(len(cfgs))]
    ctxs = [run_context(d, c) for d, c in zip(dirs, cfgs)]
    if hook is not None:
        hook(ctxs)
    try:
        results = run_batch(cfgs, ctxs)
    except RunInterrupted as exc:
        results = exc
    finally:
        for ctx in ctxs:
            ctx.close()
    return dirs, ctxs, results


def _alone(tmp_path, cfg, i):
    return execute_run(STUDY, cfg, make_experiment_dir(tmp_path / "alone", str(i)))


def _assert_close(a, b, where=""):
    """Same structure and keys, equal strings/bools/None, floats to RTOL/ATOL."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), where
        for key in b:
            _assert_close(a[key], b[key], f"{where}/{key}")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for k, (u, v) in enumerate(zip(a, b)):
            _assert_close(u, v, f"{where}[{k}]")
    elif isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        if b.dtype == torch.uint8:
            assert torch.equal(a, b), where
        else:
            assert torch.allclose(a, b, rtol=RTOL, atol=ATOL), where
    elif b is None or isinstance(b, (bool, str)):
        assert a == b, where
    else:
        atol = ANGLE_ATOL if "angle" in where else ATOL
        assert math.isclose(a, b, rel_tol=RTOL, abs_tol=atol), (where, a, b)


def _assert_same_run(batch_dir, ctx, result, alone):
    """Everything a run leaves, batched against alone."""
    assert alone.state == "done", alone.error
    assert not isinstance(result, BaseException), repr(result)
    rows = read_metrics(batch_dir / "metrics.jsonl")
    ref = read_metrics(alone.run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in ref]
    _assert_close(rows, ref, "metrics")
    final = dict(alone.final)
    assert ctx.warnings == final.pop("warnings", [])
    _assert_close(result, final, "final")
    directions = json.loads((batch_dir / "directions.json").read_text())
    expected = json.loads((alone.run_dir / "directions.json").read_text())
    for name in ("svm", "logreg", "lp_max_margin"):  # computed the same way: bit for bit
        assert directions[name] == expected[name], name
    _assert_close(directions, expected, "directions")
    data, ref_data = np.load(batch_dir / "dataset.npz"), np.load(alone.run_dir / "dataset.npz")
    assert set(data) == set(ref_data)
    assert all(np.array_equal(data[k], ref_data[k]) for k in data)
    saved = load_checkpoint(checkpoint_path(batch_dir))
    ref_saved = load_checkpoint(checkpoint_path(alone.run_dir))
    assert saved["epoch"] == ref_saved["epoch"] and saved["reason"] == ref_saved["reason"]
    assert saved["metrics"]["rows"] == ref_saved["metrics"]["rows"]  # bytes: float repr
    _assert_close(saved["state"], ref_saved["state"], "checkpoint")


BATCHES = {
    # one data set per seed (a copy per run), layer 1 and 2 of shapes (16, 2), (1, 16)
    "quadratic": [dict(potential="quadratic", lr=0.1, seed=0, log_interval=7),
                  dict(potential="quadratic", lr=0.3, seed=1, init_scale=0.3, log_interval=7),
                  dict(potential="quadratic", lr=0.05, seed=2, init_scale=0.05, log_interval=7)],
    # one data set for all (one matrix product for the batch); a 16 x 16 middle layer
    "lp": [dict(potential="lp", p=1.5, lr=0.1, seed=0, data_seed=5, L=3),
           dict(potential="lp", p=3.0, lr=0.3, seed=1, data_seed=5, L=3, init_scale=0.4),
           dict(potential="lp", p=1.2, lr=0.05, seed=2, data_seed=5, L=3),
           dict(potential="lp", p=2.0, lr=0.2, seed=3, data_seed=5, L=3)],
    # data sets shared unevenly (2 + 1 runs), one of them not separable
    "hypentropy": [dict(potential="hypentropy", beta=0.5, lr=0.1, seed=0, data_seed=0),
                   dict(potential="hypentropy", beta=2.0, lr=0.2, seed=1, data_seed=0),
                   dict(potential="hypentropy", beta=1.0, lr=0.1, seed=2, separation=0.3,
                        noise=1.5)],
}


@pytest.mark.parametrize("family", sorted(BATCHES))
def test_a_batch_leaves_what_each_run_leaves_alone(tmp_path, family):
    cfgs = [_cfg(**o) for o in BATCHES[family]]
    assert len({batch_key(c) for c in cfgs}) == 1
    dirs, ctxs, results = _batch(tmp_path, cfgs)
    for i, cfg in enumerate(cfgs):
        _assert_same_run(dirs[i], ctxs[i], results[i], _alone(tmp_path, cfg, i))


def test_a_batched_run_that_learned_nothing_says_so_as_it_does_alone(tmp_path):
    # seed 1 starts at accuracy 0.48 (seed 0 already at 1.0: nothing to say there)
    cfgs = [_cfg(lr=1e-4, seed=1, epochs=20), _cfg(lr=0.1, seed=2, epochs=20)]
    dirs, ctxs, results = _batch(tmp_path, cfgs)
    for i, cfg in enumerate(cfgs):
        _assert_same_run(dirs[i], ctxs[i], results[i], _alone(tmp_path, cfg, i))
    assert sum("the run learned nothing" in w for w in ctxs[0].warnings) == 1
    assert not any("learned nothing" in w for w in ctxs[1].warnings)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # diverging: no overflow
def test_a_diverging_run_fails_alone_and_its_batch_mates_go_on(tmp_path):
    # exponential loss on overlapping data: lr=1 diverges in the deep network at epoch
    # 43 (the linear baseline converges), lr=3 already in the linear MD baseline
    common = dict(potential="lp", p=3.0, loss="exponential", separation=0.5, noise=1.0,
                  epochs=80)
    cfgs = [_cfg(**common, lr=0.05), _cfg(**common, lr=1.0), _cfg(**common, lr=3.0),
            _cfg(**common, lr=0.02, seed=1)]
    dirs, ctxs, results = _batch(tmp_path, cfgs)
    alone = [_alone(tmp_path, cfg, i) for i, cfg in enumerate(cfgs)]
    for i in (0, 3):
        _assert_same_run(dirs[i], ctxs[i], results[i], alone[i])
    for i in (1, 2):
        assert isinstance(results[i], NonFiniteError)
        assert alone[i].state == "failed"
        assert alone[i].error == f"NonFiniteError: {results[i]}"
        rows = read_metrics(dirs[i] / "metrics.jsonl")
        ref = read_metrics(alone[i].run_dir / "metrics.jsonl")
        assert [list(r) for r in rows] == [list(r) for r in ref]  # same epochs and keys
        # a diverging trajectory amplifies rounding differences: compare its start only
        _assert_close(rows[:10], ref[:10], "metrics")
        assert not (dirs[i] / "directions.json").exists()
    assert results[1].step == 43 and len(read_metrics(dirs[1] / "metrics.jsonl")) == 44
    assert read_metrics(dirs[2] / "metrics.jsonl") == []  # failed in its baseline


def test_an_interrupted_batch_resumes_run_by_run(tmp_path):
    cfgs = [_cfg(potential="lp", p=p, lr=lr, seed=seed, save_interval=50)
            for p, lr, seed in ((1.5, 0.1, 0), (2.5, 0.2, 1), (1.5, 0.3, 2))]

    def sigterm_at_epoch_77(ctxs):
        log = ctxs[1].log

        def log_then_signal(epoch, **metrics):
            log(epoch, **metrics)
            if epoch == 77:
                os.kill(os.getpid(), signal.SIGTERM)

        ctxs[1].log = log_then_signal

    dirs, _, outcome = _batch(tmp_path, cfgs, hook=sigterm_at_epoch_77)
    assert isinstance(outcome, RunInterrupted)  # raised for the whole batch
    for i, cfg in enumerate(cfgs):
        saved = load_checkpoint(checkpoint_path(dirs[i]))
        assert saved["reason"] == "signal" and saved["epoch"] == 78
        assert saved["metrics"]["rows"] == 78  # rows 0..77: epoch 78 is logged on resume
        resumed = execute_run(STUDY, cfg, dirs[i], resume=True)
        assert resumed.state == "done", resumed.error
        status = json.loads((dirs[i] / "status.json").read_text())
        assert status["resumed_from_epoch"] == 78
        alone = _alone(tmp_path, cfg, i)
        final = dict(alone.final)
        _assert_close(resumed.final, final, "final")
        _assert_close(read_metrics(dirs[i] / "metrics.jsonl"),
                      read_metrics(alone.run_dir / "metrics.jsonl"), "metrics")
        _assert_close(json.loads((dirs[i] / "directions.json").read_text()),
                      json.loads((alone.run_dir / "directions.json").read_text()), "directions")


def test_runs_of_different_keys_batch_apart_and_mini_batch_runs_alone(tmp_path):
    cfgs = [_cfg(epochs=40, L=1, lr=0.2), _cfg(epochs=40, L=2, seed=1),
            _cfg(epochs=40, L=1, lr=0.1, seed=2, plots=True, figure_formats=("png", "pdf")),
            _cfg(epochs=40, L=2, batch_size=64), _cfg(epochs=40, L=2, dtype="float32")]
    assert len({batch_key(c) for c in cfgs}) == 4 and batch_key(cfgs[3]) is None
    dirs, ctxs, results = _batch(tmp_path, cfgs)
    alone = [_alone(tmp_path, cfg, i) for i, cfg in enumerate(cfgs)]
    for i in range(4):
        _assert_same_run(dirs[i], ctxs[i], results[i], alone[i])
    figs = sorted(p.name for p in (dirs[2] / "figs").iterdir())
    assert figs == sorted(p.name for p in (alone[2].run_dir / "figs").iterdir())
    assert "angles.png" in figs and "decision_boundary.pdf" in figs
    # float32 trains in float32 either way: equal to float32 rounding
    ref_rows = read_metrics(alone[4].run_dir / "metrics.jsonl")
    rows = read_metrics(dirs[4] / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in ref_rows]
    for row, ref in zip(rows, ref_rows):
        assert list(row) == list(ref)
        assert all(math.isclose(row[k], ref[k], rel_tol=1e-4, abs_tol=1e-4) for k in ref)


def test_batch_key_shares_shapes_and_schedule_and_lets_run_values_differ():
    base = _cfg()
    same = [dict(seed=3), dict(lr=0.7), dict(p=3.0), dict(init_scale=0.5), dict(data_seed=4),
            dict(separation=1.0, noise=0.5), dict(logreg_C=3.0), dict(save_interval=7),
            dict(plots=True), dict(standardize=False)]
    for overrides in same:
        assert batch_key(_cfg(**overrides)) == batch_key(base), overrides
    apart = [dict(L=3), dict(width=8), dict(potential="quadratic"), dict(loss="exponential"),
             dict(epochs=100), dict(log_interval=5), dict(dtype="float32"), dict(n_samples=64),
             dict(input_dim=3), dict(dataset="digits"), dict(dataset="digits", pca=10)]
    keys = [batch_key(_cfg(**overrides)) for overrides in apart]
    assert len({*keys, batch_key(base)}) == len(apart) + 1
    assert batch_key(_cfg(batch_size=32)) is None


def test_data_layout_shares_a_copy_only_for_even_adjacent_groups():
    assert data_layout([0, 0, 0]) == (3, [0])
    assert data_layout([0, 0, 1, 1]) == (2, [0, 1])
    assert data_layout([0, 1, 2]) == (1, [0, 1, 2])
    assert data_layout([0, 0, 1]) == (1, [0, 0, 1])
    assert data_layout([0, 1, 0, 1]) == (1, [0, 1, 0, 1])
