"""What the agent searches over: model configs (a layer list) and training settings.

A :class:`ModelConfig` is a class name, an input shape (C, H, W), a class count and a
list of layers; the assembler turns it into PyTorch source with every shape inferred, so
a planner (an LLM or Optuna) never computes ``in_features`` by hand. Both planners search
:class:`SpacePoint`, a family of CNNs and MLPs described by a few numbers that
:func:`build_candidate` turns into a layer list: one space, so that every point an LLM
proposes can be told to the same Optuna study. The assembler itself takes any layer list
that :class:`ModelConfig` accepts.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

from sweeplab.suggest import did_you_mean

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


class LogScale:
    """Marks a range of :class:`SpacePoint` that is searched on a log scale."""

    def __repr__(self) -> str:
        return "LOG"


LOG = LogScale()


class SpacePoint(BaseModel):
    """One point of the search space both planners search (see :func:`build_candidate`).

    The single declaration of the space: Optuna's distributions and the LLM prompt's
    lines (:func:`space_dims`), the JSON schema sent to the LLM (``model_json_schema``)
    and the check of every point (:func:`validated`, with its error messages) all come
    from these fields. Bounds are inclusive; values are validated in pydantic's lax mode
    (``16.0`` is the integer 16).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["cnn", "mlp"]
    conv_blocks: Annotated[int, Field(ge=1, le=3)]
    channels: Annotated[int, Field(ge=8, le=64, description="the first block's channels"),
                        LOG]
    kernel_size: Literal[3, 5]
    batchnorm: Literal[False, True]
    pooling: Annotated[Literal["global", "flatten"], Field(
        description="CNN: global average pool, or flatten the feature map")]
    hidden: Annotated[int, Field(ge=0, le=256, description="a dense layer before the head "
                                                           "(0: none)")]
    mlp_layers: Annotated[int, Field(ge=1, le=3)]
    mlp_width: Annotated[int, Field(ge=32, le=512), LOG]
    dropout: Annotated[float, Field(ge=0.0, le=0.5)]
    lr: Annotated[float, Field(ge=1e-4, le=1e-2), LOG]


@dataclass(frozen=True)
class Dim:
    """One field of :class:`SpacePoint` as a planner reads it: categorical choices, or an
    int or float range (inclusive), possibly on a log scale."""

    name: str
    kind: Literal["categorical", "int", "float"]
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def describe(self) -> str:
        """The dimension in a prompt: ``channels: integer in [8, 64] (log scale)``."""
        if self.kind == "categorical":
            return f"{self.name}: one of {json.dumps(list(self.choices))}"
        what = "integer" if self.kind == "int" else "number"
        return (f"{self.name}: {what} in [{self.low:g}, {self.high:g}]"
                + (" (log scale)" if self.log else ""))


def space_dims() -> list[Dim]:
    """The fields of :class:`SpacePoint`, in order, as :class:`Dim`."""
    dims = []
    for name, info in SpacePoint.model_fields.items():
        if get_origin(info.annotation) is Literal:
            dims.append(Dim(name, "categorical", choices=get_args(info.annotation)))
            continue
        bounds = {type(m).__name__: m for m in info.metadata}
        kind = "int" if info.annotation is int else "float"
        low, high = bounds["Ge"].ge, bounds["Le"].le
        dims.append(Dim(name, kind, low=low, high=high, log=LOG in info.metadata))
    return dims


SPACE: dict[str, tuple[Any, ...]] = {
    d.name: d.choices if d.kind == "categorical" else (d.low, d.high) for d in space_dims()}
"""The search space at a glance, from :class:`SpacePoint`: name -> choices, or
``(low, high)`` of a range."""


@functools.cache
def point_model(family: str | None = None) -> type[SpacePoint]:
    """:class:`SpacePoint`, with ``family`` pinned to one value when given (a goal that
    names a family)."""
    if family is None:
        return SpacePoint
    return create_model(f"SpacePoint_{family}", __base__=SpacePoint,
                        family=(Literal[family], Field(description="fixed by the goal")))


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any) -> M:
    """``data`` as a ``model``; a ``ValueError`` of :func:`describe_validation` if not."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe_validation(exc, model)) from None


def describe_validation(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """pydantic's errors on one line, ``; ``-joined: the missing keys, the unknown keys
    (each with what it likely meant, :mod:`sweeplab.suggest`, and the keys allowed there
    when ``model`` is given), then ``key=value: message`` for each invalid value."""
    missing: dict[tuple, list[str]] = {}
    unknown: dict[tuple, list[str]] = {}
    invalid = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "missing":
            missing.setdefault(loc[:-1], []).append(str(loc[-1]))
        elif error["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
        else:
            shown = json.dumps(error.get("input"), default=repr)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            invalid.append(f"{_dotted(loc) or 'value'}={shown}: {error['msg']}")
    parts = [f"missing key(s) {', '.join(_dotted(at + (k,)) for k in keys)}"
             for at, keys in missing.items()]
    for at, keys in unknown.items():
        allowed = _fields_at(model, at)
        named = ", ".join(_dotted(at + (k,)) + did_you_mean(k, allowed) for k in keys)
        parts.append(f"unknown key(s) {named}"
                     + (f"; allowed: {', '.join(allowed)}" if allowed else ""))
    return "; ".join(parts + invalid)


def _dotted(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _fields_at(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The field names of the (nested) model at ``loc``, or [] when unknown."""
    for part in loc:
        info = model.model_fields.get(str(part)) if model is not None else None
        model = info.annotation if info is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return list(model.model_fields) if model is not None else []


def build_candidate(params: dict[str, Any], input_shape: tuple[int, int, int],
                    num_classes: int, epochs: int, name: str = "CandidateNet") -> Candidate:
    """The candidate a point of :class:`SpacePoint` describes.

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
