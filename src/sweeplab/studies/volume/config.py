"""Typed config of the ``minima-volume`` study (Fan, Sandlund & Ko 2025, arXiv 2511.04808).

One run (``model_<model_seed>_data_<data_seed>``) trains one model per number of added
samples ``m`` in ``extra_sizes`` on the first ``base_size + m`` samples of a fixed pool,
perturbs each along ``n_directions`` random filter-normalised directions, and measures
the volume of its minimum in the loss landscapes of ``landscape_sizes`` (the first ``s``
samples of the same pool) at each of ``loss_cutoffs``.

The method's choices follow the authors' code (rfangit/minima-volume-project) by default
where this study offers a second reading: ``direction_scaling: filtnorm`` (each output row
of a Gaussian direction times the norm of the trained row, biases raw); ``li`` is Li et
al.'s filter normalisation. ``coefficient_grid: quadratic`` and ``uncrossed: drop`` are
the authors' grid and estimator, offered beside the linear grid and the lower bound.

Categories (the experiments of the paper): ``low_data`` (the added samples are clean),
``poison`` (the added samples carry a wrong label: label + a random offset in
[1, C-1] mod C) and ``sam`` (training with sharpness-aware minimisation, radius
``sam_rho``). Architecture variants are ``arch`` and its widths.

``stages`` says which stages to run and is not part of the run's identity; every stage
caches its outputs in the run directory and runs again only when its inputs change.
``eval_batch`` and ``device`` (how the landscape is evaluated, not what), ``batch`` (how
the models train: batched or one by one, the same models up to float rounding),
``data_dir`` (where the files are) and ``log_interval`` are not part of the run's
identity either.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from sweeplab.core.config import StudyConfig, aliases
from sweeplab.errors import InvalidField

STAGES = ("train", "perturb", "volume", "cutoff", "test")
"""The pipeline's stages, in order (``all``: every one)."""


class VolumeConfig(StudyConfig):
    """Every parameter of a minima-volume run; CPU-sized defaults (digits, small MLP)."""

    IDENTITY_EXCLUDED: ClassVar[frozenset[str]] = frozenset(
        {"save_interval", "stages", "data_dir", "device", "eval_batch", "log_interval", "batch"}
    )

    category: Literal["low_data", "poison", "sam"] = Field(
        "low_data", description="experiment: clean added samples, mislabelled ones, or SAM"
    )
    dataset: Literal["digits", "fashion-mnist", "mnist"] = Field(
        "digits", description="digits: scikit-learn's 8x8 digits; MNIST-format IDX files else"
    )
    data_dir: Path | None = Field(
        None, description="folder of the IDX files (default: the usual places; see docs)"
    )
    model_seed: int = Field(0, description="seed of the initialization and the batch order")
    data_seed: int = Field(0, description="seed of which samples form the pool and test set")
    base_size: int = Field(200, ge=1, description="samples every model is trained on")
    extra_sizes: tuple[int, ...] = Field(
        (0, 100, 200, 400, 800), description="added samples m: one model per value"
    )
    landscape_sizes: tuple[int, ...] = Field(
        (), description="landscapes: the first s pool samples (default: base_size + each m)"
    )
    test_size: int = Field(500, ge=1, description="test samples (held out from the pool)")
    arch: Literal["mlp", "cnn"] = Field("mlp", description="architecture")
    hidden: tuple[int, ...] = Field((128,), description="mlp: hidden widths")
    channels: tuple[int, ...] = Field((8, 16), description="cnn: channels of the 3x3 convs")
    normalize: tuple[float, float] | None = Field(
        None, description="(mean, std): inputs become (x - mean) / std, x in [0, 1] "
                          "(MNIST: [0.1307, 0.3081]); none: pixels in [0, 1]"
    )
    optimizer: Literal["sgd", "adam", "adamw"] = Field(
        "adam", description="optimizer (sam wraps it); adamw: decoupled weight decay"
    )
    lr: float = Field(1e-3, gt=0, description="learning rate",
                      **aliases("learning_rate", "step_size", "eta"))
    momentum: float = Field(0.9, ge=0, description="sgd: momentum")
    weight_decay: float = Field(0.0, ge=0, description="weight decay (adamw: decoupled)")
    epochs: int = Field(200, ge=1, description="training epochs per model",
                        **aliases("n_epochs", "num_epochs", "max_epochs"))
    batch_size: int = Field(64, ge=0, description="training mini-batch size (0: full batch)")
    sam_rho: float = Field(0.05, gt=0, description="sam: neighbourhood radius rho")
    n_directions: int = Field(32, ge=1, description="random directions K per model")
    perturbation_seed: int = Field(
        0, description="direction i is drawn with seed perturbation_seed + i"
    )
    direction_scaling: Literal["filtnorm", "li"] = Field(
        "filtnorm", description="each output row / filter of a Gaussian direction g: "
                                "g_i * ||theta_i|| (filtnorm, the authors' code) or "
                                "g_i * ||theta_i|| / ||g_i|| (li, Li et al. 2018); biases raw"
    )
    max_coefficient: float = Field(1.0, gt=0, description="largest step along a direction")
    n_coefficients: int = Field(101, ge=2, description="grid of steps in [0, max_coefficient]")
    coefficient_grid: Literal["linear", "quadratic"] = Field(
        "linear", description="steps max_coefficient * t (linear) or max_coefficient * t^2 "
                              "(quadratic, the authors'), t = linspace(0, 1, n_coefficients)"
    )
    search: Literal["coarse_to_fine", "grid"] = Field(
        "coarse_to_fine", description="find crossings coarse-to-fine, or scan the whole grid"
    )
    coarse_stride: int = Field(10, ge=1, description="coarse_to_fine: grid points per coarse step")
    loss_cutoffs: tuple[float, ...] = Field(
        (0.5,), description="loss levels bounding the minimum (increasing; the first is the "
                            "one final.json and the report's findings use)"
    )
    uncrossed: Literal["lower_bound", "drop"] = Field(
        "lower_bound", description="directions whose loss never exceeds a cutoff within "
                                   "max_coefficient: radius = the range end (lower_bound) or "
                                   "left out of the mean (drop, the authors'); counted either way"
    )
    radius_norm: Literal["raw", "scaled"] = Field(
        "raw", description="radius = crossing coefficient x the norm of the raw Gaussian "
                           "direction (raw) or of the filter-scaled step taken (scaled)"
    )
    eval_batch: int = Field(
        0, ge=0, description="perturb: at most this many perturbed models per batched "
                             "evaluation (0: as many as fit the memory budget)"
    )
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="where models train and the landscape is evaluated (cuda: a GPU; "
                           "the paper-sized configs with K = 1,000 directions)"
    )
    batch: Literal["auto", "off"] = Field(
        "auto", description="train: a run's models as one batched computation where it pays "
                            "(auto) or one by one (off); the same models up to float rounding "
                            "(sweeplab volume run --batch sets it)"
    )
    stages: str = Field("all", description="stages to run: all, or names joined by +")
    log_interval: int = Field(50, ge=1, description="log training metrics every N epochs")
    save_interval: int = Field(0, ge=0, description="unused: stages cache their own outputs")

    @field_validator("extra_sizes")
    @classmethod
    def _extras(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(m < 0 for m in value) or list(value) != sorted(set(value)):
            raise ValueError("must be increasing, distinct integers >= 0")
        return value

    @field_validator("landscape_sizes")
    @classmethod
    def _sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(s < 1 for s in value) or list(value) != sorted(set(value)):
            raise ValueError("must be increasing, distinct integers >= 1")
        return value

    @field_validator("loss_cutoffs")
    @classmethod
    def _cutoffs(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(c <= 0 for c in value) or list(value) != sorted(set(value)):
            raise ValueError("must be one or more positive losses, increasing and distinct")
        return value

    @field_validator("normalize")
    @classmethod
    def _normalize(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[1] > 0:
            raise ValueError("must be [mean, std] with std > 0, or null")
        return value

    @field_validator("hidden", "channels")
    @classmethod
    def _widths(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 1 for w in value):
            raise ValueError("widths must be integers >= 1")
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: str) -> str:
        names = value.split("+")
        if value != "all" and any(n not in STAGES for n in names):
            raise ValueError("allowed values are all, " + ", ".join(STAGES) + " (joined by +)")
        return value

    @model_validator(mode="after")
    def _landscapes_in_pool(self) -> VolumeConfig:
        if self.landscape_sizes and self.landscape_sizes[-1] > self.pool_size:
            raise InvalidField("landscape_sizes", list(self.landscape_sizes),
                               f"sizes must be <= the pool (base_size + max extra_sizes "
                               f"= {self.pool_size})")
        return self

    @property
    def pool_size(self) -> int:
        """Samples in the pool: the base set, then every added sample."""
        return self.base_size + self.extra_sizes[-1]

    @property
    def sizes(self) -> tuple[int, ...]:
        """The landscape sizes in use (default: the training-set size of every model).

        In ``poison`` the clean base set (the first ``base_size`` samples) is always one of
        them: it is the landscape the headline log-volume is measured on.
        """
        sizes = self.landscape_sizes or tuple(self.base_size + m for m in self.extra_sizes)
        if self.category == "poison" and self.base_size not in sizes:
            sizes = tuple(sorted({*sizes, self.base_size}))
        return sizes

    @property
    def headline_size(self) -> int | None:
        """The landscape of the headline log-volume: the clean base set in ``poison``,
        None elsewhere (each model's own training set)."""
        return self.base_size if self.category == "poison" else None

    def wants(self, stage: str) -> bool:
        """Whether ``stage`` is among the stages to run."""
        return self.stages == "all" or stage in self.stages.split("+")
