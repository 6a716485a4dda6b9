"""The synthetic tasks of the anchor study obey their rules (Chen et al. 2025, App. C.1, C.2).

Labels are recomputed here from the tokens alone, with the shifts written out again, so a
wrong rule in ``tasks`` cannot pass by agreeing with itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeplab.errors import ConfigError
from sweeplab.studies.anchor import tasks
from sweeplab.studies.anchor.tasks import (
    COMPOSITE_VOCAB,
    INVERSE_VOCAB,
    SEP_TOKEN,
    SEQ_LEN,
    composite_splits,
    inverse_seq_len,
    inverse_splits,
)

SHIFT = {1: 5, 2: 1, 3: -2, 4: -8}  # App. C.1


@pytest.fixture(scope="module")
def comp():
    return composite_splits(n_train=20_000, n_test=5_000, n_heldout=3_000, seed=7)


@pytest.fixture(scope="module")
def inv():
    return inverse_splits(n_train=20_000, n_test=5_000, n_ood=3_000, n_layers=3, seed=7)


def parse_composite(tokens: np.ndarray):
    """Key position, key and anchor pair of each row, read off the tokens alone."""
    is_anchor = (tokens >= 1) & (tokens <= 4)
    assert (is_anchor.sum(axis=1) == 2).all(), "exactly two anchor tokens per sequence"
    first = is_anchor.argmax(axis=1)
    rows = np.arange(len(tokens))
    assert is_anchor[rows, first + 1].all(), "the two anchors are adjacent"
    assert (first >= 1).all(), "a key precedes the anchors"
    return first - 1, tokens[rows, first - 1], tokens[rows, first], tokens[rows, first + 1]


def test_composite_shapes_and_vocab(comp):
    for split, data in comp.items():
        assert data.tokens.shape == (len(data), SEQ_LEN) and data.tokens.dtype == np.int64
        assert data.labels.shape == (len(data),) and data.labels.dtype == np.int64
        assert data.tokens.min() >= 0 and data.tokens.max() < COMPOSITE_VOCAB, split
        assert data.labels.min() >= 0 and data.labels.max() < COMPOSITE_VOCAB, split
    assert len(comp["train"]) == 20_000 and len(comp["heldout"]) == 3_000


def test_composite_vocab_covers_extreme_labels():
    assert COMPOSITE_VOCAB > 100 + 5 + 5 and 20 - 8 - 8 >= 0


@pytest.mark.parametrize("split", ["train", "test"])
def test_composite_label_rule(comp, split):
    data = comp[split]
    pos, key, a, b = parse_composite(data.tokens)
    expected = np.array([k - 6 if (x, y) == (3, 4) else k + SHIFT[x] + SHIFT[y]
                         for k, x, y in zip(key, a, b)])
    np.testing.assert_array_equal(data.labels, expected)
    np.testing.assert_array_equal(data.meta["key"], key)
    np.testing.assert_array_equal(data.meta["key_pos"], pos)
    assert ((key >= 20) & (key <= 100)).all()
    # every ordered pair except (4, 3) occurs, (3, 4) included
    pairs = set(zip(a.tolist(), b.tolist()))
    assert (4, 3) not in pairs
    assert pairs == {(x, y) for x in range(1, 5) for y in range(1, 5)} - {(4, 3)}


def test_composite_non_key_tokens_in_key_range(comp):
    for data in comp.values():
        pos, *_ = parse_composite(data.tokens)
        cols = np.arange(SEQ_LEN)[None, :]
        other = (cols < pos[:, None]) | (cols > pos[:, None] + 2)
        assert other.sum() == len(data) * (SEQ_LEN - 3)
        filler = data.tokens[other]
        assert filler.min() >= 20 and filler.max() <= 100
        assert filler.min() == 20 and filler.max() == 100  # the whole range is used


def test_composite_split_by_key_residue(comp):
    pos_tr, key_tr, *_ = parse_composite(comp["train"].tokens)
    pos_te, key_te, *_ = parse_composite(comp["test"].tokens)
    assert (key_tr % 8 != pos_tr).all()
    assert (key_te % 8 == pos_te).all()
    combos_tr = set(zip((key_tr % 8).tolist(), pos_tr.tolist()))
    combos_te = set(zip((key_te % 8).tolist(), pos_te.tolist()))
    assert not combos_tr & combos_te
    assert set(pos_te.tolist()) == set(range(6))  # every key position is tested
    # the test keys are seen in training, only at other positions
    assert set(key_te.tolist()) <= set(key_tr.tolist())


def test_composite_heldout_pair_and_labels(comp):
    data = comp["heldout"]
    pos, key, a, b = parse_composite(data.tokens)
    assert (a == 4).all() and (b == 3).all()
    np.testing.assert_array_equal(data.labels_composite, key - 10)
    np.testing.assert_array_equal(data.labels_symmetric, key - 6)
    np.testing.assert_array_equal(data.labels, data.labels_composite)
    # any key at any position: both residue classes of the split occur
    assert (key % 8 == pos).any() and (key % 8 != pos).any()
    assert comp["train"].labels_composite is None and comp["test"].labels_symmetric is None


def test_composite_deterministic_and_seed_dependent():
    a = composite_splits(500, 200, 100, seed=3)
    b = composite_splits(500, 200, 100, seed=3)
    c = composite_splits(500, 200, 100, seed=4)
    for split in a:
        np.testing.assert_array_equal(a[split].tokens, b[split].tokens)
        np.testing.assert_array_equal(a[split].labels, b[split].labels)
        assert not np.array_equal(a[split].tokens, c[split].tokens)
    # each split has its own stream: a bigger train set leaves test unchanged
    d = composite_splits(900, 200, 100, seed=3)
    np.testing.assert_array_equal(a["test"].tokens, d["test"].tokens)


def test_tensors_are_long():
    data = composite_splits(10, 10, 10, seed=0)["heldout"]
    t = data.tensors()
    assert t["tokens"].dtype == torch.long and t["labels_symmetric"].shape == (10,)
    assert "key" in t and "labels_composite" in t


@pytest.mark.parametrize("kwargs", [dict(n_train=-1), dict(seed=-2), dict(n_test=1.5)])
def test_bad_sizes_raise_config_error(kwargs):
    args = dict(n_train=10, n_test=10, n_heldout=10, seed=0) | kwargs
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        composite_splits(**args)
    with pytest.raises(ConfigError, match="n_layers"):
        inverse_splits(10, 10, 10, n_layers=0, seed=0)


# ---- inverse sequence matching (App. C.2) ---------------------------------------------------


def parse_inverse(tokens: np.ndarray, n_layers: int):
    """Shown keys (N, 5, 3), fillers (N, 3L) and query (N, 3) read off the tokens."""
    n = len(tokens)
    shown = tokens[:, :20].reshape(n, 5, 4)
    assert (shown[:, :, 3] == SEP_TOKEN).all(), "each key is followed by the separator"
    filler = tokens[:, 20 : 20 + 3 * n_layers]
    return shown[:, :, :3], filler, tokens[:, 20 + 3 * n_layers :]


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_inverse_structure_and_label(inv, split):
    data = inv[split]
    assert data.tokens.shape == (len(data), inverse_seq_len(3)) == (len(data), 20 + 9 + 3)
    assert data.tokens.min() >= 0 and data.tokens.max() < INVERSE_VOCAB
    keys, filler, query = parse_inverse(data.tokens, n_layers=3)
    assert filler.shape[1] == 9 and query.shape[1] == 3
    triples = np.sort(keys[:, 0], axis=1)
    assert (np.diff(triples, axis=1) > 0).all(), "three distinct numbers"
    assert (np.sort(keys, axis=2) == triples[:, None, :]).all(), "every key permutes the set"
    for row_keys, q, label in zip(keys[:200], query[:200], data.labels[:200]):
        rows = {tuple(k) for k in row_keys.tolist()}
        assert len(rows) == 5, "five distinct permutations"
        rev = tuple(q[::-1].tolist())
        matches = [i for i, k in enumerate(row_keys.tolist()) if tuple(k) == rev]
        assert matches == [label], "reversed(query) is exactly the labelled key"
    np.testing.assert_array_equal(keys[np.arange(len(data)), data.labels], query[:, ::-1])
    # fillers never repeat the set's numbers
    assert not (filler[:, :, None] == triples[:, None, :]).any()


def test_inverse_literal_match_is_wrong_mostly(inv):
    # the query equals a shown key literally in 4 of 5 samples, never the labelled one
    keys, _, query = parse_inverse(inv["train"].tokens, n_layers=3)
    literal = (keys == query[:, None, :]).all(axis=2)
    assert not literal[np.arange(len(keys)), inv["train"].labels].any()
    assert abs(literal.any(axis=1).mean() - 0.8) < 0.02


def test_inverse_labels_uniform(inv):
    freq = np.bincount(inv["train"].labels, minlength=5) / len(inv["train"])
    assert freq.shape == (5,) and np.abs(freq - 0.2).max() < 0.02


def test_inverse_value_ranges(inv):
    for split in ("train", "test"):
        values = inv[split].tokens[inv[split].tokens != SEP_TOKEN]
        assert values.min() >= 1 and values.max() <= 100
    ood = inv["ood"].tokens[inv["ood"].tokens != SEP_TOKEN]
    assert ood.min() >= 101 and ood.max() <= 200


def test_inverse_train_test_disjoint_sets(inv):
    keys_tr, *_ = parse_inverse(inv["train"].tokens, 3)
    keys_te, *_ = parse_inverse(inv["test"].tokens, 3)
    sets_tr = {tuple(s) for s in np.sort(keys_tr[:, 0], axis=1).tolist()}
    sets_te = {tuple(s) for s in np.sort(keys_te[:, 0], axis=1).tolist()}
    assert not sets_tr & sets_te
    assert all(sum(s) % 3 != 0 for s in sets_tr) and all(sum(s) % 3 == 0 for s in sets_te)


@pytest.mark.parametrize("n_layers", [1, 2, 5])
def test_inverse_filler_length(n_layers):
    data = inverse_splits(50, 50, 50, n_layers=n_layers, seed=1)
    for d in data.values():
        assert d.tokens.shape[1] == 5 * 4 + 3 * n_layers + 3


def test_inverse_deterministic_and_seed_dependent():
    a = inverse_splits(300, 100, 100, n_layers=2, seed=5)
    b = inverse_splits(300, 100, 100, n_layers=2, seed=5)
    c = inverse_splits(300, 100, 100, n_layers=2, seed=6)
    for split in a:
        np.testing.assert_array_equal(a[split].tokens, b[split].tokens)
        np.testing.assert_array_equal(a[split].labels, b[split].labels)
        assert not np.array_equal(a[split].tokens, c[split].tokens)


def test_empty_splits():
    assert len(composite_splits(0, 0, 0, seed=0)["train"]) == 0
    assert inverse_splits(0, 0, 0, n_layers=1, seed=0)["ood"].tokens.shape == (0, 26)
    assert tasks.PAPER_N_TRAIN == 300_000
