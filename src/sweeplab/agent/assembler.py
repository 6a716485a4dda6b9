"""A :class:`ModelConfig` as PyTorch source: shapes inferred, output deterministic, checked.

The planner (Optuna or an LLM) only lists layers and their own parameters; this module
propagates the input shape through them (:func:`infer_shapes`), so every ``in_channels``,
``in_features`` and ``num_features`` in the generated source comes from arithmetic, never
from a planner's guess, and an impossible layer list fails here with the index of the
layer at fault rather than in a shape error deep inside PyTorch.

:func:`assemble` writes the source itself (byte-identical for the same config, so a run
directory that keeps only configs can rebuild every model). :func:`assemble_with_llm` asks
an LLM to write it instead, under the same conventions. Either way the source is meant to
pass :func:`~sweeplab.agent.gate.static_check`, the allow-list every source crosses
before the sandbox runs it (only ``torch.nn``, ``torch.nn.functional``, tensor
operations and ``math`` are reachable).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any

from sweeplab.agent.gate import static_check
from sweeplab.agent.space import LayerSpec, ModelConfig
from sweeplab.errors import SweeplabError

Shape = tuple[int, ...]


class AssemblyError(SweeplabError, ValueError):
    """A layer list that cannot be built; the one-line message names the layer.

    ``index`` is the 0-based position in ``ModelConfig.layers`` (None for a whole-model
    problem) and ``layer_type`` its type.
    """

    def __init__(self, message: str, index: int | None = None, layer_type: str | None = None):
        self.index = index
        self.layer_type = layer_type
        where = f"layers[{index}] {layer_type}: " if index is not None else ""
        super().__init__(where + message)


# --- shape inference --------------------------------------------------------------------


def _spatial(shape: Shape, index: int, kind: str) -> tuple[int, int, int]:
    """``shape`` as (C, H, W), or the error saying this layer needs an image input."""
    if len(shape) != 3:
        raise AssemblyError(f"needs a (C, H, W) input but gets the flat {shape} (a flatten "
                            "comes before it)", index, kind)
    return shape[0], shape[1], shape[2]


def _window(size: int, kernel: int, stride: int, padding: int, index: int, kind: str,
            shape: Shape) -> int:
    """Output length of a sliding window: ``floor((size + 2 padding - kernel) / stride) + 1``."""
    if size + 2 * padding < kernel:
        raise AssemblyError(f"kernel_size {kernel} is larger than its input {shape}"
                            + (f" padded by {padding}" if padding else ""), index, kind)
    return (size + 2 * padding - kernel) // stride + 1


def _next_shape(shape: Shape, layer: LayerSpec, index: int) -> Shape:
    """The output shape of ``layer`` (without the batch) for an input of ``shape``."""
    kind, p = layer.type, layer.params
    if kind == "conv2d":
        _, h, w = _spatial(shape, index, kind)
        k, s, pad = p["kernel_size"], p.get("stride", 1), p.get("padding", 0)
        return (p["out_channels"], _window(h, k, s, pad, index, kind, shape),
                _window(w, k, s, pad, index, kind, shape))
    if kind in ("maxpool2d", "avgpool2d"):
        c, h, w = _spatial(shape, index, kind)
        k = p["kernel_size"]
        s = p.get("stride", k)
        return c, _window(h, k, s, 0, index, kind, shape), _window(w, k, s, 0, index, kind,
                                                                   shape)
    if kind == "adaptiveavgpool2d":
        c, _, _ = _spatial(shape, index, kind)
        return c, p["output_size"], p["output_size"]
    if kind == "batchnorm2d":
        _spatial(shape, index, kind)
        return shape
    if kind == "flatten":
        size = 1
        for n in shape:
            size *= n
        return (size,)
    if kind in ("linear", "batchnorm1d"):
        if len(shape) != 1:
            raise AssemblyError(f"needs a flat input but gets {shape}: put a flatten (or an "
                                "adaptiveavgpool2d and a flatten) before it", index, kind)
        return (p["out_features"],) if kind == "linear" else shape
    return shape  # relu, gelu, dropout: elementwise


def infer_shapes(model: ModelConfig) -> list[Shape]:
    """The output shape (without the batch) after each layer, from ``model.input_shape``.

    Conventions are PyTorch's: conv2d ``stride`` 1 and ``padding`` 0 by default; pools
    without padding and ``stride`` = ``kernel_size`` by default; flatten keeps the batch
    dimension (a flatten of a flat input changes nothing). Raises :class:`AssemblyError`
    naming the first layer that cannot take its input, and when the last layer does not
    output ``(num_classes,)``.
    """
    if any(n < 1 for n in model.input_shape):
        raise AssemblyError(f"input_shape {tuple(model.input_shape)} must be positive (C, H, W)")
    shape: Shape = tuple(model.input_shape)
    shapes: list[Shape] = []
    for index, layer in enumerate(model.layers):
        shape = _next_shape(shape, layer, index)
        shapes.append(shape)
    if shape != (model.num_classes,):
        last = len(model.layers) - 1
        raise AssemblyError(f"the model must end with ({model.num_classes},) logits "
                            f"(num_classes={model.num_classes}) but outputs {shape}", last,
                            model.layers[last].type)
    return shapes


# --- source generation ------------------------------------------------------------------


def config_json(model: ModelConfig) -> str:
    """``model`` as compact JSON with sorted keys (the header line of generated sources)."""
    return json.dumps(model.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)


def _module_expr(layer: LayerSpec, shape_in: Shape) -> str:
    """The ``nn`` constructor call for ``layer`` given its input shape."""
    p = layer.params
    if layer.type == "conv2d":
        return (f"nn.Conv2d({shape_in[0]}, {p['out_channels']}, kernel_size={p['kernel_size']}"
                f", stride={p.get('stride', 1)}, padding={p.get('padding', 0)})")
    if layer.type in ("maxpool2d", "avgpool2d"):
        name = "MaxPool2d" if layer.type == "maxpool2d" else "AvgPool2d"
        k = p["kernel_size"]
        return f"nn.{name}(kernel_size={k}, stride={p.get('stride', k)})"
    if layer.type == "adaptiveavgpool2d":
        return f"nn.AdaptiveAvgPool2d({p['output_size']})"
    if layer.type == "batchnorm2d":
        return f"nn.BatchNorm2d({shape_in[0]})"
    if layer.type == "batchnorm1d":
        return f"nn.BatchNorm1d({shape_in[0]})"
    if layer.type == "linear":
        return f"nn.Linear({shape_in[0]}, {p['out_features']})"
    if layer.type == "dropout":
        return f"nn.Dropout(p={float(p['p'])!r})"
    return {"relu": "nn.ReLU()", "gelu": "nn.GELU()", "flatten": "nn.Flatten()"}[layer.type]


def _shape_text(shape: Shape) -> str:
    """A shape as ``(16, 14, 14)`` / ``(10,)``."""
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


def assemble(model: ModelConfig) -> str:
    """PyTorch source for ``model``: byte-identical for the same config.

    The module defines ``INPUT_SHAPE``, ``NUM_CLASSES``, ``class <class_name>(nn.Module)``
    holding an ``nn.Sequential`` named ``layers`` (each line commented with its output
    shape), ``forward`` and ``def build() -> nn.Module``. Its first two lines say it was
    generated and from which config (compact JSON). Raises :class:`AssemblyError` when
    :func:`infer_shapes` does.
    """
    shapes = infer_shapes(model)
    inputs = [tuple(model.input_shape), *shapes[:-1]]
    rows = [f"            {_module_expr(layer, shape_in)},  # -> {_shape_text(shape_out)}"
            for layer, shape_in, shape_out in zip(model.layers, inputs, shapes)]
    name = model.class_name
    lines = [
        "# Generated by sweeplab.agent.assembler.assemble; do not edit. From the config:",
        f"# {config_json(model)}",
        f'"""{name}: a generated classifier of {_shape_text(tuple(model.input_shape))} inputs '
        f'into {model.num_classes} classes."""',
        "",
        "from __future__ import annotations",
        "",
        "import torch",
        "from torch import nn",
        "",
        f"INPUT_SHAPE = {_shape_text(tuple(model.input_shape))}",
        f"NUM_CLASSES = {model.num_classes}",
        "",
        "",
        f"class {name}(nn.Module):",
        '    """The layers in order; each comment gives the output shape without the batch."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        "        self.layers = nn.Sequential(",
        *rows,
        "        )",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        return self.layers(x)",
        "",
        "",
        "def build() -> nn.Module:",
        f'    """A freshly initialised {name}."""',
        f"    return {name}()",
        "",
    ]
    return "\n".join(lines)


# --- the LLM path -----------------------------------------------------------------------

PYTHON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"python": {"type": "string"}},
    "required": ["python"],
    "additionalProperties": False,
}
"""The JSON the LLM replies with: the whole module source as one string."""

_SYSTEM = (
    "You write PyTorch model source code. Reply with one JSON object {\"python\": "
    "\"<the whole module source>\"} and nothing else. The module must: import only from "
    "torch, torch.nn, torch.nn.functional, torch.nn.init, math, typing, collections, "
    "dataclasses, functools and __future__; use only torch.nn layers, torch.nn.functional, "
    "tensor operations (torch.* functions, tensor methods) and math; use a module name "
    "only before a dot (torch.flatten, never a module as a value); define INPUT_SHAPE (a "
    "(C, H, W) tuple) and NUM_CLASSES; define class {name}(nn.Module) whose forward maps "
    "a float tensor (batch, C, H, W) to logits (batch, NUM_CLASSES); define def build() "
    "-> nn.Module returning a fresh {name}(). No file, process, network or introspection "
    "access (no open, eval, exec, os, sys, computed getattr names, dunder attributes other "
    "than __init__, private _attributes other than self's, .numpy(), saving, loading, "
    "exporting, profiling, torch.compile, torch.utils or torch.distributed)."
)


def _conventions(source: str, class_name: str) -> list[str]:
    """What ``source`` lacks of the module conventions (a class and ``build()``)."""
    tree = ast.parse(source)
    names = {node.name for node in tree.body
             if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    problems = []
    if class_name not in names:
        problems.append(f"no top-level class {class_name}")
    if "build" not in names:
        problems.append("no top-level def build()")
    return problems


def _parse_python(class_name: str, check: Callable[[str], list[str]] | None
                  ) -> Callable[[dict[str, Any]], str]:
    """The reply check for :func:`assemble_with_llm`: a source that passes every gate."""

    def parse(reply: dict[str, Any]) -> str:
        source = reply.get("python") if isinstance(reply, dict) else None
        if not isinstance(source, str) or not source.strip():
            raise ValueError("'python' must be a non-empty string holding the module source")
        try:
            ast.parse(source)
        except SyntaxError as exc:
            raise ValueError(f"the source is rejected: line {exc.lineno}: syntax error: "
                             f"{exc.msg}") from None
        problems = check(source) if check is not None else []
        if not problems:
            problems = _conventions(source, class_name)
        if problems:
            raise ValueError("the source is rejected: " + "; ".join(problems[:8]))
        return source

    return parse


def assemble_with_llm(model: ModelConfig, client: Any,
                      check: Callable[[str], list[str]] | None = static_check
                      ) -> tuple[str, list[dict]]:
    """The source for ``model`` written by an LLM, and the whole exchange.

    ``client`` is duck-typed: anything with ``complete_json(messages, schema, name,
    parse)`` as :class:`sweeplab.agent.llm.ChatClient` has (it re-prompts with the error
    when ``parse`` rejects a reply). The prompt carries the config and the shapes
    :func:`infer_shapes` computes, so the LLM never has to; a reply must be a non-empty
    string that passes ``check`` (the static check; None only in the sandbox's own
    tests, which show the kernel layers hold without it) and defines the class and
    ``build()``. The returned source starts with a comment naming the config it
    implements.
    """
    shapes = infer_shapes(model)  # an impossible config fails here, before any request
    plan = [f"layers[{i}] {layer.type} {json.dumps(layer.params, sort_keys=True)} -> "
            f"{_shape_text(shape)}" for i, (layer, shape) in enumerate(zip(model.layers,
                                                                           shapes))]
    messages = [
        {"role": "system", "content": _SYSTEM.replace("{name}", model.class_name)},
        {"role": "user", "content": (
            f"Implement this model config as a PyTorch module.\nconfig: {config_json(model)}"
            f"\ninput shape (C, H, W): {tuple(model.input_shape)}; classes: "
            f"{model.num_classes}\nlayers and their output shapes without the batch:\n"
            + "\n".join(plan))},
    ]
    source, transcript = client.complete_json(messages, PYTHON_SCHEMA, "model_source",
                                              _parse_python(model.class_name, check))
    header = ("# Generated by an LLM via sweeplab.agent.assembler.assemble_with_llm from the "
              f"config:\n# {config_json(model)}\n")
    return header + source, transcript
