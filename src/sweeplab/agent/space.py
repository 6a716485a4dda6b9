"""What the agent searches over: model configs (a layer list) and training settings.

A :class:`ModelConfig` is a class name, an input shape (C, H, W), a class count and a
list of layers; the assembler turns it into PyTorch source with every shape inferred, so
a planner (an LLM or Optuna) never computes ``in_features`` by hand. Both planners search
:data:`SPACE`, a family of CNNs and MLPs described by a few numbers that
:func:`build_candidate` turns into a layer list: one space, so that every point an LLM
proposes can be told to the same Optuna study. The assembler itself takes any layer list
that :class:`ModelConfig` accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LayerType = Literal[
    "conv2d", "linear", "relu", "gelu", "maxpool2d", "avgpool2d", "adaptiveavgpool2d",
    "batchnorm2d", "batchnorm1d", "dropout", "flatten",
]

LAYER_PARAMS: dict[str, dict[str, type]] = {
    "conv2d": {"out_channels": int, "kernel_size": int, "stride": int, "padding": int},
    "linear": {"out_features": int},
    "relu": {}, "gelu": {}, "flatten": {},
    "maxpool2d": {"kernel_size": int, "stride": int},
    "avgpool2d": {"kernel_size": int, "stride": int},
    "adaptiveavgpool2d": {"output_size": int},
    "batchnorm2d": {}, "batchnorm1d": {},
    "dropout": {"p": float},
}
"""Allowed parameters of each layer type (input sizes are inferred, never given)."""
REQUIRED = {"conv2d": ("out_channels", "kernel_size"), "linear": ("out_features",),
            "maxpool2d": ("kernel_size",), "avgpool2d": ("kernel_size",),
            "adaptiveavgpool2d": ("output_size",), "dropout": ("p",)}


class LayerSpec(BaseModel):
    """One layer: its type and its own parameters (no input sizes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: LayerType
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _known(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        kind = info.data.get("type")
        if kind is None:
            return value
        allowed = LAYER_PARAMS[kind]
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"{kind}: unknown parameter(s) {unknown}; allowed: "
                             f"{sorted(allowed) or 'none'}")
        missing = [k for k in REQUIRED.get(kind, ()) if k not in value]
        if missing:
            raise ValueError(f"{kind}: missing parameter(s) {missing}")
        for key, typ in allowed.items():
            if key in value:
                if typ is int and (not isinstance(value[key], int) or value[key] < 1
                                   and key != "padding" or value[key] < 0):
                    raise ValueError(f"{kind}.{key} must be a positive integer")
                if typ is float and not (isinstance(value[key], (int, float))
                                         and 0 <= value[key] < 1):
                    raise ValueError(f"{kind}.{key} must lie in [0, 1)")
        return value


class ModelConfig(BaseModel):
    """A model the assembler can build: ``layers`` end at ``num_classes`` logits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    class_name: str = Field("CandidateNet", pattern=r"^[A-Z][A-Za-z0-9_]{0,63}$")
    input_shape: tuple[int, int, int]
    num_classes: int = Field(ge=2)
    layers: tuple[LayerSpec, ...] = Field(min_length=1, max_length=64)


class TrainSpec(BaseModel):
    """How a candidate is trained in the quick evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0, le=1.0)
    batch_size: int = Field(64, ge=1, le=4096)
    epochs: int = Field(10, ge=1, le=200)
    weight_decay: float = Field(0.0, ge=0, le=0.1)


class Candidate(BaseModel):
    """One proposal: a model and how to train it, with the planner's reasoning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig
    train: TrainSpec = TrainSpec()
    rationale: str = ""


SPACE: dict[str, tuple[Any, ...]] = {
    "family": ("cnn", "mlp"),
    "conv_blocks": (1, 3),          # int range (inclusive)
    "channels": (8, 64),            # int range, log scale: first block's channels
    "kernel_size": (3, 5),          # categorical
    "batchnorm": (False, True),     # categorical
    "pooling": ("global", "flatten"),  # CNN: global average pool, or flatten the feature map
    "hidden": (0, 256),             # int range: a dense layer before the head (0: none)
    "mlp_layers": (1, 3),           # int range
    "mlp_width": (32, 512),         # int range, log scale
    "dropout": (0.0, 0.5),          # float range
    "lr": (1e-4, 1e-2),             # float range, log scale
}
"""The offline planner's search space (see :func:`build_candidate`)."""


def build_candidate(params: dict[str, Any], input_shape: tuple[int, int, int],
                    num_classes: int, epochs: int, name: str = "CandidateNet") -> Candidate:
    """The candidate a point of :data:`SPACE` describes.

    CNN: ``conv_blocks`` blocks of conv (channels doubling from ``channels``, ``same``
    padding), optional batch norm, ReLU and a 2x2 max-pool while the image is at least
    4 pixels on a side; then a global average pool (``pooling: global``, few parameters
    whatever the image size) or the whole feature map flattened (``flatten``), an
    optional dense layer of ``hidden`` units with dropout, and the head. MLP: flatten,
    ``mlp_layers`` dense layers of ``mlp_width`` with ReLU and dropout, and the head.
    """
    layers: list[dict[str, Any]] = []
    dropout = float(params.get("dropout", 0.0))
    if params["family"] == "cnn":
        channels, side = int(params["channels"]), min(input_shape[1:])
        k = int(params["kernel_size"])
        for _ in range(int(params["conv_blocks"])):
            layers.append({"type": "conv2d", "params": {"out_channels": channels,
                                                        "kernel_size": k, "padding": k // 2}})
            if params.get("batchnorm"):
                layers.append({"type": "batchnorm2d"})
            layers.append({"type": "relu"})
            if side >= 4:
                layers.append({"type": "maxpool2d", "params": {"kernel_size": 2}})
                side //= 2
            channels *= 2
        if params.get("pooling", "flatten") == "global":
            layers.append({"type": "adaptiveavgpool2d", "params": {"output_size": 1}})
        layers.append({"type": "flatten"})
        if int(params.get("hidden", 0)) > 0:
            layers += [{"type": "linear", "params": {"out_features": int(params["hidden"])}},
                       {"type": "relu"}]
            if dropout > 0:
                layers.append({"type": "dropout", "params": {"p": round(dropout, 3)}})
    else:
        layers.append({"type": "flatten"})
        for _ in range(int(params["mlp_layers"])):
            layers += [{"type": "linear", "params": {"out_features": int(params["mlp_width"])}},
                       {"type": "relu"}]
            if dropout > 0:
                layers.append({"type": "dropout", "params": {"p": round(dropout, 3)}})
    layers.append({"type": "linear", "params": {"out_features": num_classes}})
    model = ModelConfig(class_name=name, input_shape=input_shape, num_classes=num_classes,
                        layers=tuple(LayerSpec(**layer) for layer in layers))
    return Candidate(model=model, train=TrainSpec(lr=float(params["lr"]), epochs=epochs))
