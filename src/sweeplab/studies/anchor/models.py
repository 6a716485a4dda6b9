"""The six sequence classifiers of "Achilles' Heel of Mamba" and their gamma initialisation.

Chen, Lin, Wang, Xu 2025 (NeurIPS; arXiv 2509.17514): the setup of their section
"Preliminary", the variants of the later sections and App. E. Every model is embed (+
learned positions) -> n_layers pre-norm residual blocks h <- h + mixer(norm(h)) [+ h <- h +
ffn(norm(h)) for the Transformer] -> final norm -> linear head, read at the last position:
logits (batch, vocab).

    model_type              mixer                                     positions   norm
    mamba_standard          Mamba-2, trained conv                     none        RMSNorm
    mamba_ones_conv         Mamba-2, conv kernel fixed to ones        none        RMSNorm
    mamba_pos_encoding      Mamba-2                                   learned     RMSNorm
    mamba_residual          Mamba-2, SSM reads silu(conv(xBC)) + xBC  learned     RMSNorm
    transformer             causal attention + FFN                    learned     LayerNorm
    transformer_with_conv   attention with conv+SiLU on q, k, v       learned     LayerNorm

Gamma initialisation (Chen et al. 2025, section "Mamba biases composite solution", after
Zhang et al. 2024, "Initialization is critical to whether transformers fit composite
functions by reasoning or memorizing", and the initialization rate of Luo et al. 2021): a
parameter W in R^{d1 x d2} is drawn from N(0, (d1^-gamma)^2), d1 its input width in the
paper's row-vector convention (x W). Larger gamma = smaller init (gamma > 0.5 is the
"small" regime). :func:`gamma_init_` applies it to

- every nn.Linear weight (the projections, the FFN, the head): d1 = in_features;
- the embedding tables, with d1 chosen by ``embedding_fan_in``: ``one_hot`` (default, the
  paper's reading) treats a table as the linear map of a one-hot input, so d1 is its
  number of rows: the vocabulary (111 for the composite task, 201 for the inverse task)
  for the tokens, ``seq_len`` for the positions; ``d_model`` is torch's fan_in of a
  2-D (rows, d_model) tensor, ``W.shape[1]``, which this module used before;
- the causal depthwise convolutions (Mamba's conv over x, B, C and the conv on q, k, v of
  transformer_with_conv), chosen by ``conv_init``: ``gamma`` (default) draws kernel and
  bias from N(0, (d_conv^-gamma)^2), each output channel being a linear map of a window
  of d_conv inputs plus a bias (the fan_in PyTorch itself uses for both); ``pytorch``
  keeps torch's Conv1d default, U(+-1/sqrt(d_conv)) = U(+-0.5) at d_conv 4 whatever gamma.
  The paper states no conv rule; its argument (Sec. "Nonlinear convolution introduces
  asymmetry") is about how unequal the trained kernel weights are, so both are offered.
  The all-ones kernel of mamba_ones_conv stays ones; its bias follows ``conv_init``.

Norm weights and biases, A_log, D and dt_bias keep their defaults (Mamba-2's, App. B).
"""

from __future__ import annotations

import torch
from torch import nn

from sweeplab.errors import ConfigError
from sweeplab.studies.anchor.mamba import CausalDepthwiseConv, Mamba2Mixer
from sweeplab.studies.anchor.transformer import FFN, CausalSelfAttention

EMBEDDING_FAN_INS: tuple[str, ...] = ("one_hot", "d_model")
CONV_INITS: tuple[str, ...] = ("gamma", "pytorch")

MODEL_TYPES: tuple[str, ...] = (
    "mamba_standard",
    "mamba_ones_conv",
    "mamba_pos_encoding",
    "transformer",
    "transformer_with_conv",
    "mamba_residual",
)


class MambaBlock(nn.Module):
    """h + mixer(rmsnorm(h)): Mamba-2's residual block (no FFN: "Mamba ... lacks a
    Feed-Forward Network", Chen et al. 2025, "Difference between Mamba and Transformer")."""

    def __init__(self, d_model: int, **mixer_kwargs):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=1e-5)
        self.mixer = Mamba2Mixer(d_model, **mixer_kwargs)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mixer(self.norm(h))


class TransformerBlock(nn.Module):
    """Pre-norm block: h + attn(ln(h)), then h + ffn(ln(h))."""

    def __init__(self, d_model: int, expand: int = 2, conv_qkv: bool = False, d_conv: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, expand=expand, conv_qkv=conv_qkv, d_conv=d_conv)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FFN(d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.norm1(h))
        return h + self.ffn(self.norm2(h))


class SequenceClassifier(nn.Module):
    """Token embedding (+ optional learned positions) -> blocks -> norm -> head."""

    def __init__(
        self,
        blocks: list[nn.Module],
        vocab_size: int,
        d_model: int,
        seq_len: int,
        pos_embedding: bool,
        final_norm: nn.Module,
    ):
        super().__init__()
        self.seq_len = seq_len
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(seq_len, d_model) if pos_embedding else None
        self.blocks = nn.ModuleList(blocks)
        self.norm = final_norm
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def hidden_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden states, (batch, T, d_model); position t sees tokens <= t."""
        h = self.embed(tokens)
        if self.pos_embed is not None:
            t = tokens.shape[1]
            if t > self.seq_len:
                raise ValueError(f"sequence length {t} exceeds seq_len={self.seq_len}")
            h = h + self.pos_embed.weight[:t]
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def forward(self, tokens: torch.Tensor, all_positions: bool = False) -> torch.Tensor:
        """Logits at the last position (batch, vocab), or at every one (batch, T, vocab)."""
        h = self.hidden_states(tokens)
        return self.head(h if all_positions else h[:, -1])


def gamma_init_(model: nn.Module, gamma: float, embedding_fan_in: str = "one_hot",
                conv_init: str = "gamma") -> nn.Module:
    """Redraw every weight matrix W ~ N(0, (d1 ** -gamma)^2), d1 its input width.

    nn.Linear: d1 = in_features. nn.Embedding: d1 = its rows (``one_hot``) or its columns
    (``d_model``). Causal depthwise convs: kernel (unless frozen) and bias ~ N(0,
    (d_conv ** -gamma)^2) under ``conv_init="gamma"``, left alone under ``"pytorch"``.
    In place; returns the model. The module docstring gives the source and the reasons.
    """
    if embedding_fan_in not in EMBEDDING_FAN_INS:
        raise ConfigError("embedding_fan_in", embedding_fan_in,
                          "allowed values are " + ", ".join(EMBEDDING_FAN_INS))
    if conv_init not in CONV_INITS:
        raise ConfigError("conv_init", conv_init, "allowed values are " + ", ".join(CONV_INITS))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, module.in_features ** (-gamma))
            elif isinstance(module, nn.Embedding):
                rows, cols = module.weight.shape
                fan_in = rows if embedding_fan_in == "one_hot" else cols
                module.weight.normal_(0.0, fan_in ** (-gamma))
            elif isinstance(module, CausalDepthwiseConv) and conv_init == "gamma":
                std = module.kernel_size ** (-gamma)
                if module.weight.requires_grad:  # the frozen all-ones kernel stays ones
                    module.weight.normal_(0.0, std)
                module.bias.normal_(0.0, std)
    return model


def build_model(
    model_type: str,
    vocab_size: int,
    seq_len: int,
    n_layers: int,
    d_model: int = 32,
    d_state: int = 128,
    expand: int = 2,
    d_conv: int = 4,
    gamma: float = 1.0,
    seed: int | None = None,
    embedding_fan_in: str = "one_hot",
    conv_init: str = "gamma",
) -> SequenceClassifier:
    """One of MODEL_TYPES, gamma-initialised; ``seed`` makes it reproducible without
    touching the global RNG state. Paper sizes (App. E): d_model 32 (composite task) or 128
    (inverse task), d_state 128, expand 2, d_conv 4. The Transformer uses ``expand`` for its
    value width and ``d_conv`` for transformer_with_conv; ``d_state`` is Mamba's alone.
    ``embedding_fan_in`` and ``conv_init``: see :func:`gamma_init_`.
    """
    if model_type not in MODEL_TYPES:
        raise ConfigError("model_type", model_type, "allowed values are " + ", ".join(MODEL_TYPES))
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if model_type.startswith("mamba"):
            mixer = dict(
                d_state=d_state,
                expand=expand,
                d_conv=d_conv,
                ones_conv=model_type == "mamba_ones_conv",
                conv_residual=model_type == "mamba_residual",
            )
            blocks = [MambaBlock(d_model, **mixer) for _ in range(n_layers)]
            final_norm: nn.Module = nn.RMSNorm(d_model, eps=1e-5)
            pos = model_type in ("mamba_pos_encoding", "mamba_residual")
        else:
            conv_qkv = model_type == "transformer_with_conv"
            blocks = [TransformerBlock(d_model, expand, conv_qkv, d_conv)
                      for _ in range(n_layers)]
            final_norm = nn.LayerNorm(d_model)
            pos = True
        model = SequenceClassifier(blocks, vocab_size, d_model, seq_len, pos, final_norm)
        gamma_init_(model, gamma, embedding_fan_in, conv_init)
    return model
