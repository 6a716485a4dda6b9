"""A single-head Mamba-2 (SSD) mixer in plain PyTorch, with the paper's two variants.

Mamba-2 (Dao & Gu 2024, "Transformers are SSMs", Sec. 3 and 7; reference code
``mamba_ssm/modules/mamba2_simple.py``), one head, one group:

    [z, xBC, dt] = in_proj(u)                      z, x: (T, P), B, C: (T, N), dt: (T,)
    x, B, C      = silu(causal_depthwise_conv(xBC))  kernel d_conv over x, B and C
    dt_t         = softplus(dt_t + dt_bias),  a_t = exp(dt_t A),  A = -exp(A_log) < 0
    y_t          = sum_{s<=t} (C_t . B_s) (prod_{r=s+1..t} a_r) dt_s x_s  +  D * x_t
    out          = out_proj(rmsnorm(y * silu(z)))

with P = expand * d_model (single head: head dim = d_inner), N = d_state, one scalar A per
head and D a vector of P ones at initialisation. This is the block as Chen, Lin, Wang, Xu
2025 ("Achilles' Heel of Mamba", arXiv 2509.17514) write it out in App. B (and eqs. (1)-(9)
of their section "Introduction of Mamba"). The SSM is evaluated in its quadratic
("attention-like") form, Dao & Gu 2024 Sec. 3.3 / 4.1: a (T, T) lower-triangular decay
matrix L[t, s] = exp(cumsum(log a)_t - cumsum(log a)_s), no loop over time; at the lengths
here (8 tokens, or 5 * 4 + 3 L + 3 for the inverse task) the (T, T) matrices are small.

Variants (Chen et al. 2025, sections "Nonlinear convolution introduces asymmetry" and
"Mamba's challenges in the inverse sequence matching task", App. E.1.2 and E.2):
``ones_conv`` fixes the conv kernel to ones (not trained), removing the asymmetric token
fusion; ``conv_residual`` is "a residual connection from the input of convolution to SSM":
the SSM reads ``x, B, C = silu(conv(xBC)) + xBC``, so it sees the raw (unfused) token
projections besides the convolved ones ("allowing the SSM to directly handle data without
relying on convolution", Introduction).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def segsum_decay(log_a: torch.Tensor) -> torch.Tensor:
    """L[..., t, s] = prod_{r=s+1..t} a_r for s <= t, else 0; from log_a of shape (..., T).

    Computed as exp(cum_t - cum_s) with cum = cumsum(log a) (Dao & Gu 2024, Sec. 6, the
    "segsum"); the upper triangle is set to -inf before exp so it is exactly zero.
    """
    t = log_a.shape[-1]
    cum = torch.cumsum(log_a, dim=-1)
    diff = cum[..., :, None] - cum[..., None, :]
    causal = torch.ones(t, t, dtype=torch.bool, device=log_a.device).tril()
    return torch.exp(diff.masked_fill(~causal, float("-inf")))


def ssd_quadratic(
    x: torch.Tensor, log_a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    """Single-head SSD, quadratic form: y_t = sum_{s<=t} (C_t . B_s) L[t, s] x_s.

    x: (batch, T, P) (already scaled by dt, as Mamba-2 does), log_a: (batch, T) = dt * A,
    b, c: (batch, T, N). Returns (batch, T, P). Equals the recurrence h_t = a_t h_{t-1} +
    B_t x_t^T, y_t = h_t^T C_t with h_0 = 0 (Dao & Gu 2024, Sec. 3.3, eq. (16)).
    """
    scores = torch.bmm(c, b.transpose(1, 2)) * segsum_decay(log_a)  # (batch, T, T)
    return torch.bmm(scores, x)


class CausalDepthwiseConv(nn.Module):
    """out[:, t, ch] = bias[ch] + sum_k w[ch, k] x[:, t - (K-1) + k, ch], zero left padding.

    Same math and default init as ``nn.Conv1d(ch, ch, K, groups=ch, padding=K-1)`` cut to
    the first T outputs (uniform(+-1/sqrt(K)) for weight and bias), but on the (batch, T,
    ch) layout: K shifted multiply-adds, no transposes. ``ones_kernel`` fixes w = 1 and
    freezes it (the bias stays trainable).
    """

    def __init__(self, channels: int, kernel_size: int, ones_kernel: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        bound = 1.0 / math.sqrt(kernel_size)
        self.weight = nn.Parameter(torch.empty(channels, kernel_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))
        if ones_kernel:
            with torch.no_grad():
                self.weight.fill_(1.0)
            self.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, t = self.kernel_size, x.shape[1]
        xp = F.pad(x, (0, 0, k - 1, 0))
        out = self.bias + xp[:, k - 1 : k - 1 + t] * self.weight[:, k - 1]
        for j in range(k - 1):
            out = out + xp[:, j : j + t] * self.weight[:, j]
        return out


class GatedRMSNorm(nn.Module):
    """rmsnorm(y * silu(z)) * weight (Mamba-2's RMSNormGated, norm_before_gate=False)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g = y * F.silu(z)
        return g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mamba2Mixer(nn.Module):
    """Single-head Mamba-2 mixer (module docstring has the math); (batch, T, d) -> same.

    Defaults as in mamba_ssm's Mamba2Simple and Chen et al. 2025, App. B: A_log = log U(1,
    16); dt_bias = softplus^-1 of dt ~ log-uniform [1e-3, 1e-1]; D = 1 per channel (App. B:
    "D = 1_{D_in}"); conv with bias; in_proj and out_proj without bias.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 128,
        expand: int = 2,
        d_conv: int = 4,
        ones_conv: bool = False,
        conv_residual: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.conv_residual = conv_residual
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * d_state + 1, bias=False)
        self.conv = CausalDepthwiseConv(self.d_inner + 2 * d_state, d_conv, ones_conv)
        dt = torch.exp(torch.rand(1) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.A_log = nn.Parameter(torch.log(torch.empty(1).uniform_(1.0, 16.0)))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.norm = GatedRMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        p, n = self.d_inner, self.d_state
        z, xbc, dt = torch.split(self.in_proj(u), [p, p + 2 * n, 1], dim=-1)
        fused = F.silu(self.conv(xbc))
        if self.conv_residual:  # the SSM also sees the unconvolved projections
            fused = fused + xbc
        x, b, c = torch.split(fused, [p, n, n], dim=-1)
        dt = F.softplus(dt.squeeze(-1) + self.dt_bias)  # (batch, T)
        log_a = dt * -torch.exp(self.A_log)
        y = ssd_quadratic(x * dt.unsqueeze(-1), log_a, b, c) + self.D * x
        return self.out_proj(self.norm(y, z))
