"""``sweeplab ls``: where/sort/columns on real runs, and the SQLite index behind it."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3

import pytest
from monitor_helpers import grid_of, update_status

from sweeplab.cli.main import main
from sweeplab.core.run_index import RunIndex, index_path


def ls_json(capsys, *args) -> list[dict]:
    capsys.readouterr()
    assert main(["ls", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def names(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]


def test_where_combines_text_and_numeric_comparisons(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    assert sorted(names(ls_json(capsys, ok, "--where", "potential=lp"))) == [
        "L=1,potential=lp", "L=2,potential=lp"]
    assert names(ls_json(capsys, ok, "--where", "L>=2 and potential!=quadratic")) == [
        "L=2,potential=lp"]
    assert sorted(names(ls_json(capsys, ok, "--where",
                                "(L=1 or L=2) and not potential=lp"))) == [
        "L=1,potential=quadratic", "L=2,potential=quadratic"]
    # numbers compare as numbers: 10 > 2 although "10" < "2" as text
    assert names(ls_json(capsys, ok, "--where", "L<10 and L>1.5", "--sort", "potential")) == [
        "L=2,potential=lp", "L=2,potential=quadratic"]
    assert ls_json(capsys, ok, "--where", "L=2.0 and potential=lp", "--columns", "name,L") == [
        {"name": "L=2,potential=lp", "L": 2}]


def test_where_over_a_runs_root_finds_runs_of_every_grid(runs_root, capsys):
    bad = grid_of(runs_root, "bad").name
    rows = ls_json(capsys, runs_root, "--where", "state=failed",
                   "--columns", "name,state,lr,error")
    assert rows == [{"name": f"{bad}/lr=100", "state": "failed", "lr": 100.0,
                     "error": rows[0]["error"]}]
    assert rows[0]["error"].startswith("NonFiniteError")
    assert len(ls_json(capsys, runs_root)) == 7  # 4 + 2 grid runs and one single run
    assert len(ls_json(capsys, runs_root, "--where", "study=implicit-bias and state=done")) == 6
    assert names(ls_json(capsys, runs_root, "--where", "lr=0.1 and noise=1.5")) == [
        f"{bad}/lr=0.1"]


def test_sort_desc_limit_and_missing_values_last(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    rows = ls_json(capsys, ok, "--sort", "final.loss", "--desc", "--columns",
                   "name,final.loss")
    losses = [r["final.loss"] for r in rows]
    assert losses == sorted(losses, reverse=True) and len(losses) == 4
    assert ls_json(capsys, ok, "--sort", "final.loss", "--limit", "2",
                   "--columns", "name,final.loss") == sorted(rows, key=lambda r:
                                                           r["final.loss"])[:2]
    # the failed run has no final metrics: it sorts last either way
    bad = grid_of(runs_root, "bad")
    for order in ([], ["--desc"]):
        rows = ls_json(capsys, bad, "--sort", "final.loss", *order)
        assert names(rows) == ["lr=0.1", "lr=100"]


def test_default_columns_are_name_state_the_varying_keys_and_the_sort_key(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    capsys.readouterr()
    assert main(["ls", str(ok), "--format", "csv", "--sort", "final.train_acc"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["name", "state", "potential", "L", "final.train_acc"]
    assert len(rows) == 5 and all(r[1] == "done" for r in rows[1:])
    assert main(["ls", str(ok)]) == 0
    table = capsys.readouterr().out
    assert "L=2,potential=quadratic" in table and "4 runs under" in table
    assert "potential" in table.splitlines()[0] and "lr" not in table.splitlines()[0]


def test_values_are_data_never_sql(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    assert ls_json(capsys, ok, "--where", "potential=\"lp' OR '1'='1\"") == []
    assert ls_json(capsys, ok, "--where", "potential='x\" or 1=1 --'") == []
    assert len(ls_json(capsys, ok)) == 4  # and the index is intact


@pytest.mark.parametrize("args,key,expect", [
    (["--where", "potentail=lp"], "where key=potentail",
     "did you mean potential? known keys: name, state"),
    (["--where", "L=2 and"], "where='L=2 and'", "expected a comparison"),
    (["--where", "(L=2"], "where=(L=2", "expected ')'"),
    (["--where", "L 2"], "where='L 2'", "expected one of = != < <= > >="),
    (["--where", "L=2 L=3"], "where='L=2 L=3'", "unexpected 'L'"),
    (["--where", "L='2"], "where=", "an unclosed quote"),
    (["--sort", "final.nope"], "sort=final.nope", "known keys:"),
    (["--columns", "name,bogus"], "columns=bogus", "known keys:"),
    (["--format", "xml"], "--format", "choose from"),
    (["--limit", "0"], "limit=0", ">= 1"),
    (["--bogus"], "--bogus", "for all flags"),
])
def test_bad_input_is_one_line_naming_the_key(runs_root, capsys, args, key, expect):
    capsys.readouterr()
    assert main(["ls", str(grid_of(runs_root, "ok")), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and key in err and expect in err, err


def test_missing_dir_is_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["ls"]) == 2
    assert "invalid dir=runs_out: no such directory" in capsys.readouterr().err


def test_index_rereads_only_changed_runs_and_drops_deleted_ones(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    with RunIndex.open(ok) as index:
        assert (index.stats.read, index.stats.total) == (4, 4)
    assert index_path(ok).is_file()
    with RunIndex.open(ok) as index:
        assert (index.stats.read, index.stats.removed) == (0, 0)  # nothing changed

    update_status(ok / "L=1,potential=lp", state="failed", error="ValueError: boom")
    with RunIndex.open(ok) as index:
        assert index.stats.read == 1
    rows = ls_json(capsys, ok, "--where", "state=failed", "--columns", "name,error")
    assert rows == [{"name": "L=1,potential=lp", "error": "ValueError: boom"}]

    shutil.rmtree(ok / "L=2,potential=lp")
    with RunIndex.open(ok) as index:
        assert (index.stats.read, index.stats.removed, index.stats.total) == (0, 1, 3)
    assert "L=2,potential=lp" not in names(ls_json(capsys, ok))

    shutil.copytree(ok / "L=1,potential=lp", ok / "extra")  # a new run appears
    with RunIndex.open(ok) as index:
        assert (index.stats.read, index.stats.total) == (1, 4)
    assert names(ls_json(capsys, ok, "--where", "not state=done")) == [
        "L=1,potential=lp", "extra"]

    (ok / "L=1,potential=quadratic" / "final.json").write_text('{"loss": 123.0}')
    assert ls_json(capsys, ok, "--where", "final.loss>100", "--columns", "name") == [
        {"name": "L=1,potential=quadratic"}]


@pytest.mark.parametrize("damage", ["garbage", "old_schema", "truncated"])
def test_an_unreadable_or_old_index_is_rebuilt(runs_root, capsys, damage):
    ok = grid_of(runs_root, "ok")
    expected = ls_json(capsys, ok, "--columns", "all")
    path = index_path(ok)
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    elif damage == "old_schema":
        path.unlink()
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE runs (path TEXT)")
            conn.execute("INSERT INTO runs VALUES ('x')")
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with RunIndex.open(ok) as index:
        assert index.location == str(path)
        assert index.stats.rebuilt and index.stats.read == 4
    assert ls_json(capsys, ok, "--columns", "all") == expected
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (4,)


def test_where_no_index_can_be_written_the_query_runs_from_memory(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    shutil.rmtree(ok / ".sweeplab", ignore_errors=True)  # the grid driver's lock folder
    (ok / ".sweeplab").write_text("a file where the index folder would go")
    with RunIndex.open(ok) as index:
        assert index.location == ":memory:" and index.stats.read == 4
    assert len(ls_json(capsys, ok, "--where", "L=1")) == 2


def test_a_run_directory_itself_lists_one_run_and_keeps_no_index_in_it(runs_root, capsys):
    run = grid_of(runs_root, "bad") / "lr=100"
    assert ls_json(capsys, run, "--columns", "name,state") == [
        {"name": "lr=100", "state": "failed"}]
    assert not (run / ".sweeplab").exists()


def test_an_empty_folder_has_no_runs(tmp_path, capsys):
    assert main(["ls", str(tmp_path)]) == 0
    assert "no runs under" in capsys.readouterr().out
    assert ls_json(capsys, tmp_path, "--where", "anything=1") == []


def test_table_at_80_columns_keeps_names_whole_and_hides_keys_that_do_not_apply(runs_root):
    """p (the lp exponent) is left empty for quadratic runs; run names never wrap."""
    import os
    import subprocess
    import sys

    spec = runs_root.parent / "p.yaml"
    spec.write_text("study: implicit-bias\nfixed: {epochs: 5, plots: false, n_samples: 32}\n"
                    "zip: {potential: [quadratic, lp, lp], p: [<default>, 3.0, 4.0]}\n")
    env = {**os.environ, "COLUMNS": "80"}
    grid = subprocess.run([sys.executable, "-m", "sweeplab", "grid", str(spec), "--out_dir",
                           str(runs_root), "--executor", "inline", "--tag", "p_grid"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert grid.returncode == 0, grid.stderr
    proc = subprocess.run([sys.executable, "-m", "sweeplab", "ls", str(runs_root),
                           "--where", "study=implicit-bias and n_samples=32"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["name", "state", "potential"] and "p" in header
    rows = {line.split()[0]: line.split() for line in lines[2:] if "done" in line}
    assert set(rows) == {"potential=quadratic", "potential=lp,p=3", "potential=lp,p=4"}
    assert rows["potential=quadratic"] == ["potential=quadratic", "done", "quadratic"]
    assert rows["potential=lp,p=4"] == ["potential=lp,p=4", "done", "lp", "4"]
    assert lines[-1].startswith("3 of 10 runs under ") and lines[-1].split(" where ")[0].endswith(
        "_p_grid")
    # machine formats keep every stored value
    csv_out = subprocess.run([sys.executable, "-m", "sweeplab", "ls", str(grid_of(runs_root,
                              "p_grid")), "--format", "csv", "--columns", "potential,p"],
                             capture_output=True, text=True, env=env, timeout=120).stdout
    assert "quadratic,1.5" in csv_out
