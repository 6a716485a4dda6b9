"""A run's models trained as one batch equal them trained one by one.

Each model of a minima-volume run (one per m, on the first base_size + m pool samples)
must compute in the batch what :func:`train.train_model` computes alone: the same
initial weights and batch order (model_seed), the same optimizer steps (Adam, AdamW,
SGD; SAM around any), the same log lines; so final weights agree to float64 1e-10 and
float32 1e-5 after a few hundred steps (at lr 3e-3: at lr 1e-2 Adam's training of this
MLP is chaotic in float32 -- moving every initial weight by one ulp moves the weights
after 350 steps by 2e-3 one by one -- and no computation that is not bit-identical can
meet 1e-5 there). A stop signal and a rerun equal an uninterrupted
batch bit for bit; a diverging model fails the run with the error it raises alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_pipeline import TINY, _run_dir, _volume, sigterm_at_log_line

from sweeplab.batched import memory
from sweeplab.core.context import RunInterrupted
from sweeplab.studies.volume import pipeline, train
from sweeplab.studies.volume.batched import ModelJob, plan, train_together
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.models import build_model
from sweeplab.studies.volume.partials import to_batched, to_one_by_one

SIZES = (40, 60, 100)
"""Training-set sizes of the models (base_size 40, m in 0, 20, 60)."""


def _data(n: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = (x.flatten(1)[:, :10] * 10).argmax(1)  # learnable: the brightest of ten pixels
    return x.to(torch.get_default_dtype()), y


def _cfg(**fields) -> VolumeConfig:
    return VolumeConfig(**{"hidden": (16,), "channels": (4, 8), "epochs": 50, "batch_size": 16,
                           "lr": 3e-3, "log_interval": 10, **fields})


class _Logs(dict):
    def __call__(self, m: int):
        return lambda epoch, loss, acc: self.setdefault(m, []).append((epoch, loss, acc))


def _batched(cfg, x, y, sizes=SIZES, partials=None, saved=None, logs=None):
    """``train_together`` on models of ``sizes`` (m = size), partial states in dicts."""
    saved = {} if saved is None else saved
    logs = _Logs() if logs is None else logs
    jobs = [ModelJob(s, s, (partials or {}).get(s),
                     lambda state, s=s: saved.__setitem__(s, state), logs(s)) for s in sizes]
    return train_together(cfg, x, y, jobs, lambda: build_model(cfg, (8, 8), 10))


def _alone(cfg, x, y, size, partial=None, saved=None, log=None):
    model = build_model(cfg, (8, 8), 10)
    return train.train_model(cfg, model, x[:size], y[:size], partial,
                             lambda state: {} if saved is None else saved.__setitem__(
                                 size, state),
                             log or (lambda *a: None))


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).abs().max()) for p, q in
               zip(a.state_dict().values(), b.state_dict().values(), strict=True))


TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _check_equal(cfg, dtype, sizes=SIZES):
    x, y = _data()
    logs = _Logs()
    trained = _batched(cfg, x, y, sizes, logs=logs)
    for size, model in zip(sizes, trained, strict=True):
        assert isinstance(model, torch.nn.Module), model
        alone_logs: list[tuple[int, float, float]] = []
        alone = _alone(cfg, x, y, size, log=lambda *row, rows=alone_logs: rows.append(row))
        assert next(model.parameters()).dtype == dtype
        assert _max_diff(model, alone) <= TOL[dtype], size
        assert [row[0] for row in logs[size]] == [row[0] for row in alone_logs]  # epochs
        for (_, loss, acc), (_, loss1, acc1) in zip(logs[size], alone_logs, strict=True):
            assert loss == pytest.approx(loss1, rel=1e-4) and acc == pytest.approx(acc1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], indirect=True)
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("category", ["low_data", "sam"])
def test_mlp_models_in_one_batch_equal_them_one_by_one(dtype, optimizer, category):
    """40 epochs of up to 7 mini-batches (280 steps), weight decay and momentum on."""
    _check_equal(_cfg(optimizer=optimizer, category=category, weight_decay=0.01,
                      sam_rho=0.1, epochs=40), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], indirect=True)
@pytest.mark.parametrize("category", ["low_data", "sam"])
def test_cnn_models_in_one_batch_equal_them_one_by_one(dtype, category):
    """30 epochs (210 steps), lr 1e-3, the study's default. (At lr 3e-3 one float32 model
    of six ended 2.3e-5 from its one-by-one twin while float64 agreed to 1e-10: float32
    rounding in the convolutions' gradients, amplified by training.)"""
    _check_equal(_cfg(arch="cnn", category=category, epochs=30, lr=1e-3), dtype)


@pytest.mark.parametrize(("dtype", "epochs"), [(torch.float64, 300), (torch.float32, 100)],
                         indirect=["dtype"])
def test_full_batch_adamw_of_different_sizes_equals_one_by_one(dtype, epochs):
    """batch_size 0 (the poison recipe): each model's epoch is one step on its whole set.

    float32 for 100 steps only: past them full-batch AdamW of these tiny sets is chaotic
    at float32 resolution (one ulp on every initial weight moves the weights after 300
    steps by 2e-4 to 6e-3 one by one, measured), so 1e-5 is out of any non-identical
    computation's reach there; float64 meets 1e-10 after 300."""
    _check_equal(_cfg(optimizer="adamw", weight_decay=0.01, batch_size=0, epochs=epochs,
                      log_interval=50, lr=1e-3), dtype)


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_stop_signal_and_the_rerun_equal_an_uninterrupted_batch(dtype):
    cfg = _cfg(category="sam", log_interval=1)
    x, y = _data()
    whole = _batched(cfg, x, y)

    def stop_at_epoch_30(epoch, loss, acc):  # step 210 of 350; m=40, 60 end at 150, 200
        if epoch == 30:
            os.kill(os.getpid(), signal.SIGTERM)

    saved: dict[int, dict] = {}
    logs = _Logs()
    logs[100] = []
    jobs = [ModelJob(s, s, None, lambda state, s=s: saved.__setitem__(s, state),
                     stop_at_epoch_30 if s == 100 else logs(s)) for s in SIZES]
    with pytest.raises(RunInterrupted):
        train_together(cfg, x, y, jobs, lambda: build_model(cfg, (8, 8), 10))
    assert set(saved) == set(SIZES)  # the one still training, and the two that finished
    assert saved[40]["batched"]["epoch"] == saved[60]["batched"]["epoch"] == cfg.epochs
    assert 30 * 7 <= saved[100]["batched"]["step"] < cfg.epochs * 7

    resumed = _batched(cfg, x, y, partials=saved)
    for a, b in zip(whole, resumed, strict=True):
        assert all(torch.equal(p, q) for p, q in
                   zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("dtype", [torch.float64], indirect=True)
def test_a_partial_state_continues_in_the_other_path(dtype):
    """One by one -> batched, and batched (at an epoch boundary) -> one by one."""
    cfg = _cfg(optimizer="adam")
    x, y = _data()
    reference = {s: _alone(cfg, x, y, s) for s in SIZES}

    saved: dict[int, dict] = {}

    def stop(epoch, loss, acc):
        if epoch == 20:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunInterrupted):
        _alone(cfg, x, y, 60, saved=saved, log=stop)
    assert saved[60]["epoch"] == 20
    resumed = _batched(cfg, x, y, partials={60: saved[60]})
    assert _max_diff(resumed[1], reference[60]) <= 1e-10

    short: dict[int, dict] = {}
    _batched(cfg.model_copy(update={"epochs": 20}), x, y, saved=short)  # final states
    state = to_one_by_one(short[60], 4)
    assert state is not None and state["epoch"] == 20
    assert _max_diff(_alone(cfg, x, y, 60, partial=state), reference[60]) <= 1e-10
    assert to_batched(state, 4)["batched"]["step"] == 80


def test_a_state_stopped_mid_epoch_does_not_continue_one_by_one():
    state = {"batched": {"format": 1, "model": {}, "optimizer": {}, "step": 81, "epoch": 20,
                         "order": {"step": 81, "generator": torch.zeros(1)},
                         "epoch_loss": [1.0, 1], "last": {}}}
    assert to_one_by_one(state, 4) is None
    assert to_batched(state, 4) is state


@pytest.mark.parametrize("dtype", [torch.float32], indirect=True)
def test_batching_is_planned_only_where_it_pays(dtype):
    """The volume MLP at batch 64 pays on CPU; the 28x28 CNN (memory-bound operators) does
    not, so a run of them trains one by one."""
    x = torch.rand(300, 1, 28, 28)
    y = torch.randint(0, 10, (300,))
    jobs = [ModelJob(m, 100 + m) for m in (0, 100, 200)]
    mlp = _cfg(hidden=(128,), batch_size=64)
    cnn = _cfg(arch="cnn", channels=(8, 16), batch_size=64)
    assert plan(mlp, x, y, jobs, lambda: build_model(mlp, (28, 28), 10)).pays
    chosen = plan(cnn, x, y, jobs, lambda: build_model(cnn, (28, 28), 10))
    assert not chosen.pays and "one by one" in chosen.describe()


# the pipeline ---------------------------------------------------------------------------


def _spec(tmp: Path, name: str, **fixed) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "study": "minima-volume", "name": name,
        "run_name": "model_{model_seed}_data_{data_seed}",
        "fixed": {**TINY, "n_directions": 2, **fixed},
        "grid": {"model_seed": [0], "data_seed": [0]},
    }))
    return path


def _models(run: Path) -> dict[int, dict[str, torch.Tensor]]:
    return {m: torch.load(run / "models" / f"m{m}.pt", weights_only=True)["state_dict"]
            for m in TINY["extra_sizes"]}


def _run(tmp: Path, name: str, *flags: str, **fixed) -> Path:
    out = tmp / name
    assert _volume("run", str(_spec(tmp, name, **fixed)), "--out_dir", str(out),
                   "--executor", "inline", *flags) == 0
    return _run_dir(out)


def test_batch_flag_auto_batches_off_and_unpaying_models_go_one_by_one(tmp_path,
                                                                      monkeypatch):
    off = _run(tmp_path, "off", "--batch", "off")
    assert yaml.safe_load((off / "config.yaml").read_text())["config"]["batch"] == "off"
    assert "batched training" not in (off / "logs" / "train.log").read_text()

    auto = _run(tmp_path, "auto")
    log = (auto / "logs" / "train.log").read_text()
    assert "train: batched training: 2 runs in 1 unit(s)" in log
    assert "train/m60: done in" in log and "(one batch of 2 models)" in log
    for m, weights in _models(auto).items():
        for k, v in weights.items():
            assert float((v - _models(off)[m][k]).abs().max()) <= 1e-5

    monkeypatch.setitem(memory.PAYS_BELOW_FLOPS, "cpu", 1.0)  # no step pays: one by one
    unpaid = _run(tmp_path, "unpaid")
    assert "runs one by one: a step already fills the cpu" in (
        unpaid / "logs" / "train.log").read_text()
    for m, weights in _models(unpaid).items():
        assert all(torch.equal(v, _models(off)[m][k]) for k, v in weights.items())
    for name in ("final.json", "volume.csv", "test_accuracies.csv"):  # same files
        assert (auto / name).read_text().splitlines()[0] == (off / name).read_text() \
            .splitlines()[0]


def test_a_diverging_model_fails_the_run_as_it_does_one_by_one(tmp_path, monkeypatch):
    """A sample of 1e38 (seen by m=60 only) makes SGD's loss NaN: alone the loop raises at
    its first log epoch; in the batch the model fails at once, is trained alone again,
    and the run fails with that same error; the model that trained is kept."""
    load = pipeline.load_volume_data

    def poisoned(cfg):
        data = load(cfg)
        data.x[cfg.base_size + 10] = 1e38
        return data

    monkeypatch.setattr(pipeline, "load_volume_data", poisoned)
    errors = {}
    for mode in ("off", "auto"):
        out = tmp_path / mode
        assert _volume("run", str(_spec(tmp_path, mode, optimizer="sgd", lr=0.1)),
                       "--out_dir", str(out), "--executor", "inline", "--batch", mode) == 1
        run = _run_dir(out)
        errors[mode] = yaml.safe_load((run / "status.json").read_text())["error"]
        assert (run / "models" / "m0.pt").exists() and not (run / "models" / "m60.pt").exists()
    assert "training loss is NaN at epoch 10" in errors["off"]
    assert errors["auto"] == errors["off"]
    log = (run / "logs" / "train.log").read_text()
    assert "train/m60: NonFiniteError in the batch" in log and "training it alone" in log


def _cli(spec: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeplab", "volume", "run", str(spec), "--out_dir", str(out),
         "--executor", "inline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_in_a_batch_and_the_rerun_equal_an_uninterrupted_run(tmp_path):
    long = {"epochs": 1000, "log_interval": 1, "category": "sam"}
    whole = _cli(_spec(tmp_path, "whole", **long), tmp_path / "whole")
    _, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err

    spec = _spec(tmp_path, "cut", **long)
    proc = _cli(spec, tmp_path / "cut")
    run = sigterm_at_log_line(proc, tmp_path / "cut", "train/m60: epoch 5 ")
    partial = torch.load(run / "models" / "m60.partial.pt", weights_only=True)
    assert 0 < partial["state"]["batched"]["epoch"] < 1000
    assert not (run / "models" / "m60.pt").exists()

    resumed = _cli(spec, tmp_path / "cut")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "train/m60: continuing from epoch" in (run / "logs" / "train.log").read_text()
    for m, weights in _models(run).items():
        reference = _models(_run_dir(tmp_path / "whole"))[m]
        assert all(torch.equal(v, reference[k]) for k, v in weights.items()), m
    assert not list((run / "models").glob("*.partial.pt"))
