"""Mirror-descent potentials psi(w) = sum_i phi(w_i), applied entry-wise.

Mirror descent with potential psi updates the dual variable z = grad psi(w):
``z <- z - lr * grad L(w)``, ``w = (grad psi)^{-1}(z)`` (Nemirovski & Yudin 1983; Beck &
Teboulle 2003). Each potential here gives its mirror map ``grad psi``, the inverse map,
and the quantity N(W) = sum_ij Phi(W_ij) whose layer differences mirror flow conserves on
a deep linear network:

Under mirror flow, entry-wise ``dw/dt = -g / phi''(w)``, so for Phi with
``Phi'(w) = w phi''(w)`` one gets ``d/dt sum Phi(W_k) = -<W_k, grad_{W_k} L>``. For
f(x) = W_L...W_1 x every layer enters linearly, so ``<W_k, grad_{W_k} L>`` is the same for
all k and N(W_k) - N(W_{k+1}) is constant in time. For psi = 1/2||w||^2 this is the
Frobenius balance of Du, Hu & Lee (2018, "Algorithmic regularization in learning deep
homogeneous models: layers are automatically balanced", Thm 2.1); for the lp potential
N(W) = ||W||_p^p (up to the factor (p-1)/p, which does not change what is conserved).

A new potential joins by subclassing :class:`Potential` and registering it with
:func:`register_potential`; the optimizer only calls ``mirror`` and ``inverse_mirror``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Array = Any  # a torch.Tensor or a numpy array: every method works on both


def _is_torch(x: Array) -> bool:
    return isinstance(x, torch.Tensor)


def _signed_power(x: Array, exponent: float) -> Array:
    """sign(x) |x|^exponent, entry-wise, for tensors and arrays."""
    if _is_torch(x):
        return torch.sign(x) * torch.abs(x).pow(exponent)
    return np.sign(x) * np.abs(x) ** exponent


class Potential(ABC):
    """A strictly convex, entry-wise potential psi(w) = sum_i phi(w_i)."""

    name: str = "potential"

    @abstractmethod
    def value(self, w: Array) -> Array:
        """psi(w), summed over every entry."""

    @abstractmethod
    def mirror(self, w: Array) -> Array:
        """The mirror map grad psi(w), entry-wise."""

    @abstractmethod
    def inverse_mirror(self, z: Array) -> Array:
        """The inverse mirror map (grad psi)^{-1}(z), entry-wise."""

    @abstractmethod
    def balance_norm(self, w: Array) -> float:
        """N(W) = sum Phi(W_ij) with Phi' = w phi''(w): its layer differences are conserved."""

    @property
    @abstractmethod
    def margin_p(self) -> float:
        """The p of the lp geometry whose max-margin direction this potential's MD seeks."""

    def describe(self) -> dict[str, float | str]:
        """Name and parameters, for logs and result files."""
        return {"potential": self.name}


@dataclass(frozen=True)
class Quadratic(Potential):
    """psi(w) = 1/2 ||w||_2^2: mirror map the identity, so MD is plain gradient descent."""

    name: str = "quadratic"

    def value(self, w: Array) -> Array:
        return 0.5 * (w * w).sum()

    def mirror(self, w: Array) -> Array:
        return w

    def inverse_mirror(self, z: Array) -> Array:
        return z

    def balance_norm(self, w: Array) -> float:
        """||W||_F^2 (Du, Hu & Lee 2018)."""
        return float((w * w).sum())

    @property
    def margin_p(self) -> float:
        return 2.0


@dataclass(frozen=True)
class LpPotential(Potential):
    """psi(w) = (1/p) sum_i |w_i|^p, p > 1.

    Mirror map sign(w)|w|^(p-1); inverse sign(z)|z|^(1/(p-1)). On separable data, MD with
    this potential on a linear model converges in direction to the lp max-margin solution
    argmin ||w||_p s.t. y_i<w,x_i> >= 1 (Sun, Ahn, Thrampoulidis & Azizan 2022, "Mirror
    descent maximizes generalized margin and can be implemented efficiently", Thm 1).
    """

    p: float = 2.0
    name: str = "lp"

    def __post_init__(self) -> None:
        if not self.p > 1:
            raise ValueError(f"lp potential needs p > 1, got p={self.p}")

    def value(self, w: Array) -> Array:
        return (abs(w) ** self.p).sum() / self.p

    def mirror(self, w: Array) -> Array:
        return _signed_power(w, self.p - 1.0)

    def inverse_mirror(self, z: Array) -> Array:
        return _signed_power(z, 1.0 / (self.p - 1.0))

    def balance_norm(self, w: Array) -> float:
        """||W||_p^p = sum |W_ij|^p."""
        return float((abs(w) ** self.p).sum())

    @property
    def margin_p(self) -> float:
        return float(self.p)

    def describe(self) -> dict[str, float | str]:
        return {"potential": self.name, "p": self.p}


@dataclass(frozen=True)
class HyperbolicEntropy(Potential):
    """psi(w) = sum_i [w_i arcsinh(w_i/beta) - sqrt(w_i^2 + beta^2)], beta > 0.

    Mirror map arcsinh(w/beta); inverse beta sinh(z) (Ghai, Hazan & Singer 2020,
    "Exponentiated gradient meets gradient descent", Sec. 3). It interpolates between
    l1-like geometry (beta -> 0, as exponentiated gradient) and l2 (beta -> infinity);
    ``margin_p`` reports the beta -> 0 limit, p = 1. Conserved: N(W) = sum sqrt(W_ij^2 +
    beta^2), since phi''(w) = 1/sqrt(w^2 + beta^2).
    """

    beta: float = 1.0
    name: str = "hypentropy"

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"hyperbolic entropy needs beta > 0, got beta={self.beta}")

    def value(self, w: Array) -> Array:
        if _is_torch(w):
            return (w * torch.asinh(w / self.beta) - torch.sqrt(w * w + self.beta**2)).sum()
        return (w * np.arcsinh(w / self.beta) - np.sqrt(w * w + self.beta**2)).sum()

    def mirror(self, w: Array) -> Array:
        return torch.asinh(w / self.beta) if _is_torch(w) else np.arcsinh(w / self.beta)

    def inverse_mirror(self, z: Array) -> Array:
        return self.beta * (torch.sinh(z) if _is_torch(z) else np.sinh(z))

    def balance_norm(self, w: Array) -> float:
        if _is_torch(w):
            return float(torch.sqrt(w * w + self.beta**2).sum())
        return float(np.sqrt(w * w + self.beta**2).sum())

    @property
    def margin_p(self) -> float:
        return 1.0

    def describe(self) -> dict[str, float | str]:
        return {"potential": self.name, "beta": self.beta}


_FACTORIES: dict[str, Callable[..., Potential]] = {}


def register_potential(name: str, factory: Callable[..., Potential]) -> None:
    """Make ``make_potential(name, **params)`` build ``factory(**params)``.

    The factory receives the config's potential parameters (``p``, ``beta``) and keeps
    the ones it uses.
    """
    _FACTORIES[name] = factory


def make_potential(name: str, p: float = 2.0, beta: float = 1.0) -> Potential:
    """Build a registered potential from its name and the config's parameters."""
    if name not in _FACTORIES:
        raise KeyError(f"unknown potential {name!r}; known: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name](p=p, beta=beta)


def potential_names() -> list[str]:
    """Names of every registered potential."""
    return sorted(_FACTORIES)


register_potential("quadratic", lambda p, beta: Quadratic())
register_potential("lp", lambda p, beta: LpPotential(p=p))
register_potential("hypentropy", lambda p, beta: HyperbolicEntropy(beta=beta))
