"""Grid specs: which runs a grid holds, expanded and validated before anything runs.

A grid spec is a YAML file in one of two forms.

General form, for any study (``runs/configs/example_grid.yaml`` documents every key)::

    study: my-study               # a registered name, ./file.py:function, pkg.mod:function
    command: python train.py      # or, instead of study: an unchanged program (with params:)
    name: my-grid                 # optional
    description: ...              # optional
    run_name: "L{n_layers}_G{gamma}_S{seed}"   # optional: run directory names (a template)
    tracking: {wandb_project: P, mlflow_uri: default}   # optional trackers of every run
    fixed: {dataset: synthetic}   # constant parameters
    grid: {L: [1, 2], seed: [0, 1, 2]}          # cartesian product
    zip: {potential: [quadratic, lp], p: [<default>, 3.0]}  # i-th entries vary together
    exclude: [{L: 2, potential: quadratic}]     # drop runs matching every key of an entry

``study`` may be any study reference (:func:`sweeplab.core.registry.resolve_study`):
relative files and modules are found from the spec's folder. ``command:`` (with an
optional ``params:`` schema) is short for ``study: {command: ..., params: ...}``, an
unchanged program run once per run (:mod:`sweeplab.core.command`).

``zip`` is one mapping (one axis) or a list of them (one axis each). ``<default>`` leaves
a parameter unset in that run, so the study config's default applies and the run's name
does not show it.

A study may also read a flat form of its own (recognised when there is no ``study:``,
``command:``, ``grid:``, ``fixed:``, ``zip:`` or ``exclude:`` key): plural list keys to
sweep, every other key fixed (:mod:`sweeplab.core.spec_dialect`). It is translated into
the general form, so there is one expansion path. The shape of either form is a pydantic
model (:mod:`sweeplab.core.spec_model`), which words every error.

Expansion (:func:`expand`) is the product of the grid axes (in spec order, the last
varying fastest) and then the zip axes, minus the excluded runs. Each run is named after
the parameters that vary across the grid, in spec order: ``potential=lp,p=1.5,L=2,seed=0``.
:func:`validate_runs` turns every run into the study's typed config, so a bad value deep
in the grid stops the grid before its first run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from sweeplab.core.config import StudyConfig
from sweeplab.core.experiment import safe_name
from sweeplab.core.spec_model import (
    DEFAULT,
    DEFAULT_TEXT,
    TOP_LEVEL_KEYS,
    GeneralSpec,
    GridSpec,
    _Default,
    copy_value,
    freeze,
    show,
    validated,
)
from sweeplab.errors import ConfigError
from sweeplab.suggest import closest_file, did_you_mean

__all__ = [
    "DEFAULT",
    "GridSpec",
    "PlannedRun",
    "SpecSyntaxError",
    "expand",
    "load_grid_spec",
    "param_values",
    "parse_grid_spec",
    "spec_study",
    "validate_runs",
]

GENERAL_MARKERS = ("study", "command", "grid", "fixed", "zip", "exclude")
"""A spec with any of these keys is in the general form (none is a study parameter)."""

MAX_NAME_LENGTH = 200
"""Longer run names are cut and given a hash suffix (file names stop at 255 bytes)."""


class SpecSyntaxError(ConfigError):
    """A grid spec file that is not valid YAML; the message names the file and line."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__("yaml", path, problem, where=path)

    def _message(self) -> str:
        place = f"{self.path}, line {self.line}" if self.line is not None else self.path
        return f"{place}: invalid YAML: {self.problem}"


@dataclass(frozen=True)
class PlannedRun:
    """One expanded run: its parameters (fixed + varying) and its directory name."""

    params: dict[str, Any]
    name: str


# --- loading -------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML, plus duplicate-key errors and floats like ``1e-3``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads 1e-3 as a string (its floats need a dot); researchers write lr: 1e-3.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _Dumper(yaml.SafeDumper):
    """Safe YAML that writes :data:`DEFAULT` as ``<default>``."""


_Dumper.add_representer(_Default, lambda dumper, _: dumper.represent_str(DEFAULT_TEXT))


def load_grid_spec(path: str | Path, base_dir: str | Path | None = None,
                   default_study: Any = None) -> GridSpec:
    """Read and parse the grid spec at ``path`` (general or flat form).

    The study's relative paths start from ``base_dir`` (default: the spec's folder).
    ``default_study`` is the study of a spec that names none (a script running its own
    grid). Raises :class:`ConfigError` for a missing file or a malformed spec and
    :class:`SpecSyntaxError` (naming the file and line) for invalid YAML.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "file not found"
        near = None if path.is_dir() else closest_file(path)
        hint = f" (did you mean {near}?)" if near else ""
        raise ConfigError("spec", str(path), f"{what}{hint}; expected a grid spec YAML file")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise SpecSyntaxError(str(path), line, problem) from None
    base = Path(base_dir) if base_dir is not None else path.resolve().parent
    return parse_grid_spec(data, source=str(path), source_text=text, base_dir=str(base),
                           default_study=default_study)


def parse_grid_spec(
    mapping: Any, source: str = "grid spec", source_text: str | None = None,
    base_dir: str | Path | None = None, default_study: Any = None,
) -> GridSpec:
    """Parse a spec given as a mapping (``source`` names it in errors).

    ``source_text`` is the YAML the mapping came from; without it the mapping is dumped.
    ``base_dir`` and ``default_study``: see :func:`load_grid_spec` (``base_dir`` default:
    the current folder).
    """
    if not isinstance(mapping, Mapping) or not mapping:
        raise ConfigError(
            "spec", show(mapping),
            "a grid spec is a non-empty YAML mapping (general form: study, fixed, grid, "
            "zip, exclude; or a study's flat form)",
            where=source,
        )
    for key in mapping:
        if not isinstance(key, str):
            raise ConfigError("key", key, "keys of a grid spec are names (strings)", source)
    if source_text is None:
        source_text = _dump(mapping, source)
    base = str(Path(base_dir).resolve()) if base_dir is not None else str(Path.cwd())
    if any(key in mapping for key in GENERAL_MARKERS) or default_study is not None:
        spec = _parse_general(mapping, source, source_text, default_study)
    else:
        from sweeplab.core.spec_dialect import flat_study, parse_flat

        study, dialect = flat_study(mapping, source)
        spec = parse_flat(mapping, study, dialect, source, source_text)
    return replace(spec, base_dir=base)


def _dump(mapping: Mapping[str, Any], source: str) -> str:
    """The YAML text of a spec given as a mapping (kept in the grid directory)."""
    try:
        return yaml.dump(dict(mapping), Dumper=_Dumper, sort_keys=False)
    except yaml.YAMLError as exc:
        raise ConfigError("spec", type(exc).__name__, f"not representable as YAML: {exc}",
                          source) from None


def _parse_general(data: Mapping[str, Any], source: str, text: str,
                   default_study: Any = None) -> GridSpec:
    """Check every section of a general-form spec (:class:`GeneralSpec`)."""

    def unknown(key: str, value: Any) -> ConfigError:
        return ConfigError(key, show(value), "unknown top-level key"
                           + did_you_mean(key, TOP_LEVEL_KEYS) + "; allowed keys: "
                           + ", ".join(TOP_LEVEL_KEYS))

    model = validated(GeneralSpec, data, source, unknown,
                      context={"default_study": default_study})
    return model.to_grid_spec(data, source, text)


def spec_study(spec: GridSpec) -> Any:
    """The :class:`~sweeplab.core.registry.Study` the spec runs (resolved from its folder).

    A command study's parameters are typed by the spec's values unless it declares them.
    """
    from sweeplab.core.registry import resolve_study

    try:
        return resolve_study(spec.study, spec.base_dir or None, param_values(spec))
    except ConfigError as exc:
        if exc.where is None:
            exc.located(spec.source)
        raise


def param_values(spec: GridSpec) -> dict[str, list[Any]]:
    """Every value the spec gives each parameter, in spec order (``<default>`` included)."""
    out: dict[str, list[Any]] = {}
    for key, value in spec.fixed.items():
        out.setdefault(key, []).append(value)
    for key, values in spec.grid.items():
        out.setdefault(key, []).extend(values)
    for group in spec.zip:
        for key, values in group.items():
            out.setdefault(key, []).extend(values)
    return out


# --- expansion -----------------------------------------------------------------------


def expand(spec: GridSpec) -> list[PlannedRun]:
    """Every run of ``spec``, in a deterministic order, each with a unique name.

    Order: the product of the grid axes (spec order, last fastest), then the zip axes.
    Names show the parameters whose value differs between runs, in spec order; runs whose
    names would clash get a config-hash suffix. Raises :class:`ConfigError` when an
    exclude entry matches no run or every run is excluded.
    """
    matched: set[int] = set()
    runs = list(_iter_params(spec, matched))
    for i, entry in enumerate(spec.exclude):
        if i not in matched:
            raise ConfigError(f"exclude[{i}]", show(entry), "matches no run of the grid; "
                              "check its keys and values", spec.source)
    if not runs:
        raise ConfigError("exclude", show(list(spec.exclude)), "drops every run of the "
                          "grid; keep at least one", spec.source)
    keys = list(spec.order) + [k for r in runs for k in r if k not in spec.order]
    keys = list(dict.fromkeys(keys))
    varying = [k for k in keys if len({freeze(r.get(k, DEFAULT)) for r in runs}) > 1]
    if spec.run_name:
        names = [_templated_name(spec, r) for r in runs]
    else:
        names = [_run_name(r, varying) for r in runs]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    planned = []
    for params, name in zip(runs, names):
        if counts[name] > 1 or len(name) > MAX_NAME_LENGTH:
            name = f"{name[:MAX_NAME_LENGTH]},hash={_hash(spec, params)}"
        planned.append(PlannedRun(params, name))
    return planned


def _iter_params(spec: GridSpec, matched: set[int]) -> Iterator[dict[str, Any]]:
    """Yield each run's parameters lazily (fixed first, then spec order)."""
    axes: list[list[dict[str, Any]]] = [[{k: v} for v in vals] for k, vals in spec.grid.items()]
    for group in spec.zip:
        n = len(next(iter(group.values())))
        axes.append([{k: vals[i] for k, vals in group.items()} for i in range(n)])
    exclude = [{k: freeze(v) for k, v in e.items()} for e in spec.exclude]
    rank = {k: i for i, k in enumerate(spec.order)}
    for combo in itertools.product(*axes):
        params = dict(spec.fixed)
        for part in combo:
            params.update(part)
        hits = [i for i, e in enumerate(exclude)
                if all(freeze(params.get(k, DEFAULT)) == v for k, v in e.items())]
        if hits:
            matched.update(hits)
            continue
        ordered = sorted(params, key=lambda k: rank.get(k, len(rank)))
        yield {k: copy_value(params[k]) for k in ordered if params[k] is not DEFAULT}


def _templated_name(spec: GridSpec, params: Mapping[str, Any]) -> str:
    """The spec's ``run_name`` template (``str.format``) filled with the run's parameters."""
    values = {k: v for k, v in params.items() if v is not DEFAULT}
    try:
        return safe_name(spec.run_name.format_map(values))
    except KeyError as exc:
        raise ConfigError("run_name", spec.run_name, f"uses {{{exc.args[0]}}}, which the grid "
                          "does not set; use parameters of fixed, grid or zip", spec.source
                          ) from None
    except (ValueError, IndexError) as exc:
        raise ConfigError("run_name", spec.run_name, f"not a valid template ({exc})",
                          spec.source) from None


def _run_name(params: Mapping[str, Any], varying: list[str]) -> str:
    """``key=value`` of each varying parameter the run sets, joined by commas."""
    parts = [f"{k}={_format(params[k])}" for k in varying if k in params]
    return ",".join(parts) or "run"


def _format(value: Any) -> str:
    """A value as it appears in a run name: floats with :g, lists joined by -, None none."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_format(v) for v in value)
    if isinstance(value, Mapping):
        return "-".join(f"{_format(k)}_{_format(v)}" for k, v in value.items())
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(value)).strip("_") or "_"


def _hash(spec: GridSpec, params: Mapping[str, Any]) -> str:
    """The study config's hash when the run is valid, else a hash of its parameters."""
    try:
        return spec_study(spec).config.from_mapping(params).config_hash()
    except ConfigError:
        blob = json.dumps(params, sort_keys=True, default=repr, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --- validation ----------------------------------------------------------------------


def validate_runs(
    spec: GridSpec, runs: list[PlannedRun]
) -> list[tuple[PlannedRun, StudyConfig]]:
    """Each run with its typed config; the first invalid run raises :class:`ConfigError`.

    The error names the run (``run potential=lp,p=0.5,seed=0: invalid p=0.5: must be >
    1``). Parameters the study does not know are reported once, naming the spec section;
    two runs that validate to the same config are an error too. An unknown study raises
    :class:`~sweeplab.errors.UnknownStudyError`.
    """
    study = spec_study(spec)
    cls = study.config
    _check_keys(spec, cls, study.name)
    out: list[tuple[PlannedRun, StudyConfig]] = []
    seen: dict[str, str] = {}
    for run in runs:
        cfg = cls.from_mapping(run.params, where=f"run {run.name}")
        digest = cfg.config_hash()
        if digest in seen:
            raise ConfigError("config", digest, f"same config as run {seen[digest]}; the runs "
                              "of a grid must differ", where=f"run {run.name}")
        seen[digest] = run.name
        out.append((run, cfg))
    return out


def _check_keys(spec: GridSpec, cls: type[StudyConfig], study: str) -> None:
    """Report a parameter the study does not know once, by its section, not once per run."""
    sections: list[tuple[str, Mapping[str, Any]]] = [("fixed", spec.fixed), ("grid", spec.grid)]
    sections += [("zip", group) for group in spec.zip]
    for section, params in sections:
        for key, value in params.items():
            if key not in cls.model_fields:
                raise ConfigError(
                    f"{section}.{key}", show(value),
                    f"not a parameter of study {study}"
                    + did_you_mean(key, cls.ordered_fields(), cls.field_aliases())
                    + "; allowed keys: " + ", ".join(cls.ordered_fields()), spec.source,
                )
