"""Fixtures for end-to-end tests of the ``pydock`` command on the real kernel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pdcli import Pydock
from registryfix import Proxy, RegistryProcess

DRIVERS = ["overlay2", "fuse-union", "vfs"]


@pytest.fixture(params=DRIVERS)
def pydock(request, scratch: Path) -> Iterator[Pydock]:
    p = Pydock(scratch / "root", request.param)
    p("image", "bootstrap", check=True)
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def overlay_pydock(scratch: Path) -> Iterator[Pydock]:
    p = Pydock(scratch / "root", "overlay2")
    p("image", "bootstrap", check=True)
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def pd(scratch: Path) -> Iterator[Pydock]:
    """A vfs store with busybox, for the image and registry tests."""
    p = Pydock(scratch / "root", "vfs")
    p("image", "bootstrap", check=True)
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def registry(scratch: Path) -> Iterator[RegistryProcess]:
    """A real registry (Debian's docker-registry) on 127.0.0.1, stopped afterwards."""
    reg = RegistryProcess(scratch / "registry")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def proxy(registry: RegistryProcess) -> Iterator[Proxy]:
    """A counting, fault-injecting proxy in front of ``registry``."""
    px = Proxy(registry.port)
    try:
        yield px
    finally:
        px.stop()


@pytest.fixture
def bridge_net(overlay_pydock):
    """(pydock, its network config, bridges to check) on pydock's default network, the
    bridge: afterwards the user networks a test made are removed and nothing the store
    made may be left in the kernel (a test may add its user networks' bridges)."""
    from netfix import configure, force_clean, leftovers, state

    p = overlay_pydock
    p.network = None  # pydock's default network (bridge), not the fixture's "none"
    cfg = configure(p.root)
    bridges = [cfg["bridge"]]
    try:
        yield p, cfg, bridges
    finally:
        p.cleanup()
        for n in state(p.root).get("networks", {}).values():
            if not n.get("Default"):
                p("network", "rm", n["Name"])
        left = leftovers(p.root, bridges, list(state(p.root).get("containers", {})))
        if left:
            force_clean(p.root, bridges)
        assert left == [], f"network leftovers: {left}"
