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
from sweeplab.studies.anchor.config import CompositeConfig, InverseConfig
from sweeplab.studies.anchor.tasks import (
    COMPOSITE_VOCAB,
    INVERSE_VOCAB,
    SEQ_LEN,
    composite_splits,
    inverse_seq_len,
    inverse_splits,
    is_test_key,
    is_test_set,
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


def test_residue_rule_is_the_papers_example():
    """App. C.1: "key 33 cannot appear in the first position, as it belongs to the
    congruence class 1 mod 8, which is aligned with the first index" (1-based classes)."""
    assert is_test_key(33, 0) and not is_test_key(33, 1) and not is_test_key(32, 0)
    assert is_test_key(np.array([41, 22, 100]), np.array([0, 5, 3])).all()  # 41=1, 22=6, 100=4


def test_composite_split_by_key_residue(comp):
    pos_tr, key_tr, *_ = parse_composite(comp["train"].tokens)
    pos_te, key_te, *_ = parse_composite(comp["test"].tokens)
    # the k-th position (1-based) is tied to class k mod 8
    assert (key_tr % 8 != pos_tr + 1).all()
    assert (key_te % 8 == pos_te + 1).all()
    combos_tr = set(zip(key_tr.tolist(), pos_tr.tolist()))
    combos_te = set(zip(key_te.tolist(), pos_te.tolist()))
    assert not combos_tr & combos_te  # no (key, position) of the test set is ever trained on
    assert set(pos_te.tolist()) == set(range(6))  # every key position is tested
    # the test keys are seen in training, only at other positions
    assert set(key_te.tolist()) <= set(key_tr.tolist())
    # keys of class 7 or 0 never meet their position: train-only
    assert not np.isin(key_te % 8, [0, 7]).any() and np.isin(key_tr % 8, [0, 7]).any()


def test_composite_heldout_pair_and_labels(comp):
    data = comp["heldout"]
    pos, key, a, b = parse_composite(data.tokens)
    assert (a == 4).all() and (b == 3).all()
    np.testing.assert_array_equal(data.labels_composite, key - 10)
    np.testing.assert_array_equal(data.labels_symmetric, key - 6)
    np.testing.assert_array_equal(data.labels, data.labels_composite)
    assert not np.array_equal(data.labels_composite, data.labels_symmetric)
    # the held-out pair is a test instance: its keys follow the test rule (App. C.1)
    assert (key % 8 == pos + 1).all() and set(pos.tolist()) == set(range(6))
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
    """Shown keys (N, 5, 3), separators (N, 5), fillers (N, 3L) and query (N, 3)."""
    n = len(tokens)
    shown = tokens[:, :20].reshape(n, 5, 4)
    filler = tokens[:, 20 : 20 + 3 * n_layers]
    return shown[:, :, :3], shown[:, :, 3], filler, tokens[:, 20 + 3 * n_layers :]


@pytest.mark.parametrize("split", ["train", "test", "ood"])
def test_inverse_structure_and_label(inv, split):
    data = inv[split]
    assert data.tokens.shape == (len(data), inverse_seq_len(3)) == (len(data), 20 + 9 + 3)
    assert data.tokens.min() >= 0 and data.tokens.max() < INVERSE_VOCAB
    keys, seps, filler, query = parse_inverse(data.tokens, n_layers=3)
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
    # separators and fillers are random tokens outside the generating set (App. C.2), so no
    # key fuses with its neighbours or the query through the convolution
    assert not (seps[:, :, None] == triples[:, None, :]).any()
    assert not (filler[:, :, None] == triples[:, None, :]).any()
    assert len(np.unique(seps)) > 50 and len(np.unique(filler)) > 50  # random, not a fixed token
    np.testing.assert_array_equal(seps, data.meta["separators"])


def test_inverse_literal_match_is_wrong_mostly(inv):
    # the query equals a shown key literally in 4 of 5 samples, never the labelled one
    keys, _, _, query = parse_inverse(inv["train"].tokens, n_layers=3)
    literal = (keys == query[:, None, :]).all(axis=2)
    assert not literal[np.arange(len(keys)), inv["train"].labels].any()
    assert abs(literal.any(axis=1).mean() - 0.8) < 0.02


def test_inverse_labels_uniform(inv):
    freq = np.bincount(inv["train"].labels, minlength=5) / len(inv["train"])
    assert freq.shape == (5,) and np.abs(freq - 0.2).max() < 0.02


def test_inverse_value_ranges(inv):
    # App. C.2: every token of train and test in 20..100, of the OOD set in 101..200
    for split in ("train", "test"):
        tokens = inv[split].tokens
        assert tokens.min() == 20 and tokens.max() == 100, split
    assert inv["ood"].tokens.min() == 101 and inv["ood"].tokens.max() == 200
    assert INVERSE_VOCAB == 201


def test_inverse_split_rule_examples():
    """App. C.2: test-only iff all three elements share one congruence class mod 3."""
    assert is_test_set(np.array([21, 24, 99]))  # all 0 mod 3
    assert is_test_set(np.array([22, 25, 97]))  # all 1 mod 3
    assert not is_test_set(np.array([21, 24, 98]))  # sum 143, classes 0, 0, 2
    assert not is_test_set(np.array([20, 21, 22]))  # sum 63 = 0 mod 3, classes differ


def test_inverse_train_test_disjoint_sets(inv):
    keys_tr, *_ = parse_inverse(inv["train"].tokens, 3)
    keys_te, *_ = parse_inverse(inv["test"].tokens, 3)
    sets_tr = {tuple(s) for s in np.sort(keys_tr[:, 0], axis=1).tolist()}
    sets_te = {tuple(s) for s in np.sort(keys_te[:, 0], axis=1).tolist()}
    assert not sets_tr & sets_te
    assert all(len({x % 3 for x in s}) > 1 for s in sets_tr)
    assert all(len({x % 3 for x in s}) == 1 for s in sets_te)
    # the test sets cover all three classes; the OOD sets carry no residue condition
    assert {s[0] % 3 for s in sets_te} == {0, 1, 2}
    assert 0.05 < is_test_set(inv["ood"].meta["numbers"]).mean() < 0.2


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
    assert tasks.PAPER_N_TRAIN == 300_000 == CompositeConfig().n_train
    inverse = InverseConfig()  # App. C.2: 100,000 samples, 80/10/10%
    assert tasks.PAPER_INVERSE_SIZES == (inverse.n_train, inverse.n_test, inverse.n_ood)
