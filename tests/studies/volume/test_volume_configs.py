"""The minima-volume grid configs under runs/configs/volume/ hold the paper's experiments.

Each spec is expanded and validated as ``sweeplab volume run`` would (nothing trains):
the category its name says, MNIST-format data, both architectures in the low-data and
SAM grids (poison: the authors' MLP), the authors' method in the paper-sized grids, the
run count its header states, and for every ``_cpu`` variant a measured wall time under
15 minutes stated in its header. Where the real Fashion-MNIST files are installed, the
study's preflight (files found, pool and test set fit the splits) passes for every run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sweeplab.core.grid import expand, load_grid_spec, validate_runs
from sweeplab.studies.volume.data import check_data

CONFIGS = Path(__file__).resolve().parents[3] / "runs" / "configs" / "volume"
CATEGORIES = ("low_data", "poison", "sam")
NAMES = [f"{c}{suffix}" for c in CATEGORIES for suffix in ("", "_cpu")]
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def configs(name: str) -> tuple[list, list, str]:
    path = CONFIGS / f"{name}.yaml"
    spec = load_grid_spec(path)
    runs = expand(spec)
    header = path.read_text().split("\nstudy:")[0]
    return [cfg for _, cfg in validate_runs(spec, runs)], runs, header


@pytest.mark.parametrize("name", NAMES)
def test_each_config_is_its_category_on_mnist_format_data(name):
    cfgs, runs, header = configs(name)
    category = name.removesuffix("_cpu")
    assert {c.category for c in cfgs} == {category}
    assert {c.dataset for c in cfgs} <= {"fashion-mnist", "mnist"}
    (stated,) = re.findall(r"Runs (\d+)", header)
    assert int(stated) == len(cfgs) == len({r.name for r in runs})
    assert all(r.name.endswith(f"model_{c.model_seed}_data_{c.data_seed}")
               for r, c in zip(runs, cfgs, strict=True))
    assert len({(c.model_seed, c.data_seed) for c in cfgs}) > 1  # seeds to average over
    if category == "sam":
        assert all(c.sam_rho > 0 for c in cfgs) and "rho" in header
    if category == "poison":
        assert "r in 1..9" in header
    for c in cfgs:
        assert c.n_directions >= 32 and c.search == "coarse_to_fine"
        assert len(c.extra_sizes) >= 4 and c.extra_sizes[0] == 0
        assert c.normalize is None or c.dataset == "mnist"


@pytest.mark.parametrize("category", ["low_data", "sam"])
def test_the_full_grids_compare_the_mlp_and_the_small_cnn(category):
    cfgs, _, _ = configs(category)
    assert {c.arch for c in cfgs} == {"mlp", "cnn"}


@pytest.mark.parametrize("category", CATEGORIES)
def test_the_paper_sized_configs_use_the_authors_method(category):
    """1,000 filtnorm directions, the quadratic grid on [0, 1], cutoffs 0.02 / 0.05 / 0.1,
    uncrossed directions dropped (the authors' code)."""
    for c in configs(category)[0]:
        assert c.n_directions == 1000 and c.direction_scaling == "filtnorm"
        assert c.coefficient_grid == "quadratic" and c.max_coefficient == 1.0
        assert c.n_coefficients == 100 and c.loss_cutoffs == (0.02, 0.05, 0.1)
        assert c.uncrossed == "drop"


@pytest.mark.parametrize("name", ["poison", "poison_cpu"])
def test_the_poison_configs_are_the_authors_mnist_protocol(name):
    """MNIST normalised, MLP 784-256-128-10, AdamW (0.01), full batch, 500 epochs, the
    full test set, 25% poison at most; the CPU variant shrinks the data by 10x only."""
    for c in configs(name)[0]:
        assert c.dataset == "mnist" and c.normalize == (0.1307, 0.3081)
        assert c.arch == "mlp" and c.hidden == (256, 128)
        assert (c.optimizer, c.lr, c.weight_decay) == ("adamw", 0.001, 0.01)
        assert c.batch_size == 0 and c.epochs == 500 and c.test_size == 10000
        scale = 1 if name == "poison" else 10
        assert c.base_size * scale == 6000
        assert [m * scale for m in c.extra_sizes] == [0, 100, 500, 1000, 2000]
        assert c.headline_size == c.base_size and c.sizes[0] == c.base_size


@pytest.mark.parametrize("category", CATEGORIES)
def test_cpu_variant_says_it_runs_under_15_minutes(category):
    """Same category and protocol shape as the full grid; a measured time < 15 min stated."""
    full, _, _ = configs(category)
    cpu, _, header = configs(f"{category}_cpu")
    minutes = [float(m) for m in re.findall(r"([0-9.]+) min\b", header)]
    assert minutes and max(minutes) < 15, header
    assert re.search(r"[Mm]easured", header)
    assert {c.arch for c in cpu} <= {c.arch for c in full}
    assert max(c.pool_size for c in cpu) <= max(c.pool_size for c in full)


@pytest.mark.skipif(not FASHION.is_file(),
                    reason="real Fashion-MNIST not installed (Debian dataset-fashion-mnist)")
@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("poison")])
def test_every_run_passes_the_preflight_on_the_real_files(name):
    """Files found, pool and test set fit (on the CPU: the GPU check is another test's)."""
    cfgs, _, _ = configs(name)
    for cfg in cfgs:
        check_data(cfg.model_copy(update={"device": "cpu"}))
