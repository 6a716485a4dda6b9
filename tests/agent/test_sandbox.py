"""The sandbox, with real child processes: a valid model is summarised correctly, every
kind of misbehaviour is stopped and reported with its stage and an error in the agent's
own words, and each layer (audit hook, seccomp filter, namespaces, process group) holds
on its own while this process carries on.

Each child starts an interpreter and imports torch (about 1.5 s), so the runs are started
together by a module fixture (:func:`runs`) and each test checks its own run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kernel import KERNEL, REASON

from sweeplab.agent.assembler import assemble, infer_shapes
from sweeplab.agent.isolation import Isolation, find_bwrap
from sweeplab.agent.loop import parameter_count
from sweeplab.agent.sandbox import (
    RESULT_NAME,
    Layers,
    SandboxLimits,
    ValidationResult,
    probe_isolation,
    validate,
)
from sweeplab.agent.space import LayerSpec, ModelConfig, build_candidate

SHAPE = (1, 28, 28)
CNN = build_candidate({"family": "cnn", "conv_blocks": 2, "channels": 8, "kernel_size": 3,
                       "batchnorm": True, "hidden": 32, "dropout": 0.25, "lr": 1e-3},
                      SHAPE, 10, 1).model
LINEAR = ModelConfig(input_shape=SHAPE, num_classes=10,
                     layers=(LayerSpec(type="flatten"),
                             LayerSpec(type="linear", params={"out_features": 10})))
QUICK = SandboxLimits(cpu_seconds=30, timeout_s=60)
needs_kernel = pytest.mark.skipif(not KERNEL, reason=REASON)


def model_source(build_body: str, header: str = "") -> str:
    """A model.py whose build() runs ``build_body`` first, then returns a linear model."""
    body = "\n".join("    " + line for line in build_body.strip().splitlines())
    return (f"import torch\nfrom torch import nn\n{header}\n\n"
            f"def build():\n{body}\n"
            "    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n")


NAN_MODEL = """import torch
from torch import nn


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


def build():
    return NaNNet()
"""


FUNCTIONAL_MODEL = """import torch
from torch import nn
from torch.nn import functional as F


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(4, 1, 5, 5))
        self.weight = nn.Parameter(torch.randn(4 * 24 * 24, 10))

    def forward(self, x):
        return F.relu(F.conv2d(x, self.kernel)).flatten(1) @ self.weight


def build():
    return Functional()
"""


@dataclass
class Run:
    """One sandboxed run: how to start it, and what the test needs to check afterwards."""

    start: Callable[[Path], ValidationResult]
    context: dict[str, Any] = field(default_factory=dict)
    result: ValidationResult | None = None
    workdir: Path | None = None


def sandboxed(source: str, limits: SandboxLimits = QUICK, *, audit: bool = True,
              isolation: Isolation | None = None) -> Callable:
    """Validate ``source`` without the static check (these are the runtime layers' tests)."""
    def start(workdir: Path) -> ValidationResult:
        return validate(source, SHAPE, 10, workdir, limits, isolation=isolation,
                        layers=Layers(static=False, audit=audit))
    return start


SECCOMP_ONLY = Isolation("none", seccomp=True, reason="test: seccomp alone")
NOTHING = Isolation("none", seccomp=False, reason="test: the process group alone")
NAMESPACES_ONLY = Isolation("bubblewrap", find_bwrap(), drop_to_nobody=os.geteuid() == 0,
                            seccomp=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """Every sandboxed run of this module, started concurrently; yields name -> Run."""
    outside = tmp_path_factory.mktemp("outside")
    outside.chmod(0o755)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    marker = Path(f"/tmp/sweeplab-sandbox-{uuid.uuid4().hex}")
    escaped = outside / "escaped.txt"
    keep = outside / "keep.txt"
    keep.write_text("precious")
    keep.chmod(0o666)  # even a file anyone may write stays unchanged
    connect = (f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
               "s.sendall(b'leak')")
    table: dict[str, Run] = {
        # the timeouts run first: their children start before the pool is busy
        "group": Run(sandboxed(model_source(
            "import subprocess\np = subprocess.Popen(['sleep', '300'])\n"
            "open('grandchild.pid', 'w').write(str(p.pid))\nwhile True:\n    p.wait()"),
            SandboxLimits(cpu_seconds=60, timeout_s=15), audit=False, isolation=NOTHING)),
        "wall": Run(sandboxed(model_source("while True:\n    time.sleep(0.1)", "import time"),
                              SandboxLimits(cpu_seconds=60, timeout_s=6))),
        "cnn": Run(sandboxed(assemble(CNN))),
        "linear": Run(sandboxed(assemble(LINEAR))),
        "functional": Run(sandboxed(FUNCTIONAL_MODEL)),
        "cpu": Run(sandboxed(model_source("while True:\n    pass"),
                             SandboxLimits(cpu_seconds=3, timeout_s=60))),
        # 2 GB would be granted without the limit (lazily zeroed pages); 1 GB refuses it
        "bytearray": Run(sandboxed(model_source("hog = bytearray(2 * 2**30)"),
                                   SandboxLimits(memory_mb=1024, cpu_seconds=30))),
        "torch-empty": Run(sandboxed(model_source("hog = torch.empty(10**11)"))),
        "write": Run(sandboxed(model_source(f"open({str(escaped)!r}, 'w').write('x')")),
                     {"path": escaped}),
        "write-relative": Run(sandboxed(model_source(
            "open('../escaped-relative.txt', 'w').write('x')"))),
        "remove": Run(sandboxed(model_source(f"os.remove({str(keep)!r})", "import os")),
                      {"path": keep}),
        "directory": Run(sandboxed(model_source(f"fd = os.open({str(outside)!r}, os.O_RDONLY)",
                                                "import os"))),
        "ctypes": Run(sandboxed(model_source("libc = ctypes.CDLL(None)", "import ctypes"))),
        "file-size": Run(sandboxed(model_source(
            "open('big.bin', 'wb').write(b'x' * (3 * 2**20))"),
            SandboxLimits(file_size_mb=2, cpu_seconds=30))),
        # many files under the size limit: the count is capped, so the disk is too
        "many-files": Run(sandboxed(model_source(
            "for i in range(100):\n    open(f'f{i}.bin', 'wb').write(b'x' * 1024)"),
            SandboxLimits(max_files=8, cpu_seconds=30))),
        "network": Run(sandboxed(model_source(connect, "import socket"),
                                 isolation=SECCOMP_ONLY)),
        "os.system": Run(sandboxed(model_source(f"os.system('touch {marker}')", "import os")),
                         {"path": marker}),
        "fork": Run(sandboxed(model_source("pid = os.fork()\nif pid == 0:\n    os._exit(0)",
                                           "import os"))),
        "posixsubprocess": Run(sandboxed(model_source(
            "import _posixsubprocess", "import os"))),
        "swallowed": Run(sandboxed(model_source(
            f"try:\n    os.system('touch {marker}')\nexcept PermissionError:\n    pass",
            "import os"))),
        "leak": Run(sandboxed(model_source(
            "print('SECRET-ON-STDOUT')\nraise ValueError('SECRET-IN-MESSAGE')"))),
        "import": Run(sandboxed(model_source("pass", "x = 1 / 0"))),
        "build": Run(sandboxed("def build():\n    return 42\n")),
        "forward": Run(sandboxed(model_source("pass").replace(
            "nn.Linear(784, 10)", "nn.Linear(700, 10)"))),
        "shape": Run(sandboxed(model_source("pass").replace(
            "nn.Linear(784, 10)", "nn.Linear(784, 5)"))),
        "nan": Run(sandboxed(NAN_MODEL)),
        # the seccomp filter alone (no audit hook, no namespaces): no process, no socket
        "seccomp-fork": Run(sandboxed(model_source(
            f"pid = os.fork()\nif pid == 0:\n    open({str(marker)!r} + '-fork', 'w')\n"
            "    os._exit(0)", "import os"), audit=False, isolation=SECCOMP_ONLY),
            {"path": Path(f"{marker}-fork")}),
        "seccomp-exec": Run(sandboxed(model_source(
            f"os.execv('/usr/bin/touch', ['touch', {str(marker)!r} + '-exec'])", "import os"),
            audit=False, isolation=SECCOMP_ONLY), {"path": Path(f"{marker}-exec")}),
        "seccomp-network": Run(sandboxed(model_source(connect, "import socket"), audit=False,
                                         isolation=SECCOMP_ONLY)),
    }
    if KERNEL:
        # the namespaces alone (no audit hook, no seccomp filter)
        table["namespace-network"] = Run(sandboxed(model_source(connect, "import socket"),
                                                   audit=False, isolation=NAMESPACES_ONLY))
        table["namespace-files"] = Run(sandboxed(model_source(
            f"open({str(keep)!r}, 'w').write('overwritten')"), audit=False,
            isolation=NAMESPACES_ONLY), {"path": keep})

    def go(item: tuple[str, Run]) -> None:
        name, run = item
        run.workdir = tmp_path_factory.mktemp(name.replace(".", "-")) / "work"
        run.result = run.start(run.workdir)

    # more workers than cores: several runs mostly sleep (timeouts), the rest import torch
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 3) as pool:
        list(pool.map(go, table.items()))
    try:
        server.accept()
        accepted = True
    except BlockingIOError:
        accepted = False
    server.close()
    yield {"runs": table, "accepted": accepted}
    for suffix in ("", "-fork", "-exec"):
        Path(f"{marker}{suffix}").unlink(missing_ok=True)


def result_of(runs: dict, name: str) -> ValidationResult:
    result = runs["runs"][name].result
    assert result is not None
    assert result.error is None or "\n" not in result.error
    return result


def test_a_valid_model_is_summarised(runs: dict) -> None:
    result = result_of(runs, "cnn")
    assert result.ok and result.stage == "ok" and result.error is None, result
    assert result.output_shape == (2, 10) and result.returncode == 0
    assert result.isolation == probe_isolation().kind
    params = sum(int(layer["params"]) for layer in result.summary["layers"])
    assert result.summary["params"] == result.summary["trainable_params"] == params
    # the whole state also holds batch norm's running statistics (2C + 1 per layer), and
    # the agent's count from the config is that of the state
    assert result.summary["state"] == params + (2 * 8 + 1) + (2 * 16 + 1)
    assert parameter_count(CNN) == result.summary["state"]
    layers = result.summary["layers"]
    assert [tuple(layer["output_shape"]) for layer in layers] == infer_shapes(CNN)
    # conv FLOPs per sample = 2 * C_out * H_out * W_out * C_in * k * k (2 x MACs)
    first, second = (layer for layer in layers if layer["type"] == "Conv2d")
    assert first["flops"] == 2 * 8 * 28 * 28 * 1 * 3 * 3
    assert second["flops"] == 2 * 16 * 14 * 14 * 8 * 3 * 3
    assert result.summary["flops"] == sum(layer["flops"] for layer in layers)
    assert result.to_dict()["output_shape"] == [2, 10]


def test_flops_of_a_linear_layer_are_two_macs_per_sample(runs: dict) -> None:
    result = result_of(runs, "linear")
    assert result.ok, result
    assert result.summary["flops"] == 2 * 784 * 10
    assert [layer["flops"] for layer in result.summary["layers"]] == [0, 2 * 784 * 10]
    assert result.summary["params"] == 784 * 10 + 10


def test_functional_convolutions_and_matmuls_are_counted(runs: dict) -> None:
    result = result_of(runs, "functional")
    assert result.ok, result
    conv = 2 * 4 * 24 * 24 * 1 * 5 * 5  # F.conv2d: 4 filters of 5x5 on 28x28 -> 24x24
    matmul = 2 * (4 * 24 * 24) * 10    # x @ weight
    assert result.summary["flops"] == conv + matmul
    (layer,) = result.summary["layers"]  # the model is one module with no children
    assert layer["flops"] == conv + matmul and layer["type"] == "other"  # not a torch.nn type


def test_an_infinite_loop_hits_the_cpu_limit(runs: dict) -> None:
    result = result_of(runs, "cpu")
    assert (result.ok, result.stage) == (False, "limit"), result
    assert "CPU time limit of 3 s" in result.error
    assert result.duration_s < 60


def test_a_sleeping_loop_hits_the_wall_clock_timeout(runs: dict) -> None:
    result = result_of(runs, "wall")
    assert (result.ok, result.stage) == (False, "timeout"), result
    assert "6 s wall-clock timeout" in result.error and result.returncode == -9
    assert 6 <= result.duration_s < 30


@pytest.mark.parametrize("name", ["bytearray", "torch-empty"])
def test_a_huge_allocation_hits_the_memory_limit(runs: dict, name: str) -> None:
    result = result_of(runs, name)
    assert (result.ok, result.stage) == (False, "limit"), result
    assert "memory limit" in result.error and "model.py line 6" in result.error
    if name == "bytearray":
        assert "capped at 1024 MB" in result.error


def test_creating_many_files_is_capped(runs: dict) -> None:
    result = result_of(runs, "many-files")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "creating more files than allowed in the sandbox directory" in result.error
    assert len(list(runs["runs"]["many-files"].workdir.glob("f*.bin"))) == 8


def test_a_huge_file_hits_the_file_size_limit(runs: dict) -> None:
    result = result_of(runs, "file-size")
    assert (result.ok, result.stage) == (False, "limit"), result
    assert "file size limit" in result.error and "2 MB" in result.error
    assert (runs["runs"]["file-size"].workdir / "big.bin").stat().st_size <= 2 * 2**20


@pytest.mark.parametrize("name", ["write", "write-relative"])
def test_writing_outside_the_sandbox_is_blocked(runs: dict, name: str) -> None:
    run = runs["runs"][name]
    result = result_of(runs, name)
    assert (result.ok, result.stage) == (False, "blocked"), result
    target = run.context.get("path") or run.workdir.parent / "escaped-relative.txt"
    assert not target.exists()
    assert result.error == "changing files outside the sandbox directory is not allowed"


def test_removing_a_file_outside_the_sandbox_is_blocked(runs: dict) -> None:
    result = result_of(runs, "remove")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "changing files outside" in result.error
    assert runs["runs"]["remove"].context["path"].read_text() == "precious"


def test_a_directory_outside_cannot_be_opened(runs: dict) -> None:
    result = result_of(runs, "directory")
    if KERNEL:  # the folder does not even exist in the sandbox's mount view
        assert (result.stage, result.error) == (
            "build", "the model code raised FileNotFoundError (model.py line 6)"), result
    else:
        assert (result.ok, result.stage) == (False, "blocked"), result
        assert "opening a directory outside the sandbox directory" in result.error


def test_native_code_through_ctypes_is_blocked(runs: dict) -> None:
    result = result_of(runs, "ctypes")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "native code through ctypes" in result.error


def test_a_network_connection_is_blocked_by_the_audit_hook_without_namespaces(runs: dict):
    result = result_of(runs, "network")
    assert (result.ok, result.stage, result.isolation) == (False, "blocked", "none")
    assert result.error == "network access is not allowed"
    assert not runs["accepted"]


@pytest.mark.parametrize("name", ["os.system", "swallowed"])
def test_a_shell_command_is_blocked(runs: dict, name: str) -> None:
    result = result_of(runs, name)
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "starting or signalling a process" in result.error
    assert not runs["runs"]["os.system"].context["path"].exists()


def test_fork_is_blocked(runs: dict) -> None:
    result = result_of(runs, "fork")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "starting or signalling a process" in result.error


def test_the_unaudited_process_module_cannot_be_imported(runs: dict) -> None:
    result = result_of(runs, "posixsubprocess")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "importing an unaudited module" in result.error


def test_text_the_code_produces_never_reaches_the_verdict(runs: dict) -> None:
    run = runs["runs"]["leak"]
    result = result_of(runs, "leak")
    assert (result.stage, result.error) == (
        "build", "the model code raised ValueError (model.py line 7)"), result
    assert "SECRET" not in str(result.to_dict())
    assert "SECRET-ON-STDOUT" in (run.workdir / "sandbox_stdout.txt").read_text()


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_process_the_code_started_dies_with_the_group(runs: dict) -> None:
    run = runs["runs"]["group"]
    result = result_of(runs, "group")
    assert result.stage == "timeout", result
    pid = int((run.workdir / "grandchild.pid").read_text())
    assert not _alive(pid)


@pytest.mark.parametrize(("name", "marker"), [("seccomp-fork", True), ("seccomp-exec", True)])
def test_the_seccomp_filter_alone_stops_new_processes(runs: dict, name: str,
                                                      marker: bool) -> None:
    result = result_of(runs, name)
    assert (result.stage, result.error) == ("build", "the model code raised PermissionError "
                                                     "(model.py line 6)"), result
    assert not runs["runs"][name].context["path"].exists()


def test_the_seccomp_filter_alone_keeps_the_network_off(runs: dict) -> None:
    result = result_of(runs, "seccomp-network")
    assert (result.stage, result.error) == ("build", "the model code raised PermissionError "
                                                     "(model.py line 6)"), result
    assert not runs["accepted"]


@needs_kernel
def test_the_namespaces_alone_keep_the_network_and_the_files_out_of_reach(runs: dict):
    network = result_of(runs, "namespace-network")
    assert network.stage == "build" and network.isolation == "bubblewrap", network
    assert "raised ConnectionRefusedError" in network.error or "raised OSError" in network.error
    assert not runs["accepted"]
    files = result_of(runs, "namespace-files")
    assert files.stage == "build" and "raised FileNotFoundError" in files.error, files
    assert runs["runs"]["namespace-files"].context["path"].read_text() == "precious"


@pytest.mark.parametrize(("name", "stage", "words"), [
    ("import", "import", "the model code raised ZeroDivisionError (model.py line 3)"),
    ("build", "build", "build() did not return a torch.nn.Module"),
    ("forward", "forward", "the model code raised RuntimeError"),
    ("shape", "shape", "output shape (2, 5) != expected (2, 10)"),
    ("nan", "shape", "NaN or infinite"),
])
def test_each_failure_is_reported_at_its_stage(runs: dict, name: str, stage: str,
                                               words: str) -> None:
    result = result_of(runs, name)
    assert (result.ok, result.stage) == (False, stage), result
    assert words in result.error


def test_the_static_check_runs_first(tmp_path: Path) -> None:
    result = validate("import os\n" + assemble(LINEAR), SHAPE, 10, tmp_path)
    assert (result.ok, result.stage) == (False, "static")
    assert "import of 'os'" in result.error
    assert not (tmp_path / RESULT_NAME).exists() and not (tmp_path / "model.py").exists()
