"""The sandbox's child process: import untrusted model code, run it once, report, contained.

:mod:`sweeplab.agent.sandbox` runs this file as ``python -I sandbox_child.py SPEC_JSON``
in a fresh process group. It uses the standard library and torch only (never sweeplab,
so the child starts fast and imports nothing it need not). In order:

0. Set the resource limits of the spec (:func:`set_limits`: CPU time, address space,
   file size, no core dumps), before anything else.
1. Read the result nonce from the pipe the parent passed (``nonce_fd``) and close it, so
   code that runs later cannot read it from there.
2. Import torch. This happens *before* the audit hook: torch's import loads its native
   libraries through ``ctypes`` (``ctypes.dlopen``), which the hook forbids.
3. Unless ``audit`` is false (only the sandbox's own tests turn it off), close the paths
   that spawn processes or create files without raising an audit event
   (``_posixsubprocess``, ``os.mknod``, ``os.mkfifo``), then install the audit hook
   (:func:`make_hook`). ``sys.addaudithook`` hooks cannot be removed.
4. Import ``model.py``, build the model (``build()``, else the class named
   ``class_name``), run ``model.eval()`` forward on ``torch.zeros(batch, *input_shape)``
   under ``no_grad``, check the output, and summarise the model (:func:`summarize`).
5. Write the result as JSON, carrying the nonce, to ``sandbox_result.json`` in the work
   directory, then leave with ``os._exit(0)`` (threads or ``atexit`` handlers the model
   code left behind cannot keep the process alive or change its report).

Why a file with a nonce rather than stdout: the model code's own prints go to stdout
and stderr, and it may write files in the work directory, so either channel alone could
be forged; a result counts only when it carries the nonce, which was never in the
process's argv or environment. (Code that walks the interpreter's frames could still
find it; :func:`sweeplab.agent.assembler.static_check` rejects frame and dunder
introspection before anything runs here. The sandbox contains what code *does*; it does
not certify code written to deceive it.)

The audit hook (PEP 578 hooks are a tripwire, not a security boundary on their own; the
parent adds resource limits, a process group killed as a whole, and a network namespace
where ``unshare`` works) raises ``PermissionError`` on, and records:

- network: every ``socket.*`` event (creating a socket, connect, bind, getaddrinfo, ...)
  and the higher-level ``urllib``/``http``/``ftplib``/``smtplib``/... connect events;
- processes: ``os.system``, ``os.exec``, ``os.posix_spawn``, ``os.spawn``, ``os.fork``,
  ``os.forkpty``, ``subprocess.Popen``, ``pty.spawn``, ``os.kill``, ``os.killpg``,
  ``signal.pthread_kill``;
- native code: every ``ctypes.*`` event (dlopen, dlsym, calling a foreign function,
  reading memory by address) and importing ``_posixsubprocess``, ``_ctypes`` or the
  sub-interpreter modules (a sub-interpreter would not carry this hook);
- files: creating more than ``max_files`` new files or folders inside the work directory
  (with ``RLIMIT_FSIZE`` per file, this bounds the disk the code can fill); ``open`` for
  writing, appending, creating or truncating a path outside the work directory (paths
  resolved with ``os.path.realpath``; reading is allowed anywhere, as torch reads its
  own files), opening a *directory* outside it (a directory descriptor
  would let ``dir_fd`` paths escape), ``os.remove``/``rmdir``/``mkdir``/``rename``/
  ``chmod``/``chown``/``utime``/``truncate``, ``shutil.rmtree``/``copyfile``/``move``/...
  outside it, and anywhere: ``os.symlink``, ``os.link`` (a link in the work directory
  could point outside) and ``os.chdir`` (paths are resolved against the work directory);
- the hook's own footing: ``resource.setrlimit``/``prlimit`` (root could raise the
  limits), ``gc.get_objects``/``get_referrers``/``get_referents`` and
  ``sys._current_frames`` (ways to reach the hook or this script's state), and
  ``sys._getframe`` returning a frame of this script.

Every denial is also written to stderr as ``sandbox: <what> is not allowed`` so the parent
learns of it even when the code swallows the exception and exits without a result.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import sys
import traceback
import types

RESULT_NAME = "sandbox_result.json"
BLOCKED_IMPORTS = frozenset({
    "_posixsubprocess", "_ctypes", "_xxsubinterpreters", "_xxinterpchannels",
    "_interpreters", "_interpchannels", "_testcapi", "_testinternalcapi",
})
PROCESS_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.startfile", "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg",
    "signal.pthread_kill",
})
NETWORK_PREFIXES = ("socket.", "urllib.", "http.client.", "ftplib.", "smtplib.", "imaplib.",
                    "poplib.", "nntplib.", "telnetlib.", "webbrowser.")
INTROSPECTION_EVENTS = frozenset({
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
    "resource.setrlimit", "resource.prlimit",
})
ALWAYS_DENIED_FS = frozenset({"os.symlink", "os.link", "os.chdir"})
PATH_ARGS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,),
    "os.chown": (0,), "os.utime": (0,), "os.truncate": (0,), "os.rename": (0, 1),
    "os.chflags": (0,), "os.lchflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copymode": (1,),
    "shutil.copystat": (1,), "shutil.copytree": (1,), "shutil.move": (0, 1),
    "shutil.chown": (0,), "shutil.make_archive": (0,), "shutil.unpack_archive": (1,),
}
"""File events and the positions of the paths they modify (checked against the workdir)."""


def make_hook(root: str, own_file: str, blocked: list[str], max_files: int = 32):
    """The audit hook confining this process to ``root`` (see the module docstring).

    ``max_files``: new files and folders the code may create inside ``root`` (the
    result file this script writes itself is not counted).

    Everything the hook calls or consults is bound here, as closure variables, so model
    code that reassigns ``os.path.realpath``, a builtin or this module's constants cannot
    change what the hook decides.
    """
    realpath, fsdecode, isdir, write_fd = os.path.realpath, os.fsdecode, os.path.isdir, os.write
    lexists = os.path.lexists
    join, sep, path_types = os.path.join, os.sep, (str, bytes)
    _isinstance, _len, _repr, _type, _int, _str, _any, _tuple = (
        isinstance, len, repr, type, int, str, any, tuple)
    path_classes = (pathlib.PurePosixPath, pathlib.PosixPath)
    deny_error = PermissionError
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    prefix = root.rstrip(sep) + sep
    own_files = frozenset({own_file, realpath(own_file)})
    path_args = types.MappingProxyType(dict(PATH_ARGS))  # a private copy, read-only
    always_denied_fs, process_events = ALWAYS_DENIED_FS, PROCESS_EVENTS
    network_prefixes, blocked_imports = NETWORK_PREFIXES, BLOCKED_IMPORTS
    introspection_events = INTROSPECTION_EVENTS
    own_outputs = frozenset({join(root, RESULT_NAME), join(root, RESULT_NAME + ".tmp")})
    created = [0]  # new files and folders inside root so far

    def deny(what: str) -> None:
        message = f"sandbox: {what} is not allowed"
        if _len(blocked) < 50:
            blocked.append(message)
        try:
            write_fd(2, (message + "\n").encode("utf-8", "replace"))
        except OSError:
            pass
        raise deny_error(message)

    def brief(value: object) -> str:
        text = _repr(value)
        return text if _len(text) <= 160 else text[:157] + "..."

    def resolve(path: object) -> str | None:
        """``path`` made absolute and free of symlinks; None for a file descriptor."""
        if _isinstance(path, _int):
            return None
        if _type(path) in path_classes:
            path = _str(path)
        if not _isinstance(path, path_types):
            deny(f"a path of type {_type(path).__name__} ({brief(path)})")
        return realpath(join(root, fsdecode(path)))

    def inside(resolved: str | None) -> bool:
        return resolved is None or resolved == root or resolved.startswith(prefix)

    def count_new(resolved: str | None) -> None:
        """Count ``resolved`` if it does not exist yet; deny past ``max_files``."""
        if resolved is None or resolved in own_outputs or lexists(resolved):
            return
        created[0] += 1
        if created[0] > max_files:
            deny(f"creating more than {max_files} files in the sandbox directory "
                 f"({brief(resolved)})")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            target = resolve(path)
            writing = (_isinstance(flags, _int) and flags & write_flags) or (
                _isinstance(mode, _str) and _any(c in mode for c in "wax+"))
            if inside(target):
                if writing:
                    count_new(target)
                return
            if writing:
                deny(f"writing {brief(target)} outside the sandbox directory")
            if isdir(target):
                deny(f"opening the directory {brief(target)} outside the sandbox directory")
        elif event in path_args:
            for i in path_args[event]:
                if i < _len(args) and args[i] is not None:
                    target = resolve(args[i])
                    if not inside(target):
                        deny(f"{event} of {brief(target)} outside the sandbox directory")
                    if event == "os.mkdir":
                        count_new(target)
        elif event in always_denied_fs:
            deny(f"{event} {brief(args[:2])}")
        elif event in process_events:
            shown = args[1] if event == "subprocess.Popen" else args[0] if args else None
            detail = "" if shown is None else f" {brief(shown)}"
            deny(f"starting or signalling a process ({event}{detail})")
        elif event.startswith(network_prefixes):
            shown = [a for a in args if _isinstance(a, (_str, bytes, _tuple, _int))][:2]
            deny(f"network access ({event} {brief(_tuple(shown))})")
        elif event.startswith("ctypes."):
            deny(f"native code through ctypes ({event})")
        elif event == "import" and args[0] in blocked_imports:
            deny(f"importing {args[0]}")
        elif event in introspection_events:
            deny(event)
        elif event == "sys._getframe" and args[0].f_code.co_filename in own_files:
            deny("sys._getframe into the sandbox's own frames")

    return hook


def _scrub_unaudited() -> None:
    """Remove what spawns processes or creates files without an audit event.

    ``_posixsubprocess.fork_exec`` forks and execs without raising one (only
    ``subprocess.Popen`` above it does): it is dropped from ``sys.modules`` and from every
    loaded module that holds it or its functions, and the hook then refuses to import it
    again. ``os.mknod`` and ``os.mkfifo`` create files unaudited: deleted.
    """
    target = sys.modules.pop("_posixsubprocess", None)
    if target is not None:
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for key, value in list(namespace.items()):
                # type(), not isinstance(): no attribute lookup on arbitrary objects
                if value is target or (type(value) is types.BuiltinFunctionType
                                       and value.__self__ is target):
                    del namespace[key]
    for module in (os, sys.modules.get("posix")):
        for name in ("mknod", "mkfifo"):
            if module is not None and hasattr(module, name):
                delattr(module, name)


# --- the model summary ------------------------------------------------------------------

ACTIVATIONS = frozenset({"ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU",
                         "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Hardswish",
                         "Hardsigmoid", "Hardtanh", "Softplus", "Softmax", "LogSoftmax"})
FREE = frozenset({"Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Flatten",
                  "Unflatten", "Identity"})


def layer_flops(module, inputs: tuple, output, batch: int) -> int | None:
    """Floating-point operations of one call of a leaf module, per sample (None: uncounted).

    Conv2d: 2 x MACs = 2 * C_out * H_out * W_out * (C_in / groups) * k_h * k_w. Linear:
    2 * in_features * out_features per output row. Bias additions are not counted (the
    usual 2 x MACs convention). Batch norm (eval): 2 per element (scale and shift).
    Activations: 1 per element (GELU and friends cost more; this is a rough count).
    Max/avg pools: k_h * k_w per output element; adaptive average pool: one addition per
    input element. Dropout, flatten and identity: 0 (eval mode). Only leaf modules are
    seen (forward hooks): functional calls inside a ``forward`` (``F.relu``, ``x + y``,
    ``torch.flatten``) are not counted, and leaf types not listed here are reported as
    uncounted.
    """
    name = type(module).__name__
    numel = output.numel() // batch if hasattr(output, "numel") else 0
    if name == "Conv2d":
        kh, kw = module.kernel_size
        return 2 * numel * (module.in_channels // module.groups) * kh * kw
    if name == "Linear":
        return 2 * module.in_features * numel
    if name in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"):
        return 2 * numel
    if name in ACTIVATIONS:
        return numel
    if name in ("MaxPool2d", "AvgPool2d"):
        k = module.kernel_size
        kh, kw = (k, k) if isinstance(k, int) else k
        return numel * kh * kw
    if name in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return inputs[0].numel() // batch if inputs and hasattr(inputs[0], "numel") else 0
    if name in FREE:
        return 0
    return None


def run_forward(torch, model, input_shape: list[int], batch: int):
    """The model's output on zeros and one record per leaf-module call (forward hooks)."""
    calls: list[dict] = []

    def record(name: str):
        def hook(module, inputs, output):
            flops = layer_flops(module, inputs, output, batch)
            shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else None
            calls.append({"name": name, "type": type(module).__name__,
                          "output_shape": shape, "flops": flops,
                          "params": sum(p.numel() for p in module.parameters(recurse=False))})
        return hook

    handles = [module.register_forward_hook(record(name))
               for name, module in model.named_modules() if not any(module.children())]
    try:
        model.eval()
        with torch.no_grad():
            output = model(torch.zeros(batch, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return output, calls


def summarize(model, calls: list[dict], input_shape: list[int], batch: int) -> dict:
    """Parameters (total, trainable), per-layer output shapes and FLOPs per sample."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    uncounted = sorted({c["type"] for c in calls if c["flops"] is None})
    return {
        "params": int(params), "trainable_params": int(trainable),
        "flops": int(sum(c["flops"] or 0 for c in calls)), "flops_per": "sample",
        "uncounted_layers": uncounted, "input_shape": list(input_shape), "batch": batch,
        "layers": calls,
    }


# --- stages -----------------------------------------------------------------------------


def describe(exc: BaseException, model_path: str) -> str:
    """One line: the exception and the last line of ``model.py`` it passed through."""
    text = " ".join(str(exc).split()) or "(no message)"
    line = next((frame.lineno for frame in reversed(traceback.extract_tb(exc.__traceback__))
                 if frame.filename == model_path), None)
    where = f" (model.py line {line})" if line else ""
    message = f"{type(exc).__name__}: {text}{where}"
    return message if len(message) <= 500 else message[:497] + "..."


def exhausted(exc: BaseException, spec: dict) -> str | None:
    """Which limit ``exc`` shows was hit (memory or file size), or None.

    Python raises ``MemoryError`` when ``RLIMIT_AS`` refuses an allocation; torch's CPU
    allocator raises a ``RuntimeError`` saying it "can't allocate memory"; a write past
    ``RLIMIT_FSIZE`` fails with ``EFBIG`` (Python ignores ``SIGXFSZ``).
    """
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(
            s in str(exc) for s in ("can't allocate memory", "not enough memory"))):
        return f"memory limit: address space capped at {spec.get('memory_mb')} MB"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return f"file size limit: files capped at {spec.get('file_size_mb')} MB"
    return None


def construct(module, class_name: str | None, nn):
    """The model ``module`` builds: ``build()``, else an instance of ``class_name``."""
    factory = getattr(module, "build", None)
    label = "build()"
    if not callable(factory) and class_name:
        factory, label = getattr(module, class_name, None), f"{class_name}()"
    if not callable(factory):
        wanted = "def build()" + (f" or class {class_name}" if class_name else "")
        raise LookupError(f"model.py defines no {wanted}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"{label} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_output(torch, output, batch: int, num_classes: int) -> list[int]:
    """The output's shape, after checking it is a finite float tensor of (batch, classes)."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"forward returned {type(output).__name__}, not a tensor")
    shape = list(output.shape)
    if shape != [batch, num_classes]:
        raise ValueError(f"output shape {tuple(shape)} != expected ({batch}, {num_classes})")
    if not output.is_floating_point():
        raise TypeError(f"output dtype {output.dtype} is not floating point")
    if not bool(torch.isfinite(output).all()):
        raise ValueError("output has NaN or infinite values on a zero input")
    return shape


def set_limits(spec: dict) -> None:
    """``RLIMIT_CPU`` (soft ``cpu_seconds``, hard one second later), ``RLIMIT_AS``
    (``memory_mb``), ``RLIMIT_FSIZE`` (``file_size_mb``) and ``RLIMIT_CORE`` 0."""
    import resource

    cpu = max(1, int(spec["cpu_seconds"]))
    memory, size = int(spec["memory_mb"]) * 2**20, int(spec["file_size_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    """Run the stages and write the result (see the module docstring)."""
    spec = json.loads(argv[1])
    set_limits(spec)
    root = os.path.realpath(spec["workdir"])
    with os.fdopen(spec["nonce_fd"], "rb") as pipe:
        nonce = pipe.read(256).decode()
    result_path = os.path.join(root, RESULT_NAME)
    model_path = os.path.join(root, spec.get("model", "model.py"))
    if os.path.lexists(result_path):
        os.unlink(result_path)
    dumps, replace, open_fd, write, fsync, close = (json.dumps, os.replace, os.open, os.write,
                                                    os.fsync, os.close)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    blocked: list[str] = []
    result: dict = {"nonce": nonce, "ok": False, "stage": "import", "error": None,
                    "output_shape": None, "summary": {}, "blocked": blocked}
    stage = "import"
    try:
        import torch
        from torch import nn

        torch.set_num_threads(int(spec.get("threads", 1)))
        sys.dont_write_bytecode = True
        if spec.get("audit", True):
            _scrub_unaudited()
            sys.addaudithook(make_hook(root, __file__, blocked,
                                       int(spec.get("max_files", 32))))
        import importlib.util

        loader_spec = importlib.util.spec_from_file_location("sandbox_model", model_path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules["sandbox_model"] = module
        loader_spec.loader.exec_module(module)
        stage = "build"
        model = construct(module, spec.get("class_name"), nn)
        stage = "forward"
        batch, shape = int(spec["batch"]), list(spec["input_shape"])
        output, calls = run_forward(torch, model, shape, batch)
        stage = "shape"
        out_shape = check_output(torch, output, batch, int(spec["num_classes"]))
        result.update(ok=True, stage="ok", output_shape=out_shape,
                      summary=summarize(model, calls, shape, batch))
    except BaseException as exc:  # noqa: BLE001 - every failure of the model code is data
        limit = exhausted(exc, spec)
        error = describe(exc, model_path)
        result.update(ok=False, stage="limit" if limit else stage,
                      error=f"{limit}: {error}" if limit else error)
    if blocked:
        result.update(ok=False, stage="blocked", error=blocked[0])
    temporary = result_path + ".tmp"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    fd = open_fd(temporary, flags, 0o644)
    try:
        write(fd, dumps(result, default=repr).encode())
        fsync(fd)
    finally:
        close(fd)
    replace(temporary, result_path)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream cannot stop the exit
            pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
