"""Fixtures for the nsutil tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from nsutil_helpers import make_busybox_rootfs


@pytest.fixture
def rootfs(scratch: Path) -> Path:
    return make_busybox_rootfs(scratch / "rootfs")
