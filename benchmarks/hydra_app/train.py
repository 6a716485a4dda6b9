"""The Hydra alternative of the grid benchmark: one implicit-bias run per Hydra job.

Run by ``benchmarks/bench_grid.py`` as a multirun with Hydra's joblib launcher; each job
calls the same study function sweeplab runs, so only the orchestration differs.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

SETTINGS = {"quadratic": ("quadratic", 1.5), "lp1.5": ("lp", 1.5), "lp3": ("lp", 3.0)}


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from sweeplab.core.registry import get_study
    from sweeplab.core.threads import limit_threads
    from sweeplab.execute.single import execute_run

    limit_threads(1)
    study = get_study("implicit-bias")
    potential, p = SETTINGS[cfg.setting]
    params = {k: v for k, v in cfg.items() if k != "setting"}
    config = study.config.from_mapping({**params, "potential": potential, "p": p})
    out = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    for sub in ("figs", "tables", "logs"):
        (out / sub).mkdir(exist_ok=True)
    return execute_run(study, config, out).final.get("angle_svm", float("nan"))


if __name__ == "__main__":
    main()
