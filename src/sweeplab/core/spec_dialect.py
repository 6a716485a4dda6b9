"""A study's own flat spec form, translated into the general form.

A study may declare a :class:`SpecDialect` (``register_study(..., dialect=...)``): a spec
with none of the general form's keys (``study``, ``command``, ``grid``, ``fixed``,
``zip``, ``exclude``) is then read as that study's flat form, where every key is a
parameter of the study, fixed, except ``name``, ``description``, ``tracking`` and the
plural list keys of :attr:`SpecDialect.axes`, each swept::

    epochs: 1000            # fixed
    depths: [1, 2]          # sweeps L
    seeds: [0, 1, 2]        # sweeps seed

:attr:`SpecDialect.settings` states the study's rules across its axes (some values
apply together: it may turn axes into zip axes). The translation gives a
:class:`~sweeplab.core.spec_model.GridSpec` like any other, so there is one expansion
path. Which study reads a flat spec is found among the installed studies with a dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, create_model, field_validator

from sweeplab.core.spec_model import (
    GridSpec,
    SpecModel,
    TrackingSection,
    axis_values,
    show,
    unset,
    validated,
)
from sweeplab.errors import ConfigError
from sweeplab.suggest import did_you_mean

META_KEYS = ("name", "description", "tracking")
"""Keys of a flat spec that are not parameters."""

Axes = dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class SpecDialect:
    """A study's flat spec form: ``axes`` maps each list key to the parameter it sweeps.

    ``settings(axes)`` (optional) receives the swept values by parameter, may remove
    axes and return them as zip axes (mappings of equal-length lists whose i-th entries
    go together), and raises :class:`~sweeplab.errors.ConfigError` for a combination the
    study does not allow.
    """

    axes: Mapping[str, str]
    settings: Callable[[Axes], list[Axes]] | None = None


class _FlatMeta(SpecModel):
    """The keys of every flat spec that are not parameters."""

    name: str | None = None
    description: str | None = None
    tracking: TrackingSection | None = None

    @field_validator("tracking", mode="before")
    @classmethod
    def _tracking_mapping(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, Mapping):
            raise ConfigError("tracking", show(value), "must be a mapping of parameter -> value")
        return value


def _model(study: Any, dialect: SpecDialect) -> type[SpecModel]:
    """The flat spec model of ``study``: its meta keys, list axes and parameters."""
    keys = [*dialect.axes, *(k for k in study.config.model_fields if k not in META_KEYS)]
    fields: dict[str, Any] = {f"key_{i}": (Any, Field(default=None, alias=key))
                              for i, key in enumerate(keys)}
    return create_model(f"FlatSpec_{abs(hash(study.name))}", __base__=_FlatMeta, **fields)


def parse_flat(data: Mapping[str, Any], study: Any, dialect: SpecDialect, source: str,
               text: str) -> GridSpec:
    """Translate ``study``'s flat spec ``data`` into the general form."""
    fields = study.config.model_fields

    def unknown(key: str, value: Any) -> ConfigError:
        hint = (did_you_mean(key, [*META_KEYS, *dialect.axes, *fields])  # depth: -> depths:
                or did_you_mean(key, fields, study.config.field_aliases()))
        return ConfigError(key, show(value), f"unknown key of the flat {study.name} spec"
                           f"{hint}; allowed keys: {', '.join(META_KEYS)}, the list axes "
                           + ", ".join(dialect.axes) + ", and the parameters "
                           + ", ".join(fields))

    meta = validated(_model(study, dialect), data, source, unknown)
    axes: Axes = {}
    fixed: dict[str, Any] = {}
    order: list[str] = []
    try:
        for key, value in data.items():
            if key in META_KEYS:
                continue
            if key in dialect.axes:
                param = dialect.axes[key]
                if param in data:
                    raise ConfigError(key, show(value), f"{param} is also set; give either "
                                      f"{param} (fixed) or {key} (a list to sweep)")
                axes[param] = axis_values(value, key)
            else:
                fixed[key] = unset(value)
            order.append(dialect.axes.get(key, key))
        zips = dialect.settings(axes) if dialect.settings is not None else []
    except ConfigError as exc:
        raise exc.located(source) from None
    tracking = meta.tracking.settings() if meta.tracking is not None else {}
    return GridSpec(study.name, fixed, axes, tuple(zips), (), meta.name, meta.description,
                    text, source, tuple(order), tracking)


def flat_study(data: Mapping[str, Any], source: str) -> tuple[Any, SpecDialect]:
    """The study whose flat form ``data`` is, with its dialect.

    Among the installed studies that declare a dialect: the one whose keys cover every
    key of ``data`` (when several have a dialect), else the closest. None declares one:
    the spec names no study (one line, exit 2).
    """
    from sweeplab.core.registry import installed_studies, load_object
    from sweeplab.core.spec_model import STUDY_REQUIRED

    candidates = [(s, load_object(s.dialect)) for s in installed_studies()
                  if s.dialect is not None]
    if not candidates:
        raise ConfigError("study", None, STUDY_REQUIRED, source)
    if len(candidates) == 1:
        return candidates[0]

    def known(pair: tuple[Any, SpecDialect]) -> int:
        study, dialect = pair
        keys = {*META_KEYS, *dialect.axes, *study.config.model_fields}
        return sum(key in keys for key in data)

    fits = [pair for pair in candidates if known(pair) == len(data)]
    if len(fits) > 1:
        names = ", ".join(study.name for study, _ in fits)
        raise ConfigError("study", None, f"the flat spec fits the studies {names}; name one "
                          "with study: and give the grid in the general form", source)
    return fits[0] if fits else max(candidates, key=known)
