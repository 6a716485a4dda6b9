"""Single-head causal self-attention and the Transformer FFN, the paper's baseline mixer.

Attention (Vaswani et al. 2017, Sec. 3.2), one head:
    q, k = u W_q, u W_k  (width d),   v = u W_v  (width expand * d)
    out  = softmax(q k^T / sqrt(d) + causal mask) v W_o
FFN(u) = W_2 silu(W_1 u) with hidden width d.

Sizes follow Chen, Lin, Wang, Xu 2025 ("Achilles' Heel of Mamba", arXiv 2509.17514), App.
E.2, which matches the Transformer to Mamba "to ensure a fair comparison": query and key of
width d_model, values with Mamba's 2x expansion (``expand``), an FFN of hidden width
d_model and SiLU as the activation, one head. ``conv_qkv`` (section "Transformer with
convolution biases asymmetric solution") first passes q, k, v through Mamba's causal
depthwise conv (kernel d_conv) and SiLU, "analogous to how Mamba applies nonlinear
convolution before the SSM module".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.studies.anchor.mamba import CausalDepthwiseConv


class CausalSelfAttention(nn.Module):
    """One-head causal attention, (batch, T, d) -> (batch, T, d); linears without bias.

    q and k have width ``d_model``, v has width ``expand * d_model`` (App. E.2).
    """

    def __init__(self, d_model: int, expand: int = 2, conv_qkv: bool = False, d_conv: int = 4):
        super().__init__()
        self.widths = [d_model, d_model, expand * d_model]
        self.qkv = nn.Linear(d_model, sum(self.widths), bias=False)
        self.conv = CausalDepthwiseConv(sum(self.widths), d_conv) if conv_qkv else None
        self.out_proj = nn.Linear(expand * d_model, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(u)
        if self.conv is not None:
            qkv = F.silu(self.conv(qkv))
        q, k, v = torch.split(qkv, self.widths, dim=-1)
        return self.out_proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class FFN(nn.Module):
    """FFN(u) = W_2 silu(W_1 u), hidden width ``hidden`` (App. E.2: d_model, SiLU)."""

    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or d_model
        self.fc = nn.Linear(d_model, hidden, bias=False)
        self.proj = nn.Linear(hidden, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.proj(F.silu(self.fc(u)))
