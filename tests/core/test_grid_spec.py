"""Grid specs: both forms expand to the right runs, names, order; bad specs fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeplab.core.grid import (
    DEFAULT,
    GridSpec,
    PlannedRun,
    SpecSyntaxError,
    expand,
    load_grid_spec,
    parse_grid_spec,
    validate_runs,
)
from sweeplab.errors import ConfigError, UnknownStudyError

CONFIGS = Path(__file__).resolve().parents[2] / "runs" / "configs"

FLAT_TEXT = """\
dataset: synthetic
input_dim: 2
n_samples: 512
separation: 3.0
noise: 0.2
epochs: 1000
lr: 0.05
potentials: [quadratic, lp]
p_values: [1.5, 3.0]
depths: [1, 2]
seeds: [0, 1, 2]
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def general(**sections) -> dict:
    return {"study": "implicit-bias", **sections}


def settings(run: PlannedRun) -> tuple:
    return run.params["potential"], run.params.get("p")


# --- the flat form -------------------------------------------------------------------


def test_flat_form_gives_18_runs_with_three_potential_settings(tmp_path):
    spec = load_grid_spec(write(tmp_path, FLAT_TEXT))
    assert spec.study == "implicit-bias" and spec.source_text == FLAT_TEXT
    runs = expand(spec)
    assert len(runs) == 18
    assert len({r.name for r in runs}) == 18
    assert {settings(r) for r in runs} == {("quadratic", None), ("lp", 1.5), ("lp", 3.0)}
    for setting in [("quadratic", None), ("lp", 1.5), ("lp", 3.0)]:
        chosen = [r for r in runs if settings(r) == setting]
        assert {(r.params["L"], r.params["seed"]) for r in chosen} == {
            (L, s) for L in (1, 2) for s in (0, 1, 2)
        }
    for run in runs:  # the fixed keys reach every run
        assert run.params["epochs"] == 1000 and run.params["lr"] == 0.05
        assert run.params["dataset"] == "synthetic" and run.params["n_samples"] == 512
    quad = next(r for r in runs if r.params["potential"] == "quadratic")
    assert "p" not in quad.params and "p=" not in quad.name  # keeps the config's default p
    assert "potential=lp,p=1.5,L=2,seed=0" in {r.name for r in runs}
    assert "potential=quadratic,L=1,seed=2" in {r.name for r in runs}
    validated = validate_runs(spec, runs)
    assert len({cfg.config_hash() for _, cfg in validated}) == 18
    assert next(cfg for r, cfg in validated if r is quad).p == 1.5  # the study's default


def test_flat_form_translates_to_a_general_zip():
    spec = parse_grid_spec({"potentials": ["quadratic", "lp"], "p_values": [1.5, 3.0],
                            "seeds": [0, 1]})
    assert spec.grid == {"seed": (0, 1)}
    assert spec.zip == ({"potential": ("quadratic", "lp", "lp"), "p": (DEFAULT, 1.5, 3.0)},)
    same = parse_grid_spec(general(
        grid={"seed": [0, 1]},
        zip={"potential": ["quadratic", "lp", "lp"], "p": ["<default>", 1.5, 3.0]},
    ))
    assert [r.params for r in expand(spec)] == [r.params for r in expand(same)]


def test_flat_form_other_axes():
    spec = parse_grid_spec({"dataset": "digits", "digit_pairs": [[0, 1], [3, 5]],
                            "pcas": [None, 20], "lrs": [0.01, 1e-3], "epochs": 5})
    runs = expand(spec)
    assert len(runs) == 8
    assert runs[0].name == "digits=0-1,pca=none,lr=0.01"
    assert runs[-1].name == "digits=3-5,pca=20,lr=0.001"
    assert all(r.params["dataset"] == "digits" and r.params["epochs"] == 5 for r in runs)
    assert len(validate_runs(spec, runs)) == 8


def test_flat_form_p_values_without_potentials_sweep_p():
    runs = expand(parse_grid_spec({"p_values": [1.5, 3.0]}))
    assert [r.name for r in runs] == ["p=1.5", "p=3"]


def test_yaml_exponent_floats_are_floats(tmp_path):
    spec = load_grid_spec(write(tmp_path, "lrs: [1e-3, 2.5E-2]\nepochs: 3\n"))
    assert spec.grid["lr"] == (0.001, 0.025)


# --- the general form ----------------------------------------------------------------


def test_product_counts_contents_and_order():
    spec = parse_grid_spec(general(fixed={"epochs": 7}, grid={"L": [1, 2, 3], "seed": [0, 1]}))
    runs = expand(spec)
    assert [(r.params["L"], r.params["seed"]) for r in runs] == [
        (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)
    ]
    assert [r.name for r in runs][:2] == ["L=1,seed=0", "L=1,seed=1"]
    assert all(r.params["epochs"] == 7 for r in runs)


def test_zip_axes_vary_together_after_grid_axes():
    spec = parse_grid_spec(general(
        grid={"seed": [0, 1]},
        zip=[{"lr": [0.1, 0.05], "epochs": [10, 20]}, {"width": [4, 8, 16]}],
    ))
    runs = expand(spec)
    assert len(runs) == 2 * 2 * 3
    assert {(r.params["lr"], r.params["epochs"]) for r in runs} == {(0.1, 10), (0.05, 20)}
    assert [(r.params["seed"], r.params["lr"], r.params["width"]) for r in runs[:4]] == [
        (0, 0.1, 4), (0, 0.1, 8), (0, 0.1, 16), (0, 0.05, 4)
    ]
    assert runs[0].name == "seed=0,lr=0.1,epochs=10,width=4"


def test_exclude_drops_runs_matching_every_key_of_an_entry():
    spec = parse_grid_spec(general(
        grid={"L": [1, 2], "seed": [0, 1, 2]},
        zip={"potential": ["quadratic", "lp", "lp"], "p": ["<default>", 1.5, 3.0]},
        exclude=[{"potential": "quadratic", "L": 2}, {"p": 3.0, "seed": 2}],
    ))
    runs = expand(spec)
    assert len(runs) == 18 - 3 - 2
    assert not any(r.params["potential"] == "quadratic" and r.params["L"] == 2 for r in runs)
    assert not any(r.params.get("p") == 3.0 and r.params["seed"] == 2 for r in runs)
    assert sum(r.params.get("p") == 3.0 for r in runs) == 4


def test_names_show_only_varying_params_in_spec_order():
    spec = parse_grid_spec(general(
        zip={"potential": ["lp", "lp"], "p": [1.5, 3.0]},
        fixed={"L": 2, "seed": 0},
        grid={"width": [8], "init_scale": [0.1, 0.01]},
    ))
    names = [r.name for r in expand(spec)]
    # names follow the sections as written (zip first here); runs iterate grid, then zip;
    # potential, L, seed and width do not vary
    assert names == ["p=1.5,init_scale=0.1", "p=3,init_scale=0.1",
                     "p=1.5,init_scale=0.01", "p=3,init_scale=0.01"]
    single = expand(parse_grid_spec(general(fixed={"epochs": 3})))
    assert [r.name for r in single] == ["run"] and single[0].params == {"epochs": 3}


def test_names_are_file_system_safe_and_clashes_get_a_hash():
    spec = parse_grid_spec(general(grid={
        "data_dir": ["/data/a b", None], "digits": [[3, 5]], "standardize": [True, False]
    }))
    names = [r.name for r in expand(spec)]
    assert names[0] == "data_dir=data_a_b,standardize=true"
    assert names[-1] == "data_dir=none,standardize=false"
    assert all("/" not in n and " " not in n for n in names)
    clash = expand(parse_grid_spec(general(grid={"lr": [0.1, 0.1000001]})))
    assert clash[0].name != clash[1].name
    assert all(r.name.startswith("lr=0.1,hash=") for r in clash)


def test_expansion_is_deterministic_and_scales():
    spec = parse_grid_spec(general(grid={
        "seed": list(range(10)), "width": list(range(1, 11)), "L": list(range(1, 11)),
        "lr": [0.1 * k for k in range(1, 11)],
    }))
    runs = expand(spec)
    assert len(runs) == 10_000 and len({r.name for r in runs}) == 10_000
    assert runs == expand(spec)
    runs[0].params["seed"] = 99  # runs never share mutable state with the spec
    assert expand(spec)[0].params["seed"] == 0


# --- validation ----------------------------------------------------------------------


def test_validation_names_the_run_and_key_deep_in_the_grid():
    spec = parse_grid_spec(general(
        grid={"seed": [0, 1, 2]},
        zip={"potential": ["quadratic", "lp", "lp"], "p": ["<default>", 3.0, 0.5]},
    ))
    runs = expand(spec)
    with pytest.raises(ConfigError) as info:
        validate_runs(spec, runs)
    assert str(info.value) == "run seed=0,potential=lp,p=0.5: invalid p=0.5: must be > 1"
    assert info.value.key == "p"


def test_validation_catches_cross_field_rules_and_unknown_params():
    spec = parse_grid_spec(general(fixed={"dataset": "digits"}, grid={"pca": [10, 64]}))
    with pytest.raises(ConfigError, match=r"^run pca=64: invalid pca=64: must be smaller"):
        validate_runs(spec, expand(spec))
    typo = parse_grid_spec(general(grid={"sed": [0, 1]}), source="typo.yaml")
    with pytest.raises(ConfigError, match=r"^typo.yaml: invalid grid.sed=\[0, 1\]: not a "
                       r"parameter of study implicit-bias \(did you mean seed\?\); "
                       r"allowed keys: dataset, "):
        validate_runs(typo, expand(typo))


def test_validation_rejects_two_runs_with_the_same_config():
    spec = parse_grid_spec(general(grid={"pca": ["<default>", None]}))
    with pytest.raises(ConfigError, match="same config as run"):
        validate_runs(spec, expand(spec))


def test_unknown_study_raises_the_registry_error():
    spec = parse_grid_spec({"study": "no-such-study", "grid": {"x": [1, 2]}})
    with pytest.raises(UnknownStudyError,
                       match="invalid study=no-such-study: unknown study; known studies"):
        validate_runs(spec, expand(spec))


# --- malformed specs: one line naming the key and what is allowed --------------------


MALFORMED = {
    "grid value not a list": (
        general(grid={"seed": 3}), "invalid grid.seed=3: must be a list of values"),
    "empty grid list": (
        general(grid={"seed": []}), "invalid grid.seed=[]: must be a non-empty list"),
    "duplicate grid value": (
        general(grid={"seed": [0, 0]}), "values must be distinct; 0 appears twice"),
    "zip lengths differ": (
        general(zip={"potential": ["lp", "lp"], "p": [1.5]}),
        "invalid zip.potential=['lp', 'lp']: zipped lists must have equal lengths "
        "(potential has 2, p has 1)"),
    "zip not a mapping": (general(zip=[1, 2]), "invalid zip[0]=1: a mapping of parameter"),
    "exclude not a list": (
        general(grid={"L": [1, 2]}, exclude={"L": 1}), "invalid exclude={'L': 1}: a list of"),
    "exclude entry not a mapping": (
        general(grid={"L": [1, 2]}, exclude=["L=1"]), "invalid exclude[0]=L=1: a list of"),
    "exclude unknown key": (
        general(grid={"L": [1, 2]}, exclude=[{"depth": 1}]),
        "invalid exclude[0].depth=1: not a parameter of this grid; parameters: L"),
    "unknown top-level key": (
        general(grids={"L": [1, 2]}),
        "invalid grids={'L': [1, 2]}: unknown top-level key (did you mean grid?); allowed "
        "keys: study, name, "
        "description, run_name, tracking, fixed, grid, zip, exclude"),
    "missing study": (
        {"grid": {"L": [1, 2]}}, "invalid study=None: required"),
    "param in two places": (
        general(fixed={"L": 1}, grid={"L": [1, 2]}), "set in both fixed and grid"),
    "fixed not a mapping": (general(fixed=[1]), "invalid fixed=[1]: must be a mapping"),
    "not a mapping": ([1, 2], "invalid spec=[1, 2]: a grid spec is a non-empty YAML mapping"),
    "flat unknown key": ({"depth": [1, 2]}, "invalid depth=[1, 2]: unknown key of the flat"),
    "flat axis not a list": ({"seeds": 3}, "invalid seeds=3: must be a list of values"),
    "flat axis and fixed": (
        {"seed": 0, "seeds": [0, 1]}, "invalid seeds=[0, 1]: seed is also set"),
    "flat p_values without lp": (
        {"potentials": ["quadratic"], "p_values": [2.0]},
        "invalid p_values=[2.0]: apply to the lp potential only"),
    "flat digit pairs not pairs": (
        {"digit_pairs": [0, 1]}, "invalid digit_pairs=[0, 1]: must be a list of pairs"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_specs_give_one_line_config_errors(case):
    mapping, expected = MALFORMED[case]
    with pytest.raises(ConfigError) as info:
        expand(parse_grid_spec(mapping, source="bad.yaml"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml: ")
    assert expected in message


def test_exclude_that_matches_nothing_or_everything_is_an_error():
    with pytest.raises(ConfigError, match=r"invalid exclude\[0\]=.*matches no run"):
        expand(parse_grid_spec(general(grid={"L": [1, 2]}, exclude=[{"L": 3}])))
    with pytest.raises(ConfigError, match="drops every run"):
        expand(parse_grid_spec(general(grid={"L": [1]}, exclude=[{"L": 1}])))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "study: implicit-bias\ngrid:\n  seed: [0, 1\n  L: [1, 2]\n")
    with pytest.raises(SpecSyntaxError) as info:
        load_grid_spec(path)
    message = str(info.value)
    assert isinstance(info.value, ConfigError) and "\n" not in message
    assert message.startswith(f"{path}, line 4: invalid YAML: ")


def test_duplicate_yaml_key_is_a_syntax_error(tmp_path):
    path = write(tmp_path, "seeds: [0, 1]\nepochs: 5\nseeds: [2]\n")
    with pytest.raises(SpecSyntaxError, match=r", line 3: invalid YAML: duplicate key 'seeds'"):
        load_grid_spec(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid spec=.*nope.yaml: file not found"):
        load_grid_spec(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_grid_spec(tmp_path)
    with pytest.raises(ConfigError, match="invalid spec=None: a grid spec is a non-empty"):
        load_grid_spec(write(tmp_path, "# nothing\n"))


def test_parse_from_a_mapping_keeps_a_yaml_source_text():
    spec = parse_grid_spec(general(zip={"potential": ["quadratic", "lp"],
                                        "p": ["<default>", 3.0]}))
    assert isinstance(spec, GridSpec)
    again = parse_grid_spec(__import__("yaml").safe_load(spec.source_text))
    assert again.zip == spec.zip


# --- the shipped configs -------------------------------------------------------------


def test_every_shipped_config_loads_expands_and_validates():
    paths = sorted(CONFIGS.rglob("*.yaml"))
    assert {p.name for p in paths} >= {
        "example_grid.yaml", "quick_debug.yaml", "synthetic_potentials.yaml", "mnist_pairs.yaml"
    }
    counts = {}
    for path in paths:
        spec = load_grid_spec(path)
        runs = expand(spec)
        validated = validate_runs(spec, runs)
        assert len({r.name for r, _ in validated}) == len(runs)
        assert spec.source_text.startswith("#"), f"{path.name} needs a comment header"
        assert f"Runs {len(runs)} " in spec.source_text, f"{path.name}: header's run count"
        counts[path.name] = len(runs)
    assert counts["synthetic_potentials.yaml"] == 18
    assert counts["mnist_pairs.yaml"] == 72
    assert 8 <= counts["example_grid.yaml"] <= 12


def test_synthetic_potentials_is_the_flat_form_verbatim():
    text = (CONFIGS / "synthetic_potentials.yaml").read_text()
    body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))
    assert body == FLAT_TEXT


def test_mnist_pairs_grid():
    runs = expand(load_grid_spec(CONFIGS / "mnist_pairs.yaml"))
    assert {tuple(r.params["digits"]) for r in runs} == {(0, 1), (3, 5)}
    assert {r.params["pca"] for r in runs} == {50, 200}
    assert {settings(r) for r in runs} == {("quadratic", None), ("lp", 1.5), ("lp", 3.0)}
    assert runs[0].name == "digits=0-1,pca=50,potential=quadratic,L=1,seed=0"


def test_run_name_template_names_the_run_directories():
    spec = parse_grid_spec(general(run_name="L{L}_S{seed}_lr{lr:g}",
                                   grid={"L": [1, 2], "seed": [0, 1]}, fixed={"lr": 0.1}))
    assert [r.name for r in expand(spec)] == ["L1_S0_lr0.1", "L1_S1_lr0.1", "L2_S0_lr0.1",
                                              "L2_S1_lr0.1"]
    bad = parse_grid_spec(general(run_name="L{depth}", grid={"L": [1, 2]}), source="b.yaml")
    with pytest.raises(ConfigError, match=r"invalid run_name=L\{depth\}: uses \{depth\}"):
        expand(bad)
