"""The user folder of these tests (see ``user_folder``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from user_folder import make_user_dir


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """``tmp_path/project`` with ``mystudy.py`` and ``train.py``, on no path."""
    return make_user_dir(tmp_path)
