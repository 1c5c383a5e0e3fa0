"""The driver registry: built-ins by name, plugins by entry point, the automatic choice."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydock.drivers import registry
from pydock.drivers.base import DriverError, DriverOptions
from pydock.drivers.vfs import VfsDriver

PLUGIN_SRC = """
from pydock.drivers.vfs import VfsDriver


class PdtestCopyDriver(VfsDriver):
    name = "pdtest-copy"
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real installed-distribution plugin: a module plus a .dist-info with entry_points.txt."""
    (tmp_path / "pdtest_plugin.py").write_text(PLUGIN_SRC)
    info = tmp_path / "pdtest_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pdtest-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pydock.storage_drivers]\npdtest-copy = pdtest_plugin:PdtestCopyDriver\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "pdtest-copy"
    sys.modules.pop("pdtest_plugin", None)


def test_builtins_listed() -> None:
    assert "vfs" in registry.names()
    assert registry.get_class("vfs") is VfsDriver


def test_importing_registry_does_not_import_drivers() -> None:
    import subprocess

    code = (
        "import sys, pydock.drivers.registry; "
        "print([m for m in sys.modules if m.startswith(('pydock.drivers.vfs', "
        "'pydock.overlay', 'importlib.metadata'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_driver_names_the_known_ones() -> None:
    with pytest.raises(DriverError, match=r"unknown storage driver 'nope' \(known: .*vfs"):
        registry.get_class("nope")


def test_open_driver_home(scratch: Path) -> None:
    drv = registry.open_driver("vfs", scratch, DriverOptions({"size": "1G"}))
    assert isinstance(drv, VfsDriver)
    assert drv.home == scratch / "vfs" and drv.options.get("size") == "1G"


def test_entry_point_plugin(plugin: str, scratch: Path) -> None:
    assert plugin in registry.names()
    drv = registry.open_driver(plugin, scratch)
    assert type(drv).__name__ == "PdtestCopyDriver" and drv.home == scratch / plugin
    assert registry.choose(scratch, plugin) == (plugin, {})


def test_choose_explicit_wins(scratch: Path) -> None:
    assert registry.choose(scratch, "vfs") == ("vfs", {})
    with pytest.raises(DriverError, match="unknown storage driver"):
        registry.choose(scratch, "nope")


def test_choose_keeps_driver_with_existing_layers(scratch: Path) -> None:
    drv = registry.open_driver("vfs", scratch)
    drv.create("base", None)
    assert registry.choose(scratch, None) == ("vfs", {})


def test_choose_by_priority_with_reasons(scratch: Path) -> None:
    name, reasons = registry.choose(scratch, None)
    assert name in registry.PRIORITY
    # every driver ranked above the chosen one says why it was passed over
    for skipped in registry.PRIORITY[: registry.PRIORITY.index(name)]:
        assert reasons[skipped]
