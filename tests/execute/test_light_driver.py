"""A grid's driver plans without the studies' heavy imports; its workers start warm.

Each built-in study registers itself from a light module and names its heavy ones
(``warm``): the driver validates, preflights and batches every run without torch or
scikit-learn (a bad value is refused in about a second, not after ten of imports), and a
worker imports the heavy modules once, before its first job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from importlib import metadata

import pytest

from sweeplab.core.registry import STUDY_ENTRY_POINTS, study_names

INSTALLED = {ep.name: ep.module for ep in metadata.entry_points(group=STUDY_ENTRY_POINTS)}
"""The studies sweeplab ships, as its entry points register them."""

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "pandas")

PLAN = """
import json, sys, tempfile, pathlib
from sweeplab.core.grid import parse_grid_spec
from sweeplab.execute.sweep import plan_grid
spec = parse_grid_spec({{"study": {study!r}, "grid": {{{key!r}: [0, 1]}}}})
plan = plan_grid(spec, pathlib.Path(tempfile.mkdtemp()))
print(json.dumps({{"jobs": len(plan.jobs), "keys": [j.batch_key for j in plan.jobs],
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_shipped_studies_are_entry_points():
    assert set(INSTALLED) == {"implicit-bias", "anchor-composite", "inverse-sequence",
                              "minima-volume"}
    assert set(INSTALLED) <= set(study_names())


@pytest.mark.parametrize("study", sorted(INSTALLED))
def test_the_driver_plans_a_grid_without_heavy_imports(study):
    key = "model_seed" if study == "minima-volume" else "seed"
    out = _python(PLAN.format(study=study, key=key, heavy=HEAVY))
    assert out["jobs"] == 2 and out["heavy"] == []
    if study == "implicit-bias":  # batch keys are computed in the driver too
        assert out["keys"][0] is not None and out["keys"][0] == out["keys"][1]


@pytest.mark.parametrize("module", sorted(set(INSTALLED.values())))
def test_a_worker_imports_the_warm_modules_before_its_first_job(module):
    code = (f"import json, sys; from sweeplab.execute.local import _init_worker; "
            f"_init_worker(1, ({module!r},)); "
            f"from sweeplab.core.registry import _REGISTRY; "
            f"warm = [m for s in _REGISTRY.values() if s.module == {module!r} for m in s.warm]; "
            f"print(json.dumps({{'warm': warm, 'loaded': [m in sys.modules for m in warm], "
            f"'torch': 'torch' in sys.modules}}))")
    out = _python(code)
    assert out["warm"] and all(out["loaded"]) and out["torch"]


def test_light_batch_families_are_the_batched_trainers_potentials():
    from sweeplab.studies.implicit_bias.batch_keys import BATCHED_FAMILIES
    from sweeplab.studies.implicit_bias.batched_train import BATCHED_POTENTIALS
    from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig
    from sweeplab.studies.implicit_bias.potentials import make_potential

    choices = typing.get_args(ImplicitBiasConfig.model_fields["potential"].annotation)
    batched = {name for name in choices if isinstance(make_potential(name), BATCHED_POTENTIALS)}
    assert set(BATCHED_FAMILIES) == batched


def test_a_bad_value_is_refused_before_the_heavy_imports():
    code = ("import json, sys; from sweeplab.cli.main import main; "
            "code = main(['run', 'implicit-bias', '--lr', '-1']); "
            f"print(json.dumps({{'code': code, 'heavy': [m for m in {HEAVY!r} "
            "if m in sys.modules]}))")
    out = _python(code)
    assert out == {"code": 2, "heavy": []}
