"""The candidate evaluation: real learning on digits, metrics that agree with independent
computations, Student-t intervals, early stopping that keeps the best weights, the curve
diagnostics, plots, and failures reported as clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize
from torch import nn
from torch.nn import functional as F

from sweeplab.agent.curves import best_epoch, convergence_epoch, overfitting
from sweeplab.agent.datasets import load_dataset
from sweeplab.agent.evaluate import Evaluation, EvaluationError, evaluate
from sweeplab.agent.metrics import classification_metrics, seed_statistics
from sweeplab.agent.space import TrainSpec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def mlp(width: int = 64, depth: int = 1):
    """A closure building a fresh MLP on 8x8 digits (the evaluation's ``build``)."""
    def build() -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        size = 64
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        return nn.Sequential(*layers, nn.Linear(size, 10))
    return build


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def evaluation(digits, tmp_path_factory) -> tuple[Evaluation, Path]:
    """Two seeds of a small MLP trained sensibly on digits, with plots."""
    out = tmp_path_factory.mktemp("eval")
    spec = TrainSpec(optimizer="adam", lr=3e-3, batch_size=32, epochs=12)
    return evaluate(mlp(), digits, spec, seeds=(0, 1), patience=3, out_dir=out), out


def test_real_learning_on_digits_above_90_percent(evaluation):
    ev, _ = evaluation
    assert all(s.metrics["accuracy"] > 0.9 for s in ev.per_seed)
    assert ev.aggregate["accuracy"]["mean"] > 0.9 and ev.aggregate["accuracy"]["n"] == 2
    curve = ev.per_seed[0].curve
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] / 3  # it learned, not guessed


def test_metrics_agree_with_sklearn_on_the_same_predictions(evaluation, digits):
    ev, _ = evaluation
    for seed in ev.per_seed:
        y, p, pred = seed.y_true, seed.probs, seed.y_pred
        np.testing.assert_array_equal(y, digits.y_test.numpy())
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
        m = seed.metrics
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
        assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
        assert m["f1_micro"] == pytest.approx(skm.f1_score(y, pred, average="micro"), abs=1e-12)
        assert m["precision"] == pytest.approx(
            skm.precision_score(y, pred, average="macro", zero_division=0), abs=1e-12)
        assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"), abs=1e-12)
        assert m["roc_auc"] == pytest.approx(
            skm.roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12)
        assert m["pr_auc"] == pytest.approx(
            skm.average_precision_score(label_binarize(y, classes=range(10)), p,
                                        average="macro"), abs=1e-12)
        nll = -np.mean(np.log(p[np.arange(len(y)), y]))
        assert m["test_loss"] == pytest.approx(nll, rel=1e-9)
        cm = seed.confusion_matrix
        np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=range(10)))
        assert cm.sum() == len(digits.y_test)
        assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-15)
        prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, zero_division=0)
        table = seed.per_class
        np.testing.assert_allclose([r["f1"] for r in table], f1, atol=1e-12)
        np.testing.assert_allclose([r["precision"] for r in table], prec, atol=1e-12)
        assert [r["support"] for r in table] == support.tolist()
    np.testing.assert_array_equal(ev.confusion_matrix, sum(s.confusion_matrix for s in ev.per_seed))
    assert sum(r["support"] for r in ev.per_class) == len(digits.y_test)


def test_aggregate_is_the_student_t_interval(evaluation):
    ev, _ = evaluation
    for name in ("accuracy", "f1_macro", "roc_auc", "test_loss", "val_accuracy"):
        values = [s.metrics[name] for s in ev.per_seed]
        agg = ev.aggregate[name]
        assert agg["mean"] == pytest.approx(np.mean(values), abs=1e-15)
        assert agg["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-15)
        if agg["std"] == 0:  # seeds agree exactly: a zero-width interval (scipy gives NaN)
            assert agg["ci_low"] == agg["ci_high"] == agg["mean"]
            continue
        low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                     scale=stats.sem(values))
        assert (agg["ci_low"], agg["ci_high"]) == pytest.approx((low, high), rel=1e-12)
    values = [0.91, 0.95, 0.93, 0.90]
    low, high = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    got = seed_statistics(values)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high), rel=1e-12)
    assert got["ci_high"] - got["mean"] == pytest.approx(
        3.182446305284263 * np.std(values, ddof=1) / 2, rel=1e-9)  # t_{0.975,3} s / sqrt(4)


def test_metrics_match_a_hand_computed_confusion_matrix():
    # rows true, columns predicted: [[1, 1, 0], [1, 2, 0], [1, 0, 0]]; class 2 is never
    # predicted (precision 0/0 -> 0) and class 3 is neither true nor predicted
    y = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 0])
    probs = np.full((6, 4), 0.1)
    probs[np.arange(6), pred] = 0.7
    got = classification_metrics(y, probs, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(got["confusion_matrix"],
                                  [[1, 1, 0, 0], [1, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    precision, recall = [1 / 3, 2 / 3, 0, 0], [1 / 2, 2 / 3, 0, 0]
    f1 = [2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), 2 / 3, 0, 0]
    table = got["per_class"]
    assert [r["precision"] for r in table] == pytest.approx(precision, abs=1e-12)
    assert [r["recall"] for r in table] == pytest.approx(recall, abs=1e-12)
    assert [r["f1"] for r in table] == pytest.approx(f1, abs=1e-12)
    assert [r["support"] for r in table] == [2, 3, 1, 0]
    m = got["metrics"]
    assert m["accuracy"] == m["f1_micro"] == pytest.approx(3 / 6, abs=1e-12)
    assert m["f1_macro"] == pytest.approx(np.mean(f1), abs=1e-12)  # over all 4 classes
    assert m["precision"] == pytest.approx(np.mean(precision), abs=1e-12)
    assert table[3]["roc_auc"] is None and table[3]["pr_auc"] is None  # no positives
    assert table[2]["roc_auc"] is not None


def test_the_agent_and_the_analysis_tables_share_one_interval():
    import pandas as pd

    from sweeplab.analysis.aggregate import aggregate_final

    values = [0.91, 0.95, 0.93, 0.90]
    runs = pd.DataFrame({"potential": ["lp"] * 4, "final.accuracy": values})
    row = aggregate_final(runs, ("potential",)).iloc[0]
    agent = seed_statistics(values)
    assert (agent["ci_low"], agent["ci_high"]) == (row["accuracy_ci_low"],
                                                   row["accuracy_ci_high"])


def test_one_seed_has_no_interval_and_says_so():
    one = seed_statistics([0.8])
    assert one["mean"] == 0.8 and math.isnan(one["ci_low"]) and math.isnan(one["std"])
    assert one["n"] == 1 and "one seed" in one["note"]
    assert seed_statistics([0.8, math.nan, 0.9])["n"] == 2  # undefined values are left out


def test_to_dict_is_strict_json_with_the_documented_fields(evaluation, digits):
    ev, _ = evaluation
    d = ev.to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d) >= {"per_seed", "aggregate", "confusion_matrix", "per_class", "plots", "data"}
    assert d["data"]["source"] == "real" and d["data"]["description"] == digits.description
    seed = d["per_seed"][0]
    assert set(seed) >= {"metrics", "curve", "best_epoch", "stopped_early", "overfitting",
                         "convergence_epoch", "seconds"}
    assert "probs" not in seed and sum(map(sum, d["confusion_matrix"])) == 2 * 359
    assert set(d["aggregate"]["accuracy"]) >= {"mean", "std", "ci_low", "ci_high", "n"}


def test_plots_are_non_empty_pngs(evaluation):
    ev, out = evaluation
    assert ev.plots == ["confusion_matrix.png", "learning_curve.png"]
    for name in ev.plots:
        content = (out / name).read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 10_000


def test_early_stopping_on_an_overfitting_setup_keeps_the_best_weights(digits):
    tiny = load_dataset("digits", seed=0, max_train=40)
    built: list[nn.Module] = []

    def build() -> nn.Module:
        built.append(mlp(width=512, depth=2)())
        return built[-1]

    spec = TrainSpec(lr=3e-3, batch_size=16, epochs=100)
    ev = evaluate(build, tiny, spec, seeds=(0,), patience=3)
    seed = ev.per_seed[0]
    assert seed.stopped_early and seed.overfitting
    assert seed.best_epoch < seed.epochs_run < spec.epochs
    assert seed.epochs_run == seed.best_epoch + 3  # stopped exactly `patience` epochs later
    best_val = min(row["val_loss"] for row in seed.curve)
    model = built[0].eval()
    with torch.no_grad():  # the model left behind holds the best epoch's weights
        val_loss = F.cross_entropy(model(tiny.x_val).double(), tiny.y_val).item()
    assert val_loss == pytest.approx(best_val, rel=1e-6)
    assert seed.curve[-1]["val_loss"] > best_val


def test_curve_diagnostics_follow_their_stated_rules():
    def curve(train, val, acc):
        return [{"epoch": i + 1, "train_loss": t, "val_loss": v, "val_accuracy": a}
                for i, (t, v, a) in enumerate(zip(train, val, acc))]

    rising = curve([1.0, 0.8, 0.6, 0.4, 0.2], [1.0, 0.7, 0.8, 0.9, 1.0],
                   [0.5, 0.80, 0.891, 0.90, 0.85])
    assert best_epoch(rising) == 2 and overfitting(rising, patience=3)
    assert not overfitting(rising, patience=4)          # only 3 epochs after the best
    assert convergence_epoch(rising) == 3                # 0.891 >= 0.99 * 0.90
    both_worse = curve([1.0, 0.8, 0.9, 1.0, 1.1], [1.0, 0.7, 0.8, 0.9, 1.0], [0.5] * 5)
    assert not overfitting(both_worse, patience=3)       # train loss rose too: not overfitting


def test_absent_test_class_is_left_out_of_the_aucs():
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 3] * 20)                         # class 2 never occurs
    probs = rng.dirichlet(np.ones(4), size=y.size)
    probs[np.arange(y.size), y] += 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    out = classification_metrics(y, probs)
    aucs = []
    for c in (0, 1, 3):                                  # Mann-Whitney U / (n1 n0)
        u = stats.mannwhitneyu(probs[y == c, c], probs[y != c, c]).statistic
        aucs.append(u / ((y == c).sum() * (y != c).sum()))
    assert out["metrics"]["roc_auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert out["per_class"][2]["roc_auc"] is None and out["per_class"][2]["support"] == 0
    assert math.isfinite(out["metrics"]["pr_auc"])


def test_sgd_seeds_reproduce_and_time_budget_cuts_training(digits):
    spec = TrainSpec(optimizer="sgd", lr=0.05, batch_size=32, epochs=3)
    a = evaluate(mlp(), digits, spec, seeds=(7,))
    b = evaluate(mlp(), digits, spec, seeds=(7,))
    losses = [[row["val_loss"] for row in ev.per_seed[0].curve] for ev in (a, b)]
    assert losses[0] == losses[1]
    assert a.per_seed[0].metrics["accuracy"] > 0.8
    cut = evaluate(mlp(), digits, spec, seeds=(0, 1), max_seconds=1e-9)
    assert all(s.stopped_by_time and s.epochs_run == 1 for s in cut.per_seed)


def test_bad_models_fail_with_a_clear_runtime_error(digits):
    spec = TrainSpec(lr=1e-3, epochs=2)

    def exploding() -> nn.Module:
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        nn.init.constant_(model[1].weight, 1e38)
        return model

    with pytest.raises(EvaluationError, match="seed 0: the loss became non-finite in epoch 1"):
        evaluate(exploding, digits, spec, seeds=(0,))
    wrong = r"returned \(64, 3\) for a batch of 64; expected \(64, 10\) logits"
    with pytest.raises(RuntimeError, match=wrong):
        evaluate(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), digits, spec, seeds=(0,))
    with pytest.raises(EvaluationError, match="not a torch nn.Module"):
        evaluate(lambda: "model", digits, spec, seeds=(0,))
