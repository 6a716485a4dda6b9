"""The anchor studies' runs trained batched equal the plain single-run loop, run by run.

The reference is the loop the study had before batching (``torch.optim.AdamW`` over one
model, ``LambdaLR(lr_factor)`` stepped every mini-batch, ``clip_grad_norm_``, mini-batches
``torch.randperm(n, Generator().manual_seed(seed)).split(batch_size)`` of the run's own
seed's split), written here in plain PyTorch. In float64 a run trained in a batch of
several seeds and gammas ends within 1e-10 of it after ~100 steps, with the same metric
rows (float32 sequence models are chaotic at ulp level: docs/batched.md). A diverging run
fails alone, at the step it fails alone; a batch stopped by SIGTERM and resumed, together
or each run alone as the grid resumes them, equals the batch never stopped; a checkpoint
of the former loop resumes in the new one.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sweeplab.core.checkpoint import checkpoint_path, load_checkpoint
from sweeplab.core.context import RunInterrupted
from sweeplab.core.experiment import make_experiment_dir
from sweeplab.errors import NonFiniteError
from sweeplab.studies.anchor import batched
from sweeplab.studies.anchor.batch_keys import batch_key
from sweeplab.studies.anchor.config import CompositeConfig, InverseConfig
from sweeplab.studies.anchor.pool import COMPOSITE, INVERSE, DataPool
from sweeplab.studies.anchor.scoring import plain_outputs, scores
from sweeplab.studies.anchor.train import lr_factor
from sweeplab.track.local import read_metrics, run_context

TINY = dict(n_train=96, n_test=40, batch_size=16, eval_batch_size=64, d_model=8, d_state=8,
            n_layers=2, device="cpu", log_interval=4, save_interval=0, weight_decay=0.01)
TASKS = {"composite": (COMPOSITE, CompositeConfig, dict(n_heldout=40)),
         "inverse": (INVERSE, InverseConfig, dict(n_ood=40))}
# seeds 0 and 1 (two data splits in the pool), gammas 0.5 and 1.0, lr, schedule and clipping
# differing run by run
VARIANTS = [dict(seed=0, gamma=0.5, lr=3e-3, schedule="warmup_cosine", warmup_epochs=2,
                 grad_clip=1.0),
            dict(seed=1, gamma=1.0, lr=1e-3),
            dict(seed=1, gamma=0.5, lr=2e-3, grad_clip=0.5, weight_decay=0.1)]


@pytest.fixture
def float64():
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)


def configs(task: str, model_type: str, epochs: int = 16, variants=VARIANTS):
    _, config, sizes = TASKS[task]
    return [config(**{**TINY, **sizes, "model_type": model_type, "epochs": epochs, **v})
            for v in variants]


class Runs:
    """Run directories with contexts under a tmp folder, closed at the end."""

    def __init__(self, root: Path):
        self.root, self.opened = root, []

    def new(self, tag: str, cfgs) -> list:
        ctxs = [run_context(make_experiment_dir(self.root / tag, str(i)), cfg)
                for i, cfg in enumerate(cfgs)]
        self.opened += ctxs
        return ctxs

    def resume(self, ctxs) -> list:
        fresh = []
        for ctx in ctxs:
            ctx.close()
            fresh.append(run_context(ctx.run_dir, ctx.config,
                                     resume=load_checkpoint(checkpoint_path(ctx.run_dir))))
        self.opened += fresh
        return fresh


@pytest.fixture
def runs(tmp_path, one_thread):
    made = Runs(tmp_path)
    yield made
    for ctx in made.opened:
        ctx.close()


def reference(task, cfg, stop_at=None, ctx=None):
    """The single-run loop as the study had it: final weights and {epoch: metrics}.

    With ``ctx`` its rows go there too, and at epoch ``stop_at`` it checkpoints as it did
    (before that epoch's row) and returns.
    """
    model = batched.make_model(task, cfg)
    pool = DataPool(task, [cfg], torch.device("cpu"))
    tokens, labels = pool.tensors["train"]["tokens"][0], pool.tensors["train"]["labels"][0]
    spe = math.ceil(len(labels) / cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s, spe))
    order = torch.Generator().manual_seed(cfg.seed)
    rows = {}
    for epoch in range(cfg.epochs + 1):
        if epoch == stop_at:
            ctx.checkpoint(epoch, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(), "order": order.get_state(),
                                   "epoch": epoch}, reason="signal")
            return model.state_dict(), rows
        if epoch % cfg.log_interval == 0 or epoch == cfg.epochs:
            got = scores(task, plain_outputs(model), pool, torch.tensor([0]), cfg.eval_batch_size)
            rows[epoch] = {k: float(v[0]) for k, v in got.items()} | {
                "lr": opt.param_groups[0]["lr"]}
            if ctx is not None:
                ctx.log(epoch, **rows[epoch])
        if epoch == cfg.epochs:
            return model.state_dict(), rows
        for idx in torch.randperm(len(labels), generator=order).split(cfg.batch_size):
            loss = F.cross_entropy(model(tokens[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def metric_rows(ctx) -> dict[int, dict]:
    ctx.flush()
    return {row.pop("epoch"): row for row in read_metrics(ctx.run_dir / "metrics.jsonl")}


def assert_rows_close(got: dict, want: dict, tol: float) -> None:
    assert got.keys() == want.keys()
    for epoch in want:
        assert list(got[epoch]) == list(want[epoch]), epoch
        for key, value in want[epoch].items():
            assert got[epoch][key] == pytest.approx(value, abs=tol, rel=0), (epoch, key)


@pytest.mark.parametrize("task", ["composite", "inverse"])
@pytest.mark.parametrize("model_type", ["mamba_standard", "transformer"])
def test_a_batch_of_seeds_and_gammas_equals_the_single_run_loop_in_float64(
        runs, float64, task, model_type):
    cfgs = configs(task, model_type)  # 6 steps an epoch, 96 steps
    ctxs = runs.new("batch", cfgs)
    outcomes = batched.run_batch(TASKS[task][0], cfgs, ctxs)
    for cfg, ctx, outcome in zip(cfgs, ctxs, outcomes):
        weights, rows = reference(TASKS[task][0], cfg)
        assert isinstance(outcome, dict), outcome
        assert max_diff(torch.load(ctx.run_dir / "model.pt"), weights) <= 1e-10
        assert_rows_close(metric_rows(ctx), rows, 1e-10)
        assert outcome == metric_rows(ctx)[cfg.epochs] | {}  # the last row is the result
    # the runs did train apart: each ended elsewhere
    finals = [torch.load(c.run_dir / "model.pt")["head.weight"] for c in ctxs]
    assert not torch.equal(finals[1], finals[2])


def test_a_run_writes_the_same_files_in_a_batch_as_alone(runs):
    """float32, as the study runs: same files, same rows, numbers to float rounding."""
    cfgs = configs("composite", "mamba_standard", epochs=4)
    together = runs.new("together", cfgs)
    batched.run_batch(COMPOSITE, cfgs, together)
    for i, (cfg, ctx) in enumerate(zip(cfgs, together)):
        (alone,) = runs.new(f"alone{i}", [cfg])
        batched.run_batch(COMPOSITE, [cfg], [alone])
        for c in (ctx, alone):
            c.flush()
        names = sorted(p.name for p in ctx.run_dir.iterdir())
        assert names == sorted(p.name for p in alone.run_dir.iterdir())
        assert {"model.pt", "metrics.json", "train.log", "metrics.jsonl"} <= set(names)
        assert_rows_close(metric_rows(ctx), metric_rows(alone), 1e-5)
        assert max_diff(torch.load(ctx.run_dir / "model.pt"),
                        torch.load(alone.run_dir / "model.pt")) <= 1e-5


def test_a_diverging_run_fails_alone_at_the_step_it_fails_alone(runs, float64):
    cfgs = configs("inverse", "transformer", epochs=4,
                   variants=[VARIANTS[0], dict(seed=1, gamma=0.5, lr=1e30), VARIANTS[1]])
    ctxs = runs.new("batch", cfgs)
    outcomes = batched.run_batch(INVERSE, cfgs, ctxs)
    assert isinstance(outcomes[1], NonFiniteError), outcomes
    assert isinstance(outcomes[0], dict) and isinstance(outcomes[2], dict), outcomes
    (alone,) = batched.run_batch(INVERSE, [cfgs[1]], runs.new("alone", [cfgs[1]]))
    assert isinstance(alone, NonFiniteError) and str(alone) == str(outcomes[1])
    without = runs.new("without", [cfgs[0], cfgs[2]])
    batched.run_batch(INVERSE, [cfgs[0], cfgs[2]], without)
    for ctx, other in zip([ctxs[0], ctxs[2]], without):
        assert max_diff(torch.load(ctx.run_dir / "model.pt"),
                        torch.load(other.run_dir / "model.pt")) <= 1e-12
        assert_rows_close(metric_rows(ctx), metric_rows(other), 1e-12)
    assert not (ctxs[1].run_dir / "model.pt").exists()


@pytest.mark.parametrize("resume_alone", [False, True])
def test_sigterm_mid_batch_then_resume_equals_the_uninterrupted_batch(
        runs, float64, monkeypatch, resume_alone):
    cfgs = [c.model_copy(update={"save_interval": 3})
            for c in configs("composite", "mamba_standard", epochs=6)]
    whole = runs.new("whole", cfgs)
    batched.run_batch(COMPOSITE, cfgs, whole)
    calls = 0
    loss = batched.per_sample_loss

    def stopping(logits, labels):
        nonlocal calls
        calls += 1
        # the probe is call 1, step s call s + 2: the stop lands before step 8, mid-epoch 2
        # (6 steps an epoch) and in a chunk of steps 0-17 that went on to epoch 3
        if calls == 9:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss(logits, labels)

    monkeypatch.setattr(batched, "per_sample_loss", stopping)
    cut = runs.new("cut", cfgs)
    with pytest.raises(RunInterrupted):
        batched.run_batch(COMPOSITE, cfgs, cut)
    monkeypatch.setattr(batched, "per_sample_loss", loss)
    saved = [load_checkpoint(checkpoint_path(c.run_dir)) for c in cut]
    assert [(s["reason"], s["epoch"]) for s in saved] == [("signal", 1)] * 3
    resumed = runs.resume(cut)
    if resume_alone:
        for cfg, ctx in zip(cfgs, resumed):
            batched.run_batch(COMPOSITE, [cfg], [ctx])
    else:
        batched.run_batch(COMPOSITE, cfgs, resumed)
    tol = 1e-10 if resume_alone else 0.0
    for a, b in zip(whole, resumed):
        assert max_diff(torch.load(a.run_dir / "model.pt"),
                        torch.load(b.run_dir / "model.pt")) <= tol
        assert_rows_close(metric_rows(b), metric_rows(a), tol)


def test_a_checkpoint_of_the_former_single_run_loop_resumes(runs, float64):
    cfg = configs("inverse", "transformer", epochs=8)[0]  # rows at epochs 0, 4 and 8
    (whole,) = runs.new("whole", [cfg])
    batched.run_batch(INVERSE, [cfg], [whole])
    (cut,) = runs.new("cut", [cfg])
    reference(INVERSE, cfg, stop_at=4, ctx=cut)
    (resumed,) = runs.resume([cut])
    (outcome,) = batched.run_batch(INVERSE, [cfg], [resumed])
    assert outcome == metric_rows(whole)[8]
    assert max_diff(torch.load(whole.run_dir / "model.pt"),
                    torch.load(resumed.run_dir / "model.pt")) <= 1e-10
    assert_rows_close(metric_rows(resumed), metric_rows(whole), 1e-10)


def test_scores_are_the_plain_accuracies_and_loss(one_thread):
    cfg = configs("composite", "transformer", epochs=1)[0]
    model = batched.make_model(COMPOSITE, cfg)
    pool = DataPool(COMPOSITE, [cfg], torch.device("cpu"))
    got = scores(COMPOSITE, plain_outputs(model), pool, torch.tensor([0]), 7)  # ragged chunks
    with torch.no_grad():
        def logits(split):
            return model(pool.tensors[split]["tokens"][0])

        def acc(split, field):
            return float((logits(split).argmax(-1) == pool.tensors[split][field][0])
                         .double().mean())

        want = {"train_loss": float(F.cross_entropy(logits("train"),
                                                     pool.tensors["train"]["labels"][0])),
                "train_acc": acc("train", "labels"), "test_acc": acc("test", "labels"),
                "composite_acc": acc("heldout", "labels_composite"),
                "symmetric_acc": acc("heldout", "labels_symmetric")}
    assert list(got) == list(want)
    for key, value in want.items():
        assert float(got[key][0]) == pytest.approx(value, rel=1e-6), key


def test_batch_key_groups_seeds_gammas_and_optimizer_settings_of_one_depth():
    base = CompositeConfig(**{**TINY, "n_heldout": 40})
    same = [base.model_copy(update=u) for u in (
        {"seed": 7}, {"gamma": 0.3}, {"lr": 0.1, "schedule": "warmup_cosine"},
        {"grad_clip": 1.0, "weight_decay": 0.0}, {"epochs": 3, "log_interval": 1},
        {"conv_init": "pytorch", "embedding_fan_in": "d_model"})]
    assert {batch_key(c) for c in same} == {batch_key(base)}
    other = [base.model_copy(update=u) for u in (
        {"n_layers": 3}, {"model_type": "transformer"}, {"d_model": 16}, {"d_state": 4},
        {"n_train": 97}, {"n_heldout": 41}, {"batch_size": 8}, {"device": "auto"})]
    assert len({batch_key(c) for c in other} | {batch_key(base)}) == len(other) + 1
    inverse = InverseConfig(**{**TINY, "n_ood": 40})
    assert batch_key(inverse) != batch_key(base)
