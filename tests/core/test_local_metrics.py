"""metrics.jsonl is the source of truth, appended line by line; metrics.csv mirrors it."""

from __future__ import annotations

import csv
import json
import math

from sweeplab.track.local import LocalMetricsWriter, read_metrics


def _csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_rows_are_on_disk_as_soon_as_logged(tmp_path):
    w = LocalMetricsWriter(tmp_path)
    w.log(0, {"loss": 1.0, "acc": 0.5})
    w.log(1, {"loss": 0.5, "acc": float("nan")})
    # not closed: a killed process must still have every logged line
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows == [{"epoch": 0, "loss": 1.0, "acc": 0.5}, {"epoch": 1, "loss": 0.5, "acc": None}]
    assert [r["loss"] for r in _csv(tmp_path / "metrics.csv")] == ["1.0", "0.5"]
    w.close()


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
