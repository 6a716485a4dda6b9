"""Which anchor runs may train as one batched computation: :func:`batch_key`.

Light on purpose (no torch): a grid's driver computes every run's key while planning.
"""

from __future__ import annotations

from sweeplab.studies.anchor.config import AnchorTrainingConfig, CompositeConfig, InverseConfig


def batch_key(cfg: AnchorTrainingConfig) -> tuple:
    """What runs trained together must share (the study's name is added by the executor).

    Shared: the architecture (model type, depth, widths, d_state, expand, d_conv), the
    task's sizes, the mini-batch and evaluation batch sizes (one ``TrainSettings`` and one
    evaluation pass for the batch) and the device. Free to differ, run by run: seed (each
    run trains and is scored on its own seed's data, in its own batch order), gamma and
    the rest of the initialization (``embedding_fan_in``, ``conv_init``), lr, schedule,
    weight decay, grad_clip, epochs, log_interval and save_interval.
    """
    if isinstance(cfg, CompositeConfig):
        task: tuple = ("composite", cfg.n_train, cfg.n_test, cfg.n_heldout)
    elif isinstance(cfg, InverseConfig):
        task = ("inverse", cfg.n_train, cfg.n_test, cfg.n_ood)
    else:
        raise TypeError(f"no anchor task for config {type(cfg).__name__}")
    return (*task, cfg.model_type, cfg.n_layers, cfg.d_model, cfg.d_state, cfg.expand,
            cfg.d_conv, cfg.batch_size, cfg.eval_batch_size, cfg.device)
