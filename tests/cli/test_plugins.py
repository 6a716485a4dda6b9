"""A study is a plugin: one package plus one line in its pyproject, exactly as the studies
sweeplab ships. Installed for real (pip, into a folder of its own), it brings its
analysis, its flat spec form, its CLI verb, its template and its pip extra, and
``sweeplab --help`` imports none of it. A missing extra is one line naming the install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "labplug"
version = "0.1"

[tool.setuptools]
packages = ["labplug"]

[project.entry-points."sweeplab.studies"]
lab-walk = "labplug.study"
lab-heavy = "labplug.study"
"""

STUDY = '''
from sweeplab import RunContext, StudyConfig, register_study
from sweeplab.core.registry import Template
from sweeplab.core.spec_dialect import SpecDialect


class WalkConfig(StudyConfig):
    x: float = 1.0
    steps: int = 3
    seed: int = 0


EXPERIMENT = Template("lab-experiment", "labplug.tool:files", folder="lab_configs",
                      description="a lab-walk grid", next="run it with: sweeplab grid {path}")


@register_study("lab-walk", config=WalkConfig, analysis="labplug.analysis:ANALYSIS",
                dialect=SpecDialect(axes={"xs": "x", "seeds": "seed"}),
                commands={"lab-tool": "labplug.tool:main"}, templates=(EXPERIMENT,),
                extra="labplug[walk]")
def walk(cfg: WalkConfig, ctx: RunContext) -> dict:
    """x per step."""
    for step in range(cfg.steps):
        ctx.log(step, y=cfg.x * step)
    return {"y": cfg.x * (cfg.steps - 1)}


@register_study("lab-heavy", config=WalkConfig, extra="labplug[heavy]",
                requires=("labplug_no_such_dependency",))
def heavy(cfg: WalkConfig, ctx: RunContext) -> dict:
    """Needs a package that is not installed."""
    return {}
'''

ANALYSIS = '''
from sweeplab.analysis.spec import StudyAnalysis


def findings(data):
    return [f"lab-walk finding: {len(data.runs)} runs, y grows with x"]


ANALYSIS = StudyAnalysis(group_keys=("x",), final_metrics=("y",), findings=findings)
'''

TOOL = '''
import sys


def main(argv):
    sys.stdout.write("lab-tool says " + " ".join(argv) + "\\n")
    return 0


def files(name, folder):
    return {f"{name}.yaml": f"study: lab-walk\\nname: {name}\\ngrid:\\n  x: [1.0, 3.0]\\n"}
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin, built and installed by pip into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "src" / "labplug"
    package.mkdir(parents=True)
    (root / "src" / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    for name, text in {"study": STUDY, "analysis": ANALYSIS, "tool": TOOL}.items():
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(root / "src")],
                   check=True, capture_output=True, timeout=300)
    return target


def sweeplab(site: Path, *args: str, cwd: Path | None = None,
             code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "sweeplab", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


def test_an_installed_study_is_found_and_runs_like_a_shipped_one(site, tmp_path):
    listed = sweeplab(site, "studies", "lab-walk")
    assert listed.returncode == 0, listed.stderr
    assert "verb: sweeplab lab-tool" in listed.stdout
    assert "template: sweeplab new lab-experiment NAME: a lab-walk grid" in listed.stdout
    assert "pip install 'labplug[walk]'" in listed.stdout
    run = sweeplab(site, "run", "lab-walk", "--x", "2", "--out_dir", str(tmp_path / "o"))
    assert run.returncode == 0, run.stderr
    (run_dir,) = (tmp_path / "o").iterdir()
    assert yaml.safe_load((run_dir / "final.json").read_text()) == {"y": 4.0}


def test_its_verb_and_its_template(site, tmp_path):
    said = sweeplab(site, "lab-tool", "hello", "there")
    assert said.returncode == 0 and said.stdout == "lab-tool says hello there\n", said.stderr
    made = sweeplab(site, "new", "lab-experiment", "e1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    path = tmp_path / "lab_configs" / "e1.yaml"
    assert f"wrote {path.relative_to(tmp_path)}; run it with: sweeplab grid" in made.stdout
    grid = sweeplab(site, "grid", str(path), "--executor", "inline", "--out_dir",
                    str(tmp_path / "o"))
    assert grid.returncode == 0, grid.stderr
    assert "2 runs of lab-walk" in grid.stdout
    typo = sweeplab(site, "lab-tol")
    assert "(did you mean lab-tool?)" in one_error_line(typo)


def test_its_flat_form_and_its_analysis(site, tmp_path):
    spec = tmp_path / "flat.yaml"
    spec.write_text(yaml.safe_dump({"steps": 4, "xs": [1.0, 2.0], "seeds": [0, 1]}))
    grid = sweeplab(site, "grid", str(spec), "--executor", "inline", "--out_dir",
                    str(tmp_path / "o"))
    assert grid.returncode == 0, grid.stderr
    assert "4 runs of lab-walk" in grid.stdout
    (grid_dir,) = (tmp_path / "o").iterdir()
    analysed = sweeplab(site, "analyze", str(grid_dir), "--output_dir", str(tmp_path / "a"))
    assert analysed.returncode == 0, analysed.stderr
    report = (tmp_path / "a" / "report.md").read_text()
    assert "lab-walk finding: 4 runs, y grows with x" in report
    summary = (tmp_path / "a" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("x,") and len(summary) == 3  # grouped by x, seeds pooled


def test_a_flat_spec_two_studies_read_is_refused_and_one_only_theirs_is_kept(site, tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"seeds": [0, 1]}))
    line = one_error_line(sweeplab(site, "grid", str(both), "--out_dir", str(tmp_path / "o")))
    assert "the flat spec fits the studies implicit-bias, lab-walk; name one" in line
    shipped = sweeplab(site, code=(
        "from sweeplab.core.grid import load_grid_spec; "
        f"print(load_grid_spec({str(REPO / 'runs/configs/quick_debug.yaml')!r}).study)"))
    assert shipped.stdout.strip() == "implicit-bias", shipped.stderr


def test_a_missing_extra_is_one_line_naming_the_install(site, tmp_path):
    line = one_error_line(sweeplab(site, "run", "lab-heavy", "--out_dir", str(tmp_path / "o")))
    assert line == ("sweeplab: error: study lab-heavy needs labplug_no_such_dependency, "
                    "which is not installed: pip install 'labplug[heavy]'")
    spec = tmp_path / "heavy.yaml"
    spec.write_text(yaml.safe_dump({"study": "lab-heavy", "grid": {"x": [1.0, 2.0]}}))
    line = one_error_line(sweeplab(site, "grid", str(spec), "--out_dir", str(tmp_path / "o")))
    assert "pip install 'labplug[heavy]'" in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_help_reads_the_plugins_names_and_imports_none(site):
    out = sweeplab(site, code=(
        "import sys, io, contextlib; from sweeplab.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as text: main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('labplug', 'sweeplab.studies',"
        " 'sweeplab.agent', 'pydantic', 'numpy'))))\n"
        "print('agent' in text.getvalue())"))
    assert out.stdout.splitlines() == ["[]", "True"], out.stderr


BLOCK = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
from sweeplab.cli.main import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("blocked,argv,install", [
    (["torch"], ["run", "implicit-bias", "--epochs", "3"], "sweeplab[implicit-bias]"),
    (["torch"], ["run", "anchor-composite"], "sweeplab[anchor]"),
    (["sklearn", "scipy"], ["run", "minima-volume"], "sweeplab[volume]"),
    (["optuna"], ["agent", "--goal", "a small MLP for digits"], "sweeplab[agent]"),
    (["matplotlib"], ["analyze", "."], "sweeplab[analysis]"),
], ids=["implicit-bias", "anchor", "volume", "agent", "analyze"])
def test_a_shipped_study_or_verb_without_its_extra(tmp_path, blocked, argv, install):
    code = BLOCK.format(blocked=blocked, argv=[*argv, *(["--out_dir", str(tmp_path / "o")]
                                                        if argv[0] == "run" else [])])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    line = one_error_line(proc)
    assert line.endswith(f"which {'is' if len(blocked) == 1 else 'are'} not installed: "
                         f"pip install '{install}'"), line
    for name in blocked:
        assert {"sklearn": "scikit-learn"}.get(name, name) in line
    assert not (tmp_path / "o").exists()


def test_each_shipped_study_requires_only_what_its_extra_installs():
    from sweeplab.core.registry import DISTRIBUTIONS, STUDY_ENTRY_POINTS, get_study

    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]

    def installs(extra: str) -> set[str]:
        out: set[str] = set()
        for requirement in extras[extra]:
            name = requirement.split(">")[0].split("=")[0].split("[")[0].strip().lower()
            if name == "sweeplab":
                for inner in requirement.split("[")[1].rstrip("]").split(","):
                    out |= installs(inner.strip())
            else:
                out.add(name)
        return out

    for entry in metadata.entry_points(group=STUDY_ENTRY_POINTS):
        study = get_study(entry.name)
        name = entry.name
        assert study.extra.startswith("sweeplab[") and study.requires, name
        wanted = {DISTRIBUTIONS.get(m, m).lower() for m in study.requires}
        assert wanted <= installs(study.extra[len("sweeplab["):-1]), name
