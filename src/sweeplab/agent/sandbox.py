"""Run untrusted model code once, contained, and report what it is: a :class:`ValidationResult`.

A candidate's source (from the assembler or an LLM) is checked statically
(:func:`sweeplab.agent.assembler.static_check`), then imported, built and run forward in
a child process (:mod:`sweeplab.agent.sandbox_child`) under these layers:

- resource limits, set by the child as its very first act, before it reads anything
  or imports torch: ``RLIMIT_CPU`` (soft ``cpu_seconds``, hard one second later),
  ``RLIMIT_AS`` (``memory_mb`` of address space; torch takes about 0.6 GB after import
  with one thread; the default 4096 leaves room for activations), ``RLIMIT_FSIZE``
  (``file_size_mb``) and ``RLIMIT_CORE`` 0. The CPU limit counts the interpreter's and
  torch's start-up too (about 1.5 s). Not a ``preexec_fn``: Python code between fork and
  exec is unsafe in a threaded parent (torch's), and a Ctrl-C arriving while it runs is
  swallowed (CPython ignores exceptions in its at-fork handlers), so the agent would
  not stop;
- a new session (``start_new_session``), so the whole process group, and anything the
  code managed to start, is killed with ``SIGKILL`` at the wall-clock timeout and after
  every run; the child is reaped only after that kill, so its group id cannot have been
  reused;
- an environment stripped to ``PATH``, ``HOME``/``TMPDIR`` (the work directory) and
  one-thread settings for OpenMP/MKL/OpenBLAS (no proxies, tokens or ``PYTHON*``
  variables; ``-I`` isolates the interpreter from them anyway), stdin from
  ``/dev/null``, the work directory as cwd, every other descriptor closed;
- an audit hook in the child that refuses network access, new processes, native code
  and file changes outside the work directory (see :mod:`sweeplab.agent.sandbox_child`):
  this layer alone keeps the network off;
- where ``unshare --net`` works (root, or unprivileged user namespaces), a network
  namespace of its own (only a loopback that is down) as a second, kernel-level layer.

The child reports through ``sandbox_result.json`` in the work directory, and the result
counts only if it carries a nonce handed over a pipe that is closed before the model code
runs (prints or files written by the model cannot forge it). Its stdout and stderr go to
``sandbox_stdout.txt`` / ``sandbox_stderr.txt`` there; their tails are in the result.

Stages of a result: ``static`` (rejected before running), ``import``, ``build``,
``forward``, ``shape`` (the output is not a finite float tensor of shape
``(batch, num_classes)``), ``blocked`` (the code attempted something the audit hook
forbids, even if it caught the error), ``limit`` (memory, CPU time or file size
exhausted), ``timeout`` (wall clock; the group was killed), ``killed`` (died from a signal
or exited without a result), and ``ok``.

What passes is then imported in the main process by :func:`load_validated` for
training, outside any sandbox: the static check is what guards that step, so
:func:`load_validated` runs it again on exactly the text it executes. Pass it the source
that was validated (``source=``): the file on disk is then not trusted at all (the agent
keeps it outside the sandbox's writable directory too), so code that rewrote a
``model.py`` during its sandboxed run cannot get an unchecked version imported here.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.agent.assembler import static_check
from sweeplab.errors import SweeplabError

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
RESULT_NAME = "sandbox_result.json"
STDOUT_NAME, STDERR_NAME = "sandbox_stdout.txt", "sandbox_stderr.txt"
TAIL_CHARS = 2000
_POLL_S = 0.02
log = logging.getLogger("sweeplab.agent.sandbox")


class SandboxError(SweeplabError, RuntimeError):
    """The sandbox itself could not run (not a failure of the model code), or a validated
    source could not be loaded in this process."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed run.

    ``cpu_seconds``: CPU time (``RLIMIT_CPU``; start-up included). ``memory_mb``: address
    space (``RLIMIT_AS``). ``file_size_mb``: largest file the child may write
    (``RLIMIT_FSIZE``). ``max_files``: files and folders the code may create in its work
    directory (the audit hook counts them), so at most ``max_files * file_size_mb`` of
    disk. ``timeout_s``: wall clock, after which the process group is killed.
    ``threads``: torch / OpenMP threads.
    """

    cpu_seconds: int = 60
    memory_mb: int = 4096
    file_size_mb: int = 16
    max_files: int = 32
    timeout_s: float = 120.0
    threads: int = 1


@dataclass
class ValidationResult:
    """What one validation found; ``ok`` only when every stage passed.

    ``stage`` is where it stopped (see the module docstring; ``ok`` on success),
    ``error`` one line (None on success), ``output_shape`` the model's output shape with
    the batch, ``summary`` the child's model summary (``params``, ``trainable_params``,
    ``flops`` per sample, ``layers``, ...; empty on failure), ``blocked`` every operation
    the audit hook refused, ``net_namespace`` whether ``unshare --net`` was used.
    """

    ok: bool
    stage: str
    error: str | None = None
    output_shape: tuple[int, ...] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    returncode: int | None = None
    blocked: list[str] = field(default_factory=list)
    net_namespace: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["output_shape"] = list(self.output_shape) if self.output_shape else None
        return data


def validate(source: str, input_shape: tuple[int, int, int], num_classes: int, workdir: Path,
             limits: SandboxLimits = SandboxLimits(), batch: int = 2, *,
             class_name: str | None = None) -> ValidationResult:
    """:func:`static_check` first (stage ``static``), then :func:`validate_in_sandbox`."""
    problems = static_check(source)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return _log_result(ValidationResult(False, "static", "; ".join(problems[:3]) + more),
                           Path(workdir))
    return validate_in_sandbox(source, input_shape, num_classes, workdir, limits, batch,
                               class_name=class_name)


def validate_in_sandbox(source: str, input_shape: tuple[int, int, int], num_classes: int,
                        workdir: Path, limits: SandboxLimits = SandboxLimits(),
                        batch: int = 2, *, class_name: str | None = None,
                        net_namespace: bool | None = None) -> ValidationResult:
    """Write ``source`` to ``workdir/model.py`` and run it in the sandbox (no static check).

    ``net_namespace``: None uses ``unshare --net`` where it works, True requires it
    (:class:`SandboxError` if unavailable), False leaves the audit hook alone to keep the
    network off.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / "model.py"
    temporary = workdir / "model.py.tmp"
    temporary.write_text(source, encoding="utf-8")
    os.replace(temporary, target)
    return _log_result(_run_child(workdir, input_shape, num_classes, limits, batch,
                                  class_name=class_name, net_namespace=net_namespace), workdir)


@functools.lru_cache(maxsize=1)
def network_namespace_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` command line that gives a process its own network namespace here.

    Tries ``unshare --net`` (root) and then ``unshare --user --map-root-user --net``
    (unprivileged user namespaces); None when neither works (containers often forbid
    both). Probed once per process.
    """
    binary = shutil.which("unshare")
    if binary is None:
        return None
    for prefix in ((binary, "--net"), (binary, "--user", "--map-root-user", "--net")):
        try:
            probe = subprocess.run([*prefix, "--", "true"], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return (*prefix, "--")
    return None


def _environment(workdir: Path, threads: int) -> dict[str, str]:
    """The child's whole environment."""
    n = str(max(1, int(threads)))
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir),
            "TMPDIR": str(workdir), "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": n,
            "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4 * TAIL_CHARS))
            return handle.read().decode("utf-8", "replace")[-TAIL_CHARS:]
    except OSError:
        return ""


def _read_result(path: Path, nonce: str) -> dict[str, Any] | None:
    """The child's report, or None when it is missing, malformed or lacks the nonce."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("nonce") == nonce else None


def _run_child(workdir: Path, input_shape: tuple[int, int, int], num_classes: int,
               limits: SandboxLimits = SandboxLimits(), batch: int = 2, *,
               class_name: str | None = None, audit: bool = True,
               net_namespace: bool | None = None) -> ValidationResult:
    """Run the child on ``workdir/model.py`` and turn what happened into a result.

    ``audit=False`` runs without the audit hook: only the sandbox's own tests use it, to
    check that the process-group kill holds on its own.
    """
    prefix = network_namespace_prefix() if net_namespace is not False else None
    if net_namespace and prefix is None:
        raise SandboxError("a network namespace was required but `unshare --net` does not "
                           "work here")
    nonce = secrets.token_hex(16)
    read_end, write_end = os.pipe()
    os.write(write_end, nonce.encode())
    os.close(write_end)
    spec = {"workdir": str(workdir.resolve()), "input_shape": list(input_shape),
            "num_classes": int(num_classes), "batch": int(batch), "threads": limits.threads,
            "class_name": class_name, "audit": bool(audit), "nonce_fd": read_end,
            "cpu_seconds": max(1, int(limits.cpu_seconds)), "memory_mb": int(limits.memory_mb),
            "file_size_mb": int(limits.file_size_mb), "max_files": int(limits.max_files)}
    command = [*(prefix or ()), sys.executable, "-I", str(CHILD_SCRIPT), json.dumps(spec)]
    result_path = workdir / RESULT_NAME
    result_path.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        with (workdir / STDOUT_NAME).open("wb") as out, (workdir / STDERR_NAME).open("wb") as err:
            process = subprocess.Popen(
                command, cwd=workdir, env=_environment(workdir, limits.threads),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(read_end,),
                start_new_session=True)
    except OSError as exc:
        raise SandboxError(f"cannot start the sandbox child: {exc}") from exc
    finally:
        os.close(read_end)
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
        _kill_group(process.pid)  # the timeout, or whatever the code left running
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = returncode = os.waitstatus_to_exitcode(status)
    duration = time.monotonic() - started
    data = _read_result(result_path, nonce)
    stderr_tail = _tail(workdir / STDERR_NAME)
    result = ValidationResult(False, "killed", duration_s=round(duration, 3),
                              stdout_tail=_tail(workdir / STDOUT_NAME),
                              stderr_tail=stderr_tail, returncode=returncode,
                              net_namespace=prefix is not None)
    if data is not None and not timed_out:
        result.ok, result.stage = bool(data.get("ok")), str(data.get("stage"))
        result.error = data.get("error")
        shape = data.get("output_shape")
        result.output_shape = tuple(shape) if shape else None
        result.summary = dict(data.get("summary") or {})
        result.blocked = [str(b) for b in data.get("blocked") or []]
        return result
    result.blocked = [line.strip() for line in stderr_tail.splitlines()
                      if line.startswith("sandbox: ") and line.rstrip().endswith("not allowed")]
    result.stage, result.error = _without_result(limits, timed_out, returncode,
                                                 usage.ru_utime + usage.ru_stime)
    if result.blocked:
        result.stage, result.error = "blocked", f"{result.blocked[0]} (then: {result.error})"
    return result


def _log_result(result: ValidationResult, workdir: Path) -> ValidationResult:
    log.info("sandbox %s: %s%s in %.1fs", workdir, result.stage,
             f" ({result.error})" if result.error else "", result.duration_s)
    return result


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
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if returncode == -signal.SIGKILL else ""
        return "killed", f"killed by {name}{hint} before reporting a result"
    return "killed", f"exited with status {returncode} without reporting a result"


_counter = itertools.count()


def load_validated(source_path: Path | str, name: str = "build", *,
                   source: str | None = None) -> Any:
    """The ``nn.Module`` a validated source builds, imported in this process.

    ``source`` is the text that was validated; when given it is what runs (compiled with
    ``source_path`` as its file name, for tracebacks) and the file is not read. Without
    it the file's current text runs. Either way the text must pass
    :func:`~sweeplab.agent.assembler.static_check` here and now (:class:`SandboxError`
    otherwise): nothing is imported in this process that the gate has not seen.

    ``name`` is ``build`` (called) or a class name (instantiated). The module gets a
    fresh name each call (no clash between candidates, no stale module). Raises
    :class:`SandboxError` when the code lacks ``name`` or it returns no module.
    """
    from torch import nn

    path = Path(source_path)
    text = path.read_text(encoding="utf-8") if source is None else source
    problems = static_check(text)
    if problems:
        raise SandboxError(f"{path}: refused by the static check: {'; '.join(problems[:3])}")
    module_name = f"sweeplab_candidate_{os.getpid()}_{next(_counter)}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)  # noqa: S102 - gated above
    except BaseException:
        del sys.modules[module_name]
        raise
    factory = getattr(module, name, None)
    if not callable(factory):
        raise SandboxError(f"{path}: defines no {name}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise SandboxError(f"{path}: {name}() returned {type(model).__name__}, "
                           "not a torch.nn.Module")
    return model
