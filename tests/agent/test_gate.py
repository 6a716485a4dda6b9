"""The static check is an allow-list: ordinary model code passes; every spelling that
reaches files, processes, the network, native code or the interpreter's internals is
refused with the line and the reason, including the ones a name-based deny-list missed
(modules hanging off torch, F or dataclasses as attributes)."""

from __future__ import annotations

import pytest

from sweeplab.agent.assembler import assemble
from sweeplab.agent.gate import MAX_SOURCE_CHARS, static_check
from sweeplab.agent.space import build_candidate

ALLOWED = '''
from __future__ import annotations
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any
import torch
import torch.nn as nn
import torch.nn.functional as F

@dataclass
class Settings:
    width: int = 8

class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, int(math.sqrt(16)))
        self.norm = nn.LayerNorm(4)
        self._scale = 1.0
        nn.init.kaiming_normal_(self.fc.weight)
    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self._scale * x
    def forward(self, x: torch.Tensor) -> Any:
        with torch.no_grad():
            scale = x.flatten(1).norm(dim=1).clamp(min=1.0).mean()
        y = self._head(partial(F.relu)(getattr(self, "fc")(x)))
        return self.norm(y).data / scale + torch.zeros(y.shape, dtype=torch.float32)

def build() -> nn.Module:
    return Net()
'''


def test_ordinary_model_code_passes() -> None:
    assert static_check(ALLOWED) == []
    for params in ({"family": "cnn", "conv_blocks": 3, "channels": 8, "kernel_size": 5,
                    "batchnorm": True, "hidden": 32, "dropout": 0.2, "lr": 1e-3},
                   {"family": "mlp", "mlp_layers": 2, "mlp_width": 48, "dropout": 0.0,
                    "lr": 1e-3}):
        assert static_check(assemble(build_candidate(params, (1, 28, 28), 10, 1).model)) == []


@pytest.mark.parametrize(("code", "words"), [
    # the spellings a deny-list of bare names let through: modules as attributes
    ("import torch\ntorch.builtins.exec('import os')", "torch.builtins is a module"),
    ("import torch\nm = torch.importlib.import_module('os')", "torch.importlib is a module"),
    ("import torch\np = torch.os.getcwd()", "torch.os is a module"),
    ("import torch\nm = torch.sys.modules", "torch.sys is a module"),
    ("import torch\nc = torch.ctypes.CDLL", "torch.ctypes is a module"),
    ("import torch.nn.functional as F\nz = F.np.zeros(3)", "torch.nn.functional.np is a module"),
    ("import dataclasses\nb = dataclasses.builtins", "dataclasses.builtins is not on the allow"),
    ("import torch\nw = torch.textwrap", "torch.textwrap is a module"),  # on no deny-list
    ("import torch.nn.functional as F\nt = F.torch.os", "torch.nn.functional.torch.os is a mod"),
    ("import torch.nn.functional as F\nt = F.torch", "torch is a module, used as a value"),
    ("from torch import os", "from torch import os is not allowed"),
    ("import torch\nm = getattr(torch, 'os')", "torch.os is a module"),
    # torch's own ways to files, processes, the network and native code
    ("import torch\nt = torch.from_file('/etc/passwd', shared=True, size=8)",
     "torch.from_file is not on the allow-list"),
    ("import torch\ntorch.save({}, '/tmp/x')", "torch.save is not on the allow-list"),
    ("import torch\nsd = torch.load('weights.pt')", "torch.load is not on the allow-list"),
    ("import torch\ns = torch.distributed.TCPStore('127.0.0.1', 1)", "torch.distributed is a mod"),
    ("import torch\nm = torch.hub.list('x')", "torch.hub is a module"),
    ("import torch\nc = torch.utils.cpp_extension.load", "torch.utils is a module"),
    ("import torch\ntorch.ops.load_library('x.so')", "torch.ops is a module"),
    ("import torch\nx = torch.onnx.export", "torch.onnx.export is not allowed ("),
    ("import torch\nf = torch.compile(lambda x: x)", "torch.compile is not on the allow-list"),
    ("import torch\np = torch.profiler.profile()", "torch.profiler is a module"),
    ("import torch\nj = torch.jit.script", "torch.jit is a module"),
    ("import torch\ns = torch.UntypedStorage", "torch.UntypedStorage is a type"),
    ("import torch\nx = torch.zeros(3).numpy().tofile('/tmp/x')", "the attribute .numpy"),
    ("import torch\ns = torch.zeros(3).untyped_storage()", "the attribute .untyped_storage"),
    ("import typing\nh = typing.get_type_hints", "typing.get_type_hints is not on the allow"),
    # frames, globals and other introspection
    ("def f(): pass\ng = f.__globals__", "the attribute .__globals__"),
    ("def f(): pass\nc = f.__code__", "the attribute .__code__"),
    ("k = ().__class__.__bases__[0].__subclasses__()", "the attribute .__subclasses__"),
    ("def g():\n    yield 1\nf = g().gi_frame.f_back", "the attribute .gi_frame"),
    ("def g(e):\n    return e.tb_frame.f_locals", "the attribute .tb_frame"),
    ("import torch\nb = torch.__builtins__", "torch.__builtins__ is a dunder attribute"),
    ("x = getattr(int, '__mro__')", "the attribute .__mro__ is not allowed (in getattr())"),
    ("name = 'x'\ny = getattr(int, name)", "getattr() needs a literal attribute name"),
    ("import torch\nd = torch._dynamo", "torch._dynamo is private"),
    ("import torch\nt = torch\nd = t._dynamo", "the module 'torch' may only be used as"),
    ("import torch.nn as nn\nr = nn.modules._functions", "torch.nn.modules is a module"),
    ("from torch.nn import _reduction", "import _reduction is not allowed"),
    ("def h(x):\n    return x.os", "the attribute .os is not allowed"),
    ("def h(x):\n    return x.inspect", "the attribute .inspect is not allowed"),
    # builtins and names
    ("x = eval('1')", "the name 'eval' is not allowed"),
    ("exec('x = 1')", "the name 'exec' is not allowed"),
    ("c = compile('1', 'f', 'eval')", "the name 'compile' is not allowed"),
    ("f = open('/etc/passwd')", "the name 'open' is not allowed"),
    ("m = __import__('os')", "the name '__import__' is not allowed"),
    ("g = globals()", "the name 'globals' is not allowed"),
    ("v = vars()", "the name 'vars' is not allowed"),
    ("breakpoint()", "the name 'breakpoint' is not allowed"),
    ("def a():\n    open = 1\ndef b():\n    return open('/etc/passwd')", "'open' is not allowed"),
    ("l = __loader__", "the name '__loader__' is not allowed"),
    ("s = __spec__", "the name '__spec__' is not allowed"),
    ("b = __builtins__", "the name '__builtins__' is not defined in the source"),
    ("import torch\ntorch = 1", "the module name 'torch' is rebound"),
    # imports and statements
    ("import os", "import of 'os' is not allowed"),
    ("import inspect", "import of 'inspect' is not allowed"),
    ("import torch.utils", "import of 'torch.utils' is not allowed"),
    ("from subprocess import run", "import from 'subprocess' is not allowed"),
    ("from torch import *", "from torch import * is not allowed"),
    ("from . import sibling", "relative imports are not allowed"),
    ("from torch import hub", "from torch import hub is not allowed"),
    ("import torch\nmatch torch.zeros(1):\n    case object(os=m):\n        pass",
     "match statements are not allowed"),
    ("import torch\ntorch.nn.functional.relu = abs", "assigning to torch.nn.functional.relu"),
    ("x = (\n", "syntax error"),
], ids=lambda v: v if len(v) < 30 else None)
def test_each_forbidden_construct_is_refused_with_its_line(code: str, words: str) -> None:
    problems = static_check(ALLOWED + "\n" + code)
    matching = [p for p in problems if words in p]
    assert matching, problems
    first_line = ALLOWED.count("\n") + 2  # the line `code` starts on
    assert all(p.startswith("line ") for p in problems)
    assert any(int(p.split(":")[0].split()[1]) >= first_line for p in matching)


def test_an_oversized_source_is_refused_before_it_is_parsed() -> None:
    source = ALLOWED + "#" * MAX_SOURCE_CHARS
    (problem,) = static_check(source)
    assert f"at most {MAX_SOURCE_CHARS:,} are allowed" in problem
