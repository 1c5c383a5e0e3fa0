"""Run the conformance suite against every registered storage driver.

A driver whose probe says :class:`NotSupported` on this host is skipped with its reason, so
the report shows why (for example no overlayfs in a nested container).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance import *  # noqa: F403 - the suite's test functions
from pydock.drivers import registry
from pydock.drivers.base import Driver, NotSupported

# The suite also runs in the QEMU guests (tests/guests), on each driver their kernels serve.
pytestmark = pytest.mark.guest


@pytest.fixture(params=registry.names())
def driver(request: pytest.FixtureRequest, scratch: Path) -> Iterator[Driver]:
    name = request.param
    cls = registry.get_class(name)
    try:
        cls.probe(scratch / name)
    except NotSupported as e:
        pytest.skip(f"{name} not supported here: {e}")
    drv = registry.open_driver(name, scratch)
    try:
        yield drv
    finally:
        # Whatever a failing test left mounted is put back, so the leak check stays clean.
        for id in drv.list_layers():
            while drv.mounted(id):
                drv.put(id)
        drv.cleanup()
