"""Paper vs this run: a reproduction table for a study's analysis report.

A study that reimplements a paper keeps the paper's numbers in one data file beside its
analysis (``paper_values.yaml``), each with its source (figure or table, section), never
in code. Its analysis measures the same quantities from the runs it is given
(:class:`Measured`), and :func:`reproduction_rows` sets the two side by side with a
plain verdict:

- ``reproduced``: the measured value meets the claim (see ``compare`` below);
- ``direction only``: the effect has the paper's sign or ordering but misses its size;
- ``not reproduced``: neither;
- ``not run``: the runs analysed do not contain what the claim needs.

The data file::

    paper: "Author & Author (2025), arXiv 2501.00000"
    claims:
      - id: noise_lowers_accuracy           # what the study's measure() returns it under
        claim: "test accuracy falls as label noise is added"
        source: "Fig. 3, Sec. 4.2"
        paper: -1.0                          # the paper's value (a number, or text)
        compare: sign                        # how a measurement is judged, see below
        tolerance: 0.1                       # for close / at_least / at_most
        scale: "MNIST, 6,000 + {0..2000} noisy labels, MLP 784-256-128-10, 5 seeds"

``compare`` is one of ``close`` (``|m - paper| <= tolerance``; direction only when
``m`` and ``paper`` have the same sign), ``at_least`` (``m >= paper - tolerance``),
``at_most`` (``m <= paper + tolerance``), ``sign`` (``m`` has the sign of ``paper``;
a slope or a difference, say) and ``order`` (``paper`` is a list of names in decreasing
order and ``m`` the list measured; direction only when the first place matches).
Measured values of a ``close``/``at_least``/``at_most`` claim that miss it count as
"direction only" if the study passes ``direction=True`` (the effect exists but is
smaller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweeplab.errors import ConfigError

COMPARES = ("close", "at_least", "at_most", "sign", "order")
VERDICTS = ("reproduced", "direction only", "not reproduced", "not run")
HEADER = ("claim", "source", "paper", "this run", "seeds", "scale of this run", "verdict")


@dataclass(frozen=True)
class Claim:
    """One number (or ordering) the paper reports, with where it reports it."""

    id: str
    claim: str
    source: str
    paper: Any
    compare: str = "close"
    tolerance: float = 0.0
    scale: str = ""


@dataclass(frozen=True)
class PaperValues:
    """A study's paper and the claims its analysis checks."""

    paper: str
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class Measured:
    """What the runs analysed show for one claim.

    ``value`` is a number (or a list for ``order`` claims); ``seeds`` how many runs it
    rests on; ``scale`` what ran (sizes, epochs) in words. ``direction`` marks a
    ``close``/``at_least``/``at_most`` miss whose effect has the paper's direction.
    """

    value: Any
    seeds: int
    scale: str
    direction: bool = False
    note: str = ""


@dataclass(frozen=True)
class ReproRow:
    claim: Claim
    measured: Measured | None
    verdict: str
    extra: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> tuple[str, ...]:
        m = self.measured
        shown = "n/a" if m is None else _show(m.value) + (f" ({m.note})" if m.note else "")
        return (self.claim.claim, self.claim.source, _show(self.claim.paper), shown,
                "" if m is None else str(m.seeds), "" if m is None else m.scale, self.verdict)


def load_paper_values(path: str | Path) -> PaperValues:
    """Read and check a ``paper_values.yaml``; a malformed file is a :class:`ConfigError`."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ConfigError("claims", None, "a paper_values.yaml needs 'paper' and a list "
                          "'claims'", where=str(path))
    claims = []
    allowed = set(Claim.__dataclass_fields__)
    for i, item in enumerate(data["claims"]):
        if not isinstance(item, dict):
            raise ConfigError(f"claims[{i}]", item, "a mapping", where=str(path))
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ConfigError(f"claims[{i}].{unknown[0]}", item[unknown[0]],
                              "unknown key; allowed keys: " + ", ".join(allowed), str(path))
        for key in ("id", "claim", "source", "paper"):
            if key not in item:
                raise ConfigError(f"claims[{i}].{key}", None, "required", where=str(path))
        if item.get("compare", "close") not in COMPARES:
            raise ConfigError(f"claims[{i}].compare", item.get("compare"),
                              "allowed values are " + ", ".join(COMPARES), str(path))
        claims.append(Claim(**item))
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ConfigError("claims", ids, "claim ids must be distinct", where=str(path))
    return PaperValues(str(data.get("paper", "")), tuple(claims))


def verdict(claim: Claim, measured: Measured | None) -> str:
    """The plain verdict of one claim (see the module docstring for the rules)."""
    if measured is None or measured.value is None or _nan(measured.value):
        return "not run"
    m, p, tol = measured.value, claim.paper, claim.tolerance
    if claim.compare == "order":
        if list(m) == list(p):
            return "reproduced"
        return "direction only" if list(m)[:1] == list(p)[:1] else "not reproduced"
    m, p = float(m), float(p)
    if claim.compare == "sign":
        return "reproduced" if m * p > 0 else "not reproduced"
    ok = {"close": abs(m - p) <= tol, "at_least": m >= p - tol, "at_most": m <= p + tol}
    if ok[claim.compare]:
        return "reproduced"
    if measured.direction or (claim.compare == "close" and m * p > 0 and abs(p) > tol):
        return "direction only"
    return "not reproduced"


def reproduction_rows(values: PaperValues, measured: dict[str, Measured | None]) -> list[ReproRow]:
    """One row per claim, in the data file's order; claims not measured are ``not run``."""
    unknown = sorted(set(measured) - {c.id for c in values.claims})
    if unknown:
        raise KeyError(f"measured claims not in the paper values: {', '.join(unknown)}")
    return [ReproRow(c, measured.get(c.id), verdict(c, measured.get(c.id)))
            for c in values.claims]


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _show(value: Any) -> str:
    if value is None or _nan(value):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return " > ".join(map(str, value))
    return str(value)
