"""Fixtures for the overlay2 tests: a driver on a scratch home, and a mount guard.

The guard runs after every test, passed or failed: whatever is still mounted below the
test's scratch directory is unmounted (deepest first) and the test is failed for leaking it,
so one broken test cannot leave mounts behind for the rest of the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import mounts_below
from pydock.drivers.base import DriverOptions
from pydock.nsutil import syscalls as sc
from pydock.overlay.driver import Overlay2Driver


@pytest.fixture
def mount_guard(scratch: Path) -> Iterator[Path]:
    yield scratch
    leftover = mounts_below(scratch)
    for point in leftover:
        sc.umount(point, sc.MNT_DETACH)
    assert not leftover, f"test left mounts behind: {leftover}"


@pytest.fixture
def make_driver(mount_guard: Path) -> Iterator[Callable[..., Overlay2Driver]]:
    """Build drivers on ``<scratch>/overlay2``; their cleanup() runs before the guard."""
    made: list[Overlay2Driver] = []

    def make(home: Path | None = None, **options: str) -> Overlay2Driver:
        d = Overlay2Driver(home or mount_guard / "overlay2", DriverOptions(dict(options)))
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


@pytest.fixture
def driver(make_driver: Callable[..., Overlay2Driver]) -> Overlay2Driver:
    return make_driver()
