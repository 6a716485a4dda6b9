"""The kernel's part of the sandbox: bubblewrap's namespaces and mount view, and who runs.

A sandboxed child runs under ``bwrap`` (Debian's ``bubblewrap``) with:

- its own network namespace (``--unshare-net``: only a loopback of its own, nothing
  reachable), and its own PID, IPC and UTS namespaces (it sees no other process);
- a private mount view built from an allow-list, read-only: ``/usr`` (and the
  ``/bin``, ``/lib*`` links into it), the dynamic linker's cache, the Python
  installation that runs sweeplab (its prefixes, found from ``sys``), the child's two
  scripts under ``/opt/sweeplab``, and the input files of this run under ``/inputs``.
  Its work directory, mounted at ``/sandbox``, is the only writable place (``/dev`` is
  a minimal device set, ``/proc`` shows only the sandbox's processes). Nothing else
  exists there: not ``/home``, ``/root`` (beyond the Python installation, when it lives
  there), ``/etc`` (secrets, keys, passwords), ``/tmp``, the project, its run
  directories or the agent's test labels;
- an unprivileged user: when sweeplab runs as root, bubblewrap keeps only
  ``CAP_SETUID``/``CAP_SETGID`` and the child switches to uid/gid 65534 (``nobody``)
  before anything else, which clears every capability; as another user, a user
  namespace maps that user (already unprivileged) to uid 65534;
- a seccomp filter (:mod:`sweeplab.agent.seccomp`) from ``exec`` on, and ``--die-with-parent``
  and ``--new-session``.

Without bubblewrap (or where it cannot create the namespaces, as in some containers)
the isolation is ``none``: the agent refuses to run candidates unless the user passes
``--unsafe-no-isolation`` (:func:`require`); the child then still sets its resource
limits, installs its seccomp filter and audit hook, but runs as the calling user,
sees the whole file system and shares the network namespace.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sweeplab.errors import SweeplabError

SANDBOX_DIR = "/sandbox"
"""Where the work directory is mounted inside the sandbox."""
INPUT_DIR = "/inputs"
"""Where read-only input files are mounted inside the sandbox."""
CODE_DIR = "/opt/sweeplab"
"""Where the child's scripts are mounted inside the sandbox."""
NOBODY = 65534
"""The uid and gid the child runs as under bubblewrap."""
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
             f"/etc/python{sys.version_info.major}",
             f"/etc/python{sys.version_info.major}.{sys.version_info.minor}")
"""What of /etc the sandbox sees: the dynamic linker's configuration, Debian's
alternatives links (a BLAS may be found through them) and Debian's Python configuration
(its ``sitecustomize``). No secrets."""


class IsolationUnavailable(SweeplabError, RuntimeError):
    """Kernel isolation is required but cannot be created here; the message says why
    and what to do."""


@dataclass(frozen=True)
class Isolation:
    """How sandboxed children run (see the module docstring).

    ``kind``: ``bubblewrap`` or ``none``. ``bwrap``: the binary. ``drop_to_nobody``:
    the child switches from root to uid 65534 itself (bubblewrap as root).
    ``seccomp``: a filter is installed (the machine's architecture is supported).
    ``reason``: why the kind is ``none``.
    """

    kind: str
    bwrap: str | None = None
    drop_to_nobody: bool = False
    seccomp: bool = True
    reason: str = ""

    @property
    def namespaces(self) -> bool:
        return self.kind == "bubblewrap"

    def describe(self) -> str:
        """One line: what is in force."""
        filters = "seccomp filter, " if self.seccomp else "no seccomp filter (unsupported " \
                                                          "architecture), "
        common = f"{filters}resource limits, audit hook, static check"
        if self.kind == "bubblewrap":
            who = "uid 65534" + (" (dropped from root)" if self.drop_to_nobody else
                                 " (user namespace)")
            return (f"bubblewrap: network, PID, IPC and UTS namespaces, private read-only "
                    f"mount view with only the work directory writable, {who}, {common}")
        return f"NONE ({self.reason}): no namespaces, no private mounts, same uid; {common}"

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "drop_to_nobody": self.drop_to_nobody,
                "seccomp": self.seccomp, "reason": self.reason, "describe": self.describe()}


def find_bwrap() -> str | None:
    """The ``bwrap`` binary on ``PATH`` (Debian's is ``/usr/bin/bwrap``), or None."""
    return shutil.which("bwrap")


def require(found: Isolation, unsafe: bool) -> Isolation:
    """``found`` if it is kernel isolation, or if the user accepted none (``unsafe``);
    else :class:`IsolationUnavailable`."""
    if found.kind == "bubblewrap" or unsafe:
        return found
    raise IsolationUnavailable(
        f"candidate model code runs only under kernel isolation, which is not available "
        f"here ({found.reason}); install bubblewrap (Debian: apt-get install bubblewrap) "
        "where user or network namespaces are allowed, or pass --unsafe-no-isolation to "
        "run it with rlimits, seccomp and the audit hook only")


def python_roots() -> list[str]:
    """The folders the running Python needs, outside ``/usr``: its prefixes (a venv's and
    the base installation's) and its site-packages, resolved, nested ones dropped."""
    import site

    found = {os.path.realpath(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix,
                                           sys.base_exec_prefix)}
    found |= {os.path.realpath(p) for p in site.getsitepackages() if os.path.isdir(p)}
    found.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    usable = sorted(p for p in found if p not in ("/", "/usr") and not p.startswith("/usr/"))
    return [p for p in usable if not any(p.startswith(q + "/") for q in usable if q != p)]


class _View:
    """bwrap's arguments for a mount view, creating each parent folder once (0755: bwrap
    would create them 0700 as root, unreadable to uid 65534)."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.made: set[str] = {"/"}

    def parents(self, path: str) -> None:
        parts = Path(path).parent.parts
        for i in range(2, len(parts) + 1):
            folder = str(Path(*parts[:i]))
            if folder not in self.made:
                self.made.add(folder)
                self.args += ["--perms", "0755", "--dir", folder]

    def bind(self, source: str, dest: str, option: str = "--ro-bind") -> None:
        self.parents(dest)
        self.args += [option, source, dest]
        self.made.add(dest)


def bwrap_command(isolation: Isolation, workdir: Path, inputs: dict[str, Path],
                  code: dict[str, Path], seccomp_fd: int | None) -> list[str]:
    """The ``bwrap ... --`` prefix running a child with ``workdir`` at :data:`SANDBOX_DIR`,
    each of ``inputs`` (name -> file) at ``/inputs/<name>`` and each of ``code`` at
    ``/opt/sweeplab/<name>``, all read-only but the work directory."""
    view = _View()
    view.bind("/usr", "/usr")
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            view.args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            view.bind(link, link)
    for path in ETC_FILES:
        if os.path.exists(path):
            view.bind(path, path)
    for root in python_roots():
        view.bind(root, root)
    for name, path in code.items():
        view.bind(str(Path(path).resolve()), f"{CODE_DIR}/{name}")
    for name, path in inputs.items():
        view.bind(str(Path(path).resolve()), f"{INPUT_DIR}/{name}")
    view.bind(str(Path(workdir).resolve()), SANDBOX_DIR, "--bind")
    args = [isolation.bwrap or "bwrap", *view.args, "--dev", "/dev", "--proc", "/proc",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
            "--new-session", "--chdir", SANDBOX_DIR]
    if isolation.drop_to_nobody:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return [*args, "--"]
