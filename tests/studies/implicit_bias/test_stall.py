"""The notice of a run that learned nothing: when it is given, and when not."""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.studies.implicit_bias.stall import (
    accuracy,
    chance_accuracy,
    initial_loss,
    stall_notice,
)

SPEC = dict(epochs=20, lr=0.02, batch_size=None, n_samples=12000)
"""The spec's MNIST command: 20 full-batch epochs at lr 0.02 on 12000 images."""


def test_the_spec_commands_end_gets_the_notice_with_what_to_change():
    # the measured end of the spec's command on Fashion-MNIST 0 vs 1
    notice = stall_notice(0.6925, 0.6922, 0.594, 0.5, 0.995, **SPEC)
    assert notice is not None and "\n" not in notice
    assert "20 full-batch steps at lr 0.02" in notice
    assert "--lr" in notice and "--epochs" in notice and "--batch_size 64" in notice


@pytest.mark.parametrize("loss_end, train_acc, reachable", [
    (0.60, 0.594, 0.995),   # the loss fell by 13%: training moved
    (0.69, 0.70, 0.995),    # accuracy well above chance: the direction was learned
    (0.69, 0.52, 0.55),     # logistic regression is near chance too: nothing to learn
    (float("nan"), 0.5, 0.995),
])
def test_no_notice_when_training_moved_or_there_was_nothing_to_learn(loss_end, train_acc,
                                                                     reachable):
    assert stall_notice(0.6925, loss_end, train_acc, 0.5, reachable, **SPEC) is None


def test_accuracy_below_chance_is_not_learning_either():
    assert stall_notice(0.6943, 0.6941, 0.35, 0.5, 0.995, **SPEC) is not None


def test_a_mini_batch_run_is_told_to_take_smaller_batches():
    notice = stall_notice(0.69, 0.689, 0.5, 0.5, 1.0, epochs=2, lr=0.001, batch_size=500,
                          n_samples=1200)
    assert "6 steps of batch 500 at lr 0.001" in notice
    assert "a smaller --batch_size" in notice


def test_chance_accuracy_and_initial_loss():
    y = np.array([1.0, 1.0, 1.0, -1.0])
    assert chance_accuracy(y) == 0.75
    X = np.array([[1.0, 0.0], [2.0, 1.0], [0.5, -1.0], [-1.0, 0.0]])
    assert accuracy(X, y, np.array([1.0, 0.0])) == 1.0
    W1, W2 = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.5, 0.0]])
    margins = y * (X @ np.array([0.5, 0.0]))
    assert initial_loss(X, y, [W1, W2], "logistic") == pytest.approx(
        np.mean(np.log1p(np.exp(-margins))))
