"""Synthetic data of the anchor study: the composite task (App. C.1) and the inverse
sequence matching task (App. C.2) of Chen, Lin, Wang, Xu, "Achilles' Heel of Mamba:
Essential difficulties of the Mamba architecture demonstrated by synthetic data"
(NeurIPS 2025, arXiv 2509.17514). The composite task is the anchor-function task of
Zhang et al., "Initialization is Critical to Whether Transformers Fit Composite Functions
by Reasoning or Memorizing" (NeurIPS 2024).

Every split is a :class:`TaskData` of numpy int64 arrays (``torch.from_numpy`` shares their
memory; :meth:`TaskData.tensors` does it for every field). Generation is vectorised and
deterministic in ``seed``: each split draws from its own child of
``np.random.SeedSequence(seed)``, so changing the size of one split leaves the others
unchanged.

Composite task (App. C.1)
-------------------------
Sequence of ``SEQ_LEN = 8`` tokens: one key ``x`` in ``KEY_MIN..KEY_MAX`` (20..100) at
position ``p``, the anchor pair ``(a, b)`` at ``p+1`` and ``p+2`` (so ``p`` in 0..5), every
other token uniform in 20..100. Anchors 1, 2, 3, 4 shift by +5, +1, -2, -8 and the label is
``x + s_a + s_b``, except the pair (3, 4), which maps to ``x - 6``. All 16 ordered pairs
(repeats such as (1, 1) included) are used except (4, 3), which is held out of training.

- Split by key residue (App. C.1): "each position is associated with a congruence class
  modulo 8 ... key 33 cannot appear in the first position, as it belongs to the congruence
  class 1 mod 8, which is aligned with the first index". So the k-th position (1-based)
  holds class ``k mod 8``: the key at 0-based position ``p`` is test-only iff
  ``x = p + 1 (mod 8)`` (:func:`position_class`). A key value is thus seen in training at
  the other positions but never at its own. Keys = 7 or 0 (mod 8) never meet their
  position (the key sits at p <= 5, classes 1..6), so such keys are train-only.
- ``train``: pairs other than (4, 3), keys not test-only. ``test``: pairs other than (4, 3),
  test-only keys (test accuracy on the seen pairs). ``heldout``: pair (4, 3), with keys under
  the test rule too ("the test set contains both symmetric and compositional instances of
  pair 43", App. C.1), scored by ``labels_composite = x + s_4 + s_3 = x - 10`` (the
  compositional solution; also ``labels``) and ``labels_symmetric = x - 6`` (the label of
  the mirror pair (3, 4)).
- Labels reach ``100 + 5 + 5 = 110`` and down to ``20 - 8 - 8 = 4``; tokens are 1..100, so
  ``COMPOSITE_VOCAB = 111`` (ids 0..110) covers every token and label; id 0 is unused.

Inverse sequence matching task (App. C.2)
-----------------------------------------
A generating set of three distinct numbers ``{u, v, w}``; five of its six permutations (the
omitted one and the order of the five uniform at random) are shown as key sequences, each
followed by a separator, "a random token that does not belong to the generation set"; then
``3 L`` filler tokens (``L = n_layers``: the pure convolutional receptive field of L layers
of kernel 4), random and outside the set too, so no key fuses with the query through the
convolutions; then the query, one of the five keys (chosen uniformly) reversed. The label is
the index 0..4 of the key equal to ``reversed(query)`` (chance 20%). Length
``5 * (3 + 1) + 3 L + 3`` (:func:`inverse_seq_len`; 29 for two layers). Reversal pairs the
six permutations into three pairs, so in 4 of 5 samples the query also equals another shown
key literally: matching the query literally gives the wrong index.

- Values (App. C.2): train and test draw every token from ``ID_RANGE = 20..100``, OOD from
  ``OOD_RANGE = 101..200``; separators and fillers come from the sample's own range,
  excluding its three numbers.
- Split (App. C.2): a set is test-only when its three elements are all in the same
  congruence class mod 3 (:func:`is_test_set`; about 10% of the sets of 20..100); train sets
  are the others, so train and test are disjoint as sets. ``ood`` draws sets from 101..200
  "not subject to any congruence constraints". The paper's sizes are 80,000 / 10,000 /
  10,000 (80/10/10% of 100,000).
- ``INVERSE_VOCAB = 201`` (ids 0..200; 0..19 never occur as tokens). Labels 0..4 are class
  indices (they fit in the vocabulary too, for a model that reads the answer off its token
  logits).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields

import numpy as np

from sweeplab.errors import ConfigError

# ---- composite task (App. C.1) -------------------------------------------------------------

SEQ_LEN = 8
KEY_MIN, KEY_MAX = 20, 100
ANCHORS = (1, 2, 3, 4)
SHIFTS = {1: 5, 2: 1, 3: -2, 4: -8}
SPECIAL_PAIR, SPECIAL_SHIFT = (3, 4), -6  # (3, 4) maps to key - 6, not key + s_3 + s_4
HELDOUT_PAIR = (4, 3)
RESIDUE_MOD = 8
N_KEY_POSITIONS = SEQ_LEN - 2  # key at p, anchors at p+1, p+2
PAPER_N_TRAIN = 300_000
COMPOSITE_VOCAB = KEY_MAX + 2 * max(SHIFTS.values()) + 1  # 111: ids 0..110
SEEN_PAIRS = tuple((a, b) for a in ANCHORS for b in ANCHORS if (a, b) != HELDOUT_PAIR)

# ---- inverse sequence matching task (App. C.2) ---------------------------------------------

ID_RANGE = (20, 100)
OOD_RANGE = (101, 200)
N_KEYS = 5
INVERSE_RESIDUE_MOD = 3
PAPER_INVERSE_SIZES = (80_000, 10_000, 10_000)  # train, test, OOD: 80/10/10% of 100,000
INVERSE_VOCAB = OOD_RANGE[1] + 1  # 201: ids 0..200
PERMUTATIONS = np.array(list(itertools.permutations(range(3))), dtype=np.int64)  # (6, 3)
# _SHOWN[o]: the five permutation ids other than o; _ORDERS: the 120 orders of five slots
_SHOWN = np.array([[i for i in range(6) if i != o] for o in range(6)], dtype=np.int64)
_ORDERS = np.array(list(itertools.permutations(range(N_KEYS))), dtype=np.int64)


@dataclass(frozen=True)
class TaskData:
    """One split: ``tokens`` (N, T) int64 and ``labels`` (N,) int64, numpy.

    ``labels_composite`` / ``labels_symmetric`` are set on the composite held-out split only.
    ``meta`` holds per-sample arrays for metrics and checks: composite ``key``, ``key_pos``,
    ``anchor_a``, ``anchor_b``; inverse ``numbers`` (N, 3, ascending), ``keys`` (N, 5, 3),
    ``separators`` (N, 5), ``fillers`` (N, 3L) and ``query_index`` (the label).
    """

    tokens: np.ndarray
    labels: np.ndarray
    labels_composite: np.ndarray | None = None
    labels_symmetric: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def tensors(self, device=None) -> dict:
        """Every array field (and ``meta`` entry) as a torch LongTensor on ``device``."""
        import torch

        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name] = torch.from_numpy(value).to(device)
        out.update({k: torch.from_numpy(v).to(device) for k, v in self.meta.items()})
        return out


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(name, value, "a non-negative integer")


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed", seed, "a non-negative integer")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


# ---- composite ------------------------------------------------------------------------------


def composite_label(key: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label of the composite task (App. C.1): ``key + s_a + s_b``; pair (3, 4) -> ``key - 6``.

    Applied to (4, 3) it gives the compositional answer ``key - 10``.
    """
    shift = np.zeros(max(ANCHORS) + 1, dtype=np.int64)
    for anchor, s in SHIFTS.items():
        shift[anchor] = s
    key, a, b = (np.asarray(v, dtype=np.int64) for v in (key, a, b))
    label = key + shift[a] + shift[b]
    special = (a == SPECIAL_PAIR[0]) & (b == SPECIAL_PAIR[1])
    return np.where(special, key + SPECIAL_SHIFT, label)


def position_class(key_pos: np.ndarray) -> np.ndarray:
    """Residue class mod 8 of 0-based position p: ``(p + 1) mod 8`` (App. C.1: the first
    position holds class 1, so key 33 = 1 (mod 8) may not sit there in training)."""
    return (np.asarray(key_pos) + 1) % RESIDUE_MOD


def is_test_key(key: np.ndarray, key_pos: np.ndarray) -> np.ndarray:
    """Split rule (App. C.1): a key at 0-based position p is test-only iff
    ``key = p + 1 (mod 8)``, the class of its position (:func:`position_class`)."""
    return np.asarray(key) % RESIDUE_MOD == position_class(key_pos)


def _keys_for(test: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per key position, the allowed keys (padded table) and how many there are."""
    all_keys = np.arange(KEY_MIN, KEY_MAX + 1)
    allowed = [all_keys[is_test_key(all_keys, p) == test] for p in range(N_KEY_POSITIONS)]
    counts = np.array([len(k) for k in allowed])
    table = np.zeros((N_KEY_POSITIONS, counts.max()), dtype=np.int64)
    for p, k in enumerate(allowed):
        table[p, : len(k)] = k
    return table, counts


def _composite(n: int, rng: np.random.Generator, split: str) -> TaskData:
    tokens = rng.integers(KEY_MIN, KEY_MAX + 1, size=(n, SEQ_LEN), dtype=np.int64)
    key_pos = rng.integers(0, N_KEY_POSITIONS, size=n)
    table, counts = _keys_for(test=split != "train")  # held-out pair: test keys (App. C.1)
    key = table[key_pos, (rng.random(n) * counts[key_pos]).astype(np.int64)]
    if split == "heldout":
        pairs = np.broadcast_to(np.array(HELDOUT_PAIR, dtype=np.int64), (n, 2))
    else:
        pairs = np.array(SEEN_PAIRS, dtype=np.int64)[rng.integers(0, len(SEEN_PAIRS), size=n)]
    rows = np.arange(n)
    tokens[rows, key_pos] = key
    tokens[rows, key_pos + 1] = pairs[:, 0]
    tokens[rows, key_pos + 2] = pairs[:, 1]
    labels = composite_label(key, pairs[:, 0], pairs[:, 1])
    meta = {"key": key, "key_pos": key_pos.astype(np.int64),
            "anchor_a": pairs[:, 0].copy(), "anchor_b": pairs[:, 1].copy()}
    if split != "heldout":
        return TaskData(tokens, labels, meta=meta)
    return TaskData(tokens, labels, labels_composite=labels,
                    labels_symmetric=key + SPECIAL_SHIFT, meta=meta)


def composite_splits(n_train: int, n_test: int, n_heldout: int, seed: int) -> dict[str, TaskData]:
    """Train, test and held-out splits of the composite task (App. C.1; module docstring).

    Keys ``"train"``, ``"test"``, ``"heldout"``; the held-out split carries
    ``labels_composite`` (key - 10, also ``labels``) and ``labels_symmetric`` (key - 6).
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_heldout", n_heldout)):
        _check_count(name, value)
    rngs = _rngs(seed, 3)
    sizes = {"train": n_train, "test": n_test, "heldout": n_heldout}
    return {split: _composite(int(n), rng, split) for (split, n), rng in zip(sizes.items(), rngs)}


# ---- inverse sequence matching --------------------------------------------------------------


def inverse_seq_len(n_layers: int) -> int:
    """Sequence length of the inverse task (App. C.2): S = 5 (3 + 1) + 3 L + 3."""
    return N_KEYS * 4 + 3 * n_layers + 3


def is_test_set(numbers: np.ndarray) -> np.ndarray:
    """Split rule (App. C.2): a generating set is test-only iff all three of its elements
    lie in the same congruence class mod 3; training sets are the others."""
    residues = np.asarray(numbers) % INVERSE_RESIDUE_MOD
    return (residues == residues[..., :1]).all(axis=-1)


def _distinct_triples(n: int, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """n sets of 3 distinct numbers uniform in lo..hi, each sorted ascending."""
    a = rng.integers(0, hi - lo + 1, size=n)
    b = rng.integers(0, hi - lo, size=n)
    c = rng.integers(0, hi - lo - 1, size=n)
    b = b + (b >= a)
    lo_ab, hi_ab = np.minimum(a, b), np.maximum(a, b)
    c = c + (c >= lo_ab)
    c = c + (c >= hi_ab)
    return np.sort(np.stack([a, b, c], axis=1), axis=1) + lo


def _same_class_triples(n: int, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """n sets uniform among the 3-sets of lo..hi whose elements share one class mod 3."""
    values = np.arange(lo, hi + 1)
    classes = [values[values % INVERSE_RESIDUE_MOD == r] for r in range(INVERSE_RESIDUE_MOD)]
    sizes = np.array([len(c) for c in classes], dtype=float)
    weights = sizes * (sizes - 1) * (sizes - 2)  # proportional to C(size, 3)
    r = rng.choice(INVERSE_RESIDUE_MOD, size=n, p=weights / weights.sum())
    out = np.empty((n, 3), dtype=np.int64)
    for k, members in enumerate(classes):
        rows = np.flatnonzero(r == k)
        idx = _distinct_triples(len(rows), 0, len(members) - 1, rng)
        out[rows] = members[idx]
    return out


def _sets(n: int, split: str, rng: np.random.Generator) -> np.ndarray:
    if split == "ood":
        return _distinct_triples(n, *OOD_RANGE, rng)
    if split == "test":
        return _same_class_triples(n, *ID_RANGE, rng)
    out, have = np.empty((n, 3), dtype=np.int64), 0
    while have < n:  # rejection of the test sets: acceptance about 90%
        cand = _distinct_triples(int(1.2 * (n - have)) + 64, *ID_RANGE, rng)
        cand = cand[~is_test_set(cand)][: n - have]
        out[have : have + len(cand)] = cand
        have += len(cand)
    return out


def _outside(numbers: np.ndarray, length: int, lo: int, hi: int,
             rng: np.random.Generator) -> np.ndarray:
    """(N, length) tokens uniform in lo..hi excluding each row's three (sorted) numbers."""
    v = rng.integers(0, hi - lo + 1 - 3, size=(len(numbers), length))
    for k in range(3):  # ascending excluded values: shift past each in turn
        v = v + (v >= (numbers[:, k : k + 1] - lo))
    return v + lo


def _inverse(n: int, n_layers: int, rng: np.random.Generator, split: str) -> TaskData:
    lo, hi = OOD_RANGE if split == "ood" else ID_RANGE
    numbers = _sets(n, split, rng)
    omitted = rng.integers(0, len(PERMUTATIONS), size=n)
    orders = _ORDERS[rng.integers(0, len(_ORDERS), size=n)]
    ids = np.take_along_axis(_SHOWN[omitted], orders, axis=1)
    perms = PERMUTATIONS[ids]  # (n, 5, 3): five distinct permutations in uniform random order
    keys = np.take_along_axis(numbers[:, None, :], perms, axis=2)
    label = rng.integers(0, N_KEYS, size=n)
    query = keys[np.arange(n), label, ::-1]
    separators = _outside(numbers, N_KEYS, lo, hi, rng)
    fillers = _outside(numbers, 3 * n_layers, lo, hi, rng)
    shown = np.concatenate([keys, separators[:, :, None]], axis=2)
    tokens = np.concatenate([shown.reshape(n, N_KEYS * 4), fillers, query], axis=1)
    meta = {"numbers": numbers, "keys": keys, "separators": separators, "fillers": fillers,
            "query_index": label.astype(np.int64)}
    return TaskData(tokens.astype(np.int64), label.astype(np.int64), meta=meta)


def inverse_splits(n_train: int, n_test: int, n_ood: int, n_layers: int,
                   seed: int) -> dict[str, TaskData]:
    """Train, test and OOD splits of the inverse sequence task (App. C.2; module docstring).

    Keys ``"train"``, ``"test"``, ``"ood"``; tokens are ``(N, inverse_seq_len(n_layers))``.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_ood", n_ood)):
        _check_count(name, value)
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or n_layers < 1:
        raise ConfigError("n_layers", n_layers, "a positive integer")
    rngs = _rngs(seed, 3)
    sizes = {"train": n_train, "test": n_test, "ood": n_ood}
    return {split: _inverse(int(n), int(n_layers), rng, split)
            for (split, n), rng in zip(sizes.items(), rngs)}
