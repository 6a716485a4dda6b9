"""Models of the "Achilles' Heel of Mamba" study: shapes, causality, the SSD quadratic form
against its recurrence, the residual around the convolution, the Transformer against naive
attention, gamma initialisation of every weight matrix (the embeddings and the conv under
each option), the frozen ones-kernel, and that a tiny configuration learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.errors import ConfigError
from sweeplab.studies.anchor.mamba import (
    CausalDepthwiseConv,
    Mamba2Mixer,
    segsum_decay,
    ssd_quadratic,
)
from sweeplab.studies.anchor.models import MODEL_TYPES, build_model, gamma_init_
from sweeplab.studies.anchor.transformer import CausalSelfAttention

VOCAB, SEQ = 11, 8
TINY = dict(d_model=16, d_state=8, expand=2, d_conv=4)


def tiny(model_type: str, gamma: float = 0.5, seed: int = 0, n_layers: int = 2):
    return build_model(model_type, VOCAB, SEQ, n_layers, gamma=gamma, seed=seed, **TINY)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_output_shapes(model_type):
    model = tiny(model_type)
    tokens = torch.randint(0, VOCAB, (5, SEQ))
    assert model(tokens).shape == (5, VOCAB)
    per_pos = model(tokens, all_positions=True)
    assert per_pos.shape == (5, SEQ, VOCAB)
    torch.testing.assert_close(per_pos[:, -1], model(tokens))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_causal(model_type):
    """Output at t is blind to tokens after t, and sees every token at or before t."""
    model = tiny(model_type).double()
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (16, SEQ), generator=gen)
    base = model(tokens, all_positions=True)
    for s in range(SEQ):
        changed = tokens.clone()
        shift = 1 + torch.randint(0, VOCAB - 1, (16,), generator=gen)  # a different token
        changed[:, s] = (changed[:, s] + shift) % VOCAB
        out = model(changed, all_positions=True)
        if s > 0:
            assert (out[:, :s] - base[:, :s]).abs().max().item() <= 1e-6
        # every position t >= s reacts to the change at s
        react = (out[:, s:] - base[:, s:]).abs().amax(dim=(0, 2))
        assert (react > 1e-6).all(), f"positions >= {s} ignore token {s}: {react}"


def naive_ssd(x, log_a, b, c, d):
    """h_t = a_t h_{t-1} + B_t x_t^T, y_t = h_t^T C_t + D x_t, a Python loop over time."""
    batch, t_len, p = x.shape
    h = torch.zeros(batch, b.shape[-1], p, dtype=x.dtype)
    ys = []
    for t in range(t_len):
        h = log_a[:, t, None, None].exp() * h + b[:, t, :, None] * x[:, t, None, :]
        ys.append(torch.einsum("bnp,bn->bp", h, c[:, t]) + d * x[:, t])
    return torch.stack(ys, dim=1)


def test_ssd_quadratic_equals_recurrence():
    gen = torch.Generator().manual_seed(0)
    batch, t_len, p, n = 3, 20, 6, 5
    kw = dict(generator=gen, dtype=torch.float64)
    x, b, c = (torch.randn(batch, t_len, k, **kw) for k in (p, n, n))
    log_a = -torch.rand(batch, t_len, **kw) * 2.0  # a in (e^-2, 1]
    d = 0.7
    y = ssd_quadratic(x, log_a, b, c) + d * x
    torch.testing.assert_close(y, naive_ssd(x, log_a, b, c, d), rtol=0, atol=1e-6)


def test_segsum_decay_is_lower_triangular_product():
    log_a = torch.log(torch.tensor([[0.5, 0.25, 0.8]], dtype=torch.float64))
    expected = torch.tensor(
        [[1.0, 0.0, 0.0], [0.25, 1.0, 0.0], [0.25 * 0.8, 0.8, 1.0]], dtype=torch.float64
    )
    torch.testing.assert_close(segsum_decay(log_a)[0], expected)


@pytest.mark.parametrize("conv_residual", [False, True])
def test_mixer_matches_recurrence_end_to_end(conv_residual):
    """The whole mixer with the SSM replaced by the recurrence gives the same output; with
    ``conv_residual`` the SSM reads silu(conv(xBC)) + xBC (Chen et al. 2025, Fig. 9c)."""
    torch.manual_seed(0)
    mixer = Mamba2Mixer(8, d_state=4, expand=2, d_conv=4, conv_residual=conv_residual).double()
    with torch.no_grad():
        mixer.D.uniform_(0.5, 1.5)  # per channel (App. B), distinct so a scalar D would fail
    u = torch.randn(2, 10, 8, dtype=torch.float64)
    p, n = mixer.d_inner, mixer.d_state
    z, xbc, dt = torch.split(mixer.in_proj(u), [p, p + 2 * n, 1], dim=-1)
    ssm_in = F.silu(mixer.conv(xbc)) + (xbc if conv_residual else 0.0)
    x, b, c = torch.split(ssm_in, [p, n, n], dim=-1)
    dt = F.softplus(dt.squeeze(-1) + mixer.dt_bias)
    log_a = dt * -mixer.A_log.exp()
    y = naive_ssd(x * dt[..., None], log_a, b, c, 0.0) + mixer.D * x
    torch.testing.assert_close(mixer(u), mixer.out_proj(mixer.norm(y, z)), rtol=0, atol=1e-10)


def test_residual_lets_the_ssm_read_unconvolved_tokens():
    """With the convolution silenced (kernel and bias 0, so silu(conv) = 0) a standard
    mixer's SSM gets nothing and outputs exactly 0; the residual one still mixes tokens
    through its SSM: its output at t depends on the token at s < t."""
    torch.manual_seed(0)
    u = torch.randn(3, 6, 8, dtype=torch.float64)
    for residual in (False, True):
        mixer = Mamba2Mixer(8, d_state=4, conv_residual=residual).double()
        with torch.no_grad():
            mixer.conv.weight.zero_()
            mixer.conv.bias.zero_()
        out = mixer(u)
        if not residual:
            assert out.abs().max().item() == 0.0
            continue
        changed = u.clone()
        changed[:, 0] += 1.0  # only the first token changes
        moved = (mixer(changed) - out)[:, 1:].abs().amax().item()
        assert moved > 1e-6, "the SSM carries token 0 to later positions"


def test_causal_conv_matches_torch_conv1d():
    torch.manual_seed(0)
    mixer = Mamba2Mixer(8, d_state=4)
    conv = mixer.conv
    ch, k = conv.weight.shape
    ref = nn.Conv1d(ch, ch, k, groups=ch, padding=k - 1)
    with torch.no_grad():
        ref.weight.copy_(conv.weight[:, None, :])
        ref.bias.copy_(conv.bias)
    x = torch.randn(3, 7, ch)
    expected = ref(x.transpose(1, 2))[..., :7].transpose(1, 2)
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-6)


def assert_std(w: torch.Tensor, target: float, name: str = "") -> None:
    """Sample std within 5 standard errors of ``target``, mean ~ 0 (normal draws)."""
    rel_se = (2.0 / (w.numel() - 1)) ** 0.5  # standard error of a sample std, relative
    assert abs(w.std().item() / target - 1) < 5 * rel_se, (name, w.std().item(), target)
    assert abs(w.mean().item()) < 5 * target / w.numel() ** 0.5, name


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_gamma_init_std(gamma):
    """nn.Linear: d1 = in_features; an embedding table: d1 = its rows (the one-hot input
    width, the paper's reading) or its columns (d_model, torch's fan_in); norms and the
    Linear's bias keep their defaults."""
    big = nn.Sequential(nn.Linear(256, 512), nn.LayerNorm(512), nn.Embedding(300, 200))
    lin, norm, emb = big
    gamma_init_(big, gamma)
    assert lin.weight.std().item() == pytest.approx(256 ** (-gamma), rel=0.03)
    assert lin.weight.mean().abs().item() < 0.01 * 256 ** (-gamma)
    assert emb.weight.std().item() == pytest.approx(300 ** (-gamma), rel=0.03)  # rows
    gamma_init_(big, gamma, embedding_fan_in="d_model")
    assert emb.weight.std().item() == pytest.approx(200 ** (-gamma), rel=0.03)  # columns
    bound = 256**-0.5  # nn.Linear's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert lin.bias.abs().max().item() <= bound
    assert torch.equal(norm.weight, torch.ones(512)) and torch.equal(norm.bias, torch.zeros(512))


def test_unknown_init_option_names_allowed():
    with pytest.raises(ConfigError, match="embedding_fan_in=rows: allowed values are one_hot"):
        gamma_init_(nn.Linear(2, 2), 1.0, embedding_fan_in="rows")
    with pytest.raises(ConfigError, match="conv_init=xavier: allowed values are gamma, pyt"):
        gamma_init_(nn.Linear(2, 2), 1.0, conv_init="xavier")


EMBEDDING_ROWS = {"embed": 50, "pos_embed": 8}  # vocabulary, positions


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("gamma", [0.5, 1.0])
@pytest.mark.parametrize("embedding_fan_in", ["one_hot", "d_model"])
def test_every_weight_matrix_has_the_gamma_variance(model_type, gamma, embedding_fan_in):
    """Each nn.Linear weight of every model ~ N(0, (in_features^-gamma)^2); each embedding
    table ~ N(0, (d1^-gamma)^2) with d1 its rows (vocabulary 50, or 8 positions) under
    ``one_hot`` and d_model (64) under ``d_model``."""
    model = build_model(model_type, 50, 8, 2, d_model=64, d_state=32, gamma=gamma, seed=3,
                        embedding_fan_in=embedding_fan_in)
    matrices = [(name, m) for name, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.Embedding))]
    n_expected = 2 + (model_type != "mamba_standard" and model_type != "mamba_ones_conv")
    n_expected += 2 * (2 if model_type.startswith("mamba") else 4)  # per block
    assert len(matrices) == n_expected, [name for name, _ in matrices]
    for name, m in matrices:
        if isinstance(m, nn.Linear):
            d1 = m.in_features
        else:
            d1 = EMBEDDING_ROWS[name] if embedding_fan_in == "one_hot" else 64
        assert_std(m.weight, d1 ** (-gamma), name)


def convs(model: nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, CausalDepthwiseConv)]


@pytest.mark.parametrize("model_type", ["mamba_standard", "mamba_ones_conv",
                                        "transformer_with_conv"])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_conv_init_options(model_type, gamma):
    """``conv_init=gamma``: kernel and bias ~ N(0, (d_conv^-gamma)^2) (d_conv 4: std 0.5 at
    gamma 0.5, 0.0625 at gamma 2); ``pytorch``: U(+-1/sqrt(d_conv)) = U(+-0.5) whatever
    gamma, variance 0.5^2 / 3. The all-ones kernel stays ones under both."""
    for conv_init in ("gamma", "pytorch"):
        model = build_model(model_type, 50, 8, 2, d_model=64, d_state=32, gamma=gamma,
                            seed=3, conv_init=conv_init)
        layers = convs(model)
        assert len(layers) == 2
        for conv in layers:
            kernel = conv.weight
            if model_type == "mamba_ones_conv":
                assert torch.equal(kernel, torch.ones_like(kernel))
                kernel = None
            for w in (kernel, conv.bias):
                if w is None:
                    continue
                if conv_init == "gamma":
                    assert_std(w, 4 ** (-gamma))
                else:
                    assert w.abs().max().item() <= 0.5
                    assert_std(w, 0.5 / 3**0.5)


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_build_model_applies_gamma_only_to_weights(gamma):
    model = build_model("mamba_standard", 50, 8, 1, d_model=64, d_state=32, gamma=gamma, seed=3)
    mixer = model.blocks[0].mixer
    assert mixer.in_proj.weight.std().item() == pytest.approx(64 ** (-gamma), rel=0.03)
    assert mixer.out_proj.weight.std().item() == pytest.approx(128 ** (-gamma), rel=0.05)
    assert model.head.weight.std().item() == pytest.approx(64 ** (-gamma), rel=0.05)
    # untouched defaults
    assert torch.equal(mixer.D, torch.ones(128))  # one per channel of d_inner (App. B)
    assert 1.0 <= mixer.A_log.exp().item() <= 16.0
    assert 1e-3 <= F.softplus(mixer.dt_bias).item() <= 1e-1 + 1e-6
    assert torch.equal(mixer.norm.weight, torch.ones(128))
    assert torch.equal(model.blocks[0].norm.weight, torch.ones(64))


def test_seed_reproducible_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b = tiny("transformer", seed=7), tiny("transformer", seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = tiny("transformer", seed=8)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_ones_conv_kernel_is_frozen_ones():
    model = tiny("mamba_ones_conv")
    tokens = torch.randint(0, VOCAB, (4, SEQ))
    F.cross_entropy(model(tokens), torch.randint(0, VOCAB, (4,))).backward()
    for block in model.blocks:
        w = block.mixer.conv.weight
        assert torch.equal(w, torch.ones_like(w))
        assert not w.requires_grad and w.grad is None
        assert block.mixer.conv.bias.grad is not None
    standard = tiny("mamba_standard")
    assert all(b.mixer.conv.weight.requires_grad for b in standard.blocks)


def test_variants_differ_where_they_should():
    std, pos, res = (tiny(m) for m in ("mamba_standard", "mamba_pos_encoding", "mamba_residual"))
    assert std.pos_embed is None and pos.pos_embed is not None and res.pos_embed is not None
    assert res.blocks[0].mixer.conv_residual and not pos.blocks[0].mixer.conv_residual
    assert tiny("transformer").blocks[0].attn.conv is None
    assert tiny("transformer_with_conv").blocks[0].attn.conv is not None


def test_attention_equals_naive_softmax_with_wide_values():
    """One head; q, k of width d, v of width expand * d (App. E.2); causal softmax."""
    torch.manual_seed(0)
    attn = CausalSelfAttention(8, expand=2).double()
    assert attn.qkv.weight.shape == (8 + 8 + 16, 8) and attn.out_proj.weight.shape == (8, 16)
    u = torch.randn(2, 5, 8, dtype=torch.float64)
    q, k, v = torch.split(attn.qkv(u), [8, 8, 16], dim=-1)
    scores = q @ k.transpose(1, 2) / 8**0.5
    scores = scores.masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), float("-inf"))
    expected = attn.out_proj(torch.softmax(scores, dim=-1) @ v)
    torch.testing.assert_close(attn(u), expected, rtol=0, atol=1e-12)


def test_transformer_sizes_follow_the_paper():
    """App. E.2: FFN of hidden width d_model; the conv variant convolves q, k and v."""
    model = tiny("transformer_with_conv")
    block = model.blocks[0]
    assert block.ffn.fc.weight.shape == (16, 16) and block.ffn.proj.weight.shape == (16, 16)
    assert block.attn.conv.weight.shape == (16 + 16 + 32, 4)


def test_unknown_model_type_names_allowed():
    with pytest.raises(ConfigError, match="model_type=mamba3: allowed values are mamba_standard"
                                          ".*transformer_with_conv, mamba_residual"):
        build_model("mamba3", VOCAB, SEQ, 1)


def test_too_long_sequence_rejected():
    with pytest.raises(ValueError, match="seq_len"):
        tiny("transformer")(torch.zeros(2, SEQ + 1, dtype=torch.long))


@pytest.mark.parametrize("model_type", ["mamba_standard", "transformer"])
def test_overfits_tiny_random_labels(model_type, one_thread):
    """64 random sequences with random labels are memorised to 100% train accuracy."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (64, SEQ), generator=gen)
    labels = torch.randint(0, VOCAB, (64,), generator=gen)
    model = build_model(model_type, VOCAB, SEQ, 2, d_model=16, d_state=16, gamma=0.5, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(model(tokens), labels).backward()
        opt.step()
    with torch.no_grad():
        acc = (model(tokens).argmax(-1) == labels).float().mean().item()
    assert acc == 1.0
