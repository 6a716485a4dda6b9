"""Running a command study's program for one run, and reading the metrics it reports.

The program runs in the run directory, in a process group of its own, with
``SWEEPLAB_RUN_DIR`` (that directory) and ``SWEEPLAB_METRICS`` (``logs/metrics_in.jsonl``,
the file :func:`sweeplab.log` appends to) in its environment and the spec's folder first
on ``PYTHONPATH``. Its stdout goes to ``logs/stdout.log`` and its stderr to
``logs/stderr.log``, line by line; metric lines (:mod:`sweeplab.protocol`) from either
stream are logged through the run's context as they arrive, so ``metrics.jsonl`` grows
while it runs.

- Exit status 0 with metrics: the run is done; its final metrics are the last value of
  each metric, updated by a final line.
- Exit status 0 without a single metric: the run fails, saying how to report them.
- Any other status: the run fails with the status and the last line of stderr.
- A malformed metric line is a warning (kept in ``final.json``), never a failure.
- A resumed run keeps the metric rows of its earlier attempts up to the first step the
  program reports again, so a script that continues from a checkpoint of its own loses
  no rows (:mod:`sweeplab.core.command_rows`).
- SIGTERM/SIGINT to sweeplab (Ctrl-C, Slurm, a stopped grid) goes on to the program's
  process group as SIGTERM; after :data:`STOP_GRACE_S` it is killed. The run is recorded
  interrupted and a resume runs it again. Should sweeplab die without a word
  (``kill -9``), the program gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from sweeplab.core.command import CommandSpec
from sweeplab.core.command_rows import EarlierRows
from sweeplab.core.config import StudyConfig
from sweeplab.protocol import (
    FINAL_KEY,
    FINAL_MARKER,
    METRICS_MARKER,
    RUN_DIR_ENV,
    STEP_KEY,
    numeric,
)

METRICS_FILE = "logs/metrics_in.jsonl"
"""Where the program may append its metric rows (``SWEEPLAB_METRICS``)."""
STOP_GRACE_S = 10.0
"""How long a program has to exit after SIGTERM before it is killed."""
POLL_S = 0.1
DRAIN_S = 2.0
"""How long output is still read after the program exited (a process it started may
hold its stdout open; that one is killed with the rest of the group)."""
MAX_WARNINGS = 5
"""Malformed lines reported one by one; beyond, only counted."""

_PR_SET_PDEATHSIG = 1


class CommandFailed(RuntimeError):
    """The program exited with a non-zero status, was killed, or reported no metric."""


def run_command(spec: CommandSpec, cfg: StudyConfig, ctx: Any) -> dict[str, Any]:
    """Run ``spec``'s program for the run of ``cfg`` in ``ctx.run_dir``; its final metrics."""
    from sweeplab.core.context import stop_points

    run_dir = Path(ctx.run_dir)
    values = {k: v for k, v in cfg.canonical().items() if k in spec.params}
    argv = spec.argv(values, str(run_dir))
    reader = MetricReader(ctx, EarlierRows(run_dir))
    metrics_file = run_dir / METRICS_FILE
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    metrics_file.write_bytes(b"")
    ctx.logger.info("running %s", " ".join(argv))
    with open(run_dir / "logs" / "stdout.log", "wb", buffering=0) as out_log, \
            open(run_dir / "logs" / "stderr.log", "wb", buffering=0) as err_log:
        child = _start(argv, run_dir, spec.base_dir, metrics_file)
        lines: queue.Queue[tuple[str, bytes | None]] = queue.Queue()
        pumps = [threading.Thread(target=_pump, args=(stream, name, lines), daemon=True)
                 for stream, name in ((child.stdout, "stdout"), (child.stderr, "stderr"))]
        for pump in pumps:
            pump.start()
        try:
            with open(metrics_file, "rb") as tail, \
                    stop_points(lambda: _stop(child)) as stop_point:
                _follow(child, lines, {"stdout": out_log, "stderr": err_log}, reader, tail,
                        stop_point)
        finally:
            if child.poll() is None:
                _stop(child)
            _kill_group(child)
            for pump in pumps:
                pump.join(timeout=5)
            reader.close()
    return _outcome(child.returncode, reader, run_dir)


def _follow(child: subprocess.Popen, lines: queue.Queue, logs: dict[str, IO[bytes]],
            reader: MetricReader, tail: IO[bytes], stop_point: Any) -> None:
    """Until the program has exited and its output is read: each line to its log and the
    reader, new rows of the metrics file to the reader, and a stop point every
    :data:`POLL_S` (a signal to sweeplab stops the program there)."""
    open_streams, exited = 2, None
    while True:
        if exited is None and child.poll() is not None:
            exited = time.monotonic()
        if exited is not None and (not open_streams or time.monotonic() - exited > DRAIN_S):
            break
        try:
            name, line = lines.get(timeout=POLL_S)
        except queue.Empty:
            name, line = "", b""
        if line is None:
            open_streams -= 1
        elif name:
            logs[name].write(line)
            reader.output_line(line, name)
        reader.file_lines(tail)
        stop_point("while the command ran")
    reader.file_lines(tail, final=True)


def _start(argv: list[str], run_dir: Path, base_dir: str, metrics: Path) -> subprocess.Popen:
    """The program, started in ``run_dir`` in a new session, told where things are."""
    env = dict(os.environ)
    env[RUN_DIR_ENV] = str(run_dir)
    env[METRICS_MARKER] = str(metrics)
    env["PYTHONUNBUFFERED"] = "1"  # metric lines arrive as printed, not at exit
    env["PYTHONPATH"] = os.pathsep.join(p for p in (base_dir, env.get("PYTHONPATH")) if p)
    try:
        return subprocess.Popen(
            argv, cwd=run_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise CommandFailed(f"cannot start {argv[0]}: {exc.strerror or exc}") from None


def _die_with_parent() -> Any:
    """A pre-exec hook asking the kernel for SIGTERM when this process dies (Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:  # in the child between fork and exec: no imports, no locks
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return hook


def _pump(stream: IO[bytes], name: str, out: queue.Queue) -> None:
    """Every line of ``stream`` into ``out`` as ``(name, line)``; ``(name, None)`` at its end."""
    try:
        for line in iter(stream.readline, b""):
            out.put((name, line))
    finally:
        out.put((name, None))
        stream.close()


def _stop(child: subprocess.Popen) -> None:
    """SIGTERM to the program's process group, SIGKILL after :data:`STOP_GRACE_S`."""
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        try:
            child.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def _kill_group(child: subprocess.Popen) -> None:
    """SIGKILL what the program started and left behind in its process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)


def _outcome(code: int, reader: MetricReader, run_dir: Path) -> dict[str, Any]:
    """Final metrics of a program that exited with ``code``, or :class:`CommandFailed`."""
    reader.summarize()
    if code != 0:
        how = (f"killed by {signal.Signals(-code).name}" if code < 0 and -code in
               signal.valid_signals() else f"exited with status {code}")
        last = _last_line(run_dir / "logs" / "stderr.log")
        raise CommandFailed(f"the command {how}" + (f": {last}" if last else "")
                            + " (logs/stderr.log)")
    if not reader.rows and not reader.final_values:
        raise CommandFailed(
            f"the command exited 0 but reported no metrics; print lines '{METRICS_MARKER} "
            '{"step": 1, "loss": 0.5}\' or call sweeplab.log(step, loss=...)')
    return {**reader.last, **reader.final_values}


def _last_line(path: Path) -> str:
    """The last non-empty line of a log (at most 300 characters), or ''."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class MetricReader:
    """Turns the program's metric lines into rows of the run's context."""

    def __init__(self, ctx: Any, earlier: EarlierRows | None = None):
        self.ctx = ctx
        self.earlier = earlier
        self.rows = 0
        self.next_step = 0
        self.last: dict[str, Any] = {}
        self.final_values: dict[str, Any] = {}
        self.bad = 0
        self._partial = b""
        self._file_line = 0
        self._stream_line = {"stdout": 0, "stderr": 0}

    def output_line(self, raw: bytes, stream: str = "stdout") -> None:
        """A line of the program's output: a metric or final line, or nothing to do."""
        self._stream_line[stream] += 1
        text = raw.decode("utf-8", "replace").strip()
        for marker, is_final in ((METRICS_MARKER, False), (FINAL_MARKER, True)):
            if text.startswith(marker) and text[len(marker):len(marker) + 1] in (" ", "\t", ""):
                where = f"{stream} line {self._stream_line[stream]}"
                obj = self._parse(text[len(marker):].strip(), where)
                if obj is not None:
                    (self._final if is_final else self._row)(obj, where)
                return

    def file_lines(self, tail: IO[bytes], final: bool = False) -> None:
        """New complete lines of the metrics file (and, at the end, a last partial one)."""
        data = self._partial + tail.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if final and self._partial.strip():
            lines.append(self._partial)
            self._partial = b""
        for raw in lines:
            self._file_line += 1
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            where = f"line {self._file_line} of {METRICS_MARKER}"
            obj = self._parse(text, where)
            if obj is None:
                continue
            if set(obj) == {FINAL_KEY} and isinstance(obj[FINAL_KEY], dict):
                self._final(obj[FINAL_KEY], where)
            else:
                self._row(obj, where)

    def close(self) -> None:
        """The earlier attempts' rows, if this one reported none; the record closed."""
        if self.earlier is not None:
            self._log_earlier(self.earlier.rest())
            self.earlier.close()

    def summarize(self) -> None:
        """One warning for the malformed lines not reported one by one."""
        if self.bad > MAX_WARNINGS:
            self.ctx.warn(f"{self.bad - MAX_WARNINGS} more malformed metric lines ignored")

    def _parse(self, text: str, where: str) -> dict[str, Any] | None:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return self._warn(f"{where}: not a JSON object ({exc.args[0].split(':')[0]}): "
                              f"{text[:80]}")
        if not isinstance(obj, dict):
            return self._warn(f"{where}: not a JSON object: {text[:80]}")
        return obj

    def _warn(self, message: str) -> None:
        self.bad += 1
        if self.bad <= MAX_WARNINGS:
            self.ctx.warn(f"malformed metric line ignored: {message}")
        return None

    def _numbers(self, obj: dict[str, Any], where: str) -> dict[str, Any]:
        return numeric(obj, lambda problem: self._warn(f"{where}: {problem}"))

    def _row(self, obj: dict[str, Any], where: str) -> None:
        step = obj.pop(STEP_KEY, None)
        if step is None:
            step = self.next_step
        elif isinstance(step, bool) or not isinstance(step, (int, float)) \
                or float(step) != int(step):
            self._warn(f"{where}: step={step!r} is not an integer")
            return
        metrics = self._numbers(obj, where)
        if not metrics:
            return
        if self.earlier is not None:
            self._log_earlier(self.earlier.before(int(step)))
            self.earlier.add(int(step), metrics)
        self._log(int(step), metrics)

    def _log_earlier(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        for step, metrics in rows:
            self._log(step, metrics)

    def _log(self, step: int, metrics: dict[str, Any]) -> None:
        self.ctx.log(step, **metrics)
        self.rows += 1
        self.next_step = step + 1
        self.last.update(metrics)

    def _final(self, obj: dict[str, Any], where: str) -> None:
        self.final_values.update(self._numbers(obj, where))

