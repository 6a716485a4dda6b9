"""The content-addressed cache: keys follow content, entries read back bit for bit, and a
cache that is off, unreadable or unwritable only costs speed (sweeplab.core.cache)."""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.core import cache


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_key_follows_values_dtype_shape_and_settings():
    a = np.arange(6, dtype=np.float64)
    base = cache.content_key("k", a, {"p": 1.5})
    assert base == cache.content_key("k", a.copy(), {"p": 1.5})
    assert base == cache.content_key("k", np.asfortranarray(a), {"p": 1.5})
    assert base != cache.content_key("k", a.astype(np.float32), {"p": 1.5})
    assert base != cache.content_key("k", a.reshape(2, 3), {"p": 1.5})
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)  # one ulp
    assert base != cache.content_key("k", b, {"p": 1.5})
    assert base != cache.content_key("k", a, {"p": 2.0})
    assert base != cache.content_key("other", a, {"p": 1.5})


def test_store_and_load_are_bit_for_bit(root):
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal(7), "m": rng.standard_normal((3, 2)).astype(np.float32)}
    assert cache.load("ns", "ab" * 32) is None
    assert cache.store("ns", "ab" * 32, arrays, {"warnings": ["x"], "separable": True})
    got, meta = cache.load("ns", "ab" * 32)
    assert meta == {"warnings": ["x"], "separable": True}
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and got[name].tobytes() == arr.tobytes()
    assert len(list(root.rglob("*.npz"))) == 1 and not list(root.rglob("*.tmp"))


def test_a_damaged_entry_counts_as_absent_and_is_rewritten(root):
    assert cache.store("ns", "cd" * 32, {"w": np.ones(3)})
    (entry,) = root.rglob("*.npz")
    entry.write_bytes(b"not a zip")
    assert cache.load("ns", "cd" * 32) is None
    assert cache.store("ns", "cd" * 32, {"w": np.ones(3)})
    assert cache.load("ns", "cd" * 32)[0]["w"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("word", ["off", "0", "OFF"])
def test_off_stores_nothing(tmp_path, monkeypatch, word):
    monkeypatch.setenv("SWEEPLAB_CACHE", word)
    assert cache.cache_root() is None
    assert not cache.store("ns", "ef" * 32, {"w": np.ones(2)})
    assert cache.load("ns", "ef" * 32) is None


def test_an_unwritable_cache_only_costs_speed(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("SWEEPLAB_CACHE", str(blocker / "cache"))
    assert not cache.store("ns", "01" * 32, {"w": np.ones(2)})
    assert cache.load("ns", "01" * 32) is None


def test_default_location_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("SWEEPLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "sweeplab"
