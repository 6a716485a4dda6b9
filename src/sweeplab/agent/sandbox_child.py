"""The sandbox's child process: the whole life of a candidate's code, contained.

:mod:`sweeplab.agent.sandbox` runs this file as ``python -I -B sandbox_child.py SPEC_JSON``
(under bubblewrap where it can: :mod:`sweeplab.agent.isolation`). It uses the standard
library, numpy and torch, :mod:`sweeplab.agent.training` loaded by its path, and (to
train the seeds together, ``batch_mode`` ``auto``) :mod:`sweeplab.agent.multiseed` loaded by
its path with the sweeplab package it imports (:mod:`sweeplab.batched`) from the
read-only ``library`` folder. In order:

0. Set the resource limits of the spec (:func:`set_limits`: CPU time, address space,
   file size, no core dumps), then, when asked (bubblewrap as root), switch to uid/gid
   65534 with no supplementary groups, which clears every capability
   (:func:`drop_privileges`); then install the seccomp filter the parent built
   (:func:`install_seccomp`: no sockets, no new processes, no ``exec``, no ``ptrace``,
   ...), for every thread. Any failure here ends the run (stage ``isolation``) before
   a line of model code is read.
1. Import torch (with its FLOP counter), numpy, the training module and, in ``train``
   mode with ``batch_mode`` ``auto``, the batched trainer (:func:`load_multiseed`; where it
   cannot be imported the seeds train one by one, and the result says so) with its
   allocator setting applied (:func:`sweeplab.batched.host_alloc.hold_until_exit`), and read
   the inputs (parent-written ``.npz`` files, without pickles). This happens *before*
   the audit hook: torch's import loads its native libraries through ``ctypes``, which
   the hook forbids.
2. Unless ``audit`` is false, close the paths that spawn processes or create files
   without raising an audit event (``_posixsubprocess``, ``os.mknod``, ``os.mkfifo``),
   then install the audit hook (:func:`make_hook`). ``sys.addaudithook`` hooks cannot
   be removed.
3. Run the mode's stages:

   - ``validate``: import ``model.py``, build the model (``build()``, else the class
     ``class_name``), run it forward in eval mode on zeros, check the output (a finite
     float tensor of shape ``(batch, num_classes)``) and summarise it (parameters,
     per-layer output shapes, FLOPs counted by torch's ``FlopCounterMode``);
   - ``train``: the same, then refuse a state larger than ``max_params`` (stage
     ``budget``), then train one fresh model per seed on the training and validation
     data, the seeds together (:func:`multiseed.train_all`) or one by one
     (:func:`training.train_one_by_one`), and save each one's weights (its whole
     ``state_dict``) as ``weights_<i>.npz``; ``training`` in the result says which path
     ran and why (:mod:`sweeplab.agent.batching`'s vocabulary);
   - ``score``: build a fresh model per weights file, load the weights (every key and
     shape must match the model's state exactly), and save the logits for the given
     inputs (no labels: the agent scores them) as ``logits.npz``;
   - ``probe``: none; it reports the uid, the seccomp mode, whether a socket can be
     created and the network interfaces it sees, so the parent can check the isolation.

4. Write ``sandbox_result.json`` and leave with ``os._exit(0)``.

Everything the child reports is a claim: model code ran in this process and could have
changed any of it. The parent reads only a fixed vocabulary from it (stage, a code from
:data:`CODES`, an exception's type name, a line number, numbers) and recomputes what it
relies on: the parameter count from the weights, every metric from the logits.

The audit hook (PEP 578: a tripwire, not a boundary; the kernel layers above are the
boundary) raises ``PermissionError`` on, and records by category (:data:`BLOCKED`):

- ``network``: every ``socket.*`` event and the ``urllib``/``http``/``ftplib``/...
  connect events;
- ``process``: ``os.system``, ``os.exec``, ``os.posix_spawn``, ``os.spawn``,
  ``os.fork``, ``os.forkpty``, ``subprocess.Popen``, ``pty.spawn``, ``os.kill``,
  ``os.killpg``, ``signal.pthread_kill``;
- ``native``: every ``ctypes.*`` event; ``import``: importing ``_posixsubprocess``,
  ``_ctypes`` or the sub-interpreter modules;
- ``write_outside``: ``open`` for writing, appending, creating or truncating a path
  outside the work directory, and ``os.remove``/``rmdir``/``mkdir``/``rename``/
  ``chmod``/``chown``/``utime``/``truncate``, ``shutil.*`` outside it (paths resolved
  with ``os.path.realpath``; reading is allowed: the mount view decides what exists);
  ``dir_outside``: opening a directory outside it (``dir_fd`` paths could escape);
  ``link``: ``os.symlink``, ``os.link``, ``os.chdir``; ``files``: creating more than
  ``max_files`` files or folders inside it;
- ``introspection``: ``resource.setrlimit``/``prlimit``, ``gc.get_objects``/
  ``get_referrers``/``get_referents``, ``sys._current_frames`` and ``sys._getframe``
  into this script's frames; ``path_type``: a path of an unexpected type.

Every denial is also written to stderr as ``sandbox-blocked: <category>``, so the
parent learns of it even when the code swallows the exception and exits without a
result.
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
LOGITS_NAME = "logits.npz"
CODES = frozenset({
    "exception", "no_factory", "not_a_module", "output_type", "output_shape", "output_dtype",
    "output_nonfinite", "memory", "file_size", "over_budget", "no_parameters", "diverged",
    "state_mismatch", "isolation",
})
"""The codes a result's ``code`` may hold (the parent's messages say what each means)."""
BLOCKED = frozenset({"network", "process", "native", "import", "write_outside", "dir_outside",
                     "link", "files", "introspection", "path_type"})
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

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


class Refused(Exception):
    """A stage ends with a code of the vocabulary (not an exception of the model code)."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(code)


# --- isolation set up by the child itself --------------------------------------------


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


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` with no supplementary groups, for good (real, effective and
    saved ids), and check that no capability is left."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    with open("/proc/self/status", encoding="ascii") as handle:
        status = handle.read()
    effective = status.split("CapEff:")[1].split()[0]
    if os.getresuid() != (uid, uid, uid) or int(effective, 16) != 0:
        raise PermissionError("the child kept its privileges")


def install_seccomp(program: bytes, syscall_nr: int) -> None:
    """Install the BPF ``program`` for every thread of this process (``no_new_privs``
    first, as the kernel requires of an unprivileged filter)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.syscall(syscall_nr, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                    ctypes.byref(fprog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER)")


def seccomp_mode() -> int:
    """This process's seccomp mode (2: filtered), from ``/proc/self/status``."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0


def probe() -> dict:
    """What the parent checks before trusting the isolation (see the module docstring)."""
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        socket_created = True
    except OSError:
        socket_created = False
    try:
        with open("/proc/net/dev", encoding="ascii") as handle:
            interfaces = sorted(line.split(":")[0].strip() for line in handle.readlines()[2:])
    except OSError:
        interfaces = []
    return {"uid": os.getuid(), "gid": os.getgid(), "seccomp": seccomp_mode(),
            "socket_created": socket_created, "interfaces": interfaces}


# --- the audit hook --------------------------------------------------------------------


def make_hook(root: str, own_files: frozenset, blocked: list[str], max_files: int = 32,
              own_outputs: frozenset = frozenset()):
    """The audit hook confining this process to ``root`` (see the module docstring).

    ``max_files``: new files and folders the code may create inside ``root``
    (``own_outputs``, the files this script writes itself, are not counted).

    Everything the hook calls or consults is bound here, as closure variables, so model
    code that reassigns ``os.path.realpath``, a builtin or this module's constants cannot
    change what the hook decides.
    """
    realpath, fsdecode, isdir, write_fd = os.path.realpath, os.fsdecode, os.path.isdir, os.write
    lexists = os.path.lexists
    join, sep, path_types = os.path.join, os.sep, (str, bytes)
    _isinstance, _len, _type, _int, _str, _any = isinstance, len, type, int, str, any
    path_classes = (pathlib.PurePosixPath, pathlib.PosixPath)
    deny_error = PermissionError
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    prefix = root.rstrip(sep) + sep
    path_args = types.MappingProxyType(dict(PATH_ARGS))  # a private copy, read-only
    always_denied_fs, process_events = ALWAYS_DENIED_FS, PROCESS_EVENTS
    network_prefixes, blocked_imports = NETWORK_PREFIXES, BLOCKED_IMPORTS
    introspection_events = INTROSPECTION_EVENTS
    outputs = frozenset(join(root, name) for name in own_outputs)
    created = [0]  # new files and folders inside root so far

    def deny(category: str) -> None:
        if _len(blocked) < 50:
            blocked.append(category)
        try:
            write_fd(2, b"sandbox-blocked: " + category.encode() + b"\n")
        except OSError:
            pass
        raise deny_error(f"sandbox: {category} is not allowed")

    def resolve(path: object) -> str | None:
        """``path`` made absolute and free of symlinks; None for a file descriptor."""
        if _isinstance(path, _int):
            return None
        if _type(path) in path_classes:
            path = _str(path)
        if not _isinstance(path, path_types):
            deny("path_type")
        return realpath(join(root, fsdecode(path)))

    def inside(resolved: str | None) -> bool:
        return resolved is None or resolved == root or resolved.startswith(prefix)

    def count_new(resolved: str | None) -> None:
        """Count ``resolved`` if it does not exist yet; deny past ``max_files``."""
        if resolved is None or resolved in outputs or lexists(resolved):
            return
        created[0] += 1
        if created[0] > max_files:
            deny("files")

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
                deny("write_outside")
            if isdir(target):
                deny("dir_outside")
        elif event in path_args:
            for i in path_args[event]:
                if i < _len(args) and args[i] is not None:
                    target = resolve(args[i])
                    if not inside(target):
                        deny("write_outside")
                    if event == "os.mkdir":
                        count_new(target)
        elif event in always_denied_fs:
            deny("link")
        elif event in process_events:
            deny("process")
        elif event.startswith(network_prefixes):
            deny("network")
        elif event.startswith("ctypes."):
            deny("native")
        elif event == "import" and args[0] in blocked_imports:
            deny("import")
        elif event in introspection_events:
            deny("introspection")
        elif event == "sys._getframe" and args[0].f_code.co_filename in own_files:
            deny("introspection")

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


def run_forward(torch, model, input_shape: list[int], batch: int):
    """The model's output on zeros and one record per leaf-module call.

    FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts at
    the operator level: matrix products and convolutions wherever they happen (a layer,
    or a functional ``F.linear``, ``x @ w`` or ``F.conv2d`` inside ``forward``), 2 per
    multiply-add (Conv2d: 2 * C_out * H_out * W_out * (C_in / groups) * k_h * k_w per
    sample; Linear: 2 * in * out), bias additions and elementwise work (activations,
    normalisation, pooling) not counted, the usual convention. Each leaf call's share is
    the count's growth across that call (forward pre- and post-hooks); the total also
    holds what ran outside any leaf module.
    """
    calls: list[dict] = []
    counter = torch.utils.flop_counter.FlopCounterMode(display=False)
    before: list[int] = []

    def start(module, inputs):
        before.append(counter.get_total_flops())

    def record(module, inputs, output):
        flops = counter.get_total_flops() - before.pop()
        shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else None
        calls.append({"type": type(module).__name__, "output_shape": shape,
                      "flops": flops // batch,
                      "params": sum(p.numel() for p in module.parameters(recurse=False))})

    leaves = [module for module in model.modules() if not any(module.children())]
    handles = [hook(fn) for module in leaves for hook, fn in (
        (module.register_forward_pre_hook, start), (module.register_forward_hook, record))]
    try:
        model.eval()
        with torch.no_grad(), counter:
            output = model(torch.zeros(batch, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return output, calls, counter.get_total_flops() // batch


def summarize(model, calls: list[dict], flops: int, input_shape: list[int],
              batch: int) -> dict:
    """Parameters (total, trainable), the whole state's size (parameters and buffers),
    per-layer output shapes and FLOPs per sample (:func:`run_forward`)."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    state = sum(t.numel() for t in model.state_dict().values())
    return {
        "params": int(params), "trainable_params": int(trainable), "state": int(state),
        "flops": int(flops), "flops_per": "sample", "input_shape": list(input_shape),
        "batch": batch, "layers": calls,
    }


# --- stages -----------------------------------------------------------------------------


def failure(exc: BaseException, model_path: str) -> dict:
    """The vocabulary for ``exc``: its code, type name and the last model.py line."""
    line = next((frame.lineno for frame in reversed(traceback.extract_tb(exc.__traceback__))
                 if frame.filename == model_path), None)
    code = getattr(exc, "code", None) if type(exc).__name__ in ("Refused", "TrainingError") \
        else None
    if code not in CODES:
        code = exhausted(exc) or "exception"
    return {"code": code, "exception": type(exc).__name__, "line": line}


def exhausted(exc: BaseException) -> str | None:
    """Which limit ``exc`` shows was hit (``memory`` or ``file_size``), or None.

    Python raises ``MemoryError`` when ``RLIMIT_AS`` refuses an allocation; torch's CPU
    allocator raises a ``RuntimeError`` saying it "can't allocate memory"; a write past
    ``RLIMIT_FSIZE`` fails with ``EFBIG`` (Python ignores ``SIGXFSZ``).
    """
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(
            s in str(exc) for s in ("can't allocate memory", "not enough memory"))):
        return "memory"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file_size"
    return None


def construct(module, class_name: str | None, nn):
    """The model ``module`` builds: ``build()``, else an instance of ``class_name``."""
    factory = getattr(module, "build", None)
    if not callable(factory) and class_name:
        factory = getattr(module, class_name, None)
    if not callable(factory):
        raise Refused("no_factory")
    model = factory()
    if not isinstance(model, nn.Module):
        raise Refused("not_a_module")
    return model


def check_output(torch, output, batch: int, num_classes: int) -> list[int]:
    """The output's shape, after checking it is a finite float tensor of (batch, classes)."""
    if not isinstance(output, torch.Tensor):
        raise Refused("output_type")
    shape = [int(n) for n in output.shape]
    if shape != [batch, num_classes]:
        raise Refused("output_shape")
    if not output.is_floating_point():
        raise Refused("output_dtype")
    if not bool(torch.isfinite(output).all()):
        raise Refused("output_nonfinite")
    return shape


def load_training(spec: dict):
    """:mod:`sweeplab.agent.training`, loaded from its path (the child imports no sweeplab)."""
    import importlib.util

    loader_spec = importlib.util.spec_from_file_location("sandbox_training", spec["training"])
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules["sandbox_training"] = module
    loader_spec.loader.exec_module(module)
    return module


def load_multiseed(spec: dict):
    """:mod:`sweeplab.agent.multiseed`, loaded from its path, with the sweeplab package
    (``spec["library"]``, read-only) first on ``sys.path`` for :mod:`sweeplab.batched`."""
    import importlib.util

    sys.path.insert(0, spec["library"])
    loader_spec = importlib.util.spec_from_file_location("sandbox_multiseed", spec["multiseed"])
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules["sandbox_multiseed"] = module
    loader_spec.loader.exec_module(module)
    return module


def import_model(model_path: str):
    import importlib.util

    loader_spec = importlib.util.spec_from_file_location("sandbox_model", model_path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules["sandbox_model"] = module
    loader_spec.loader.exec_module(module)
    return module


def validate_stages(torch, nn, spec: dict, result: dict, model_path: str):
    """Import, build, forward, shape: the module and the summary (into ``result``)."""
    result["stage"] = "import"
    module = import_model(model_path)
    result["stage"] = "build"
    model = construct(module, spec.get("class_name"), nn)
    result["stage"] = "forward"
    batch, shape = int(spec["batch"]), list(spec["input_shape"])
    output, calls, flops = run_forward(torch, model, shape, batch)
    result["stage"] = "shape"
    result["output_shape"] = [int(n) for n in output.shape] \
        if isinstance(output, torch.Tensor) else None
    check_output(torch, output, batch, int(spec["num_classes"]))
    result["summary"] = summarize(model, calls, flops, shape, batch)
    return module


def train_stages(torch, nn, np, training, together, spec: dict, result: dict,
                 model_path: str, data: dict) -> None:
    """Validate, check the budget, train the seeds (``together``: the multiseed module,
    or None: one by one, ``result["training"]`` already saying why) and save each one's
    weights."""
    module = validate_stages(torch, nn, spec, result, model_path)
    limit = spec.get("max_params")
    if limit and result["summary"]["state"] > int(limit):
        result["stage"] = "budget"
        raise Refused("over_budget")
    result["stage"] = "train"
    seeds = [int(s) for s in spec["seeds"]]
    budget = spec.get("max_seconds")
    budget = None if budget is None else float(budget)

    def build():
        return construct(module, spec.get("class_name"), nn)

    args = (build, data, spec["train"], seeds, int(spec["patience"]), int(spec["num_classes"]),
            budget)
    if together is not None:
        memory = int(spec["memory_mb"]) * 2**20 // 4  # a quarter of the address space
        reports, result["training"] = together.train_all(training, *args, memory,
                                                         batch=spec.get("batch_mode", "auto"))
    else:
        reports = training.train_one_by_one(*args)
    for index, trained in enumerate(reports):
        name = f"weights_{index}.npz"
        state = trained.pop("model").state_dict()
        np.savez(os.path.join(os.path.realpath(spec["workdir"]), name),
                 **{key: value.detach().cpu().float().numpy() if value.is_floating_point()
                    else value.detach().cpu().numpy() for key, value in state.items()})
        result["seeds"].append({"weights": name, **trained})


def score_stages(torch, nn, np, training, spec: dict, result: dict, model_path: str,
                 data: dict) -> None:
    """Build a fresh model per weights file, load the weights exactly, save the logits."""
    result["stage"] = "import"
    module = import_model(model_path)
    logits = {}
    num_classes = int(spec["num_classes"])
    for index, path in enumerate(spec["weights"]):
        result["stage"] = "build"
        model = construct(module, spec.get("class_name"), nn)
        result["stage"] = "score"
        with np.load(path, allow_pickle=False) as archive:
            state = {key: torch.from_numpy(archive[key]) for key in archive.files}
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if expected != {k: tuple(v.shape) for k, v in state.items()}:
            raise Refused("state_mismatch")
        model.load_state_dict(state, strict=True)
        for name in spec["inputs"]:
            out = training.predict(model, data[name], num_classes)
            logits[f"{name}_{index}"] = out.numpy()
    np.savez(os.path.join(os.path.realpath(spec["workdir"]), LOGITS_NAME), **logits)


def write_result(root: str, result: dict) -> None:
    """``result`` as JSON in ``root``, atomically, with descriptor-level calls."""
    path = os.path.join(root, RESULT_NAME)
    temporary = path + ".tmp"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, json.dumps(result, default=repr).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def main(argv: list[str]) -> None:
    """Run the stages and write the result (see the module docstring)."""
    spec = json.loads(argv[1])
    root = os.path.realpath(spec["workdir"])
    result: dict = {"stage": "isolation", "code": None, "exception": None, "line": None,
                    "output_shape": None, "summary": {}, "seeds": [], "blocked": []}
    try:
        set_limits(spec)
        if spec.get("drop_to"):
            drop_privileges(*spec["drop_to"])
        if spec.get("seccomp"):
            install_seccomp(bytes.fromhex(spec["seccomp"]), int(spec["seccomp_nr"]))
    except BaseException as exc:  # noqa: BLE001 - no model code runs without isolation
        result.update(code="isolation", exception=type(exc).__name__)
        write_result(root, result)
        os._exit(0)
    if spec["mode"] == "probe":
        result.update(stage="ok", probe=probe())
        write_result(root, result)
        os._exit(0)
    model_path = os.path.join(root, spec.get("model", "model.py"))
    blocked: list[str] = result["blocked"]
    result["stage"] = "import"
    try:
        import numpy as np
        import torch
        import torch.utils.flop_counter  # noqa: F401 - imported before the audit hook
        from torch import nn

        torch.set_num_threads(int(spec.get("threads", 1)))
        sys.dont_write_bytecode = True
        training = load_training(spec)
        together = None
        if spec["mode"] == "train":
            result["training"] = {"path": "one_by_one", "reason": "off"}
            if spec.get("batch_mode", "auto") == "auto":
                try:
                    together = load_multiseed(spec)
                    # the batches' allocator setting calls C through ctypes: apply it
                    # now, before the audit hook refuses that; it stays to the exit
                    sys.modules["sweeplab.batched.host_alloc"].hold_until_exit()
                except Exception as exc:  # noqa: BLE001 - one by one needs none of it
                    result["training"] = {"path": "one_by_one", "reason": "unavailable",
                                          "exception": type(exc).__name__}
        data = {}
        if spec.get("data"):
            with np.load(spec["data"], allow_pickle=False) as archive:
                data = {key: torch.from_numpy(archive[key]) for key in archive.files}
        if spec.get("audit", True):
            _scrub_unaudited()
            scripts = [__file__, spec["training"], *([spec["multiseed"]] if together else [])]
            own = frozenset([*scripts, *map(os.path.realpath, scripts)])
            outputs = frozenset({RESULT_NAME, RESULT_NAME + ".tmp", LOGITS_NAME} | {
                f"weights_{i}.npz" for i in range(len(spec.get("seeds", ())))})
            sys.addaudithook(make_hook(root, own, blocked, int(spec.get("max_files", 32)),
                                       outputs))
        if spec["mode"] == "validate":
            validate_stages(torch, nn, spec, result, model_path)
        elif spec["mode"] == "train":
            train_stages(torch, nn, np, training, together, spec, result, model_path, data)
        else:
            score_stages(torch, nn, np, training, spec, result, model_path, data)
        result["stage"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure of the model code is data
        result.update(failure(exc, model_path))
    if blocked:
        result["stage"] = "blocked"
    write_result(root, result)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream cannot stop the exit
            pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
