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

C = TypeVar("C", bound="StudyConfig")


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
        return ConfigError(
            key, value, "unknown key; allowed keys: " + ", ".join(_field_names(cls)), where
        )
    return ConfigError(key, value, _allowed_text(err, cls, key), where)


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
