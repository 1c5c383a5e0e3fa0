"""The rules that hide the runtime's mount-point stubs (engine/layerstubs.py) on change
lists and layer tars, without a container: the end-to-end checks on every driver are in
test_engine_manage_layers.py."""

from __future__ import annotations

import io
import tarfile

from pydock.drivers.base import Change, ChangeKind
from pydock.engine import layerstubs

A, C, D = ChangeKind.ADD, ChangeKind.MODIFY, ChangeKind.DELETE


def test_stubs_hide_unless_something_real_lies_below_and_deletions_stay() -> None:
    changes = [Change("/etc", C), Change("/etc/hosts", A), Change("/etc/resolv.conf", D),
               Change("/proc", A), Change("/sys", A), Change("/sys/x", A),
               Change("/sys2", A)]  # fmt: skip
    shown = layerstubs.visible_changes(changes)
    # /etc holds a deletion the container made; /sys holds a file of its own
    assert shown == [Change("/etc", C), Change("/etc/resolv.conf", D), Change("/sys", C),
                     Change("/sys/x", A), Change("/sys2", A)]  # fmt: skip
    assert layerstubs.hidden_paths(changes) == {"/etc/hosts", "/proc"}


def _tar(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            ti = tarfile.TarInfo(name)
            if name.endswith("/"):
                ti.type = tarfile.DIRTYPE
            else:
                ti.size = len(name)
            ti.pax_headers = {"mtime": "1700000000.123456789", "SCHILY.xattr.user.k": "v"}
            tar.addfile(ti, io.BytesIO(name.encode()) if ti.size else None)
    return buf.getvalue()


def test_filter_tar_drops_only_the_named_entries_and_keeps_headers() -> None:
    src = _tar(["proc/", "etc/", "etc/hosts", "etc/.profile", ".hosts", "etc/hostsx"])
    out = io.BytesIO()
    layerstubs.filter_tar(io.BytesIO(src), out, {"/proc", "/etc/hosts"})
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["etc", "etc/.profile", ".hosts", "etc/hostsx"]
        assert tar.extractfile("etc/.profile").read() == b"etc/.profile"  # type: ignore[union-attr]
    assert all(m.pax_headers["mtime"] == "1700000000.123456789" for m in members)
    assert all(m.pax_headers["SCHILY.xattr.user.k"] == "v" for m in members)
