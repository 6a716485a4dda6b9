"""``sweeplab check DIR``: are the runs under DIR sound? One problem per line.

Every checkpoint must load, match its run's config hash and cover no more of
metrics.jsonl than the file holds; every finished run must have config.yaml,
status.json, final.json, provenance.json and a metrics.jsonl with no torn line; a run
that says ``running`` while its process (on this host) is gone is stale. Failed runs
are data, not problems (see ``sweeplab errors``). Exit status 1 when there are
problems, else 0.
"""

from __future__ import annotations

from sweeplab.cli.console import say
from sweeplab.cli.errors import existing_dir
from sweeplab.cli.flags import OneLineParser, reject_unknown


def main(argv: list[str]) -> int:
    from sweeplab.core.checkpoint import checkpoint_files
    from sweeplab.core.run_dirs import find_run_dirs
    from sweeplab.execute.run_files import check_run

    parser = OneLineParser(prog="sweeplab check", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a grid directory, a runs root or a run directory")
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, [], "sweeplab check")
    root = existing_dir(ns.dir)
    runs = find_run_dirs(root)
    n_problems = n_bad_runs = n_checkpoints = 0
    for run_dir in runs:
        n_checkpoints += len(checkpoint_files(run_dir))
        problems = check_run(run_dir)
        n_bad_runs += bool(problems)
        n_problems += len(problems)
        for problem in problems:
            say(f"{run_dir}: {problem}")
    what = (f"checked {len(runs)} run{'' if len(runs) == 1 else 's'} and {n_checkpoints} "
            f"checkpoint{'' if n_checkpoints == 1 else 's'} under {root}")
    if n_problems:
        say(f"{what}: {n_problems} problem{'' if n_problems == 1 else 's'} in "
                      f"{n_bad_runs} run{'' if n_bad_runs == 1 else 's'}")
        return 1
    say(f"{what}: no problems")
    return 0
