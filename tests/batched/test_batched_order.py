"""A run's mini-batch order in a batch is the one its own loop draws alone."""

from __future__ import annotations

import torch

from sweeplab.batched import RunOrder


def _loop(seed, n, batch_size, epochs, samples=None):
    """Every mini-batch of ``for idx in randperm(n, generator).split(batch_size)``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            out.append(idx if samples is None else samples[idx])
    return out


def _steps(order, start, count):
    b = order.batches(start, count)
    return [row[: int(size)] for row, size in zip(b.index, b.size)], b.epoch_end.tolist()


def test_any_range_of_steps_is_the_loops_batches_across_epochs():
    expected = _loop(seed=7, n=23, batch_size=5, epochs=4)  # 5 steps an epoch, last of 3
    order = RunOrder(7, 23, 5)
    got = []
    for start, count in [(0, 3), (3, 4), (7, 9), (16, 4)]:
        steps, ends = _steps(order, start, count)
        got += steps
        assert ends == [(s + 1) % 5 == 0 for s in range(start, start + count)]
    assert len(got) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


def test_a_subset_run_draws_its_own_permutation_of_its_samples():
    samples = torch.tensor([3, 9, 4, 17, 0, 11, 12])
    expected = _loop(seed=1, n=len(samples), batch_size=3, epochs=3, samples=samples)
    steps, _ = _steps(RunOrder(1, 20, 3, samples), 0, 9)
    assert all(torch.equal(a, b) for a, b in zip(steps, expected))


def test_padding_is_a_valid_index_and_size_says_what_is_real():
    b = RunOrder(0, 7, 4).batches(0, 2)
    assert b.size.tolist() == [4, 3]
    assert b.index.shape == (2, 4) and int(b.index[1, 3]) == 0


def test_resuming_from_a_state_continues_the_same_order():
    expected = _loop(seed=3, n=10, batch_size=4, epochs=5)
    order = RunOrder(3, 10, 4)
    order.batches(0, 8)
    state = order.state_dict(8)
    resumed = RunOrder(3, 10, 4)
    assert resumed.load_state_dict(state) == 8
    steps, _ = _steps(resumed, 8, 7)
    assert all(torch.equal(a, b) for a, b in zip(steps, expected[8:]))
