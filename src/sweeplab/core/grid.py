"""Grid specs: which runs a grid holds, expanded and validated before anything runs.

A grid spec is a YAML file in one of two forms.

General form, for any study (``runs/configs/example_grid.yaml`` documents every key)::

    study: implicit-bias          # a registered name, ./file.py:function, pkg.mod:function
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

Flat form, the implicit-bias study only (recognised when there is no ``study:``,
``command:``, ``grid:``, ``fixed:``, ``zip:`` or ``exclude:`` key): the plural keys of
:data:`FLAT_AXES` are lists to sweep, every other key is fixed. ``p_values`` apply to
the ``lp`` potential only, so ``potentials: [quadratic, lp]`` with ``p_values: [1.5,
3.0]`` gives three potential settings (quadratic, lp 1.5, lp 3.0). The flat form is
translated into the general form (a zip axis for the potential settings), so there is
one expansion path.

Expansion (:func:`expand`) is the product of the grid axes (in spec order, the last
varying fastest) and then the zip axes, minus the excluded runs. Each run is named after
the parameters that vary across the grid, in spec order: ``potential=lp,p=1.5,L=2,seed=0``.
:func:`validate_runs` turns every run into the study's typed config, so a bad value deep
in the grid stops the grid before its first run.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sweeplab.core.config import StudyConfig
from sweeplab.core.experiment import safe_name
from sweeplab.errors import ConfigError
from sweeplab.suggest import closest_file, did_you_mean

__all__ = [
    "DEFAULT",
    "FLAT_AXES",
    "FLAT_STUDY",
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

TOP_LEVEL_KEYS = ("study", "name", "description", "run_name", "tracking", "fixed", "grid", "zip",
                  "exclude", "command", "params")
TRACKING_KEYS = ("wandb_project", "wandb_entity", "wandb_mode", "wandb_dir", "mlflow_uri",
                 "mlflow_experiment")
"""Keys of a spec's ``tracking:`` section (the same as the trackers' CLI flags)."""
"""Keys allowed at the top of a general-form spec."""

GENERAL_MARKERS = ("study", "command", "grid", "fixed", "zip", "exclude")
"""A spec with any of these keys is in the general form (none is a study parameter)."""

FLAT_STUDY = "implicit-bias"
"""The study a flat-form spec runs."""

FLAT_AXES = {
    "potentials": "potential",
    "p_values": "p",
    "depths": "L",
    "seeds": "seed",
    "lrs": "lr",
    "widths": "width",
    "init_scales": "init_scale",
    "digit_pairs": "digits",
    "pcas": "pca",
    "losses": "loss",
}
"""Flat-form list key -> the config parameter it sweeps."""

DEFAULT_TEXT = "<default>"
"""How a spec writes :data:`DEFAULT` (a value that leaves its parameter unset)."""

MAX_NAME_LENGTH = 200
"""Longer run names are cut and given a hash suffix (file names stop at 255 bytes)."""


class _Default(enum.Enum):
    """Type of :data:`DEFAULT` (an enum member, so it survives pickling and copying)."""

    DEFAULT = "default"

    def __repr__(self) -> str:
        return DEFAULT_TEXT


DEFAULT = _Default.DEFAULT
"""A grid value meaning "leave this parameter unset": the study's default applies.

Written ``<default>`` in YAML, e.g. ``zip: {potential: [quadratic, lp], p: [<default>, 3]}``.
"""


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
class GridSpec:
    """A parsed grid spec in the general form (a flat-form spec is translated into it).

    ``grid`` maps each product axis to its values; ``zip`` holds one mapping per zipped
    axis (equal-length value lists); ``exclude`` the partial mappings of dropped runs.
    ``order`` is every parameter in the order it appears in the spec (run names follow
    it); ``source`` names where the spec came from (a file path) and ``source_text`` is
    the YAML as given, so a grid directory can keep it verbatim.

    ``study`` is the study reference as the spec gives it (a name, a file or module
    reference, or a command mapping); ``base_dir`` is the folder its relative paths
    start from (the spec file's folder). :func:`spec_study` resolves it.
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
            "spec", _show(mapping),
            "a grid spec is a non-empty YAML mapping (general form: study, fixed, grid, "
            f"zip, exclude; or the flat {FLAT_STUDY} form)",
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
        spec = _parse_flat(mapping, source, source_text)
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
    """Check every section of a general-form spec; a parameter lives in one section only."""
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(key, _show(data[key]), "unknown top-level key"
                              + did_you_mean(key, TOP_LEVEL_KEYS) + "; allowed keys: "
                              + ", ".join(TOP_LEVEL_KEYS), source)
    study = _study_ref(data, source, default_study)
    for key in ("name", "description", "run_name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfigError(key, data[key], "must be a string", source)

    fixed = {k: _unset(v) for k, v in _mapping(data.get("fixed"), "fixed", source).items()}
    grid = {k: _values(v, f"grid.{k}", source)
            for k, v in _mapping(data.get("grid"), "grid", source).items()}
    zips = _zip_groups(data.get("zip"), source)
    owner: dict[str, str] = {}
    for section, keys in [("fixed", fixed), ("grid", grid)] + [("zip", g) for g in zips]:
        for key in keys:
            if key in owner:
                raise ConfigError(key, _show(keys[key]), f"set in both {owner[key]} and "
                                  f"{section}; give each parameter in one place", source)
            owner[key] = section
    exclude = _exclude(data.get("exclude"), owner, source)

    order: list[str] = []
    for section in data:
        if section == "fixed":
            order += list(fixed)
        elif section == "grid":
            order += list(grid)
        elif section == "zip":
            order += [k for group in zips for k in group]
    return GridSpec(study, fixed, grid, tuple(zips), tuple(exclude), data.get("name"),
                    data.get("description"), text, source, tuple(order),
                    _tracking(data.get("tracking"), source), data.get("run_name"))


def _study_ref(data: Mapping[str, Any], source: str, default: Any) -> Any:
    """The spec's study reference: ``study:``, or ``command:`` (+ ``params:``), or ``default``."""
    study = data.get("study")
    if "command" in data:
        if study is not None:
            raise ConfigError("command", _show(data["command"]), "give either study: or "
                              "command: (an unchanged program), not both", source)
        study = {"command": data["command"]}
        if data.get("params") is not None:
            study["params"] = data["params"]
    elif "params" in data:
        raise ConfigError("params", _show(data["params"]), "types the parameters of a "
                          "command: study; give command: too, or drop params:", source)
    if study is None:
        study = default
    if isinstance(study, Mapping) and study and all(isinstance(k, str) for k in study):
        return dict(study)
    if not isinstance(study, str) or not study.strip():
        raise ConfigError("study", study, "required: a registered study name, "
                          "./file.py:function, package.module:function, or command: "
                          "followed by the program to run", source)
    return study


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


def _tracking(value: Any, source: str) -> dict[str, Any]:
    """The ``tracking:`` section: known keys with string values (or null)."""
    section = _mapping(value, "tracking", source)
    for key, item in section.items():
        if key not in TRACKING_KEYS:
            raise ConfigError(f"tracking.{key}", _show(item), "unknown key"
                              + did_you_mean(key, TRACKING_KEYS) + "; allowed keys: "
                              + ", ".join(TRACKING_KEYS), source)
        if item is not None and not isinstance(item, str):
            raise ConfigError(f"tracking.{key}", _show(item), "must be a string", source)
    return dict(section)


def _unset(value: Any) -> Any:
    """``<default>`` as written in a spec becomes :data:`DEFAULT`; anything else stays."""
    return DEFAULT if isinstance(value, str) and value == DEFAULT_TEXT else value


def _mapping(value: Any, key: str, source: str) -> dict[str, Any]:
    """A section that maps parameter names to values (missing or null: empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(key, _show(value), "must be a mapping of parameter -> value", source)
    return dict(value)


def _values(value: Any, key: str, source: str, distinct: bool = True) -> tuple[Any, ...]:
    """A non-empty list (distinct values unless zipped) as a tuple, or a ConfigError."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, _show(value), "must be a list of values, e.g. [1, 2]", source)
    if not value:
        raise ConfigError(key, [], "must be a non-empty list of values", source)
    value = [_unset(v) for v in value]
    seen: set[Any] = set()
    for item in value if distinct else ():
        frozen = _freeze(item)
        if frozen in seen:
            raise ConfigError(key, _show(value), f"values must be distinct; {_show(item)} "
                              "appears twice", source)
        seen.add(frozen)
    return tuple(value)


def _zip_groups(value: Any, source: str) -> list[dict[str, tuple[Any, ...]]]:
    """The zip axes: each a mapping of equal-length lists whose rows are distinct."""
    if value is None:
        return []
    groups = [value] if isinstance(value, Mapping) else value
    allowed = "a mapping of parameter -> list (equal lengths), or a list of such mappings"
    if not isinstance(groups, list) or not groups:
        raise ConfigError("zip", _show(value), allowed, source)
    out = []
    for i, group in enumerate(groups):
        key = "zip" if isinstance(value, Mapping) else f"zip[{i}]"
        if not isinstance(group, Mapping) or not group:
            raise ConfigError(key, _show(group), allowed, source)
        lists = {k: _values(v, f"{key}.{k}", source, distinct=False)
                 for k, v in _mapping(group, key, source).items()}
        lengths = [len(v) for v in lists.values()]
        if len(set(lengths)) > 1:
            shown = ", ".join(f"{k} has {len(v)}" for k, v in lists.items())
            first = next(iter(lists))
            raise ConfigError(f"{key}.{first}", _show(group[first]),
                              f"zipped lists must have equal lengths ({shown})", source)
        rows = {tuple(_freeze(v[j]) for v in lists.values()) for j in range(lengths[0])}
        if len(rows) < lengths[0]:
            raise ConfigError(key, _show(group), "zipped entries must be distinct", source)
        out.append(lists)
    return out


def _exclude(value: Any, owner: Mapping[str, str], source: str) -> list[dict[str, Any]]:
    """The exclude entries: non-empty partial runs over the grid's own parameters."""
    if value is None:
        return []
    allowed = "a list of partial runs, e.g. [{potential: quadratic, L: 2}]"
    if not isinstance(value, list):
        raise ConfigError("exclude", _show(value), allowed, source)
    out = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping) or not entry:
            raise ConfigError(f"exclude[{i}]", _show(entry), allowed, source)
        for key in entry:
            if key not in owner:
                raise ConfigError(f"exclude[{i}].{key}", _show(entry[key]),
                                  "not a parameter of this grid; parameters: "
                                  + ", ".join(owner), source)
        out.append({k: _unset(v) for k, v in entry.items()})
    return out


def _parse_flat(data: Mapping[str, Any], source: str, text: str) -> GridSpec:
    """Translate the flat implicit-bias form into the general form."""
    from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig

    fields = ImplicitBiasConfig.model_fields
    meta = {k: data.get(k) for k in ("name", "description", "tracking")}
    for key, value in meta.items():
        if key != "tracking" and value is not None and not isinstance(value, str):
            raise ConfigError(key, value, "must be a string", source)
    axes: dict[str, tuple[Any, ...]] = {}
    fixed: dict[str, Any] = {}
    order: list[str] = []
    for key, value in data.items():
        if key in meta:
            continue
        if key in FLAT_AXES:
            param = FLAT_AXES[key]
            if param in data:
                raise ConfigError(key, _show(value), f"{param} is also set; give either "
                                  f"{param} (fixed) or {key} (a list to sweep)", source)
            axes[param] = _values(value, key, source)
        elif key in fields:
            fixed[key] = _unset(value)
        else:
            hint = (did_you_mean(key, [*meta, *FLAT_AXES, *fields])  # depth: -> depths:
                    or did_you_mean(key, fields, ImplicitBiasConfig.field_aliases()))
            raise ConfigError(key, _show(value), f"unknown key of the flat {FLAT_STUDY} "
                              f"spec{hint}; allowed keys: name, description, tracking, "
                              "the list axes "
                              + ", ".join(FLAT_AXES) + ", and the parameters "
                              + ", ".join(fields), source)
        order.append(FLAT_AXES.get(key, key))
    for pair in axes.get("digits", ()):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ConfigError("digit_pairs", _show(list(axes["digits"])),
                              "must be a list of pairs, e.g. [[0, 1], [3, 5]]", source)

    zips: list[dict[str, tuple[Any, ...]]] = []
    if "potential" in axes and "p" in axes:
        potentials, ps = axes.pop("potential"), axes.pop("p")
        if "lp" not in potentials:
            raise ConfigError("p_values", _show(list(ps)), "apply to the lp potential only, "
                              "and potentials has no lp", source)
        settings = [(pot, p) for pot in potentials for p in (ps if pot == "lp" else [DEFAULT])]
        zips.append({"potential": tuple(s[0] for s in settings),
                     "p": tuple(s[1] for s in settings)})
    return GridSpec(FLAT_STUDY, fixed, axes, tuple(zips), (), meta["name"],
                    meta["description"], text, source, tuple(order),
                    _tracking(meta["tracking"], source))


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
            raise ConfigError(f"exclude[{i}]", _show(entry), "matches no run of the grid; "
                              "check its keys and values", spec.source)
    if not runs:
        raise ConfigError("exclude", _show(list(spec.exclude)), "drops every run of the "
                          "grid; keep at least one", spec.source)
    keys = list(spec.order) + [k for r in runs for k in r if k not in spec.order]
    keys = list(dict.fromkeys(keys))
    varying = [k for k in keys if len({_freeze(r.get(k, DEFAULT)) for r in runs}) > 1]
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
    exclude = [{k: _freeze(v) for k, v in e.items()} for e in spec.exclude]
    rank = {k: i for i, k in enumerate(spec.order)}
    for combo in itertools.product(*axes):
        params = dict(spec.fixed)
        for part in combo:
            params.update(part)
        hits = [i for i, e in enumerate(exclude)
                if all(_freeze(params.get(k, DEFAULT)) == v for k, v in e.items())]
        if hits:
            matched.update(hits)
            continue
        ordered = sorted(params, key=lambda k: rank.get(k, len(rank)))
        yield {k: _copy(params[k]) for k in ordered if params[k] is not DEFAULT}


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


def _freeze(value: Any) -> Any:
    """A hashable stand-in for ``value`` (lists -> tuples, mappings -> sorted items)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _copy(value: Any) -> Any:
    """Lists and mappings copied, so runs never share a mutable value."""
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _show(value: Any) -> Any:
    """A value for an error message: containers as plain lists/dicts, long ones cut."""
    value = _copy(value)
    text = repr(value)
    return text[:117] + "..." if len(text) > 120 else value


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
                    f"{section}.{key}", _show(value),
                    f"not a parameter of study {study}"
                    + did_you_mean(key, cls.ordered_fields(), cls.field_aliases())
                    + "; allowed keys: " + ", ".join(cls.ordered_fields()), spec.source,
                )
