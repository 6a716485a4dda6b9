"""``sweeplab ls [DIR] [--where EXPR] [--sort KEY] [--desc] [--columns a,b] [--limit N]``.

Lists and queries the runs under DIR (default ``runs_out``), e.g.::

    sweeplab ls runs_out --where "potential=lp and (L=2 or L=3)" --sort final.angle_svm

Keys: config keys, ``final.<metric>`` (from final.json), ``name`` (the run's path under
DIR), ``state``, ``study``, ``duration_s``, ``started``, ``ended``, ``error``,
``config_hash``. Operators ``= != < <= > >=``, ``and``, ``or``, ``not``, parentheses;
values compare as numbers when both sides are numbers, else as text. Default columns:
name, state, the config keys that vary among the listed runs, and the sort key. The
table leaves a cell empty where its key does not apply to the run (``p`` of a quadratic
run: the study's config says which fields apply when) and shows names relative to the
grid directory when every run lies in one. ``--format`` table (terminal), csv or json
(every stored value, always). Backed by an index in
``DIR/.sweeplab/index.sqlite``, refreshed from the run directories on every call.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from sweeplab.cli.console import console, say
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.core.experiment import to_jsonable
from sweeplab.errors import ConfigError

ALLOWED = ["--where", "--sort", "--desc", "--columns", "--limit", "--format"]
FORMATS = ("table", "csv", "json")
_MISSING = object()


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="sweeplab ls", description=__doc__.splitlines()[0])
    p.add_argument("dir", nargs="?", default="runs_out",
                   help="a runs root, a grid directory or any folder of runs (default runs_out)")
    p.add_argument("--where", default=None, help="filter, e.g. 'potential=lp and L=2'")
    p.add_argument("--sort", default=None, help="sort by this key (default: name)")
    p.add_argument("--desc", action="store_true", help="sort in descending order")
    p.add_argument("--columns", default=None,
                   help="comma-separated keys to show, or 'all' (default: name, state, the "
                        "varying config keys, the sort key)")
    p.add_argument("--limit", type=int, default=None, help="show at most N runs")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format")
    return p


def main(argv: list[str]) -> int:
    from sweeplab.core.run_index import BUILTIN_KEYS, RunIndex
    from sweeplab.core.run_query import parse_where

    ns, extras = build_parser().parse_known_args(argv)
    reject_unknown(extras, ALLOWED, "sweeplab ls")
    where = parse_where(ns.where) if ns.where is not None else None
    if ns.limit is not None and ns.limit < 1:
        raise ConfigError("limit", ns.limit, "an integer >= 1")
    columns = None
    if ns.columns is not None:
        columns = [c.strip() for c in ns.columns.split(",") if c.strip()]
        if not columns:
            raise ConfigError("columns", ns.columns, "comma-separated keys, e.g. name,state,lr")
    root = Path(ns.dir)
    if not root.is_dir():
        raise ConfigError("dir", ns.dir, "no such directory (give a runs root or a grid "
                                         "directory)")

    with RunIndex.open(root) as index:
        if index.count() == 0:
            return _empty(root, ns.format)
        known = index.keys()
        if columns == ["all"]:
            columns = known
        elif columns is not None:
            index.check_keys("columns", columns)
        rows = index.query(where, sort=ns.sort, desc=ns.desc, limit=ns.limit)
        total = index.count()
    if columns is None:
        config_keys = [k for k in known if k not in BUILTIN_KEYS and not k.startswith("final.")]
        columns = ["name", "state"] + varying([r.values for r in rows], config_keys)
        if ns.sort and ns.sort not in columns:
            columns.append(ns.sort)
    records = [applicable(r.values) if ns.format == "table" else r.values for r in rows]
    table = [[r.get(c) for c in columns] for r in records]
    if ns.format == "json":
        data = [dict(zip(columns, values)) for values in table]
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2) + "\n")
    elif ns.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[cell(v) for v in values] for values in table])
        sys.stdout.write(buf.getvalue())
    else:
        prefix = _common_folder([str(r.get("name", "")) for r in records])
        if prefix and "name" in columns:
            at = columns.index("name")
            for values in table:
                values[at] = str(values[at])[len(prefix) + 1:]
        _print_table(columns, table)
        runs = f"{total} run{'' if total == 1 else 's'}"
        shown = f"{len(rows)} of {runs}" if len(rows) != total else runs
        under = root / prefix if prefix else root
        say(f"{shown} under {under}" + (f" where {ns.where}" if ns.where else ""))
    return 0


def applicable(values: dict[str, Any]) -> dict[str, Any]:
    """A run's values less the config keys that do not apply to it (p of a quadratic run).

    The run's study config says which fields apply when (``StudyConfig.field_applies``);
    a run of a study that is not installed here keeps every value.
    """
    from sweeplab.core.registry import get_study
    from sweeplab.errors import SweeplabError

    try:
        cls = get_study(str(values.get("study"))).config
    except (SweeplabError, ImportError):
        return dict(values)
    return {k: v for k, v in values.items() if k not in cls.model_fields
            or cls.field_applies(k, values)}


def _common_folder(names: list[str]) -> str:
    """The folder every name lies in (a grid directory), or an empty string."""
    if len(names) < 2:
        return ""
    folders = {n.rsplit("/", 1)[0] if "/" in n else "" for n in names}
    return folders.pop() if len(folders) == 1 else ""


def varying(records: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The keys whose value differs between ``records`` (a missing value counts)."""
    out = []
    for key in keys:
        seen = {json.dumps(to_jsonable(r.get(key, _MISSING)), sort_keys=True, default=repr)
                for r in records}
        if len(seen) > 1:
            out.append(key)
    return out


def cell(value: Any) -> str:
    """A value as text for a table or CSV cell (bool ``true``, None empty, lists JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else cell(value)


def _print_table(columns: list[str], table: list[list[Any]]) -> None:
    out = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for i, name in enumerate(columns):
        numeric = all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
                      for r in table if r[i] is not None)
        out.add_column(name, justify="right" if numeric else "left", overflow="fold",
                       no_wrap=name == "name")
    for values in table:
        out.add_row(*(_short(v) for v in values))
    console.print(out, markup=False)


def _empty(root: Path, fmt: str) -> int:
    if fmt == "json":
        sys.stdout.write("[]\n")
    elif fmt == "table":
        say(f"no runs under {root}")
    return 0
