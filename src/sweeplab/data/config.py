"""The data part of a study config: which dataset, and how it is preprocessed.

Studies that train on these datasets inherit :class:`DataConfig`, so its keys are flat
keys of the study's config (``--dataset mnist --digits 3 5 --pca 50``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from sweeplab.errors import InvalidField

DatasetName = Literal["synthetic", "mnist", "fashion-mnist", "digits"]

NATIVE_DIM = {"mnist": 784, "fashion-mnist": 784, "digits": 64}
"""Input dimension of each real dataset before PCA (synthetic: ``input_dim``)."""


class DataConfig(BaseModel):
    """Dataset choice and preprocessing; labels are always mapped to {-1, +1}."""

    dataset: DatasetName = Field(
        "synthetic",
        description="synthetic (two Gaussians), mnist / fashion-mnist (IDX files), "
        "digits (scikit-learn's bundled 8x8 digits)",
    )
    input_dim: int = Field(2, ge=1, description="synthetic: input dimension")
    n_samples: int = Field(512, ge=2, description="synthetic: number of training samples")
    separation: float = Field(
        3.0, gt=0, description="synthetic: distance between the two class means"
    )
    noise: float = Field(0.2, ge=0, description="synthetic: std of the isotropic Gaussian noise")
    digits: tuple[int, int] = Field(
        (0, 1), description="mnist/fashion-mnist/digits: the two classes A B (A -> -1, B -> +1)"
    )
    pca: int | None = Field(
        None, ge=1, description="project inputs onto N principal components (fit on train only)"
    )
    standardize: bool = Field(
        True, description="z-score every input feature with training statistics"
    )
    data_dir: Path | None = Field(
        None, description="folder holding the IDX files (mnist, fashion-mnist)"
    )
    data_seed: int | None = Field(
        None, description="seed of data generation and splits (default: the run's seed)"
    )

    @property
    def native_dim(self) -> int:
        """Input dimension before PCA."""
        return self.input_dim if self.dataset == "synthetic" else NATIVE_DIM[self.dataset]

    @property
    def feature_dim(self) -> int:
        """Input dimension the model sees (after PCA)."""
        return self.pca if self.pca is not None else self.native_dim

    @model_validator(mode="after")
    def _check_data(self) -> DataConfig:
        a, b = self.digits
        if not (0 <= a <= 9 and 0 <= b <= 9) or a == b:
            raise InvalidField("digits", [a, b], "need two different classes, each in 0-9")
        if self.pca is not None and self.pca >= self.native_dim:
            raise InvalidField(
                "pca",
                self.pca,
                f"must be smaller than the input dimension {self.native_dim} "
                f"of dataset {self.dataset!r}",
            )
        return self
