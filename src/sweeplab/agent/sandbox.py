"""Run a candidate's code contained, and read back only what the agent can check.

Every use of a candidate's source (building it, running it forward, training it, its
predictions) happens in a child process (:mod:`sweeplab.agent.sandbox_child`); this
process never imports or executes it. The layers, outermost first:

- the static check (:mod:`sweeplab.agent.gate`), before any process starts (stage
  ``static``);
- kernel isolation (:mod:`sweeplab.agent.isolation`): bubblewrap's network, PID, IPC
  and UTS namespaces, a private read-only mount view in which only the work directory
  is writable and no secret exists, an unprivileged uid;
- a seccomp filter (:mod:`sweeplab.agent.seccomp`): no sockets, no new processes, no
  ``exec``, no ``ptrace``, ...;
- resource limits set by the child before it reads anything: ``RLIMIT_CPU``,
  ``RLIMIT_AS`` (``memory_mb`` of address space; torch takes about 0.6 GB after import),
  ``RLIMIT_FSIZE`` (``file_size_mb``), no core dumps; a wall-clock timeout after which
  the whole process group is killed (the child is reaped only after that kill, so its
  group id cannot have been reused); a stripped environment (``PATH``, ``HOME`` and
  ``TMPDIR`` at the work directory, one-thread settings; no proxies or tokens),
  ``/dev/null`` as stdin, every other descriptor closed;
- an audit hook in the child (a tripwire that also names what was attempted) and a cap
  on the files it creates (``max_files``).

The child's report is never trusted: the agent reads only a fixed vocabulary from it
(:data:`STAGES`, a code whose message this module writes, an exception's type name, a
line number, numbers), so no text the code produced (a file it read, its output) reaches
the registry or an LLM prompt. Its stdout and stderr stay in ``sandbox_stdout.txt`` /
``sandbox_stderr.txt`` in its work directory, for a person to read. Weights and
predictions come back as plain arrays (:mod:`sweeplab.agent.arrays`), from which the
agent computes every number it relies on (:mod:`sweeplab.agent.evaluate`).

Stages of a result: ``static``, ``isolation`` (the child could not set up its
isolation), ``import``, ``build``, ``forward``, ``shape`` (the output is not a finite
float tensor of shape ``(batch, num_classes)``), ``budget`` (more numbers in its state
than allowed), ``train``, ``score``, ``blocked`` (the code attempted something the audit
hook forbids, even if it caught the error), ``limit`` (memory, CPU time or file size
exhausted), ``timeout`` (wall clock), ``killed`` (died from a signal or exited without
a result), and ``ok``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.agent import seccomp
from sweeplab.agent.batching import NUMBERS, PATHS, REASONS
from sweeplab.agent.isolation import (
    CODE_DIR,
    INPUT_DIR,
    NOBODY,
    SANDBOX_DIR,
    Isolation,
    bwrap_command,
    find_bwrap,
    require,
)
from sweeplab.errors import SweeplabError

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
TRAINING_SCRIPT = Path(__file__).with_name("training.py")
MULTISEED_SCRIPT = Path(__file__).with_name("multiseed.py")
PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The sweeplab package (read-only in the sandbox, for :mod:`sweeplab.batched`)."""
RESULT_NAME = "sandbox_result.json"
LOGITS_NAME = "logits.npz"
STDOUT_NAME, STDERR_NAME = "sandbox_stdout.txt", "sandbox_stderr.txt"
MAX_RESULT_BYTES = 8 * 2**20
_POLL_S = 0.02
log = logging.getLogger("sweeplab.agent.sandbox")

STAGES = frozenset({"static", "isolation", "import", "build", "forward", "shape", "budget",
                    "train", "score", "blocked", "limit", "timeout", "killed", "ok"})
MESSAGES = {
    "exception": "the model code raised {exception}",
    "no_factory": "model.py defines no build() (nor the model class)",
    "not_a_module": "build() did not return a torch.nn.Module",
    "output_type": "forward did not return a tensor",
    "output_shape": "output shape {shape} != expected ({batch}, {classes})",
    "output_dtype": "the output is not a floating-point tensor",
    "output_nonfinite": "the output has NaN or infinite values on a zero input",
    "memory": "memory limit: address space capped at {memory_mb} MB",
    "file_size": "file size limit: files capped at {file_size_mb} MB",
    "over_budget": "its state of {state} numbers exceeds the budget of {max_params}",
    "no_parameters": "the model has no trainable parameters",
    "diverged": "the loss became non-finite in the first epoch (learning rate too high?)",
    "state_mismatch": "the returned weights do not fit the model its source builds",
    "isolation": "the sandbox could not set up its isolation ({exception})",
}
"""The child's codes and the messages the agent writes for them."""
BLOCKED_TEXT = {
    "network": "network access", "process": "starting or signalling a process",
    "native": "native code through ctypes", "import": "importing an unaudited module",
    "write_outside": "changing files outside the sandbox directory",
    "dir_outside": "opening a directory outside the sandbox directory",
    "link": "links or a change of directory",
    "files": "creating more files than allowed in the sandbox directory",
    "introspection": "introspection of the interpreter, its frames or its limits",
    "path_type": "a path of an unexpected type",
}
"""The audit hook's categories and how the agent names them."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")
_BLOCKED_LINE = re.compile(rb"^sandbox-blocked: ([a-z_]+)$", re.MULTILINE)


class SandboxError(SweeplabError, RuntimeError):
    """The sandbox itself could not run (not a failure of the model code)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed run.

    ``cpu_seconds``: CPU time (``RLIMIT_CPU``; start-up included, every thread counted).
    ``memory_mb``: address space (``RLIMIT_AS``). ``file_size_mb``: largest file the
    child may write (``RLIMIT_FSIZE``). ``max_files``: files and folders the code may
    create in its work directory (the audit hook counts them). ``timeout_s``: wall
    clock, after which the process group is killed. ``threads``: torch / OpenMP threads.
    """

    cpu_seconds: int = 60
    memory_mb: int = 4096
    file_size_mb: int = 64
    max_files: int = 32
    timeout_s: float = 120.0
    threads: int = 1


@dataclass(frozen=True)
class Layers:
    """The layers of the sandbox that can be switched off, for the sandbox's own tests
    only (each kernel layer is shown to hold on its own): ``static`` (the static check)
    and ``audit`` (the audit hook). Kernel isolation is chosen by :class:`Isolation`."""

    static: bool = True
    audit: bool = True


@dataclass
class ValidationResult:
    """What one sandboxed run found; ``ok`` only when every stage passed.

    ``stage`` is where it stopped (see the module docstring), ``error`` one line of the
    fixed vocabulary (None on success), ``output_shape`` the model's output shape with the
    batch, ``summary`` the child's model summary (numbers and torch layer type names
    only; a claim), ``blocked`` the categories of what the audit hook refused,
    ``isolation`` the isolation it ran under.
    """

    ok: bool
    stage: str
    error: str | None = None
    output_shape: tuple[int, ...] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    returncode: int | None = None
    blocked: list[str] = field(default_factory=list)
    isolation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["output_shape"] = list(self.output_shape) if self.output_shape else None
        return data


@dataclass
class ChildRun:
    """A child's verdict (:class:`ValidationResult`) and its sanitised per-seed reports
    and training path (``train``) or the path of its logits (``score``)."""

    result: ValidationResult
    seeds: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    workdir: Path | None = None
    probe: dict[str, Any] = field(default_factory=dict)


# --- isolation ----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def probe_isolation() -> Isolation:
    """The isolation this machine gives, checked by running a probe child through it
    (about 0.2 s, once per process): bubblewrap when its namespaces, uid and seccomp
    filter all hold, else ``none`` with the reason."""
    with_seccomp = seccomp.supported()
    bwrap = find_bwrap()
    if bwrap is None:
        return _probe_plain(with_seccomp, "bubblewrap (bwrap) is not installed")
    found = Isolation("bubblewrap", bwrap, drop_to_nobody=os.geteuid() == 0,
                      seccomp=with_seccomp)
    with tempfile.TemporaryDirectory(prefix="sweeplab-probe-") as tmp:
        try:
            run = run_child("probe", Path(tmp), {}, SandboxLimits(cpu_seconds=10, timeout_s=30),
                            found)
        except SandboxError as exc:
            return _probe_plain(with_seccomp, f"bubblewrap cannot start: {exc}")
        stderr = _read_tail(Path(tmp) / STDERR_NAME).strip().splitlines()
    problem = _probe_problem(run, found)
    if problem:
        detail = f" ({stderr[-1][:200]})" if stderr and run.result.stage != "ok" else ""
        return _probe_plain(with_seccomp, f"bubblewrap does not work here: {problem}{detail}")
    return found


def _probe_problem(run: ChildRun, isolation: Isolation) -> str | None:
    """What a probe child shows is missing from ``isolation``, or None."""
    probe = run.probe
    if run.result.stage != "ok" or not probe:
        return f"the probe ended at stage {run.result.stage}"
    if isolation.namespaces and probe.get("uid") != NOBODY:
        return f"the child runs as uid {probe.get('uid')}, not {NOBODY}"
    if isolation.namespaces and not set(probe.get("interfaces") or []) <= {"lo"}:
        return "the child shares the network namespace"
    if isolation.seccomp and (probe.get("seccomp") != 2 or probe.get("socket_created")):
        return "the seccomp filter is not in force"
    return None


@functools.lru_cache(maxsize=1)
def plain_isolation() -> Isolation:
    """Isolation ``none`` (what ``--unsafe-no-isolation`` asks for), with the seccomp
    filter where a probe child could install it."""
    return _probe_plain(seccomp.supported(), "--unsafe-no-isolation")


def choose_isolation(unsafe: bool) -> Isolation:
    """Kernel isolation (:func:`probe_isolation`), or :class:`IsolationUnavailable`
    where there is none; with ``unsafe``, none (:func:`plain_isolation`)."""
    return plain_isolation() if unsafe else require(probe_isolation(), unsafe=False)


def _probe_plain(with_seccomp: bool, reason: str) -> Isolation:
    """Isolation ``none``, with seccomp only if a probe child could install it."""
    found = Isolation("none", seccomp=with_seccomp, reason=reason)
    if not with_seccomp:
        return found
    with tempfile.TemporaryDirectory(prefix="sweeplab-probe-") as tmp:
        run = run_child("probe", Path(tmp), {}, SandboxLimits(cpu_seconds=10, timeout_s=30),
                        found)
    if _probe_problem(run, found):
        return Isolation("none", seccomp=False, reason=reason)
    return found


# --- running a child ------------------------------------------------------------------


def _environment(home: str, threads: int) -> dict[str, str]:
    """The child's whole environment."""
    n = str(max(1, int(threads)))
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
            "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_tail(path: Path, size: int = 65536) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_child(mode: str, workdir: Path, spec: dict[str, Any], limits: SandboxLimits,
              isolation: Isolation, inputs: dict[str, Path] | None = None,
              layers: Layers = Layers()) -> ChildRun:
    """Run the child in ``mode`` on ``workdir`` (holding ``model.py``) and read its
    verdict in the fixed vocabulary.

    ``spec`` adds the mode's fields (shapes, seeds, training settings, ...); ``inputs``
    (name -> file) are mounted read-only and named in ``spec["data"]`` /
    ``spec["weights"]`` by the caller through :func:`input_path`.
    """
    workdir = Path(workdir).resolve()
    inputs = dict(inputs or {})
    inside = isolation.namespaces
    full = {**spec, "mode": mode, "threads": limits.threads, "audit": layers.audit,
            "cpu_seconds": max(1, int(limits.cpu_seconds)), "memory_mb": int(limits.memory_mb),
            "file_size_mb": int(limits.file_size_mb), "max_files": int(limits.max_files),
            "workdir": SANDBOX_DIR if inside else str(workdir),
            "training": f"{CODE_DIR}/training.py" if inside else str(TRAINING_SCRIPT),
            "multiseed": f"{CODE_DIR}/multiseed.py" if inside else str(MULTISEED_SCRIPT),
            "library": f"{CODE_DIR}/lib" if inside else str(PACKAGE_DIR.parent),
            "drop_to": [NOBODY, NOBODY] if isolation.drop_to_nobody else None}
    if isolation.seccomp:
        full["seccomp"] = seccomp.filter_program(deny_exec=True).hex()
        full["seccomp_nr"] = seccomp.syscall_number("seccomp")
    child = f"{CODE_DIR}/sandbox_child.py" if inside else str(CHILD_SCRIPT)
    pass_fds: tuple[int, ...] = ()
    prefix: list[str] = []
    if inside:
        read_end, write_end = os.pipe()
        os.write(write_end, seccomp.filter_program(deny_exec=False)
                 if isolation.seccomp else b"")
        os.close(write_end)
        pass_fds = (read_end,)
        code = {"sandbox_child.py": CHILD_SCRIPT, "training.py": TRAINING_SCRIPT,
                "multiseed.py": MULTISEED_SCRIPT, "lib/sweeplab": PACKAGE_DIR}
        prefix = bwrap_command(isolation, workdir, inputs, code,
                               read_end if isolation.seccomp else None)
        if isolation.drop_to_nobody:  # 0755: bwrap enters it as root without capabilities
            os.chown(workdir, NOBODY, NOBODY)
            workdir.chmod(0o755)
    command = [*prefix, sys.executable, "-I", "-B", child, json.dumps(full)]
    result_path = workdir / RESULT_NAME
    result_path.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        with (workdir / STDOUT_NAME).open("wb") as out, (workdir / STDERR_NAME).open("wb") as err:
            process = subprocess.Popen(
                command, cwd=workdir, env=_environment(full["workdir"], limits.threads),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=pass_fds,
                start_new_session=True)
    except OSError as exc:
        raise SandboxError(f"cannot start the sandbox child: {exc}") from exc
    finally:
        for fd in pass_fds:
            os.close(fd)
    timed_out = False
    deadline = started + float(limits.timeout_s)
    try:
        # wait without reaping (WNOWAIT): the group id stays ours until the kill below
        while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() >= deadline:
                timed_out = True
                break
            time.sleep(_POLL_S)
    finally:  # also on Ctrl-C: nothing the code started outlives this call
        _kill_group(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = returncode = os.waitstatus_to_exitcode(status)
    if inside and 128 < returncode < 128 + 65:  # bwrap reports a signal as 128 + its number
        returncode = -(returncode - 128)
    run = _verdict(workdir, limits, spec, timed_out, returncode,
                   usage.ru_utime + usage.ru_stime, time.monotonic() - started)
    run.result.isolation = isolation.kind
    log.info("sandbox %s (%s): %s%s in %.1fs", workdir, mode, run.result.stage,
             f" ({run.result.error})" if run.result.error else "", run.result.duration_s)
    return run


def input_path(isolation: Isolation, name: str, path: Path) -> str:
    """Where the child finds input ``name`` (host file ``path``)."""
    return f"{INPUT_DIR}/{name}" if isolation.namespaces else str(Path(path).resolve())


def _verdict(workdir: Path, limits: SandboxLimits, spec: dict[str, Any], timed_out: bool,
             returncode: int, cpu_used: float, duration: float) -> ChildRun:
    """The child's run in the fixed vocabulary."""
    data = _read_result(workdir / RESULT_NAME)
    result = ValidationResult(False, "killed", duration_s=round(duration, 3),
                              returncode=returncode)
    run = ChildRun(result, workdir=workdir)
    if data is not None and not timed_out:
        result.blocked = _blocked(data.get("blocked"))
        stage = data.get("stage")
        result.stage = stage if stage in STAGES else "killed"
        result.output_shape = _shape(data.get("output_shape"))
        result.summary = _summary(data.get("summary"))
        code = data.get("code")
        if result.stage == "blocked" or result.blocked:
            result.stage = "blocked"
            result.error = f"{BLOCKED_TEXT[result.blocked[0]]} is not allowed" \
                if result.blocked else "an operation the audit hook forbids"
        elif code in ("memory", "file_size"):
            result.stage = "limit"
            result.error = _message(code, data, limits, spec, result)
        elif result.stage != "ok":
            result.error = _message(code, data, limits, spec, result) if code in MESSAGES \
                else "the child reported no reason"
        result.ok = result.stage == "ok"
        run.seeds = _seeds(data.get("seeds"), spec)
        run.training = training_path(data.get("training")) if run.seeds else {}
        run.probe = data.get("probe") if isinstance(data.get("probe"), dict) else {}
        return run
    result.blocked = _blocked([m.decode() for m in _BLOCKED_LINE.findall(
        _read_tail(workdir / STDERR_NAME).encode())])
    result.stage, result.error = _without_result(limits, timed_out, returncode, cpu_used)
    if result.blocked:
        result.stage = "blocked"
        result.error = f"{BLOCKED_TEXT[result.blocked[0]]} is not allowed (then: {result.error})"
    return run


def _read_result(path: Path) -> dict[str, Any] | None:
    """The child's report, or None when it is missing, too large or malformed."""
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _message(code: str, data: dict[str, Any], limits: SandboxLimits, spec: dict[str, Any],
             result: ValidationResult) -> str:
    """The agent's own words for the child's ``code``."""
    exception = data.get("exception")
    exception = exception if isinstance(exception, str) and _IDENTIFIER.fullmatch(exception) \
        else "an exception"
    state = result.summary.get("state")
    text = MESSAGES[code].format(
        exception=exception, memory_mb=limits.memory_mb, file_size_mb=limits.file_size_mb,
        shape=tuple(result.output_shape) if result.output_shape else "?",
        batch=spec.get("batch", "?"), classes=spec.get("num_classes", "?"),
        state=f"{state:,}" if isinstance(state, int) else "?",
        max_params=f"{spec['max_params']:,}" if spec.get("max_params") else "?")
    line = _number(data.get("line"), 1, 10**6)
    return f"{text} (model.py line {line})" if line is not None else text


def _number(value: Any, low: float, high: float, kind: type = int) -> Any:
    """``value`` if it is a ``kind`` (a bool is not) within [low, high], else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if kind is int and not isinstance(value, int):
        return None
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return kind(value)


def _shape(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list) or not 0 < len(value) <= 8:
        return None
    dims = [_number(v, 0, 2**31) for v in value]
    return None if None in dims else tuple(dims)


def _blocked(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str) and v in BLOCKED_TEXT][:50] \
        if isinstance(value, list) else []


@functools.lru_cache(maxsize=1)
def _layer_types() -> frozenset[str]:
    """The names a layer type may have in a summary: torch.nn's public classes."""
    from torch import nn

    return frozenset(n for n in dir(nn) if not n.startswith("_")
                     and isinstance(getattr(nn, n), type))


def _summary(value: Any) -> dict[str, Any]:
    """The child's summary reduced to numbers and torch.nn layer type names."""
    if not isinstance(value, dict) or not value:
        return {}
    out: dict[str, Any] = {}
    for key in ("params", "trainable_params", "state", "flops", "batch"):
        number = _number(value.get(key), 0, 10**15)
        if number is not None:
            out[key] = number
    out["flops_per"] = "sample"
    shape = _shape(value.get("input_shape"))
    if shape:
        out["input_shape"] = list(shape)
    types_ = _layer_types()
    layers = value.get("layers") if isinstance(value.get("layers"), list) else []
    out["layers"] = [{"type": row.get("type") if row.get("type") in types_ else "other",
                      "output_shape": list(_shape(row.get("output_shape")) or []) or None,
                      "flops": _number(row.get("flops"), 0, 10**15),
                      "params": _number(row.get("params"), 0, 10**15)}
                     for row in layers[:10_000] if isinstance(row, dict)]
    return out


CURVE_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


def _seeds(value: Any, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-seed training reports, as numbers and flags only, in the seeds' order
    (empty unless every seed asked for has one)."""
    wanted = [int(s) for s in spec.get("seeds", ())]
    if not isinstance(value, list) or len(value) != len(wanted):
        return []
    epochs = int((spec.get("train") or {}).get("epochs", 0))
    reports = []
    for index, (seed, row) in enumerate(zip(wanted, value)):
        if not isinstance(row, dict) or row.get("seed") != seed:
            return []
        curve = []
        for number, point in enumerate(row.get("curve") or [], start=1):
            if not isinstance(point, dict) or number > epochs:
                return []
            values = {k: _number(point.get(k), -1e300, 1e300, float) for k in CURVE_KEYS}
            if None in values.values() or point.get("epoch") != number:
                return []
            curve.append({"epoch": number, **values})
        if not curve:
            return []
        reports.append({"seed": seed, "weights": f"weights_{index}.npz", "curve": curve,
                        "epochs_run": len(curve),
                        **{k: row.get(k) is True for k in ("stopped_early", "stopped_by_time",
                                                            "diverged")},
                        "seconds": _number(row.get("seconds"), 0, 1e9, float) or 0.0})
    return reports


def training_path(value: Any) -> dict[str, Any]:
    """The child's record of how its seeds trained (:mod:`sweeplab.agent.batching`),
    reduced to the vocabulary: a path, a reason code, an exception's type name, numbers
    (``{}`` when it is not one)."""
    if not isinstance(value, dict) or value.get("path") not in PATHS \
            or value.get("reason") not in REASONS \
            or (value["path"] == "batched") != (value["reason"] == "batched"):
        return {}
    out: dict[str, Any] = {"path": value["path"], "reason": value["reason"]}
    exception = value.get("exception")
    if isinstance(exception, str) and _IDENTIFIER.fullmatch(exception):
        out["exception"] = exception
    for key in NUMBERS:
        number = _number(value.get(key), 0, 1e18, float)
        if number is not None:
            out[key] = int(number) if key in ("seeds", "units", "batch") else number
    return out


def _without_result(limits: SandboxLimits, timed_out: bool, returncode: int,
                    cpu_used: float) -> tuple[str, str]:
    """Stage and error of a child that left no valid result."""
    if timed_out:
        return "timeout", (f"still running after the {limits.timeout_s:g} s wall-clock "
                           "timeout; its process group was killed")
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL
                                          and cpu_used >= limits.cpu_seconds):
        return "limit", (f"CPU time limit of {limits.cpu_seconds} s exceeded "
                         f"({cpu_used:.1f} s used); the process was killed")
    if returncode == -signal.SIGXFSZ:
        return "limit", f"file size limit of {limits.file_size_mb} MB exceeded"
    if returncode == -signal.SIGSYS:
        return "blocked", "killed by the seccomp filter (a system call of another architecture)"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() \
            else str(-returncode)
        hint = " (out of memory?)" if returncode == -signal.SIGKILL else ""
        return "killed", f"killed by {name}{hint} before reporting a result"
    return "killed", f"exited with status {returncode} without reporting a result"


# --- the modes ------------------------------------------------------------------------


def write_source(source: str, workdir: Path) -> Path:
    """``source`` as ``workdir/model.py`` (the folder created), written atomically."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / "model.py"
    temporary = workdir / "model.py.tmp"
    temporary.write_text(source, encoding="utf-8")
    temporary.chmod(0o644)
    os.replace(temporary, target)
    return target


def static_refusal(source: str) -> ValidationResult | None:
    """A ``static`` result when :func:`~sweeplab.agent.gate.static_check` refuses
    ``source``, else None."""
    from sweeplab.agent.gate import static_check

    problems = static_check(source)
    if not problems:
        return None
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return ValidationResult(False, "static", "; ".join(problems[:3]) + more)


def validate(source: str, input_shape: tuple[int, int, int], num_classes: int, workdir: Path,
             limits: SandboxLimits = SandboxLimits(), batch: int = 2, *,
             class_name: str | None = None, isolation: Isolation | None = None,
             layers: Layers = Layers()) -> ValidationResult:
    """Check ``source`` statically, then build it and run it forward once in the sandbox
    (``isolation``: default :func:`probe_isolation`)."""
    if layers.static:
        refused = static_refusal(source)
        if refused is not None:
            log.info("sandbox %s: static (%s)", workdir, refused.error)
            return refused
    write_source(source, workdir)
    spec = {"input_shape": list(input_shape), "num_classes": int(num_classes),
            "batch": int(batch), "class_name": class_name}
    return run_child("validate", workdir, spec, limits, isolation or probe_isolation(),
                     layers=layers).result
