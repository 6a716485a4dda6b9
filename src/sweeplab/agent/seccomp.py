"""Seccomp filters for the sandbox, as classic BPF programs assembled here (no library).

A filter is a list of ``struct sock_filter`` instructions (8 bytes each: ``u16 code,
u8 jt, u8 jf, u32 k``) run by the kernel on every system call of the filtered process
against ``struct seccomp_data`` (``int nr`` at offset 0, ``u32 arch`` at 4, ``u64
args[6]`` from 16). See the kernel's Documentation/userspace-api/seccomp_filter.rst
and ``linux/filter.h`` for the opcodes. Bubblewrap takes such a program on a file
descriptor (``--seccomp FD``); the sandbox's child installs one itself with
``seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, ...)``.

:func:`filter_program` builds the sandbox's filter. What it refuses, with ``EPERM``
unless said otherwise (the code sees an ``OSError`` it may catch; nothing happens):

- another architecture's system calls (a 32-bit or x32 entry point has other numbers,
  so a filter written for one table would not hold): the process is killed;
- sockets (``socket``, ``socketpair``): no network, and no ``AF_UNIX`` either (torch's
  CPU training needs none);
- new processes: ``fork``, ``vfork``, and ``clone`` without ``CLONE_THREAD``; threads
  (``clone`` with ``CLONE_THREAD``) are allowed. ``clone3`` passes its flags in memory
  a filter cannot read, so it fails with ``ENOSYS`` and the C library falls back to
  ``clone``, which is checked;
- with ``deny_exec``: ``execve`` and ``execveat`` (bubblewrap must still exec the
  child, so its filter leaves them; the child adds a second filter with them refused
  before it reads any model code);
- reaching other processes or the kernel's sharper interfaces: ``ptrace``,
  ``process_vm_readv``/``writev``, ``mount``, ``umount2``, ``pivot_root``, ``chroot``,
  ``unshare``, ``setns``, ``bpf``, ``perf_event_open``, ``userfaultfd``, the keyring
  (``keyctl``, ``add_key``, ``request_key``), ``io_uring`` (its operations are not
  seen by seccomp), ``open_by_handle_at``, ``memfd_create``, kernel modules,
  ``kexec``, ``reboot``, ``swapon``/``swapoff``.

Supported: x86-64 and AArch64 (:func:`supported`); elsewhere the sandbox says seccomp is
not in force.
"""

from __future__ import annotations

import errno
import platform
import struct
from collections.abc import Iterable

# BPF opcodes (linux/filter.h)
LD_W_ABS = 0x20    # BPF_LD | BPF_W | BPF_ABS: A = *(u32 *)(data + k)
JEQ = 0x15         # BPF_JMP | BPF_JEQ | BPF_K
JGE = 0x35         # BPF_JMP | BPF_JGE | BPF_K
JSET = 0x45        # BPF_JMP | BPF_JSET | BPF_K
RET = 0x06         # BPF_RET | BPF_K

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

CLONE_THREAD = 0x00010000
X32_SYSCALL_BIT = 0x40000000
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16

ARCHES = {
    # machine: (AUDIT_ARCH_*, {name: number})
    "x86_64": (0xC000003E, {
        "socket": 41, "socketpair": 53, "fork": 57, "vfork": 58, "clone": 56,
        "clone3": 435, "execve": 59, "execveat": 322, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166,
        "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
        "request_key": 249, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_by_handle_at": 304, "memfd_create": 319,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168,
        "seccomp": 317,
    }),
    "aarch64": (0xC00000B7, {
        "socket": 198, "socketpair": 199, "clone": 220, "clone3": 435, "execve": 221,
        "execveat": 281, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97,
        "setns": 268, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
        "keyctl": 219, "add_key": 217, "request_key": 218, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "open_by_handle_at": 265,
        "memfd_create": 279, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294, "reboot": 142,
        "swapon": 224, "swapoff": 225, "seccomp": 277,
    }),
}
"""System call numbers of the calls the filter names, per machine (``uname -m``)."""

DENIED = ("socket", "socketpair", "fork", "vfork", "ptrace", "process_vm_readv",
          "process_vm_writev", "mount", "umount2", "pivot_root", "chroot", "unshare",
          "setns", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
          "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register",
          "open_by_handle_at", "memfd_create", "init_module", "finit_module",
          "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff")
"""Refused with EPERM always (those a machine lacks, such as ``fork`` on AArch64, are
skipped)."""
EXEC = ("execve", "execveat")


class SeccompUnsupported(RuntimeError):
    """This machine's architecture has no system call table here."""


def supported(machine: str | None = None) -> bool:
    """Whether :func:`filter_program` knows ``machine`` (default: this one)."""
    return (machine or platform.machine()) in ARCHES


def syscall_number(name: str, machine: str | None = None) -> int:
    """The number of system call ``name`` on ``machine`` (default: this one)."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise SeccompUnsupported(f"no seccomp filter for the {machine} architecture")
    return ARCHES[machine][1][name]


def _errno(code: int) -> int:
    return RET_ERRNO | (code & 0xFFFF)


class _Assembler:
    """Instructions with symbolic jump targets, resolved to relative offsets."""

    def __init__(self) -> None:
        self.code: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def emit(self, op: int, k: int, jt: object = 0, jf: object = 0) -> None:
        self.code.append((op, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = bytearray()
        for index, (op, jt, jf, k) in enumerate(self.code):
            offsets = []
            for target in (jt, jf):
                if isinstance(target, str):
                    offset = self.labels[target] - index - 1
                    if not 0 <= offset <= 255:
                        raise ValueError(f"jump to {target} out of range ({offset})")
                    offsets.append(offset)
                else:
                    offsets.append(int(target))
            out += struct.pack("=HBBI", op, offsets[0], offsets[1], k & 0xFFFFFFFF)
        return bytes(out)


def filter_program(deny_exec: bool, machine: str | None = None,
                   extra: Iterable[str] = ()) -> bytes:
    """The sandbox's filter for ``machine`` (default: this one) as BPF bytes (see the
    module docstring); ``extra`` names more calls to refuse with EPERM."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        raise SeccompUnsupported(f"no seccomp filter for the {machine} architecture")
    arch, numbers = ARCHES[machine]
    names = [n for n in (*DENIED, *(EXEC if deny_exec else ()), *extra) if n in numbers]
    asm = _Assembler()
    asm.emit(LD_W_ABS, OFFSET_ARCH)
    asm.emit(JEQ, arch, 0, "kill")
    asm.emit(LD_W_ABS, OFFSET_NR)
    if machine == "x86_64":
        asm.emit(JGE, X32_SYSCALL_BIT, "kill", 0)
    asm.emit(JEQ, numbers["clone"], "clone", 0)
    asm.emit(JEQ, numbers["clone3"], "enosys", 0)
    for name in dict.fromkeys(names):
        asm.emit(JEQ, numbers[name], "eperm", 0)
    asm.emit(RET, RET_ALLOW)
    asm.label("clone")  # x86-64 and AArch64 both pass clone's flags as its first argument
    asm.emit(LD_W_ABS, OFFSET_ARG0)
    asm.emit(JSET, CLONE_THREAD, 0, "eperm")
    asm.emit(RET, RET_ALLOW)  # a thread (BPF jumps only forward: a second allow)
    asm.label("eperm")
    asm.emit(RET, _errno(errno.EPERM))
    asm.label("enosys")
    asm.emit(RET, _errno(errno.ENOSYS))
    asm.label("kill")
    asm.emit(RET, RET_KILL_PROCESS)
    return asm.assemble()
