"""The sandbox, with real child processes: a valid model is summarised correctly, and every
kind of misbehaviour is stopped and reported with its stage and a clear error while this
process carries on.

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
import torch

from sweeplab.agent.assembler import assemble, infer_shapes
from sweeplab.agent.sandbox import (
    RESULT_NAME,
    SandboxError,
    SandboxLimits,
    ValidationResult,
    _run_child,
    load_validated,
    network_namespace_prefix,
    validate,
    validate_in_sandbox,
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


@dataclass
class Run:
    """One sandboxed run: how to start it, and what the test needs to check afterwards."""

    start: Callable[[Path], ValidationResult]
    context: dict[str, Any] = field(default_factory=dict)
    result: ValidationResult | None = None
    workdir: Path | None = None


def sandboxed(source: str, limits: SandboxLimits = QUICK, **kwargs: Any) -> Callable:
    def start(workdir: Path) -> ValidationResult:
        return validate_in_sandbox(source, SHAPE, 10, workdir, limits, **kwargs)
    return start


def child_only(source: str, limits: SandboxLimits, **kwargs: Any) -> Callable:
    """Run the child directly (used to switch the audit hook off)."""
    def start(workdir: Path) -> ValidationResult:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "model.py").write_text(source, encoding="utf-8")
        return _run_child(workdir, SHAPE, 10, limits, **kwargs)
    return start


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """Every sandboxed run of this module, started concurrently; yields name -> Run."""
    outside = tmp_path_factory.mktemp("outside")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    marker = Path(f"/tmp/sweeplab-sandbox-{uuid.uuid4().hex}")
    escaped = outside / "escaped.txt"
    keep = outside / "keep.txt"
    keep.write_text("precious")
    connect = (f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
               "s.sendall(b'leak')")
    table: dict[str, Run] = {
        # the timeout runs first: their children start before the pool is busy
        "group": Run(child_only(model_source(
            "import subprocess\np = subprocess.Popen(['sleep', '300'])\n"
            "open('grandchild.pid', 'w').write(str(p.pid))\nwhile True:\n    p.wait()"),
            SandboxLimits(cpu_seconds=60, timeout_s=15), audit=False, net_namespace=False)),
        "wall": Run(sandboxed(model_source("while True:\n    time.sleep(0.1)", "import time"),
                              SandboxLimits(cpu_seconds=60, timeout_s=6))),
        "cnn": Run(sandboxed(assemble(CNN))),
        "linear": Run(sandboxed(assemble(LINEAR))),
        "cpu": Run(sandboxed(model_source("while True:\n    pass"),
                             SandboxLimits(cpu_seconds=3, timeout_s=60))),
        # 2 GB would be granted without the limit (lazily zeroed pages); 1 GB refuses it
        "bytearray": Run(sandboxed(model_source("hog = bytearray(2 * 2**30)"),
                                   SandboxLimits(memory_mb=1024, cpu_seconds=30))),
        "torch-empty": Run(sandboxed(model_source("hog = torch.empty(10**11)"))),
        "write": Run(sandboxed(model_source(f"open({str(escaped)!r}, 'w').write('x')")),
                     {"path": escaped}),
        "write-relative": Run(sandboxed(model_source(
            "open('../escaped-relative.txt', 'w').write('x')")), {"parent": True}),
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
                                 net_namespace=False)),
        "os.system": Run(sandboxed(model_source(f"os.system('touch {marker}')", "import os"),
                                   net_namespace=False), {"path": marker}),
        "fork": Run(sandboxed(model_source("pid = os.fork()\nif pid == 0:\n    os._exit(0)",
                                           "import os"))),
        "posixsubprocess": Run(sandboxed(model_source(
            "import _posixsubprocess", "import os"))),
        "forged": Run(sandboxed(model_source(
            f"open({RESULT_NAME!r}, 'w').write('{{\"ok\": true, \"stage\": \"ok\"}}')\n"
            "os._exit(0)", "import os"))),
        "swallowed": Run(sandboxed(model_source(
            f"try:\n    os.system('touch {marker}')\nexcept PermissionError:\n    pass",
            "import os"))),
        "import": Run(sandboxed(model_source("pass", "x = 1 / 0"))),
        "build": Run(sandboxed("def build():\n    return 42\n")),
        "forward": Run(sandboxed(model_source("pass").replace(
            "nn.Linear(784, 10)", "nn.Linear(700, 10)"))),
        "shape": Run(sandboxed(model_source("pass").replace(
            "nn.Linear(784, 10)", "nn.Linear(784, 5)"))),
        "nan": Run(sandboxed(NAN_MODEL)),
    }
    if network_namespace_prefix() is not None:
        table["namespace"] = Run(child_only(model_source(connect, "import socket"), QUICK,
                                            audit=False, net_namespace=True))

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
    marker.unlink(missing_ok=True)


def result_of(runs: dict, name: str) -> ValidationResult:
    result = runs["runs"][name].result
    assert result is not None
    assert result.error is None or "\n" not in result.error
    return result


def test_a_valid_model_is_summarised(runs: dict) -> None:
    result = result_of(runs, "cnn")
    assert result.ok and result.stage == "ok" and result.error is None, result
    assert result.output_shape == (2, 10) and result.returncode == 0
    model = load_validated(runs["runs"]["cnn"].workdir / "model.py")
    params = sum(p.numel() for p in model.parameters())
    assert result.summary["params"] == result.summary["trainable_params"] == params
    layers = result.summary["layers"]
    assert [tuple(layer["output_shape"]) for layer in layers] == infer_shapes(CNN)
    assert result.summary["uncounted_layers"] == []
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
    assert result.summary["params"] == 784 * 10 + 10


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
        assert "MemoryError" in result.error and "capped at 1024 MB" in result.error


def test_creating_many_files_is_capped(runs: dict) -> None:
    result = result_of(runs, "many-files")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "creating more than 8 files in the sandbox directory" in result.error
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
    assert f"writing '{target}' outside the sandbox directory" in result.error


def test_removing_a_file_outside_the_sandbox_is_blocked(runs: dict) -> None:
    result = result_of(runs, "remove")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "os.remove" in result.error
    assert runs["runs"]["remove"].context["path"].read_text() == "precious"


def test_a_directory_outside_cannot_be_opened(runs: dict) -> None:
    # a directory descriptor would let dir_fd-relative paths escape the path check
    result = result_of(runs, "directory")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "opening the directory" in result.error


def test_native_code_through_ctypes_is_blocked(runs: dict) -> None:
    result = result_of(runs, "ctypes")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "ctypes.dlopen" in result.error


def test_a_network_connection_is_blocked_by_the_audit_hook_alone(runs: dict) -> None:
    result = result_of(runs, "network")
    assert (result.ok, result.stage, result.net_namespace) == (False, "blocked", False)
    assert "network access" in result.error
    assert not runs["accepted"]


def test_the_network_namespace_alone_also_keeps_the_network_off(runs: dict) -> None:
    if "namespace" not in runs["runs"]:
        pytest.skip("`unshare --net` does not work here")
    result = result_of(runs, "namespace")
    assert result.net_namespace and result.stage == "build", result
    assert "OSError" in result.error or "unreachable" in result.error
    assert not runs["accepted"]


@pytest.mark.parametrize("name", ["os.system", "swallowed"])
def test_a_shell_command_is_blocked(runs: dict, name: str) -> None:
    result = result_of(runs, name)
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "os.system" in result.error
    assert not runs["runs"]["os.system"].context["path"].exists()


def test_fork_is_blocked(runs: dict) -> None:
    result = result_of(runs, "fork")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "os.fork" in result.error


def test_the_unaudited_process_module_cannot_be_imported(runs: dict) -> None:
    result = result_of(runs, "posixsubprocess")
    assert (result.ok, result.stage) == (False, "blocked"), result
    assert "importing _posixsubprocess" in result.error


def test_a_forged_result_file_does_not_count(runs: dict) -> None:
    result = result_of(runs, "forged")
    assert (result.ok, result.stage) == (False, "killed"), result
    assert "without reporting a result" in result.error


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


@pytest.mark.parametrize(("name", "stage", "words"), [
    ("import", "import", "ZeroDivisionError: division by zero (model.py line 3)"),
    ("build", "build", "build() returned int, not a torch.nn.Module"),
    ("forward", "forward", "RuntimeError"),
    ("shape", "shape", "output shape (2, 5) != expected (2, 10)"),
    ("nan", "shape", "NaN or infinite"),
])
def test_each_failure_is_reported_at_its_stage(runs: dict, name: str, stage: str,
                                               words: str) -> None:
    result = result_of(runs, name)
    assert (result.ok, result.stage) == (False, stage), result
    assert words in result.error


def test_loading_a_source_without_the_factory_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(SandboxError, match=r"model.py: defines no build$"):
        load_validated(path)
    path.write_text("def build():\n    return 3\n", encoding="utf-8")
    with pytest.raises(SandboxError, match="returned int, not a torch.nn.Module"):
        load_validated(path)


def test_loading_runs_the_validated_text_not_the_file(tmp_path: Path) -> None:
    # sandboxed code may rewrite files in its work directory; what this process runs
    # is the text that was validated, checked again, whatever the file now holds
    path = tmp_path / "model.py"
    validated = assemble(LINEAR)
    path.write_text("import os\nos.system('touch pwned')\n" + validated, encoding="utf-8")
    model = load_validated(path, source=validated)
    assert tuple(model(torch.zeros(2, *SHAPE)).shape) == (2, 10)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(SandboxError, match=r"refused by the static check: line 1: import of "
                                           r"'os' is not allowed"):
        load_validated(path)  # the rewritten file itself is refused


def test_the_static_check_runs_first(tmp_path: Path) -> None:
    result = validate("import os\n" + assemble(LINEAR), SHAPE, 10, tmp_path)
    assert (result.ok, result.stage) == (False, "static")
    assert "import of 'os'" in result.error
    assert not (tmp_path / RESULT_NAME).exists() and not (tmp_path / "model.py").exists()
