"""Fixtures shared by the minima-volume tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def dtype(request):
    """Build models and data in ``request.param`` (restores torch's default after)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)
