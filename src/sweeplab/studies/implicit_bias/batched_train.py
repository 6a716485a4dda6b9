"""Mirror descent on B deep linear networks at once: one stacked computation per step.

Run b has layers W_k[b], data (X[b], y[b]), step size lr_b and a potential of one family
with its own parameter (p_b or beta_b). A step is, for every run at once, the update of
:class:`~sweeplab.studies.implicit_bias.optim.MirrorDescent` with the exact rank-one
gradients of :meth:`~sweeplab.studies.implicit_bias.model.DeepLinearNetwork.loss_and_grads`:

    w_b^T = W_L[b] ... W_1[b],   m_bi = y_bi <w_b, x_bi>,
    g_b = (1/n) sum_i l'(m_bi) y_bi x_bi,
    dL/dW_k[b] = b_k a_k^T,  a_k = W_{k-1}[b] ... W_1[b] g_b,  b_k = (W_L[b] ... W_{k+1}[b])^T,
    z_k[b] <- z_k[b] - lr_b dL/dW_k[b],   W_k[b] = (grad psi_b)^{-1}(z_k[b])

(Arora, Cohen & Hazan 2018, Sec. 3, for the factorization; Beck & Teboulle 2003 for
mirror descent with the dual z = grad psi(W) as state). Runs never mix: every product is
batched over runs, so each run computes its own numbers, up to the summation order of
the products (about 1e-16 relative in float64).

Layout: the layers of run b are consecutive blocks of one row ``flat[b]`` (the weights,
the duals and the gradients each live in one (B, P) tensor), so the mirror step is a few
operations on all layers of all runs together. Runs that share a data set are adjacent;
when every data set has the same number r of runs, the data is held once per data set
(K = B / r copies) and the margins of its r runs come from one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sweeplab.studies.implicit_bias.potentials import (
    HyperbolicEntropy,
    LpPotential,
    Potential,
    Quadratic,
)

BATCHED_POTENTIALS = (Quadratic, LpPotential, HyperbolicEntropy)
"""Potential families whose mirror maps :class:`BatchedMirrorMap` evaluates."""


class BatchedMirrorMap:
    """grad psi_b and its inverse, entry-wise on rows b of a (B, P) tensor.

    quadratic: the identity; lp: sign(w)|w|^(p_b - 1), inverse sign(z)|z|^(1/(p_b - 1));
    hypentropy: arcsinh(w / beta_b), inverse beta_b sinh(z) (see ``potentials``). The
    exponents are computed per run in float64 as the single run computes them.
    """

    def __init__(self, potentials: Sequence[Potential], dtype: torch.dtype):
        kinds = {type(p) for p in potentials}
        if len(kinds) != 1 or not issubclass(next(iter(kinds)), BATCHED_POTENTIALS):
            raise ValueError(f"one batched potential family needed, got {sorted(map(str, kinds))}")
        self.kind = next(iter(kinds))
        params: dict[str, list[float]] = {}
        if self.kind is LpPotential:
            params = {"fwd": [p.p - 1.0 for p in potentials],
                      "inv": [1.0 / (p.p - 1.0) for p in potentials]}
        elif self.kind is HyperbolicEntropy:
            params = {"beta": [p.beta for p in potentials]}
        self._tensors = {k: torch.tensor(v, dtype=dtype).view(-1, 1) for k, v in params.items()}

    def select(self, rows: Sequence[int]) -> None:
        """Keep the runs ``rows`` (in that order)."""
        index = torch.as_tensor(rows, dtype=torch.long)
        self._tensors = {k: v.index_select(0, index) for k, v in self._tensors.items()}

    def mirror(self, w: torch.Tensor) -> torch.Tensor:
        """z = grad psi_b(w), row by row."""
        if self.kind is LpPotential:
            return torch.sign(w) * torch.abs(w).pow(self._tensors["fwd"])
        if self.kind is HyperbolicEntropy:
            return torch.asinh(w / self._tensors["beta"])
        return w.clone()

    def inverse_mirror(self, z: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """w = (grad psi_b)^{-1}(z), row by row, written into ``out``."""
        if self.kind is LpPotential:
            return torch.mul(torch.sign(z), torch.abs(z).pow_(self._tensors["inv"]), out=out)
        if self.kind is HyperbolicEntropy:
            return torch.mul(self._tensors["beta"], torch.sinh(z), out=out)
        return out.copy_(z)


def data_layout(data_ids: Sequence[int]) -> tuple[int, list[int]]:
    """``(r, rows)``: runs per data set and which data set each block of r runs uses.

    When the runs of each data set are adjacent and every data set has the same number
    r of runs, one copy of each data set serves its r runs: ``rows`` lists the data
    sets in order. Otherwise ``r = 1`` and ``rows`` is ``data_ids`` (a copy per run).
    """
    ids = list(data_ids)
    distinct = list(dict.fromkeys(ids))
    counts = [ids.count(k) for k in distinct]
    blocks = [k for k, c in zip(distinct, counts) for _ in range(c)]
    if blocks == ids and len(set(counts)) == 1:
        return counts[0], distinct
    return 1, ids


class BatchedMirrorDescent:
    """B deep linear networks trained together by mirror descent, full batch.

    ``weights`` are the networks' layers, each a (B, out, in) view of one (B, P) tensor;
    ``Zneg`` (K, n, d) holds the rows -y_i x_i of the data, run b on data set ``b // r``
    (``r = B / K``). ``lr`` holds the step sizes, ``mirror`` the potentials.
    """

    def __init__(
        self,
        weights: Sequence[Sequence[torch.Tensor]],
        data_ids: Sequence[int],
        X: Sequence[np.ndarray],
        y: Sequence[np.ndarray],
        lrs: Sequence[float],
        potentials: Sequence[Potential],
        loss: str,
    ):
        """Stack ``weights[b]`` (run b's layers), ``lrs[b]`` and ``potentials[b]``.

        Run b trains on ``X[data_ids[b]], y[data_ids[b]]``; runs are reordered nowhere,
        so runs with the same data set must be adjacent to share its copy.
        """
        if loss not in ("logistic", "exponential"):
            raise KeyError(f"unknown loss {loss!r}; known: logistic, exponential")
        self.loss = loss
        self.dtype = weights[0][0].dtype
        self.shapes = [tuple(w.shape) for w in weights[0]]
        self.sizes = [o * i for o, i in self.shapes]
        self.flat = torch.stack([torch.cat([w.reshape(-1) for w in run]) for run in weights])
        # rows -y_i x_i: with labels +-1 every product below is the single run's, bit
        # for bit up to summation order, with the sign flips folded into the data
        self._Zneg_all = torch.stack([
            torch.as_tensor(-np.asarray(v, np.float64)[:, None] * np.asarray(x, np.float64),
                            dtype=self.dtype) for x, v in zip(X, y)
        ])
        self.data_ids = list(data_ids)
        self.lr = torch.tensor(lrs, dtype=self.dtype).view(-1, 1)
        self.mirror = BatchedMirrorMap(potentials, self.dtype)
        self.dual = self.mirror.mirror(self.flat)
        self.grad = torch.empty_like(self.flat)
        self.steps = 0
        self._layout()

    @property
    def size(self) -> int:
        """Number of runs B."""
        return self.flat.shape[0]

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        views, start = [], 0
        for (o, i), size in zip(self.shapes, self.sizes):
            views.append(flat[:, start:start + size].view(-1, o, i))
            start += size
        return views

    def _layout(self) -> None:
        """Views of the layers and one copy of the data per data set, or per run."""
        self.weights = self._views(self.flat)
        self.grads = self._views(self.grad)
        self.r, order = data_layout(self.data_ids)
        if order == list(range(len(self._Zneg_all))):
            self.Zneg = self._Zneg_all  # (K, n, d)
        else:
            self.Zneg = self._Zneg_all.index_select(0, torch.as_tensor(order, dtype=torch.long))
        self.ZnegT = self.Zneg.transpose(1, 2)
        n = self.Zneg.shape[1]
        self._n = float(n)
        self._overflow = float(torch.finfo(self.dtype).max) / (2.0 * n)

    def select(self, rows: Sequence[int]) -> None:
        """Keep the runs ``rows`` (in that order), e.g. to drop runs that failed."""
        index = torch.as_tensor(rows, dtype=torch.long)
        self.flat = self.flat.index_select(0, index)
        self.dual = self.dual.index_select(0, index)
        self.grad = torch.empty_like(self.flat)
        self.lr = self.lr.index_select(0, index)
        self.mirror.select(rows)
        self.data_ids = [self.data_ids[i] for i in rows]
        self._layout()

    def end_to_end(self) -> torch.Tensor:
        """w_b = (W_L[b] ... W_1[b])^T for every run, shape (B, d)."""
        prod = self.weights[-1]
        for w in reversed(self.weights[:-1]):
            prod = torch.bmm(prod, w)
        return prod.squeeze(1)

    @torch.no_grad()
    def step(self) -> torch.Tensor:
        """One mirror step of every run; returns which runs had a finite loss before it.

        The loss of run b is finite exactly when mean_i l(m_bi) is, which the single run
        checks (:class:`~sweeplab.studies.implicit_bias.train.MirrorDescentTrainer`):
        for the logistic loss, softplus(-m) <= |m| + 1, so finite margins with
        min_i m_i > -max_float / (2n) give a finite mean; other runs are checked
        exactly. Runs with a non-finite loss are stepped too: the caller drops them.
        """
        K, r = self.Zneg.shape[0], self.r
        w = self.end_to_end()
        neg = torch.bmm(w.view(K, r, -1), self.ZnegT)  # -m_bi = -y_bi <w_b, x_bi>, (K, r, n)
        if self.loss == "logistic":
            highest = neg.amax(dim=2).view(-1)
            finite = highest < self._overflow  # False for NaN too
            if not bool(finite.all()):
                doubt = (~finite).nonzero().view(-1)
                terms = F.softplus(neg.view(self.size, -1).index_select(0, doubt))
                finite[doubt] = torch.isfinite(terms.mean(dim=1))
            coef = neg.sigmoid_()  # -l'(m) = sigmoid(-m)
        else:
            coef = neg.exp_()  # -l'(m) = exp(-m), the loss terms themselves
            finite = torch.isfinite(coef.view(self.size, -1).mean(dim=1))
        # g = (1/n) sum_i l'(m_i) y_i x_i = (1/n) sum_i sigmoid(-m_i) (-y_i x_i)
        g = torch.bmm(coef, self.Zneg).view(self.size, -1).div_(self._n)  # (B, d)
        self._rank_one_grads(g)
        self.dual.addcmul_(self.grad, self.lr, value=-1.0)
        self.mirror.inverse_mirror(self.dual, out=self.flat)
        self.steps += 1
        return finite

    def _rank_one_grads(self, g: torch.Tensor) -> None:
        """grads[k] = b_k a_k^T for every layer (see the module docstring)."""
        a = [g]
        for w in self.weights[:-1]:
            a.append(torch.bmm(w, a[-1].unsqueeze(2)).squeeze(2))
        b = [None] * len(self.weights)
        if len(self.weights) > 1:
            b[-2] = self.weights[-1].squeeze(1)
        for k in range(len(self.weights) - 3, -1, -1):
            b[k] = torch.bmm(b[k + 1].unsqueeze(1), self.weights[k + 1]).squeeze(1)
        self.grads[-1].copy_(a[-1].unsqueeze(1))
        for k in range(len(self.weights) - 1):
            torch.mul(b[k].unsqueeze(2), a[k].unsqueeze(1), out=self.grads[k])

    def layer_weights(self, row: int) -> list[torch.Tensor]:
        """Copies of run ``row``'s layers, each (out, in) in the training dtype."""
        return [w[row].clone() for w in self.weights]

    def layer_duals(self, row: int) -> list[torch.Tensor]:
        """Copies of run ``row``'s dual variables, each (out, in)."""
        return [z[row].clone() for z in self._views(self.dual)]

    def weights_numpy(self) -> list[np.ndarray]:
        """Every run's layers as float64 arrays, each (B, out, in) (for metrics)."""
        return [w.to(torch.float64).numpy().copy() for w in self.weights]
