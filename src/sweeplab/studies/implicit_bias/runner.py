"""One ``implicit-bias`` run, end to end (the work behind :mod:`.study`).

Kept apart from the registration so that a grid's driver validates and plans runs
without importing torch or scikit-learn; worker processes import this module before
their first job (the study's ``warm`` modules).
"""

from __future__ import annotations

import numpy as np
import torch

from sweeplab.core.context import RunContext
from sweeplab.data import load_dataset
from sweeplab.studies.implicit_bias import outputs
from sweeplab.studies.implicit_bias.baselines import compute_baselines
from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig
from sweeplab.studies.implicit_bias.metrics import MetricTracker
from sweeplab.studies.implicit_bias.model import DeepLinearNetwork
from sweeplab.studies.implicit_bias.potentials import Potential, make_potential
from sweeplab.studies.implicit_bias.stall import warn_if_stalled
from sweeplab.studies.implicit_bias.train import MirrorDescentTrainer, train_mirror_descent


def linear_md_direction(
    X: np.ndarray, y: np.ndarray, potential: Potential, cfg: ImplicitBiasConfig
) -> np.ndarray:
    """The L = 1 mirror-descent solution from w = 0, same potential, loss and schedule."""
    linear = DeepLinearNetwork(X.shape[1], depth=1, width=1, dtype=_dtype(cfg))
    with torch.no_grad():
        linear.layers[0].zero_()
    train_mirror_descent(
        linear, X, y, potential, lr=cfg.lr, epochs=cfg.epochs, loss=cfg.loss,
        batch_size=cfg.batch_size, seed=cfg.seed,
    )
    return linear.end_to_end().detach().to(torch.float64).numpy()


def _tensor(array: np.ndarray | None) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.array(array, dtype=np.float64))


def _array(tensor: torch.Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.numpy()


def _dtype(cfg: ImplicitBiasConfig) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def run_one(cfg: ImplicitBiasConfig, ctx: RunContext) -> dict[str, float]:
    """Mirror descent on a deep linear network: angles, margins, alignment, balance."""
    data = load_dataset(cfg, seed=cfg.seed)
    X, y = data.X, data.y
    outputs.save_dataset(ctx, data)

    potential = make_potential(cfg.potential, p=cfg.p, beta=cfg.beta)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = DeepLinearNetwork(X.shape[1], cfg.L, cfg.width, cfg.init_scale, gen, _dtype(cfg))
    trainer = MirrorDescentTrainer(
        model, X, y, potential, lr=cfg.lr, loss=cfg.loss, batch_size=cfg.batch_size,
        seed=cfg.seed,
    )
    saved = ctx.restore()
    if saved is None:
        base = compute_baselines(X, y, p=potential.margin_p, logreg_C=cfg.logreg_C, seed=cfg.seed)
        for message in base.warnings:
            ctx.warn(message)
        directions: dict[str, np.ndarray | None] = {
            "svm": base.svm,
            "logreg": base.logreg,
            "lp_max_margin": base.lp_max_margin,
            "linear_md": linear_md_direction(X, y, potential, cfg),
        }
        separable = base.separable
        init_weights = model.weights_numpy()
    else:  # the baselines and the initial weights come from the checkpoint, bit for bit
        directions = {k: _array(v) for k, v in saved["directions"].items()}
        separable = bool(saved["separable"])
        init_weights = [_array(w) for w in saved["init_weights"]]
        trainer.load_state_dict(saved["trainer"])
    tracker = MetricTracker(X, y, potential, cfg.loss, directions, init_weights)
    last: dict[str, float] = {}

    def on_log(epoch: int) -> None:
        last.clear()
        last.update(tracker(model.weights_numpy()))
        ctx.log(epoch, **last)

    def state() -> dict:
        return {
            "trainer": trainer.state_dict(),
            "directions": {k: _tensor(v) for k, v in directions.items()},
            "separable": separable,
            "init_weights": [_tensor(w) for w in init_weights],
        }

    with ctx.interruptible(state, last_epoch=cfg.epochs) as at_epoch:
        trainer.train(cfg.epochs, log_interval=cfg.log_interval, on_log=on_log,
                      at_epoch=at_epoch)

    warn_if_stalled(ctx, cfg, X, y, init_weights, last, directions["logreg"])
    w = model.end_to_end().detach().to(torch.float64).numpy()
    final = outputs.final_metrics(cfg.epochs, last, data, w, directions, separable)
    outputs.save_directions(ctx, w, directions, potential.margin_p, separable, data)
    if cfg.plots:
        outputs.save_figures(ctx, X, y, w, directions, potential.margin_p,
                             cfg.figure_formats)
    return final
