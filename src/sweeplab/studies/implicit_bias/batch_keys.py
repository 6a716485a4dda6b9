"""Which implicit-bias runs may train as one batched computation: :func:`batch_key`.

Light on purpose (no torch): a grid's driver computes every run's key while planning.
"""

from __future__ import annotations

from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig

BATCHED_FAMILIES = ("quadratic", "lp", "hypentropy")
"""Potential names whose mirror maps the batched trainer evaluates (its
``BATCHED_POTENTIALS`` classes; a test keeps the two in step)."""


def batch_key(cfg: ImplicitBiasConfig) -> tuple | None:
    """What runs trained together must share; None for a run that trains alone.

    Shared: the data's shapes (dataset, and n_samples and input_dim for synthetic data,
    the two classes and the IDX folder for real data, pca), depth, width (when L > 1),
    potential family, loss, epochs, log_interval and dtype. Free to differ: seed,
    data_seed, lr, p or beta, init_scale, separation, noise, standardize, logreg_C,
    plots, save_interval. Mini-batch runs (``batch_size`` set) train alone, and so do
    runs of a potential family without a batched mirror map.
    """
    if cfg.batch_size is not None or cfg.potential not in BATCHED_FAMILIES:
        return None
    if cfg.dataset == "synthetic":
        data: tuple = (cfg.dataset, cfg.n_samples, cfg.input_dim)
    else:
        data = (cfg.dataset, tuple(cfg.digits), None if cfg.data_dir is None else str(cfg.data_dir))
    width = cfg.width if cfg.L > 1 else None  # a linear model has no hidden width
    return ("implicit-bias", *data, cfg.pca, cfg.L, width, cfg.potential, cfg.loss,
            cfg.epochs, cfg.log_interval, cfg.dtype)
