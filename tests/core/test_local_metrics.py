"""metrics.jsonl is the source of truth, appended in batches; metrics.csv mirrors it."""

from __future__ import annotations

import csv
import json
import math
import time

import numpy as np

from sweeplab.track.local import LocalMetricsWriter, read_metrics


def _csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_rows_are_on_disk_as_soon_as_logged_without_batching(tmp_path):
    w = LocalMetricsWriter(tmp_path, flush_seconds=0)
    w.log(0, {"loss": 1.0, "acc": 0.5})
    w.log(1, {"loss": 0.5, "acc": float("nan")})
    # not closed: a killed process must still have every logged line
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows == [{"epoch": 0, "loss": 1.0, "acc": 0.5}, {"epoch": 1, "loss": 0.5, "acc": None}]
    # the CSV is derived at each checkpoint (position) and at the end
    w.position()
    assert [r["loss"] for r in _csv(tmp_path / "metrics.csv")] == ["1.0", "0.5"]
    w.log(2, {"loss": 0.25, "acc": 1.0})
    assert len(_csv(tmp_path / "metrics.csv")) == 2
    w.close()
    assert [r["loss"] for r in _csv(tmp_path / "metrics.csv")] == ["1.0", "0.5", "0.25"]


def test_new_keys_rebuild_the_csv_with_the_union_of_columns(tmp_path):
    w = LocalMetricsWriter(tmp_path)
    w.log(0, {"loss": 1.0})
    w.log(1, {"loss": 0.5, "extra": 2.0})
    w.log(2, {"loss": 0.25, "extra": 3.0})
    w.close()
    rows = _csv(tmp_path / "metrics.csv")
    assert list(rows[0]) == ["epoch", "loss", "extra"]
    assert [r["extra"] for r in rows] == ["", "2.0", "3.0"]


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"epoch": 0, "loss": 1.0}) + "\n" + '{"epoch": 1, "lo')
    assert read_metrics(path) == [{"epoch": 0, "loss": 1.0}]


def test_appending_after_reopen_keeps_earlier_rows(tmp_path):
    w = LocalMetricsWriter(tmp_path)
    w.log(0, {"loss": 1.0})
    w.close()
    w = LocalMetricsWriter(tmp_path)
    w.log(1, {"loss": math.inf})
    w.close()
    assert [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1.0, None]


def test_batched_rows_reach_the_disk_within_flush_seconds(tmp_path):
    w = LocalMetricsWriter(tmp_path, flush_seconds=0.2)
    w.log(0, {"loss": 1.0})
    assert read_metrics(tmp_path / "metrics.jsonl") == []
    time.sleep(0.25)
    w.log(1, {"loss": 0.5})  # the first log after the interval writes both
    assert [r["epoch"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0, 1]
    w.log(2, {"loss": 0.25})
    assert w.position() == {"offset": (tmp_path / "metrics.jsonl").stat().st_size, "rows": 3}
    w.close()


def test_fast_and_general_paths_write_the_same_files(tmp_path):
    rows = [
        (0, {"loss": 0.1 + 0.2, "acc": 1, 'we"ird%key': 1e-300}),
        (1, {"loss": np.float64(0.25), "acc": 2, 'we"ird%key': float("nan")}),
        (2, {"loss": 1e308 * 10, "acc": True, 'we"ird%key': -0.0}),
        (3, {"loss": 3.0, "acc": 0, 'we"ird%key': 5e-324}),
    ]
    w = LocalMetricsWriter(tmp_path, flush_seconds=0)
    for step, metrics in rows:
        w.log(step, metrics)
    w.close()
    expected = [
        {"epoch": 0, "loss": 0.1 + 0.2, "acc": 1, 'we"ird%key': 1e-300},
        {"epoch": 1, "loss": 0.25, "acc": 2.0, 'we"ird%key': None},
        {"epoch": 2, "loss": None, "acc": True, 'we"ird%key': -0.0},
        {"epoch": 3, "loss": 3.0, "acc": 0, 'we"ird%key': 5e-324},
    ]
    assert read_metrics(tmp_path / "metrics.jsonl") == expected
    table = _csv(tmp_path / "metrics.csv")
    assert [float(r["loss"]) if r["loss"] else None for r in table] == [
        0.1 + 0.2, 0.25, None, 3.0]
    assert list(table[0]) == ["epoch", "loss", "acc", 'we"ird%key']


def test_truncating_at_an_offset_drops_later_rows_and_rebuilds_the_csv(tmp_path):
    w = LocalMetricsWriter(tmp_path)
    w.log(0, {"loss": 1.0})
    w.log(1, {"loss": 0.5})
    mark = w.position()
    w.log(2, {"loss": 0.25, "extra": 1.0})
    w.close()
    w = LocalMetricsWriter(tmp_path, truncate_at=mark["offset"])
    assert w.rows == 2
    w.log(2, {"loss": 0.2})
    w.close()
    assert [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1.0, 0.5, 0.2]
    table = _csv(tmp_path / "metrics.csv")
    assert list(table[0]) == ["epoch", "loss"]
    assert [r["loss"] for r in table] == ["1.0", "0.5", "0.2"]


def _awkward(step: int) -> dict:
    """Values whose text differs between encoders (orjson 0.00001, Python 1e-05), a
    non-finite one, a bool and an int."""
    return {"loss": 10.0 ** -(step + 3), "big": 1e20 * (step + 1), "ok": step % 2 == 0,
            "n": step, "bad": float("nan") if step == 3 else 0.5}


def test_a_resumed_csv_has_the_bytes_of_one_written_straight_on(tmp_path):
    """Resume truncates metrics.jsonl and rebuilds metrics.csv from it; the rebuilt rows
    must be encoded as the live writer encodes them, or a resumed run's CSV differs from
    an uninterrupted one (it did, once a loss fell below 1e-4 before the checkpoint)."""
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    straight.mkdir()
    cut.mkdir()
    w = LocalMetricsWriter(straight)
    for step in range(10):
        w.log(step, _awkward(step))
    w.close()
    w = LocalMetricsWriter(cut, flush_seconds=0)
    for step in range(5):
        w.log(step, _awkward(step))
    mark = w.position()
    for step in range(5, 7):  # logged after the checkpoint: the resume drops them
        w.log(step, _awkward(step))
    w.close()
    w = LocalMetricsWriter(cut, truncate_at=mark["offset"])
    for step in range(5, 10):
        w.log(step, _awkward(step))
    w.close()
    for name in ("metrics.jsonl", "metrics.csv"):
        assert (cut / name).read_bytes() == (straight / name).read_bytes(), name
    assert b"0.00001," in (straight / "metrics.csv").read_bytes()


def test_a_csv_rebuilt_for_new_columns_encodes_numbers_as_the_live_writer(tmp_path):
    import orjson

    rows = [{"loss": 1e-5}, {"loss": 2e-5, "extra": 1e-6}, {"loss": 3e-5, "extra": 2e-6}]
    w = LocalMetricsWriter(tmp_path, flush_seconds=0)
    for step, row in enumerate(rows):
        w.log(step, row)  # the second brings a new column: the CSV is rebuilt
    w.close()
    lines = (tmp_path / "metrics.csv").read_bytes().split(b"\r\n")
    assert lines[0] == b"epoch,loss,extra" and lines[-1] == b""
    for step, (line, row) in enumerate(zip(lines[1:-1], rows)):
        cells = [step, row["loss"], row.get("extra")]
        assert line.split(b",") == [b"" if v is None else orjson.dumps(v) for v in cells]


def test_lists_and_text_with_commas_and_quotes_are_cells_of_a_valid_csv(tmp_path):
    """A non-scalar value is one quoted cell (compact JSON text), never extra columns."""
    w = LocalMetricsWriter(tmp_path, flush_seconds=0)
    w.log(0, {"loss": 0.5, "v": [1, 2]})
    w.log(1, {"loss": 0.25, "v": [3, 4], "note": 'a, "b"\nc'})
    w.log(2, {"loss": 0.125, "v": {"k": 1.5}, "note": "plain"})
    w.close()
    with open(tmp_path / "metrics.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["epoch", "loss", "v", "note"]
    assert all(len(row) == 4 for row in table)
    assert table[1:] == [["0", "0.5", "[1,2]", ""], ["1", "0.25", "[3,4]", 'a, "b"\nc'],
                         ["2", "0.125", '{"k":1.5}', "plain"]]
    assert read_metrics(tmp_path / "metrics.jsonl")[1]["note"] == 'a, "b"\nc'


def test_a_resumed_csv_with_text_and_lists_equals_one_written_straight_on(tmp_path):
    def row(step):
        return {"loss": 1.0 / (step + 1), "tag": f"s,{step}\"", "v": [step, step + 0.5]}

    straight, cut = tmp_path / "straight", tmp_path / "cut"
    straight.mkdir()
    cut.mkdir()
    w = LocalMetricsWriter(straight)
    for step in range(8):
        w.log(step, row(step))
        if step == 3:
            w.position()
    w.close()
    w = LocalMetricsWriter(cut)
    for step in range(4):
        w.log(step, row(step))
    mark = w.position()
    w.log(4, row(4))
    w.close()
    w = LocalMetricsWriter(cut, truncate_at=mark["offset"])
    for step in range(4, 8):
        w.log(step, row(step))
    w.close()
    for name in ("metrics.jsonl", "metrics.csv"):
        assert (cut / name).read_bytes() == (straight / name).read_bytes(), name
