"""The typed config of the implicit-bias study: every parameter, declared once.

CLI flags (``sweeplab run implicit-bias --potential lp --p 1.5 ...``), grid keys and
validation all come from this class.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from sweeplab.core.config import StudyConfig, aliases, applies_when
from sweeplab.data.config import DataConfig


class ImplicitBiasConfig(DataConfig, StudyConfig):
    """Mirror descent on a deep linear network for binary classification."""

    IDENTITY_EXCLUDED: ClassVar[frozenset[str]] = frozenset({"save_interval", "figure_formats"})

    potential: Literal["quadratic", "lp", "hypentropy"] = Field(
        "lp", description="mirror-descent potential (quadratic = gradient descent)"
    )
    p: float = Field(1.5, gt=1, description="lp potential: exponent p > 1",
                     **applies_when(potential=["lp"]))
    beta: float = Field(1.0, gt=0, description="hypentropy potential: scale beta > 0",
                        **applies_when(potential=["hypentropy"]))
    L: int = Field(2, ge=1, description="depth of the linear network (number of layers)",
                   **aliases("depth", "n_layers", "num_layers", "layers"))
    width: int = Field(16, ge=1, description="width of the hidden layers")
    init_scale: float = Field(
        0.1, gt=0, description="entries of W_k ~ N(0, init_scale^2 / fan_in)"
    )
    loss: Literal["logistic", "exponential"] = Field("logistic", description="training loss")
    lr: float = Field(0.1, gt=0, description="learning rate (step size in the dual)",
                      **aliases("learning_rate", "step_size", "eta"))
    epochs: int = Field(1000, ge=1, description="passes over the training data",
                        **aliases("n_epochs", "num_epochs", "max_epochs"))
    batch_size: int | None = Field(
        None, ge=1, description="mini-batch size (default: full batch, one step per epoch)"
    )
    seed: int = Field(0, description="seed of initialization (and of data, unless data_seed)")
    logreg_C: float = Field(
        1.0, gt=0, description="inverse l2 regularization of the logistic-regression baseline"
    )
    dtype: Literal["float64", "float32"] = Field("float64", description="training precision")
    plots: bool = Field(True, description="draw the per-run figures")
    figure_formats: tuple[Literal["png", "pdf", "svg"], ...] = Field(
        ("png",), min_length=1,
        description="formats of the per-run figures (pdf embeds fonts: as slow again as png; "
                    "`sweeplab analyze` writes png and pdf)",
        **aliases("figures", "figure_format"))
    save_interval: int = Field(
        500, ge=0,
        description="write a checkpoint every N epochs (0: only when interrupted and at the end)",
    )
