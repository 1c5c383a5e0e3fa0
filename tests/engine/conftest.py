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
