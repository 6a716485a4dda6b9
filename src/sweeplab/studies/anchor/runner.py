"""The anchor studies' runs, end to end (the work behind :mod:`.study`).

Kept apart from the registration so that a grid's driver validates and plans runs
without importing torch; worker processes import this module before their first job
(the studies' ``warm`` modules).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from sweeplab.core.context import RunContext
from sweeplab.studies.anchor.config import AnchorTrainingConfig, CompositeConfig, InverseConfig
from sweeplab.studies.anchor.models import build_model
from sweeplab.studies.anchor.tasks import (
    COMPOSITE_VOCAB,
    INVERSE_VOCAB,
    SEQ_LEN,
    composite_splits,
    inverse_seq_len,
    inverse_splits,
)
from sweeplab.studies.anchor.train import predict, resolve_device, train


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).double().mean())


def _fit(
    cfg: AnchorTrainingConfig,
    ctx: RunContext,
    vocab: int,
    seq_len: int,
    train_split: dict[str, torch.Tensor],
    extra: Callable[[torch.nn.Module], dict[str, float]],
) -> dict[str, float]:
    """Build the model, train it with the metrics of ``extra``, save model.pt/metrics.json."""
    _link_train_log(ctx)
    device = resolve_device(cfg.device)
    model = build_model(cfg.model_type, vocab, seq_len, cfg.n_layers, cfg.d_model,
                        cfg.d_state, cfg.expand, cfg.d_conv, cfg.gamma, seed=cfg.seed,
                        embedding_fan_in=cfg.embedding_fan_in,
                        conv_init=cfg.conv_init).to(device)
    ctx.logger.info("%s with %d parameters on %s", cfg.model_type,
                    sum(p.numel() for p in model.parameters()), device)
    tokens, labels = train_split["tokens"], train_split["labels"]

    def evaluate() -> dict[str, float]:
        pred, logits = predict(model, tokens, cfg.eval_batch_size)
        return {"train_loss": float(F.cross_entropy(logits, labels)),
                "train_acc": _accuracy(pred, labels), **extra(model)}

    final = train(model, tokens, labels, cfg, ctx, evaluate)
    torch.save(model.state_dict(), ctx.path("model.pt"))
    ctx.save_json("metrics.json", final)
    return final


def _link_train_log(ctx: RunContext) -> None:
    """``train.log`` at the run's top level: a link to ``logs/train.log`` (one file)."""
    link = ctx.path("train.log")
    if not link.is_symlink() and not link.exists():
        link.symlink_to(Path("logs") / "train.log")


def run_composite(cfg: CompositeConfig, ctx: RunContext) -> dict[str, float]:
    """Anchor-function composite task: composite vs symmetric solution of pair (4, 3)."""
    device = resolve_device(cfg.device)
    splits = composite_splits(cfg.n_train, cfg.n_test, cfg.n_heldout, cfg.seed)
    data = {name: split.tensors(device) for name, split in splits.items()}
    test, held = data["test"], data["heldout"]

    def extra(model: torch.nn.Module) -> dict[str, float]:
        test_pred, _ = predict(model, test["tokens"], cfg.eval_batch_size)
        held_pred, _ = predict(model, held["tokens"], cfg.eval_batch_size)
        return {"test_acc": _accuracy(test_pred, test["labels"]),
                "composite_acc": _accuracy(held_pred, held["labels_composite"]),
                "symmetric_acc": _accuracy(held_pred, held["labels_symmetric"])}

    return _fit(cfg, ctx, COMPOSITE_VOCAB, SEQ_LEN, data["train"], extra)


def run_inverse(cfg: InverseConfig, ctx: RunContext) -> dict[str, float]:
    """Inverse sequence matching: find the key whose reversal is the query."""
    device = resolve_device(cfg.device)
    splits = inverse_splits(cfg.n_train, cfg.n_test, cfg.n_ood, cfg.n_layers, cfg.seed)
    data = {name: split.tensors(device) for name, split in splits.items()}

    def extra(model: torch.nn.Module) -> dict[str, float]:
        out = {}
        for name in ("test", "ood"):
            pred, _ = predict(model, data[name]["tokens"], cfg.eval_batch_size)
            out[f"{name}_acc"] = _accuracy(pred, data[name]["labels"])
        return out

    return _fit(cfg, ctx, INVERSE_VOCAB, inverse_seq_len(cfg.n_layers), data["train"], extra)
