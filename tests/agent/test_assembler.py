"""The assembler: inferred shapes equal PyTorch's, impossible layer lists fail naming the
layer, the source is deterministic and passes the static gate (tested in test_gate.py);
the LLM path accepts only a source that passes every gate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from sweeplab.agent.assembler import (
    AssemblyError,
    assemble,
    assemble_with_llm,
    infer_shapes,
    static_check,
)
from sweeplab.agent.space import LayerSpec, ModelConfig, build_candidate


def config(input_shape: tuple[int, int, int], num_classes: int, *layers: tuple) -> ModelConfig:
    """A ModelConfig from ``(type, params)`` pairs."""
    return ModelConfig(input_shape=input_shape, num_classes=num_classes,
                       layers=tuple(LayerSpec(type=t, params=p) for t, p in layers))


CNN = config((3, 32, 32), 7,
             ("conv2d", {"out_channels": 6, "kernel_size": 5, "stride": 2, "padding": 1}),
             ("batchnorm2d", {}), ("gelu", {}),
             ("maxpool2d", {"kernel_size": 3, "stride": 2}),
             ("conv2d", {"out_channels": 10, "kernel_size": 3, "padding": 1}), ("relu", {}),
             ("avgpool2d", {"kernel_size": 2}),
             ("adaptiveavgpool2d", {"output_size": 2}), ("flatten", {}),
             ("linear", {"out_features": 12}), ("batchnorm1d", {}), ("dropout", {"p": 0.3}),
             ("linear", {"out_features": 7}))
MLP = config((1, 28, 28), 10, ("flatten", {}), ("linear", {"out_features": 64}), ("relu", {}),
             ("dropout", {"p": 0.1}), ("linear", {"out_features": 10}))
CANDIDATES = [
    build_candidate({"family": "cnn", "conv_blocks": 3, "channels": 8, "kernel_size": 5,
                     "batchnorm": True, "hidden": 32, "dropout": 0.2, "lr": 1e-3},
                    (1, 28, 28), 10, 1).model,
    build_candidate({"family": "mlp", "mlp_layers": 2, "mlp_width": 48, "dropout": 0.0,
                     "lr": 1e-3}, (3, 8, 8), 4, 1).model,
]


def load(source: str, tmp_path: Path) -> torch.nn.Module:
    """The model a source of the project's own assembler (or a test's) builds: these
    tests check shapes, so they run trusted sources in this process (the agent never
    does: :mod:`sweeplab.agent.sandbox`)."""
    path = tmp_path / "model.py"
    path.write_text(source, encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "trusted_model"}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - trusted test source
    return namespace["build"]()


def torch_shapes(model: torch.nn.Module, input_shape: tuple[int, ...]) -> list[tuple]:
    """The output shape (without the batch) of each layer of ``model.layers``, by PyTorch."""
    shapes: list[tuple] = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.layers]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(3, *input_shape))
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("model_cfg", [CNN, MLP, *CANDIDATES],
                         ids=["cnn", "mlp", "space-cnn", "space-mlp"])
def test_inferred_shapes_are_pytorchs(model_cfg: ModelConfig, tmp_path: Path) -> None:
    model = load(assemble(model_cfg), tmp_path)
    assert torch_shapes(model, model_cfg.input_shape) == infer_shapes(model_cfg)
    assert infer_shapes(model_cfg)[-1] == (model_cfg.num_classes,)


def test_shapes_of_the_cnn_by_hand() -> None:
    # conv k5 s2 p1 on 32: (32 + 2 - 5) // 2 + 1 = 15; maxpool k3 s2: (15 - 3) // 2 + 1 = 7;
    # conv k3 p1 keeps 7; avgpool k2 (stride 2): (7 - 2) // 2 + 1 = 3
    shapes = infer_shapes(CNN)
    assert shapes[0] == (6, 15, 15) and shapes[3] == (6, 7, 7) and shapes[6] == (10, 3, 3)
    assert shapes[7] == (10, 2, 2) and shapes[8] == (40,)


@pytest.mark.parametrize(("layers", "input_shape", "where", "words"), [
    ((("flatten", {}), ("conv2d", {"out_channels": 4, "kernel_size": 3}),
      ("linear", {"out_features": 10})), (1, 8, 8), "layers[1] conv2d", "flat"),
    ((("linear", {"out_features": 10}),), (1, 8, 8), "layers[0] linear", "flatten"),
    ((("conv2d", {"out_channels": 4, "kernel_size": 5}), ("flatten", {}),
      ("linear", {"out_features": 10})), (1, 4, 4), "layers[0] conv2d", "larger"),
    ((("maxpool2d", {"kernel_size": 2}), ("maxpool2d", {"kernel_size": 2}),
      ("maxpool2d", {"kernel_size": 2}), ("flatten", {}), ("linear", {"out_features": 10})),
     (1, 5, 5), "layers[2] maxpool2d", "larger"),
    ((("batchnorm1d", {}), ("flatten", {}), ("linear", {"out_features": 10})), (2, 4, 4),
     "layers[0] batchnorm1d", "flat"),
    ((("flatten", {}), ("batchnorm2d", {}), ("linear", {"out_features": 10})), (2, 4, 4),
     "layers[1] batchnorm2d", "(C, H, W)"),
    ((("flatten", {}), ("linear", {"out_features": 9})), (1, 4, 4), "layers[1] linear",
     "(10,)"),
    ((("conv2d", {"out_channels": 10, "kernel_size": 4}),), (1, 4, 4), "layers[0] conv2d",
     "(10, 1, 1)"),
], ids=["conv-after-flatten", "linear-on-image", "kernel-too-large", "pool-too-large",
        "batchnorm1d-on-image", "batchnorm2d-on-flat", "wrong-final-size", "image-output"])
def test_impossible_layer_lists_name_the_layer(layers: tuple, input_shape: tuple, where: str,
                                               words: str) -> None:
    model_cfg = config(input_shape, 10, *layers)
    for make in (infer_shapes, assemble):
        with pytest.raises(AssemblyError) as info:
            make(model_cfg)
        message = str(info.value)
        assert message.startswith(where + ": ") and words in message and "\n" not in message
        assert isinstance(info.value, ValueError)
        assert info.value.index == int(where.split("[")[1].split("]")[0])


def test_source_is_deterministic_and_rebuildable_from_its_header() -> None:
    first, second = assemble(CNN), assemble(CNN.model_copy(deep=True))
    assert first == second
    header = first.splitlines()[1]
    assert header.startswith("# {") and "Generated" in first.splitlines()[0]
    rebuilt = ModelConfig.model_validate(json.loads(header[2:]))
    assert rebuilt == CNN and assemble(rebuilt) == first
    assert assemble(MLP) != first
    assert "INPUT_SHAPE = (3, 32, 32)" in first and "NUM_CLASSES = 7" in first
    assert "nn.Linear(40, 12)" in first and "nn.BatchNorm1d(12)" in first


def test_assembled_source_passes_the_static_check() -> None:
    for model_cfg in (CNN, MLP, *CANDIDATES):
        assert static_check(assemble(model_cfg)) == []


class ScriptedClient:
    """A chat client that answers each request with the next scripted reply.

    Not a stand-in for the HTTP client (tested against a real server in test_llm.py):
    it implements the same contract, ``parse`` of a reply or the next one when ``parse``
    raises, so the assembler's own check of replies is what is tested here.
    """

    def __init__(self, replies: list[dict[str, Any]]):
        self.replies = list(replies)
        self.errors: list[str] = []
        self.requests: list[list[dict]] = []

    def complete_json(self, messages: list[dict], schema: dict, name: str,
                      parse: Callable[[dict], Any]) -> tuple[Any, list[dict]]:
        self.requests.append(messages)
        transcript = list(messages)
        for reply in self.replies:
            transcript.append({"role": "assistant", "content": json.dumps(reply)})
            try:
                return parse(reply), transcript
            except ValueError as exc:
                self.errors.append(str(exc))
                transcript.append({"role": "user", "content": str(exc)})
        raise RuntimeError("no valid reply")


FUNCTIONAL = '''import torch
from torch import nn
import torch.nn.functional as F

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


class CandidateNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(784, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(F.relu(self.hidden(torch.flatten(x, 1))), 0.1,
                                   self.training))


def build() -> nn.Module:
    return CandidateNet()
'''


def test_llm_assembly_accepts_only_a_source_that_passes_every_gate(tmp_path: Path) -> None:
    client = ScriptedClient([
        {"python": ""},
        {"python": "import os\n" + FUNCTIONAL},
        {"python": FUNCTIONAL.replace("def build()", "def make()")},
        {"python": FUNCTIONAL},
    ])
    source, transcript = assemble_with_llm(MLP, client)
    assert source.endswith(FUNCTIONAL) and source.startswith("# Generated by an LLM")
    assert json.loads(source.splitlines()[1][2:]) == MLP.model_dump(mode="json")
    assert static_check(source) == []
    assert "non-empty" in client.errors[0]
    assert "import of 'os'" in client.errors[1]
    assert "no top-level def build()" in client.errors[2]
    assert len(client.errors) == 3 and len(transcript) == 2 + 4 + 3
    prompt = client.requests[0][1]["content"]
    assert "(784,)" in prompt and "class CandidateNet" in client.requests[0][0]["content"]
    model = load(source, tmp_path)
    assert tuple(model(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)


def test_llm_assembly_of_an_impossible_config_fails_before_asking() -> None:
    client = ScriptedClient([{"python": FUNCTIONAL}])
    with pytest.raises(AssemblyError, match=r"layers\[0\] linear"):
        assemble_with_llm(config((1, 4, 4), 10, ("linear", {"out_features": 10})), client)
    assert client.requests == []
