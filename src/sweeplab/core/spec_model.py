"""The shape of a grid spec as pydantic models: what is allowed where, and one error line.

:class:`GeneralSpec` is the general form (``study``/``command``, ``fixed``, ``grid``,
``zip``, ``exclude``, ...) and :class:`TrackingSection` its ``tracking:`` section. Both
forbid unknown keys. Their validators check the values (a grid axis is a non-empty list
of distinct values, zipped lists have equal lengths, a parameter lives in one section,
...) and raise :class:`~sweeplab.errors.ConfigError` naming the key; :func:`validated`
turns whatever pydantic reports into that one line, with did-you-mean for a misspelt
key. A study's flat form (:mod:`sweeplab.core.spec_dialect`) is checked by a model of
the same kind, built from the study's own keys.

Also here: :data:`DEFAULT` (a grid value that leaves a parameter unset) and
:class:`GridSpec`, the parsed spec every form becomes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sweeplab.errors import ConfigError
from sweeplab.suggest import did_you_mean

DEFAULT_TEXT = "<default>"
"""How a spec writes :data:`DEFAULT` (a value that leaves its parameter unset)."""


class _Default(enum.Enum):
    """Type of :data:`DEFAULT` (an enum member, so it survives pickling and copying)."""

    DEFAULT = "default"

    def __repr__(self) -> str:
        return DEFAULT_TEXT


DEFAULT = _Default.DEFAULT
"""A grid value meaning "leave this parameter unset": the study's default applies.

Written ``<default>`` in YAML, e.g. ``zip: {potential: [quadratic, lp], p: [<default>, 3]}``.
"""


@dataclass(frozen=True)
class GridSpec:
    """A parsed grid spec in the general form (a flat-form spec is translated into it).

    ``grid`` maps each product axis to its values; ``zip`` holds one mapping per zipped
    axis (equal-length value lists); ``exclude`` the partial mappings of dropped runs.
    ``order`` is every parameter in the order it appears in the spec (run names follow
    it); ``source`` names where the spec came from (a file path) and ``source_text`` is
    the YAML as given, so a grid directory can keep it verbatim.

    ``study`` is the study reference as the spec gives it (a name, a file or module
    reference, or a command mapping); ``base_dir`` is the folder its relative paths
    start from (the spec file's folder). :func:`sweeplab.core.grid.spec_study` resolves it.
    """

    study: Any
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    zip: tuple[dict[str, tuple[Any, ...]], ...] = ()
    exclude: tuple[dict[str, Any], ...] = ()
    name: str | None = None
    description: str | None = None
    source_text: str = ""
    source: str = "grid spec"
    order: tuple[str, ...] = ()
    tracking: dict[str, Any] = field(default_factory=dict)
    run_name: str | None = None
    base_dir: str = ""


# --------------------------------------------------------------------------- values


def unset(value: Any) -> Any:
    """``<default>`` as written in a spec becomes :data:`DEFAULT`; anything else stays."""
    return DEFAULT if isinstance(value, str) and value == DEFAULT_TEXT else value


def freeze(value: Any) -> Any:
    """A hashable stand-in for ``value`` (lists -> tuples, mappings -> sorted items)."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def copy_value(value: Any) -> Any:
    """Lists and mappings copied, so runs never share a mutable value."""
    if isinstance(value, (list, tuple)):
        return [copy_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: copy_value(v) for k, v in value.items()}
    return value


def show(value: Any) -> Any:
    """A value for an error message: containers as plain lists/dicts, long ones cut."""
    value = copy_value(value)
    text = repr(value)
    return text[:117] + "..." if len(text) > 120 else value


def axis_values(value: Any, key: str, distinct: bool = True) -> tuple[Any, ...]:
    """A non-empty list (distinct values unless zipped) as a tuple, or a ConfigError."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, show(value), "must be a list of values, e.g. [1, 2]")
    if not value:
        raise ConfigError(key, [], "must be a non-empty list of values")
    value = [unset(v) for v in value]
    seen: set[Any] = set()
    for item in value if distinct else ():
        frozen = freeze(item)
        if frozen in seen:
            raise ConfigError(key, show(value), f"values must be distinct; {show(item)} "
                              "appears twice")
        seen.add(frozen)
    return tuple(value)


def _parameters(value: Any, key: str) -> dict[str, Any]:
    """A section that maps parameter names to values (missing or null: empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(key, show(value), "must be a mapping of parameter -> value")
    return dict(value)


def _zip_groups(value: Any) -> list[dict[str, tuple[Any, ...]]]:
    """The zip axes: each a mapping of equal-length lists whose rows are distinct."""
    if value is None:
        return []
    groups = [value] if isinstance(value, Mapping) else value
    allowed = "a mapping of parameter -> list (equal lengths), or a list of such mappings"
    if not isinstance(groups, list) or not groups:
        raise ConfigError("zip", show(value), allowed)
    out = []
    for i, group in enumerate(groups):
        key = "zip" if isinstance(value, Mapping) else f"zip[{i}]"
        if not isinstance(group, Mapping) or not group:
            raise ConfigError(key, show(group), allowed)
        lists = {k: axis_values(v, f"{key}.{k}", distinct=False)
                 for k, v in _parameters(group, key).items()}
        lengths = [len(v) for v in lists.values()]
        if len(set(lengths)) > 1:
            shown = ", ".join(f"{k} has {len(v)}" for k, v in lists.items())
            first = next(iter(lists))
            raise ConfigError(f"{key}.{first}", show(group[first]),
                              f"zipped lists must have equal lengths ({shown})")
        rows = {tuple(freeze(v[j]) for v in lists.values()) for j in range(lengths[0])}
        if len(rows) < lengths[0]:
            raise ConfigError(key, show(group), "zipped entries must be distinct")
        out.append(lists)
    return out


# --------------------------------------------------------------------------- models


class SpecModel(BaseModel):
    """A section of a spec: unknown keys are errors, strings must be strings."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)


TRACKING_KEYS = ("wandb_project", "wandb_entity", "wandb_mode", "wandb_dir", "mlflow_uri",
                 "mlflow_experiment")
"""Keys of a spec's ``tracking:`` section (the same as the trackers' CLI flags)."""


class TrackingSection(SpecModel):
    """``tracking:``: the wandb/MLflow settings of every run of the grid."""

    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_mode: str | None = None
    wandb_dir: str | None = None
    mlflow_uri: str | None = None
    mlflow_experiment: str | None = None

    def settings(self) -> dict[str, Any]:
        """The keys the spec set (null included), in this section's order."""
        return {k: getattr(self, k) for k in TRACKING_KEYS if k in self.model_fields_set}


TOP_LEVEL_KEYS = ("study", "name", "description", "run_name", "tracking", "fixed", "grid", "zip",
                  "exclude", "command", "params")
"""Keys allowed at the top of a general-form spec."""

STUDY_REQUIRED = ("required: a registered study name, ./file.py:function, "
                  "package.module:function, or command: followed by the program to run")


class GeneralSpec(SpecModel):
    """The general form of a grid spec (``runs/configs/example_grid.yaml`` shows each key).

    Validated as given; :meth:`to_grid_spec` gives the parsed :class:`GridSpec`.
    ``default_study`` (through the validation context) is the study of a spec that
    names none: a script running its own grid.
    """

    study: Any = None
    name: str | None = None
    description: str | None = None
    run_name: str | None = None
    tracking: TrackingSection | None = None
    fixed: Any = Field(default=None, validate_default=True)
    grid: Any = Field(default=None, validate_default=True)
    zip: Any = Field(default=None, validate_default=True)
    exclude: Any = None
    command: Any = None
    params: Any = None

    @field_validator("tracking", mode="before")
    @classmethod
    def _tracking_mapping(cls, value: Any) -> Any:
        return None if value is None else _parameters(value, "tracking")

    @field_validator("fixed", mode="after")
    @classmethod
    def _fixed(cls, value: Any) -> dict[str, Any]:
        return {k: unset(v) for k, v in _parameters(value, "fixed").items()}

    @field_validator("grid", mode="after")
    @classmethod
    def _grid(cls, value: Any) -> dict[str, tuple[Any, ...]]:
        return {k: axis_values(v, f"grid.{k}") for k, v in _parameters(value, "grid").items()}

    @field_validator("zip", mode="after")
    @classmethod
    def _zip(cls, value: Any) -> tuple[dict[str, tuple[Any, ...]], ...]:
        return tuple(_zip_groups(value))

    @model_validator(mode="after")
    def _sections(self, info: Any) -> GeneralSpec:
        """A parameter in one section only; exclude entries over the grid's parameters;
        the study reference given exactly once."""
        owner: dict[str, str] = {}
        for section, keys in [("fixed", self.fixed), ("grid", self.grid)] + \
                [("zip", g) for g in self.zip]:
            for key in keys:
                if key in owner:
                    raise ConfigError(key, show(keys[key]), f"set in both {owner[key]} and "
                                      f"{section}; give each parameter in one place")
                owner[key] = section
        self.exclude = tuple(_exclude(self.exclude, owner))
        default = (info.context or {}).get("default_study") if info is not None else None
        self.study = self._study_ref(default)
        return self

    def _study_ref(self, default: Any) -> Any:
        """``study:``, or ``command:`` (+ ``params:``), or ``default``."""
        study = self.study
        if self.command is not None or "command" in self.model_fields_set:
            if study is not None:
                raise ConfigError("command", show(self.command), "give either study: or "
                                  "command: (an unchanged program), not both")
            study = {"command": self.command}
            if self.params is not None:
                study["params"] = self.params
        elif "params" in self.model_fields_set:
            raise ConfigError("params", show(self.params), "types the parameters of a "
                              "command: study; give command: too, or drop params:")
        if study is None:
            study = default
        if isinstance(study, Mapping) and study and all(isinstance(k, str) for k in study):
            return dict(study)
        if not isinstance(study, str) or not study.strip():
            raise ConfigError("study", study, STUDY_REQUIRED)
        return study

    def to_grid_spec(self, data: Mapping[str, Any], source: str, text: str) -> GridSpec:
        """The parsed spec; ``data`` (the mapping as written) gives the parameters' order."""
        order: list[str] = []
        for section in data:
            if section == "fixed":
                order += list(self.fixed)
            elif section == "grid":
                order += list(self.grid)
            elif section == "zip":
                order += [k for group in self.zip for k in group]
        tracking = self.tracking.settings() if self.tracking is not None else {}
        return GridSpec(self.study, dict(self.fixed), dict(self.grid), tuple(self.zip),
                        tuple(self.exclude), self.name, self.description, text, source,
                        tuple(order), tracking, self.run_name)


def _exclude(value: Any, owner: Mapping[str, str]) -> list[dict[str, Any]]:
    """The exclude entries: non-empty partial runs over the grid's own parameters."""
    if value is None:
        return []
    allowed = "a list of partial runs, e.g. [{potential: quadratic, L: 2}]"
    if not isinstance(value, list):
        raise ConfigError("exclude", show(value), allowed)
    out = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping) or not entry:
            raise ConfigError(f"exclude[{i}]", show(entry), allowed)
        for key in entry:
            if key not in owner:
                raise ConfigError(f"exclude[{i}].{key}", show(entry[key]),
                                  "not a parameter of this grid; parameters: "
                                  + ", ".join(owner))
        out.append({k: unset(v) for k, v in entry.items()})
    return out


# --------------------------------------------------------------------------- errors


def validated(model: type[SpecModel], data: Mapping[str, Any], source: str,
              unknown: Callable[[str, Any], ConfigError], context: dict | None = None) -> Any:
    """``model`` validated from ``data``, or the first problem as a one-line ConfigError.

    Problems are taken in the order a reader meets them: unknown keys first (in the
    order written; ``unknown(key, value)`` words that error), then each section in
    the model's order. A validator's own ConfigError comes through as it is.
    """
    try:
        return model.model_validate(dict(data), context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        extra = [e for e in errors if e["type"] == "extra_forbidden"]
        if extra:
            keys = [e["loc"][0] for e in extra]
            first = min(keys, key=list(data).index) if all(k in data for k in keys) \
                else keys[0]
            raise _sectioned(extra, first, data, unknown).located(source) from None
        raise _config_error(errors[0], data).located(source) from None


def _sectioned(extra: list[dict], first: Any, data: Mapping[str, Any],
               unknown: Callable[[str, Any], ConfigError]) -> ConfigError:
    """The unknown key ``first`` at the top, or inside the tracking section."""
    for error in extra:
        if error["loc"][0] == first and len(error["loc"]) > 1 and first == "tracking":
            key = str(error["loc"][1])
            return ConfigError(f"tracking.{key}", show(error["input"]), "unknown key"
                               + did_you_mean(key, TRACKING_KEYS) + "; allowed keys: "
                               + ", ".join(TRACKING_KEYS))
    return unknown(str(first), data[first] if first in data else None)


def _config_error(error: dict, data: Mapping[str, Any]) -> ConfigError:
    """A pydantic error as the ConfigError sweeplab says for it."""
    found = (error.get("ctx") or {}).get("error")
    if isinstance(found, ConfigError):
        return found
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "string_type":
        return ConfigError(key, show(error["input"]), "must be a string")
    return ConfigError(key, show(error["input"]), error["msg"])
