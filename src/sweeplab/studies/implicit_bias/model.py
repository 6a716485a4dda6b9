"""Deep linear network f(x) = W_L ... W_1 x and the classification losses.

No biases: the network is L-homogeneous in its parameters, which the implicit-bias theory
needs (Ji & Telgarsky 2019, "Gradient descent aligns the layers of deep linear
networks"; Lyu & Li 2020). Layer shapes: W_1 is (width, d), W_k (width, width), W_L
(1, width); with L = 1 the model is the linear predictor W_1 of shape (1, d).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class DeepLinearNetwork(nn.Module):
    """f(x) = W_L ... W_1 x with entries of W_k drawn i.i.d. N(0, init_scale^2 / fan_in)."""

    def __init__(
        self,
        input_dim: int,
        depth: int,
        width: int,
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        dims = [input_dim] + [width] * (depth - 1) + [1]
        self.layers = nn.ParameterList()
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            std = init_scale / math.sqrt(fan_in)
            w = torch.randn(fan_out, fan_in, generator=generator, dtype=dtype) * std
            self.layers.append(nn.Parameter(w))
        # ParameterList indexing costs microseconds per access; the parameters are fixed
        # objects (updated in place), so a plain tuple serves the hot paths.
        self._weights = tuple(self.layers)

    @property
    def depth(self) -> int:
        return len(self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs f(x_i) for a batch x of shape (n, d); shape (n,)."""
        h = x
        for w in self._weights:
            h = h @ w.T
        return h.squeeze(-1)

    def end_to_end(self) -> torch.Tensor:
        """The end-to-end linear predictor w = (W_L ... W_1)^T, shape (d,)."""
        prod = self._weights[-1]
        for w in reversed(self._weights[:-1]):
            prod = prod @ w
        return prod.reshape(-1)

    @torch.no_grad()
    def loss_and_grads(
        self, X: torch.Tensor, y: torch.Tensor, loss: str = "logistic"
    ) -> tuple[float, list[torch.Tensor]]:
        """Mean loss and its exact gradient for every layer, without autograd.

        With w^T = W_L...W_1 and g = (1/n) sum_i l'(y_i <w, x_i>) y_i x_i the gradient of
        the loss in w, each layer's gradient is rank one:

            dL/dW_k = b_k a_k^T,  a_k = W_{k-1}...W_1 g,  b_k = (W_L...W_{k+1})^T,

        (the chain rule on f = b_k^T W_k a-style products; Arora, Cohen & Hazan 2018,
        "On the optimization of deep networks", Sec. 3, write the same factorization). It
        costs L matrix-vector products after the two data passes, where autograd builds
        and walks a graph; the tests check it against autograd.
        """
        layers = self._weights
        margins = y * (X @ self.end_to_end())
        value, dloss = LOSS_AND_DERIVATIVE[loss](margins)
        g = X.T @ (dloss * y) / len(y)
        a = [g]
        for w in layers[:-1]:
            a.append(w @ a[-1])
        b = [torch.ones(1, dtype=g.dtype)]
        for w in reversed(layers[1:]):
            b.append(w.T @ b[-1])
        b.reverse()
        return float(value), [torch.outer(bk, ak) for bk, ak in zip(b, a)]

    def weights_numpy(self) -> list[np.ndarray]:
        """Copies of the layer matrices as float64 arrays (for metrics)."""
        return [w.detach().to(torch.float64).cpu().numpy().copy() for w in self._weights]


def logistic_loss(margins: torch.Tensor) -> torch.Tensor:
    """mean_i log(1 + exp(-m_i)), computed stably as softplus(-m)."""
    return F.softplus(-margins).mean()


def exponential_loss(margins: torch.Tensor) -> torch.Tensor:
    """mean_i exp(-m_i) (Soudry et al. 2018 treat both it and the logistic loss)."""
    return torch.exp(-margins).mean()


LOSSES = {"logistic": logistic_loss, "exponential": exponential_loss}
"""Loss name -> function of the margins m_i = y_i f(x_i)."""


def _logistic_and_derivative(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean softplus(-m) and l'(m) = -sigmoid(-m), both stable for large |m|."""
    return F.softplus(-m).mean(), -torch.sigmoid(-m)


def _exponential_and_derivative(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean exp(-m) and l'(m) = -exp(-m)."""
    e = torch.exp(-m)
    return e.mean(), -e


LOSS_AND_DERIVATIVE = {"logistic": _logistic_and_derivative,
                       "exponential": _exponential_and_derivative}
"""Loss name -> (mean loss, per-sample derivative l'(m_i)) of the margins."""


def loss_numpy(name: str, margins: np.ndarray) -> float:
    """The same losses in float64 numpy, stably (logaddexp for the logistic loss)."""
    if name == "logistic":
        return float(np.mean(np.logaddexp(0.0, -margins)))
    if name == "exponential":
        return float(mean_exp(-np.asarray(margins, dtype=np.float64)))
    raise KeyError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")


_LOG_MAX = math.log(np.finfo(np.float64).max)
"""log of the largest float64: exp of anything above it overflows."""


def mean_exp(a: np.ndarray, axis: int | None = None) -> np.ndarray:
    """mean(exp(a)) along ``axis``, inf where it exceeds float64's range, never overflowing.

    A diverging run (exponential loss, margins far below zero) has exp(-m_i) beyond
    float64; its mean loss is then infinite, which is the value to log, not a warning.
    Where every term fits, this is plain ``exp(a).mean(axis)`` (bit for bit); elsewhere
    the log-mean-exp  t + log mean exp(a - t),  t = max a,  decides between a finite
    value and inf.
    """
    top = np.max(a, axis=axis, keepdims=True)
    fits = top <= _LOG_MAX
    if np.all(fits):
        return np.exp(a).mean(axis=axis)
    shift = np.where(fits, 0.0, top)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf, log 0: inf terms
        scaled = np.exp(a - shift).mean(axis=axis)
        log_mean = np.squeeze(shift, axis=axis) + np.log(scaled)
    top, fits = np.squeeze(top, axis=axis), np.squeeze(fits, axis=axis)
    log_mean = np.where(np.isposinf(top), np.inf, log_mean)
    big = np.where(log_mean > _LOG_MAX, np.inf, np.exp(np.minimum(log_mean, _LOG_MAX)))
    return np.where(fits, scaled, big)
