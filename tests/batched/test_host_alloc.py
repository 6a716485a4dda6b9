"""A batch's large temporaries reuse freed memory instead of faulting in fresh pages.

Measured in child processes (the allocator's settings are process-wide): minor page
faults over 20 "steps" that each hold six 4 MiB temporaries at once and free them (as a
batched step's activations and gradients are), and the resident memory before and after
the batches are done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sweeplab.batched import host_alloc

COMMON = """
import json, resource, sys, torch
from sweeplab.batched import host_alloc

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        held = [torch.ones(1 << 20) for _ in range(6)]  # 4 MiB each, 24 MiB at once
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
"""

TUNED = COMMON + """
default = faults()
applied = host_alloc.reuse_freed_memory()
faults()  # the heap grows once
tuned = faults()
before = resident_mib()
host_alloc.release_freed_memory()
after = resident_mib()
print(json.dumps({"default": default, "applied": applied, "tuned": tuned,
                  "released_mib": before - after}))
"""

HELD = COMMON + """
applied = host_alloc.hold_until_exit()

def refuse(event, args):
    if event.startswith("ctypes."):
        raise PermissionError(event)

sys.addaudithook(refuse)  # as the agent's sandbox does after hold_until_exit
faults()
again = host_alloc.reuse_freed_memory()
tuned = faults()
host_alloc.release_freed_memory()
print(json.dumps({"applied": applied, "again": again, "tuned": tuned}))
"""

glibc_only = pytest.mark.skipif(host_alloc._glibc() is None,
                                reason="the C library is not glibc")


def _child(code: str, env_value: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop("SWEEPLAB_MALLOC", None)
    if env_value is not None:
        env["SWEEPLAB_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_freed_blocks_are_reused_and_given_back_when_the_batches_are_done():
    got = _child(TUNED)
    assert got["applied"]
    # 20 steps x 24 MiB are 122,880 pages: glibc's own setting faulted in 13k-122k of
    # them here (it depends on the heap's layout), the tuned allocator none
    assert got["tuned"] < 1024, got
    assert got["released_mib"] >= 16, got  # the 24 MiB kept for reuse go back


@glibc_only
def test_held_for_a_sandbox_it_calls_no_native_code_later():
    got = _child(HELD)
    assert got["applied"] and got["again"]
    assert got["tuned"] < 1024, got


@glibc_only
def test_the_allocator_can_be_left_alone():
    got = _child(TUNED, "default")
    assert not got["applied"] and got["released_mib"] < 16, got
