"""How a candidate's seeds were trained, together or one by one, and why: the vocabulary.

A candidate's evaluation trains it once per seed. With ``--batch auto`` (the default)
the seeds train together as one batched computation
(:func:`sweeplab.batched.train_batched`, through :mod:`sweeplab.agent.multiseed`) where
the batched trainer can take the model and batching pays; otherwise one by one
(:func:`sweeplab.agent.training.train_one_by_one`). Both give each seed the same initial
weights, mini-batches, early stopping and best epoch, so the results agree up to
floating-point summation order.

The sandbox's child reports which path ran as a record of this fixed vocabulary
(``path``, a ``reason`` code, an exception's type name, a few numbers); the agent checks
it (:func:`sweeplab.agent.sandbox.training_path`) and writes the words itself
(:func:`describe`), as for every other claim of the child.
"""

from __future__ import annotations

from typing import Any

BATCH_MODES = ("auto", "off")
"""``--batch`` values: ``auto`` trains the seeds together where it can, ``off`` one by one."""
PATHS = ("batched", "one_by_one")
"""Which path trained the seeds."""
REASONS = {
    "batched": "its {seeds} seeds trained together by sweeplab.batched.train_batched "
               "({units} unit(s) of at most {batch})",
    "off": "batching is off (--batch off)",
    "one_seed": "a single seed: nothing to batch",
    "unavailable": "sweeplab.batched could not be imported in the sandbox ({exception})",
    "batch_norm": "the model has batch normalization, whose running statistics a batched "
                  "step cannot reproduce per seed",
    "dropout": "the model has active dropout, whose masks a batched step cannot draw as "
               "each seed alone draws them",
    "not_batchable": "the batched trainer cannot take the model ({exception})",
    "does_not_pay": "batching does not pay for this model's step on CPU ({flops:.3g} FLOP, "
                    "{bytes_per_op:.3g} bytes of activations an operator)",
    "last_batch_of_one": "an epoch ends with a mini-batch of one sample, which the one-by-one "
                         "loop merges into the one before",
    "failed": "batched training failed ({exception}); the seeds were trained again one by one",
}
"""Reason codes and the agent's words for them (``{...}``: fields of the record)."""
NUMBERS = ("seeds", "units", "batch", "flops", "bytes_per_op")
"""The numeric fields a record may carry."""


def describe(record: dict[str, Any]) -> str:
    """One line: which path trained the seeds and why (fields missing from the record
    read as ``?``)."""
    reason = record.get("reason")
    if reason not in REASONS:
        return "how the seeds were trained is unknown"
    fields = {key: record.get(key) for key in (*NUMBERS, "exception")}
    fields = {k: ("?" if v is None else v) for k, v in fields.items()}
    try:
        text = REASONS[reason].format(**fields)
    except (ValueError, TypeError):  # a number missing where a format wants one
        text = REASONS[reason].split(" (")[0]
    where = "together" if record.get("path") == "batched" else "one by one"
    return text if reason == "batched" else f"seeds trained {where}: {text}"
