"""The implicit-bias study's flat spec form (``runs/configs/quick_debug.yaml``)::

    dataset: synthetic
    epochs: 1000
    potentials: [quadratic, lp]
    p_values: [1.5, 3.0]
    depths: [1, 2]
    seeds: [0, 1, 2]

The plural keys of :data:`FLAT_AXES` are lists to sweep, every other key is fixed.
``p_values`` apply to the ``lp`` potential only, so ``potentials: [quadratic, lp]`` with
``p_values: [1.5, 3.0]`` gives three potential settings (quadratic, lp 1.5, lp 3.0): one
zip axis of potential and p.
"""

from __future__ import annotations

from sweeplab.core.spec_dialect import Axes, SpecDialect
from sweeplab.core.spec_model import DEFAULT, show
from sweeplab.errors import ConfigError

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


def potential_settings(axes: Axes) -> list[Axes]:
    """Digit pairs are pairs; ``p`` sweeps the ``lp`` potential only (a zip axis of the
    potential settings, the other potentials with p unset)."""
    for pair in axes.get("digits", ()):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ConfigError("digit_pairs", show(list(axes["digits"])),
                              "must be a list of pairs, e.g. [[0, 1], [3, 5]]")
    if "potential" not in axes or "p" not in axes:
        return []
    potentials, ps = axes.pop("potential"), axes.pop("p")
    if "lp" not in potentials:
        raise ConfigError("p_values", show(list(ps)), "apply to the lp potential only, "
                          "and potentials has no lp")
    settings = [(pot, p) for pot in potentials for p in (ps if pot == "lp" else [DEFAULT])]
    return [{"potential": tuple(s[0] for s in settings), "p": tuple(s[1] for s in settings)}]


FLAT_SPEC = SpecDialect(axes=FLAT_AXES, settings=potential_settings)
