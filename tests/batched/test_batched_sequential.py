"""The hand-batched forward pass is each model's own forward pass."""

from __future__ import annotations

import pytest
import torch
from batched_reference import cnn, mlp
from torch import nn

from sweeplab.batched import StackedModel
from sweeplab.batched.sequential import batched_conv, hand_forward_fn, hand_plan


@pytest.mark.parametrize("make,shape", [(mlp, (20,)), (cnn, (1, 8, 8))])
def test_outputs_are_each_models_outputs(make, shape):
    models = [make().double() for _ in range(3)]
    stack = StackedModel(models)
    x = torch.randn(3, 5, *shape, dtype=torch.float64)
    out = hand_forward_fn(stack.base)(stack.tensors(), x)
    for b, model in enumerate(models):
        assert torch.allclose(out[b], model(x[b]), rtol=0, atol=1e-13)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0)])
def test_grouped_and_per_model_convolutions_agree(stride, padding):
    """The CUDA path (one grouped convolution) checked on CPU against the CPU path."""
    convs = [nn.Conv2d(2, 4, 3, stride=stride, padding=padding).double() for _ in range(3)]
    weight = torch.stack([c.weight.detach() for c in convs])
    bias = torch.stack([c.bias.detach() for c in convs])
    x = torch.randn(3, 5, 2, 9, 9, dtype=torch.float64)
    grouped = batched_conv(x, convs[0], weight, bias, grouped=True)
    each = batched_conv(x, convs[0], weight, bias, grouped=False)
    assert torch.allclose(grouped, each, rtol=0, atol=1e-13)
    assert torch.allclose(each[1], convs[1](x[1]), rtol=0, atol=1e-13)


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)),
    nn.Sequential(nn.Flatten(0), nn.Linear(3, 3)),
    nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)),
    nn.Linear(3, 3),
])
def test_what_it_does_not_know_goes_to_vmap(model):
    assert hand_plan(model) is None
