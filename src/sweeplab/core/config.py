"""Typed study configs: the single declaration of every parameter.

A study's config is a pydantic model deriving from :class:`StudyConfig`. From it come
the CLI flags (``sweeplab.cli.flags``), YAML validation, help text and the run's
identity: :meth:`StudyConfig.config_hash` hashes the canonical (sorted, JSON) form, so
two configs that mean the same thing have the same hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sweeplab.errors import ConfigError, InvalidField
from sweeplab.suggest import did_you_mean

C = TypeVar("C", bound="StudyConfig")


def aliases(*names: str) -> dict[str, Any]:
    """Other names a field is known by, for "did you mean": ``Field(..., **aliases("eta"))``.

    A user who types ``--learning-rate`` or a spec key ``learning_rate`` is pointed to the
    field that declares it (``lr``); the names are never accepted in its place, so a
    config keeps one spelling.
    """
    return {"json_schema_extra": {"aliases": list(names)}}


def applies_when(**conditions: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    """When a field means something: ``Field(1.5, **applies_when(potential=["lp"]))``.

    ``sweeplab ls`` leaves the field's cell empty for a run that does not meet the
    conditions (the lp exponent of a quadratic run). A field with aliases too passes
    ``json_schema_extra={"aliases": [...], "applies_when": {...}}`` itself.
    """
    return {"json_schema_extra": {"applies_when": {k: list(v) for k, v in conditions.items()}}}


class StudyConfig(BaseModel):
    """Base class of every study config: strict keys, immutable, hashable identity.

    Every study has the two lifecycle options ``log_interval`` and ``save_interval``.
    ``save_interval`` changes when a run writes checkpoints, never what it computes, so
    it is left out of the run's identity: changing it does not re-run finished runs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    IDENTITY_EXCLUDED: ClassVar[frozenset[str]] = frozenset({"save_interval"})
    IDENTITY_VERSION: ClassVar[int] = 0
    """Raised by a study when the same config now computes something else (a corrected
    task generator, say): the hash changes, so runs made before are not counted done."""

    log_interval: int = Field(1, ge=1, description="log metrics every N epochs")
    save_interval: int = Field(
        100, ge=0,
        description="write a checkpoint every N epochs (0: only when interrupted and at the end)",
    )

    @classmethod
    def ordered_fields(cls) -> dict[str, Any]:
        """The fields, the study's own first and the lifecycle options last (for help, errors)."""
        base = StudyConfig.model_fields
        own = {k: f for k, f in cls.model_fields.items() if k not in base}
        return {**own, **{k: f for k, f in cls.model_fields.items() if k in base}}

    @classmethod
    def field_aliases(cls) -> dict[str, str]:
        """Declared alias -> field name, over every field (see :func:`aliases`)."""
        out = {}
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            for alias in extra.get("aliases", ()):
                out[alias] = name
        return out

    @classmethod
    def field_applies(cls, name: str, values: Mapping[str, Any]) -> bool:
        """Whether field ``name`` means something for a run with these ``values``.

        True unless the field declares :func:`applies_when` conditions that ``values``
        (a run's parameters; a missing key takes the field default) do not meet.
        """
        field = cls.model_fields.get(name)
        extra = field.json_schema_extra if field is not None else None
        conditions = extra.get("applies_when") if isinstance(extra, dict) else None
        for key, allowed in (conditions or {}).items():
            other = cls.model_fields.get(key)
            value = values.get(key, other.default if other is not None else None)
            if value not in allowed:
                return False
        return True

    def canonical(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (paths as strings, tuples as lists)."""
        return json.loads(self.model_dump_json())

    def config_hash(self, length: int = 12) -> str:
        """Hex digest of the canonical config (less ``IDENTITY_EXCLUDED``): the run's identity.

        A non-zero ``IDENTITY_VERSION`` joins the hashed form (version 0 leaves the hashes
        of existing run directories as they were).
        """
        identity = {k: v for k, v in self.canonical().items() if k not in self.IDENTITY_EXCLUDED}
        if self.IDENTITY_VERSION:
            identity["__identity_version__"] = self.IDENTITY_VERSION
        blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:length]

    @classmethod
    def from_mapping(cls: type[C], data: Mapping[str, Any], where: str | None = None) -> C:
        """Validate ``data`` into a config, raising a one-line :class:`ConfigError`."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise config_error_from(exc, cls, data, where) from None


def config_error_from(
    exc: ValidationError, cls: type[BaseModel], data: Mapping[str, Any], where: str | None
) -> ConfigError:
    """Turn pydantic's first error into a one-line :class:`ConfigError`."""
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidField):
        return ConfigError(cause.key, cause.value, cause.allowed, where)
    loc = [str(part) for part in err.get("loc", ())]
    key = loc[0] if loc else "config"
    value = data.get(key, err.get("input")) if loc else err.get("input")
    if err["type"] == "extra_forbidden":
        return unknown_key_error(key, value, cls, where)
    return ConfigError(key, value, _allowed_text(err, cls, key), where)


def unknown_key_error(key: str, value: Any, cls: type[BaseModel], where: str | None) -> ConfigError:
    """A key ``cls`` does not have: the closest field (by alias, then spelling) and the list."""
    names = _field_names(cls)
    known = cls.field_aliases() if issubclass(cls, StudyConfig) else {}
    return ConfigError(
        key, value,
        "unknown key" + did_you_mean(key, names, known) + "; allowed keys: " + ", ".join(names),
        where,
    )


def _field_names(cls: type[BaseModel]) -> list[str]:
    fields = cls.ordered_fields() if issubclass(cls, StudyConfig) else cls.model_fields
    return list(fields)


def _allowed_text(err: Mapping[str, Any], cls: type[BaseModel], key: str) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "literal_error":
        return f"allowed values are {ctx.get('expected')}"
    bounds = {
        "greater_than": ("must be >", "gt"),
        "greater_than_equal": ("must be >=", "ge"),
        "less_than": ("must be <", "lt"),
        "less_than_equal": ("must be <=", "le"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        bound = ctx.get(name)
        return f"{words} {bound:g}" if isinstance(bound, (int, float)) else f"{words} {bound}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    field = cls.model_fields.get(key)
    hint = f" ({field.description})" if field is not None and field.description else ""
    return err["msg"][0].lower() + err["msg"][1:] + hint


def as_path(value: str | Path | None) -> Path | None:
    """``None`` stays ``None``; anything else becomes an expanded :class:`Path`."""
    return None if value is None else Path(value).expanduser()
