"""The anchor grid configs under runs/configs/ hold the issue's protocols exactly.

Each spec is expanded and validated as ``sweeplab grid`` would (nothing runs): the run
count, the run names (``L2_G0.5_S42``), the training protocol, and for every ``_cpu``
variant the full grid's gammas and models, the paper's recipe where the full grid has it,
and a measured wall time under 30 minutes stated in its header.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sweeplab.core.grid import expand, load_grid_spec, validate_runs

CONFIGS = Path(__file__).resolve().parents[3] / "runs" / "configs"
LAYERS, GAMMAS, SEEDS = [2, 3, 4, 5, 6], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0], [42, 123, 456]
PAPER_LAYERS = [2, 3, 4, 5, 6, 7]
PAPER_GAMMAS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.0]
ABLATIONS = {("mamba_ones_conv", 5, 1.0), ("mamba_standard", 5, 1.0),
             ("mamba_pos_encoding", 2, 0.5), ("mamba_standard", 2, 0.5),
             ("transformer_with_conv", 2, 1.0)}  # Fig. 7b, 7c, 8 and App. E.1.2-E.1.3
INVERSE_MODELS = {"mamba_standard", "transformer", "mamba_residual"}
NAMES = ("phase_diagram", "phase_diagram_paper", "ablations", "inverse_task")
FEWER_CELLS = {"phase_diagram_paper"}  # its CPU variant: the gamma range, fewer cells


def configs(name: str) -> tuple[list, list]:
    spec = load_grid_spec(CONFIGS / f"{name}.yaml")
    return [cfg for _, cfg in validate_runs(spec, expand(spec))], expand(spec)


def test_phase_diagram_is_the_spec_protocol():
    cfgs, runs = configs("phase_diagram")
    assert len(cfgs) == 90
    assert {(c.n_layers, c.gamma, c.seed) for c in cfgs} == {
        (n, g, s) for n in LAYERS for g in GAMMAS for s in SEEDS}
    for c in cfgs:
        assert c.model_type == "mamba_standard" and c.schedule == "constant"
        assert (c.epochs, c.lr, c.batch_size, c.log_interval, c.save_interval) == (
            210, 1e-3, 32, 10, 50)
        assert (c.d_model, c.d_state, c.expand, c.d_conv, c.n_train) == (32, 128, 2, 4, 300_000)
    assert "L2_G0.5_S42" in {r.name for r in runs} and "L6_G1.0_S456" in {r.name for r in runs}


def paper_recipe(c, batch_size: int) -> bool:
    """App. D: warm-up from 1e-5 to 2.5e-4 over 10 epochs, cosine to 1e-5 at epoch 200,
    AdamW with weight decay 1e-2, clipping at 1."""
    return ((c.schedule, c.warmup_epochs, c.warmup_start_lr, c.lr) == (
        "warmup_cosine", 10, 1e-5, 2.5e-4) and (c.weight_decay, c.grad_clip, c.batch_size,
                                              c.epochs) == (1e-2, 1.0, batch_size, 200))


def test_phase_diagram_paper_is_the_papers_extent_and_recipe():
    cfgs, runs = configs("phase_diagram_paper")
    assert len(cfgs) == 216 and "L2_G0.1_S42" in {r.name for r in runs}
    assert {(c.n_layers, c.gamma, c.seed) for c in cfgs} == {
        (n, g, s) for n in PAPER_LAYERS for g in PAPER_GAMMAS for s in SEEDS}
    assert all(paper_recipe(c, 2048) and c.n_train == 300_000 for c in cfgs)
    assert all((c.embedding_fan_in, c.conv_init) == ("one_hot", "gamma") for c in cfgs)


def test_ablations_are_the_papers_settings():
    cfgs, runs = configs("ablations")
    assert len(cfgs) == 15
    assert {(c.model_type, c.n_layers, c.gamma) for c in cfgs} == ABLATIONS
    assert {c.seed for c in cfgs} == set(SEEDS)
    assert all(paper_recipe(c, 2048) for c in cfgs)
    assert "mamba_ones_conv_L5_G1.0_S42" in {r.name for r in runs}


def test_inverse_task_compares_the_three_models():
    cfgs, runs = configs("inverse_task")
    assert len(cfgs) == 9 and {c.model_type for c in cfgs} == INVERSE_MODELS
    assert {c.seed for c in cfgs} == set(SEEDS)
    for c in cfgs:  # App. D recipe; App. C.2 sizes and App. E.2 width; Fig. 9 = gamma 0.6
        assert paper_recipe(c, 1024) and (c.gamma, c.n_layers) == (0.6, 2)
        assert (c.n_train, c.n_test, c.n_ood, c.d_model) == (80_000, 10_000, 10_000, 128)
    assert "mamba_residual_L2_G0.6_S42" in {r.name for r in runs}


@pytest.mark.parametrize("name", NAMES)
def test_cpu_variant_says_it_runs_under_30_minutes(name):
    """Same grid axes and models as the full protocol; a measured time < 30 min stated."""
    full, _ = configs(name)
    cpu, runs = configs(f"{name}_cpu")
    header = (CONFIGS / f"{name}_cpu.yaml").read_text().split("\nstudy:")[0]
    minutes = [float(m) for m in re.findall(r"measured[^0-9]{0,40}([0-9.]+) min", header)]
    assert minutes and max(minutes) < 30, header
    assert all(c.device == "cpu" for c in cpu)
    for key in ("n_layers", "gamma", "model_type"):
        cpu_values, full_values = {getattr(c, key) for c in cpu}, {getattr(c, key) for c in full}
        if key in ("n_layers", "gamma") and name in FEWER_CELLS:  # the same range
            assert len(cpu_values) >= 2 and cpu_values <= full_values, key
            assert min(cpu_values) == min(full_values), key
            if key == "gamma":
                assert max(cpu_values) == max(full_values)
        else:
            assert cpu_values == full_values, key
    assert {c.seed for c in cpu} <= set(SEEDS)
    assert {r.name for r in runs} <= {r.name for r in configs(name)[1]}  # same names
    if full[0].schedule == "warmup_cosine":  # the paper's recipe, at CPU sizes
        for c in cpu:
            assert (c.schedule, c.warmup_start_lr, c.weight_decay, c.grad_clip) == (
                "warmup_cosine", 1e-5, 1e-2, 1.0)
            assert c.d_model == full[0].d_model


def _unversioned_hash(cfg) -> str:
    """The hash as it was computed before identity versions (version 0's formula)."""
    import hashlib
    import json

    identity = {k: v for k, v in cfg.canonical().items() if k not in cfg.IDENTITY_EXCLUDED}
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def test_runs_made_before_the_corrected_tasks_are_not_counted_done(tmp_path):
    from sweeplab.core.grid import parse_grid_spec
    from sweeplab.core.registry import get_study
    from sweeplab.execute.sweep import plan_grid
    from sweeplab.studies.anchor.config import CompositeConfig, InverseConfig
    from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig

    for cls in (CompositeConfig, InverseConfig):
        assert cls().config_hash() != _unversioned_hash(cls())
    # version 0 (every other study) keeps the hashes its run directories already carry
    assert ImplicitBiasConfig().config_hash() == _unversioned_hash(ImplicitBiasConfig())

    get_study("anchor-composite")
    spec = parse_grid_spec({"study": "anchor-composite", "grid": {"seed": [1]}})
    plan = plan_grid(spec, tmp_path)
    (job,) = plan.jobs
    run = Path(job.run_dir)
    run.mkdir()
    (run / "final.json").write_text("{}")
    cfg = CompositeConfig.from_mapping(job.config)
    for config_hash, counted in ((_unversioned_hash(cfg), False), (job.config_hash, True)):
        (run / "status.json").write_text(f'{{"state": "done", "config_hash": "{config_hash}"}}')
        assert (plan_grid(spec, tmp_path).done == [job]) is counted
