"""The classifiers of the minima-volume study: an MLP and a small CNN.

The MLP is a plain ``nn.Sequential`` of Flatten, Linear and ReLU modules, the form the
batched landscape evaluation recognises and runs as batched matrix products; the CNN
(two 3x3 conv + ReLU + 2x2 max-pool blocks, then a linear head) is evaluated through
``torch.func.vmap``. Initialisation is PyTorch's default, drawn from ``model_seed``.
"""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.studies.volume.config import VolumeConfig


def build_model(cfg: VolumeConfig, image_shape: tuple[int, int], n_classes: int) -> nn.Module:
    """A fresh model for images of ``image_shape``, initialised from ``cfg.model_seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.model_seed)
        if cfg.arch == "mlp":
            return mlp(image_shape[0] * image_shape[1], cfg.hidden, n_classes)
        return small_cnn(image_shape, cfg.channels, n_classes)


def mlp(in_dim: int, hidden: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """Flatten, then Linear + ReLU per hidden width, then a linear head."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def small_cnn(
    image_shape: tuple[int, int], channels: tuple[int, ...], n_classes: int
) -> nn.Sequential:
    """3x3 conv (padding 1) + ReLU + 2x2 max-pool per channel count, then a linear head."""
    layers: list[nn.Module] = []
    c_in, (h, w) = 1, image_shape
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, h, w = c, h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(f"{len(channels)} pooling blocks shrink {image_shape} images to nothing")
    layers += [nn.Flatten(), nn.Linear(c_in * h * w, n_classes)]
    return nn.Sequential(*layers)


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters: the dimension n of the volume."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
