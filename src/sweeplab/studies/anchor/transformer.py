"""Single-head causal self-attention and the Transformer MLP, the paper's baseline mixer.

Attention (Vaswani et al. 2017, Sec. 3.2), one head of dimension d:
    q, k, v = u W_q, u W_k, u W_v;   out = softmax(q k^T / sqrt(d) + causal mask) v W_o
``conv_qkv`` (Chen, Lin, Wang, Xu 2025, arXiv 2509.17514, Sec. 5: "Transformer with
convolution") first passes q, k, v through Mamba's causal depthwise conv (kernel d_conv)
and SiLU, giving attention the same asymmetric token fusion that Mamba's conv has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.studies.anchor.mamba import CausalDepthwiseConv


class CausalSelfAttention(nn.Module):
    """One-head causal attention, (batch, T, d) -> (batch, T, d); linears without bias."""

    def __init__(self, d_model: int, conv_qkv: bool = False, d_conv: int = 4):
        super().__init__()
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.conv = CausalDepthwiseConv(3 * d_model, d_conv) if conv_qkv else None
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(u)
        if self.conv is not None:
            qkv = F.silu(self.conv(qkv))
        q, k, v = qkv.chunk(3, dim=-1)
        return self.out_proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class MLP(nn.Module):
    """FFN(u) = W_2 gelu(W_1 u), hidden width 4 d (Vaswani et al. 2017, Sec. 3.3)."""

    def __init__(self, d_model: int, hidden_mult: int = 4):
        super().__init__()
        self.fc = nn.Linear(d_model, hidden_mult * d_model, bias=False)
        self.proj = nn.Linear(hidden_mult * d_model, d_model, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(u)))
