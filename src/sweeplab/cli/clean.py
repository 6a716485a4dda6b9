"""``sweeplab clean DIR --checkpoints|--datasets [--dry-run] [--include-unfinished]``.

Frees disk space: ``--checkpoints`` deletes ``checkpoints/*.pt``, ``--datasets`` the
``dataset.npz`` copy of the data each run trained on (the decision-boundary figures of
a later analysis need it). Only finished (``done``) runs' files go by default, because
an unfinished run's checkpoint is what resumes it; ``--include-unfinished`` deletes
those of failed, interrupted and stale runs too. A run still running keeps its files.
Says how much it freed (``freed 12.3 MB in 40 files``); ``--dry-run`` deletes nothing.
"""

from __future__ import annotations

from pathlib import Path

from sweeplab.cli.console import say
from sweeplab.cli.errors import existing_dir
from sweeplab.cli.flags import OneLineParser, UsageError, reject_unknown

ALLOWED = ["--checkpoints", "--datasets", "--dry-run", "--include-unfinished"]


def main(argv: list[str]) -> int:
    from sweeplab.core.run_dirs import find_run_dirs
    from sweeplab.execute.run_files import cleanable, human_size

    parser = OneLineParser(prog="sweeplab clean", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a grid directory, a runs root or a run directory")
    parser.add_argument("--checkpoints", action="store_true", help="delete checkpoints/*.pt")
    parser.add_argument("--datasets", action="store_true", help="delete dataset.npz files")
    parser.add_argument("--dry-run", "--dry_run", action="store_true",
                        help="list what would be deleted; delete nothing")
    parser.add_argument("--include-unfinished", "--include_unfinished", action="store_true",
                        help="also failed, interrupted and stale runs' files")
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, ALLOWED, "sweeplab clean")
    if not (ns.checkpoints or ns.datasets):
        raise UsageError("nothing to delete: give --checkpoints, --datasets or both "
                         "(see 'sweeplab clean --help')")
    root = existing_dir(ns.dir)
    items = cleanable(find_run_dirs(root), ns.checkpoints, ns.datasets, ns.include_unfinished)
    doomed = [c for c in items if c.keep is None]
    kept = [c for c in items if c.keep is not None]

    freed = deleted = 0
    failures: list[str] = []
    for item in doomed:
        if ns.dry_run:
            say(f"would delete {item.path} ({human_size(item.size)})")
            freed += item.size
            deleted += 1
            continue
        try:
            item.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            failures.append(f"{item.path}: {exc.strerror or exc}")
            continue
        freed += item.size
        deleted += 1
        _remove_if_empty(item.path.parent)
    verb = "would free" if ns.dry_run else "freed"
    files = f"{deleted} file{'' if deleted == 1 else 's'}"
    say(f"{verb} {human_size(freed)} in {files} under {root}")
    by_reason: dict[str, list[int]] = {}
    for item in kept:
        by_reason.setdefault(str(item.keep), []).append(item.size)
    for reason, sizes in by_reason.items():
        hint = " (--include-unfinished deletes them too)" if reason == "unfinished" else ""
        say(f"kept {len(sizes)} file{'' if len(sizes) == 1 else 's'} "
            f"({human_size(sum(sizes))}) of {reason} runs{hint}")
    for failure in failures:
        say(f"could not delete {failure}")
    return 1 if failures else 0


def _remove_if_empty(folder: Path) -> None:
    """Remove a run's emptied ``checkpoints/`` folder (never the run directory itself)."""
    from sweeplab.core.checkpoint import CHECKPOINT_DIR

    if folder.name != CHECKPOINT_DIR:
        return
    try:
        folder.rmdir()
    except OSError:
        pass
