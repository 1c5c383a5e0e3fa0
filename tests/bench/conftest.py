"""Fixtures for the bench harness tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def bench_dirs(scratch: Path) -> tuple[Path, Path]:
    """(pydock store root, harness workdir) in the test's scratch directory."""
    return scratch / "root", scratch / "work"
