"""A batch's large temporaries reuse freed memory instead of faulting in fresh pages.

Measured in a child process (the allocator's settings are process-wide): minor page
faults over 20 "steps" that each hold six 4 MiB temporaries at once and free them (as a
batched step's activations and gradients are), before and after
:func:`sweeplab.batched.host_alloc.reuse_freed_memory`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sweeplab.batched import host_alloc

CHILD = """
import json, resource, sys, torch
from sweeplab.batched import host_alloc

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        held = [torch.ones(1 << 20) for _ in range(6)]  # 4 MiB each, 24 MiB at once
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults()
applied = host_alloc.reuse_freed_memory()
faults()  # the heap grows once
tuned = faults()
host_alloc.release_freed_memory()
print(json.dumps({"default": default, "applied": applied, "tuned": tuned}))
"""


def _child(env_value: str | None = None) -> dict:
    import os

    env = dict(os.environ)
    env.pop("SWEEPLAB_MALLOC", None)
    if env_value is not None:
        env["SWEEPLAB_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(host_alloc._glibc() is None, reason="the C library is not glibc")
def test_freed_blocks_are_reused_instead_of_faulted_in():
    got = _child()
    assert got["applied"]
    # 20 steps x 24 MiB are 122,880 pages: glibc's own setting faulted in 13k-122k of
    # them here (it depends on the heap's layout), the tuned allocator none
    assert got["tuned"] < 1024, got


@pytest.mark.skipif(host_alloc._glibc() is None, reason="the C library is not glibc")
def test_the_allocator_can_be_left_alone():
    got = _child("default")
    assert not got["applied"]
