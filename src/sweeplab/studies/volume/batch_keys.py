"""Which minima-volume runs may train their models as one batch: :func:`batch_key`.

Light on purpose (no torch): a grid's driver computes every run's key while planning.
"""

from __future__ import annotations

from sweeplab.studies.volume.config import VolumeConfig


def batch_key(cfg: VolumeConfig) -> tuple | None:
    """What runs whose models train together must share, or None: this run goes alone.

    Shared: the architecture (``arch`` and its widths), the dataset (the input shape:
    8x8 digits, 28x28 MNIST-format), the optimizer and whether SAM wraps it, the
    mini-batch size (one ``TrainSettings`` for the batch) and the device. Free to differ,
    run by run: model_seed (initial weights and batch order), data_seed, base_size,
    extra_sizes, category otherwise (poison only changes labels), normalize, lr,
    momentum, weight decay, sam_rho, epochs, log_interval, and everything after training.
    Each model trains on its own run's rows of the batch's data. The dtype is the
    process's default, shared by every run of a batch.

    None where batching is off (``batch: off``, or ``--batch off``) or where the run does
    not train (``stages`` without train): it runs alone, as before.
    """
    if cfg.batch == "off" or not cfg.wants("train"):
        return None
    widths = cfg.hidden if cfg.arch == "mlp" else cfg.channels
    return (cfg.arch, tuple(widths), cfg.dataset, cfg.optimizer, cfg.category == "sam",
            cfg.batch_size, cfg.device)
