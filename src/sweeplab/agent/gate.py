"""The static check of a candidate's source: an allow-list over names and attribute chains.

A model needs ``torch.nn``, ``torch.nn.functional``, tensor operations and ``math``;
:func:`static_check` lets a source reach those and nothing else. It is the first layer
of the sandbox, not the boundary (the kernel's layers are: :mod:`sweeplab.agent.sandbox`),
so it errs on the side of refusing. The rules:

- **Imports** only of :data:`MODULES` (``torch``, ``torch.nn``, ``torch.nn.functional``,
  ``torch.nn.init``, ``torch.linalg``, ``torch.fft``, ``torch.special``, ``math``,
  ``typing``, ``collections``, ``collections.abc``, ``dataclasses``, ``functools``,
  ``__future__``); ``from M import x`` checks ``M.x`` like an attribute (below); no
  ``*``, no relative imports.
- **Chains rooted at a module** (``torch.nn.Conv2d``, ``F.relu``) are resolved on the
  live modules, one attribute at a time: each must exist and be an allowed module, a
  function, a method or descriptor, a constant (number, dtype), or a class that is a
  tensor, a ``torch.nn.Module``, a ``torch.Size`` or one of :data:`TORCH_CLASSES`; a
  module that is not in :data:`MODULES` is refused wherever it hangs (``torch.os``,
  ``torch.builtins``, ``torch.importlib``, ``F.np``, ``dataclasses.builtins``,
  ``torch.hub``, ``torch.utils``, ``torch.distributed``, ``torch.ops``,
  ``torch.jit``, ...), and so are :data:`DENIED_MEMBERS` (``save``, ``load``,
  ``from_file``, ``compile``, ...). ``dataclasses``, ``functools``, ``collections``,
  ``typing`` and ``__future__`` offer only :data:`MEMBERS` (``typing.get_type_hints``
  would evaluate strings). A module name may only be the root of such a chain: never
  a value (``t = torch``, ``f(F)``), never assigned to or rebound.
- **Other attribute chains** (on tensors, layers, ``self``, call results) are checked
  by name: no dunder but ``__init__``; no private name (``_x``) except on ``self`` or
  ``cls``; none of :data:`DENIED_ATTRIBUTES` (the module names above, ``numpy``,
  ``storage``, ``save``, frames and tracebacks: ``f_back``, ``f_locals``,
  ``__globals__``, ``tb_frame``, ``gi_frame``, ...); and no name of a module (of the
  standard library, of torch or torch.nn), unless it is a public attribute of tensors,
  ``torch.nn.Module`` or the builtin containers (``x.flatten``, ``d.copy``) or an
  attribute the source itself defines (``self.attention = ...``).
- **Names**: of the builtins only :data:`BUILTINS` (no ``open``, ``exec``, ``eval``,
  ``compile``, ``__import__``, ``globals``, ``vars``, ``input``, ``breakpoint``, even
  when shadowed somewhere); any other name must be bound in the source.
- ``getattr``/``setattr``/``delattr``/``hasattr`` need a literal name, checked as an
  attribute of their first argument; ``match`` and ``async`` code are refused; a source
  is at most :data:`MAX_SOURCE_CHARS` characters.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import pkgutil
import sys
import types
from typing import Any

MAX_SOURCE_CHARS = 100_000

MODULES = frozenset({
    "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.linalg", "torch.fft",
    "torch.special", "math", "typing", "collections", "collections.abc", "dataclasses",
    "functools", "__future__",
})
"""Modules a source may import or reach as an attribute."""

MEMBERS: dict[str, frozenset[str]] = {
    "dataclasses": frozenset({"dataclass", "field", "fields", "asdict", "astuple", "replace",
                              "InitVar"}),
    "functools": frozenset({"partial", "reduce", "lru_cache", "cache", "wraps",
                            "cached_property", "total_ordering"}),
    "collections": frozenset({"OrderedDict", "namedtuple", "defaultdict", "deque", "Counter",
                              "abc"}),
    "typing": frozenset({"Any", "Optional", "Union", "List", "Tuple", "Dict", "Set",
                         "FrozenSet", "Sequence", "Callable", "Iterable", "Iterator",
                         "Mapping", "Type", "TypeVar", "ClassVar", "Final", "Literal", "cast",
                         "NamedTuple", "TYPE_CHECKING", "Generic", "overload"}),
    "collections.abc": frozenset({"Sequence", "MutableSequence", "Iterable", "Iterator",
                                  "Mapping", "MutableMapping", "Callable", "Set"}),
    "__future__": frozenset({"annotations"}),
}
"""The only members of these modules a source may use."""

DENIED_MEMBERS = frozenset({
    "save", "load", "from_file", "compile", "set_num_threads", "set_num_interop_threads",
    "cond", "get_type_hints", "ForwardRef",
})
"""Functions of the allowed modules that read or write files, compile code or change
the process (everything module-valued is refused by kind)."""

TORCH_CLASSES = ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "finfo",
                 "iinfo", "dtype", "device", "Generator")
"""torch classes a source may name besides tensors, modules and sizes."""

BUILTINS = frozenset({
    "abs", "all", "any", "bool", "callable", "classmethod", "complex", "dict", "divmod",
    "enumerate", "filter", "float", "format", "frozenset", "getattr", "hasattr", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object",
    "pow", "print", "property", "range", "repr", "reversed", "round", "set", "setattr",
    "delattr", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "zip",
    "True", "False", "None", "NotImplemented", "Ellipsis", "Exception", "ValueError",
    "TypeError", "RuntimeError", "KeyError", "IndexError", "NotImplementedError",
    "AssertionError", "ArithmeticError", "ZeroDivisionError", "StopIteration",
})
"""The builtins a source may name."""

DENIED_ATTRIBUTES = frozenset({
    # modules, under any object
    "builtins", "os", "sys", "importlib", "ctypes", "np", "numpy", "inspect", "subprocess",
    "socket", "shutil", "pathlib", "pickle", "marshal", "io", "types", "gc", "threading",
    "multiprocessing", "signal", "resource", "mmap", "tempfile", "posix", "torch", "glob",
    "platform", "runpy", "pkgutil", "sysconfig", "site", "codecs",
    # torch entry points to files, pickles, native code, processes and the network
    "hub", "load", "save", "load_library", "cpp_extension", "from_file", "system", "popen",
    "spawn", "model_zoo", "serialization", "package", "tofile", "fromfile", "onnx",
    "profiler", "export_chrome_trace", "tensorboard", "to_folder", "distributed",
    "DataLoader", "compile", "benchmark", "collect_env", "library", "storage",
    "untyped_storage", "share_memory_", "ops", "classes", "jit", "utils", "backends",
    # frames, code and tracebacks
    "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "tb_frame", "tb_next",
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame",
    "ag_code", "co_code", "_getframe",
    # builtins reached as attributes
    "exec", "eval", "open", "globals", "locals", "vars",
})
"""Attribute names refused on any object."""

OWN_NAMES = frozenset({"self", "cls"})
"""Roots of attribute chains whose private (``_name``) attributes a model may use."""
_ATTR_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
_DESCRIPTORS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                types.MethodDescriptorType, types.WrapperDescriptorType,
                types.MethodWrapperType, types.GetSetDescriptorType,
                types.MemberDescriptorType, types.ClassMethodDescriptorType, property,
                functools.partial)


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, types.ModuleType], frozenset[str], frozenset[str], tuple]:
    """The allowed modules; the names of modules (the standard library's, torch's and
    torch.nn's submodules: a fixed set, whatever this process has imported); the public
    attributes of tensors, ``nn.Module``, sizes, dtypes and the builtin containers; and
    the allowed classes (computed once)."""
    import torch
    from torch import nn

    modules = {name: importlib.import_module(name) for name in MODULES}
    module_names = {n for n in sys.stdlib_module_names if not n.startswith("_")}
    for package in (torch, nn):
        module_names |= {m.name for m in pkgutil.iter_modules(package.__path__)
                         if not m.name.startswith("_")}
    public = frozenset(n for cls in (torch.Tensor, nn.Module, torch.Size, torch.dtype, list,
                                     dict, str, set, tuple, int, float, bytes)
                       for n in dir(cls) if not n.startswith("_"))
    classes = (torch.Tensor, nn.Module, torch.Size,
               *(getattr(torch, n) for n in TORCH_CLASSES))
    return modules, frozenset(module_names), public, classes


def _allowed_value(value: Any, modules: dict[str, types.ModuleType], classes: tuple) -> bool:
    """Whether a chain may end at (or pass through) ``value``."""
    import torch

    if isinstance(value, types.ModuleType):
        return getattr(value, "__name__", None) in modules \
            and modules[value.__name__] is value
    if isinstance(value, type):
        return issubclass(value, classes[:3]) or value in classes[3:]
    if isinstance(value, (bool, int, float, str, type(None), torch.dtype, torch.layout,
                          torch.memory_format)):
        return True
    return isinstance(value, _DESCRIPTORS)


def _resolve(module: str, parts: list[str]) -> str | None:
    """Why ``module.parts...`` may not be used, or None: resolved on the live objects."""
    modules, _, _, classes = _tables()
    value: Any = modules[module]
    where = module
    for name in parts:
        owner = value.__name__ if isinstance(value, types.ModuleType) else None
        if _dunder(name) and name != "__init__":
            return f"{where}.{name} is a dunder attribute"
        if name.startswith("_") and not _dunder(name):
            return f"{where}.{name} is private"
        listed = owner in MEMBERS
        if name in DENIED_MEMBERS or (listed and name not in MEMBERS[owner]):
            return f"{where}.{name} is not on the allow-list"
        try:  # a module's own namespace: a lazy attribute is not imported by looking
            value = vars(value)[name] if owner else getattr(value, name)
        except (AttributeError, KeyError):
            return f"{where}.{name} is not on the allow-list (no such loaded member)"
        where = f"{where}.{name}"
        if not listed and not _allowed_value(value, modules, classes):
            kind = "a module" if isinstance(value, types.ModuleType) else \
                f"a {type(value).__name__}"
            return f"{where} is {kind} outside the allow-list"
    return None


class _Source:
    """What the source binds: module aliases, every other name, the attributes it defines."""

    def __init__(self, tree: ast.Module):
        self.aliases: dict[str, str] = {}
        self.bound: set[str] = set()
        self.defined_attributes: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    if alias.name in MODULES:  # (any other import is refused on its own)
                        self.aliases[name] = alias.name if alias.asname else name
                    else:
                        self.bound.add(name)
            elif isinstance(node, ast.ImportFrom) and node.module in MODULES and not node.level:
                parent = vars(_tables()[0][node.module])
                for alias in node.names:
                    value = parent.get(alias.name)
                    name = alias.asname or alias.name
                    if isinstance(value, types.ModuleType):
                        self.aliases[name] = value.__name__
                    else:
                        self.bound.add(name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.bound.add(node.name)
                self.defined_attributes.add(node.name)
            elif isinstance(node, ast.arg):
                self.bound.add(node.arg)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.bound.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                self.defined_attributes.add(node.attr)
            elif isinstance(node, ast.keyword) and node.arg:
                self.defined_attributes.add(node.arg)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    for target in _targets(item):
                        self.defined_attributes.add(target)


def _targets(node: ast.stmt) -> list[str]:
    """Names a class-body statement assigns (fields, class attributes)."""
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def _chain(node: ast.Attribute) -> tuple[ast.expr, list[str]]:
    """The root expression of an attribute chain and the names after it."""
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    return value, parts[::-1]


class _Checker(ast.NodeVisitor):
    def __init__(self, source: _Source):
        self.source = source
        self.found: list[tuple[int, str]] = []
        self.parents: dict[int, ast.AST] = {}

    def problem(self, node: ast.AST, message: str) -> None:
        self.found.append((getattr(node, "lineno", 0), f"line {getattr(node, 'lineno', 0)}: "
                                                        f"{message}"))

    def generic_visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.parents[id(child)] = node
        super().generic_visit(node)

    # -- statements the model code has no use for ------------------------------------

    def visit_Match(self, node: ast.Match) -> None:
        self.problem(node, "match statements are not allowed")

    def _async(self, node: ast.AST) -> None:
        self.problem(node, "async code is not allowed")

    visit_AsyncFunctionDef = visit_AsyncFor = visit_AsyncWith = visit_Await = _async

    # -- imports ----------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        allowed = ", ".join(sorted(MODULES))
        for alias in node.names:
            if alias.name not in MODULES:
                self.problem(node, f"import of {alias.name!r} is not allowed (allowed: "
                                   f"{allowed})")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.problem(node, "relative imports are not allowed")
            return
        if node.module not in MODULES:
            self.problem(node, f"import from {node.module!r} is not allowed (allowed: "
                               f"{', '.join(sorted(MODULES))})")
            return
        for alias in node.names:
            if alias.name == "*":
                self.problem(node, f"from {node.module} import * is not allowed")
                continue
            why = _resolve(node.module, [alias.name])
            if why:
                self.problem(node, f"from {node.module} import {alias.name} is not allowed "
                                   f"({why})")
            elif alias.asname and alias.asname in self.source.bound:
                self.problem(node, f"the module name {alias.asname!r} is rebound")

    # -- names -----------------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name in self.source.aliases:
            parent = self.parents.get(id(node))
            if not isinstance(node.ctx, ast.Load) or name in self.source.bound:
                self.problem(node, f"the module name {name!r} is rebound")
            elif not (isinstance(parent, ast.Attribute) and parent.value is node):
                self.problem(node, f"the module {name!r} may only be used as "
                                   f"'{name}.<attribute>', not as a value")
            return
        if hasattr(builtins, name) and name not in BUILTINS:
            self.problem(node, f"the name {name!r} is not allowed")
        elif name not in self.source.bound and name not in BUILTINS:
            self.problem(node, f"the name {name!r} is not defined in the source")

    # -- attributes ------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute(node, node.value, node.attr, node.ctx)
        self.generic_visit(node)

    def check_attribute(self, node: ast.AST, value: ast.expr, attr: str,
                        ctx: ast.expr_context) -> None:
        synthetic = ast.Attribute(value=value, attr=attr, ctx=ctx)
        root, parts = _chain(synthetic)
        if isinstance(root, ast.Name) and root.id in self.source.aliases:
            if not isinstance(ctx, ast.Load):
                self.problem(node, f"assigning to {root.id}.{'.'.join(parts)} is not allowed")
                return
            parent = self.parents.get(id(node))
            if isinstance(parent, ast.Attribute) and parent.value is node:
                return  # the outermost attribute of the chain checks it whole
            why = _resolve(self.source.aliases[root.id], parts)
            if why is None:
                resolved = _tables()[0][self.source.aliases[root.id]]
                for name in parts:
                    resolved = vars(resolved)[name] if isinstance(
                        resolved, types.ModuleType) else getattr(resolved, name)
                if isinstance(resolved, types.ModuleType):
                    why = f"{resolved.__name__} is a module, used as a value"
            if why:
                self.problem(node, f"{root.id}.{'.'.join(parts)} is not allowed ({why})")
            return
        _, module_names, public, _ = _tables()
        if _dunder(attr) and attr != "__init__":
            self.problem(node, f"the attribute .{attr} is not allowed")
        elif attr.startswith("_") and not _dunder(attr) and not (
                isinstance(root, ast.Name) and root.id in OWN_NAMES):
            self.problem(node, f"the private attribute .{attr} is not allowed (only self's "
                               "own private attributes are)")
        elif attr in DENIED_ATTRIBUTES:
            self.problem(node, f"the attribute .{attr} is not allowed")
        elif attr in module_names and attr not in public \
                and attr not in self.source.defined_attributes:
            self.problem(node, f"the attribute .{attr} is not allowed (a module's name)")

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in _ATTR_FUNCTIONS:
            name = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) \
                    or not node.args:
                self.problem(node, f"{node.func.id}() needs a literal attribute name")
            else:
                ctx = ast.Load() if node.func.id in ("getattr", "hasattr") else ast.Store()
                before = len(self.found)
                self.check_attribute(node, node.args[0], name.value, ctx)
                if len(self.found) > before:
                    self.found[-1] = (self.found[-1][0], self.found[-1][1]
                                      + f" (in {node.func.id}())")
        self.generic_visit(node)


def static_check(source: str) -> list[str]:
    """What in ``source`` a model may not do, one message per finding, in line order
    (empty: fine). See the module docstring for the rules."""
    if len(source) > MAX_SOURCE_CHARS:
        return [f"line 1: the source has {len(source):,} characters; at most "
                f"{MAX_SOURCE_CHARS:,} are allowed"]
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: syntax error: {exc.msg}"]
    checker = _Checker(_Source(tree))
    checker.visit(tree)
    seen: set[str] = set()
    ordered = []
    for _, message in sorted(checker.found, key=lambda item: item[0]):
        if message not in seen:
            seen.add(message)
            ordered.append(message)
    return ordered
