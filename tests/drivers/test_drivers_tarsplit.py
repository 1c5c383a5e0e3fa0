"""Exact re-export of applied layers (tar-split) on vfs and overlay2: the tar written back by
``diff_exact`` is the very tar ``apply_diff`` read, in PAX, GNU and ustar flavours, with
whiteouts, hard links, long names, base-256 sizes and trailing padding; and it refuses
cleanly (nothing written) when the layer's files no longer match the recording."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydock.drivers import registry
from pydock.drivers.base import Driver, NotSupported
from pydock.drivers.tarsplit import Recorder, reproduce

MTIME = 1_600_000_000


def _tar(entries: list[tuple], fmt: int = tarfile.PAX_FORMAT, tail: bytes = b"") -> bytes:
    """entries: (name, kind, data_or_link, extra pax headers)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, payload, *rest in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = MTIME, 0, 0, "", ""
            if rest:
                ti.pax_headers = rest[0]
            if kind == "file":
                ti.size, ti.mode = len(payload), 0o644
                tar.addfile(ti, io.BytesIO(payload))
                continue
            ti.type, ti.mode = {
                "dir": (tarfile.DIRTYPE, 0o755),
                "sym": (tarfile.SYMTYPE, 0o777),
                "hard": (tarfile.LNKTYPE, 0o644),
            }[kind]
            if kind in ("sym", "hard"):
                ti.linkname = payload
            tar.addfile(ti)
    return buf.getvalue() + tail


def _base256_size_tar(name: str, data: bytes) -> bytes:
    """A ustar file entry whose size field is GNU base-256 (as for files over 8 GiB)."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = len(data), MTIME, 0o644
    block = bytearray(ti.tobuf(tarfile.USTAR_FORMAT))
    block[124:136] = b"\x80" + len(data).to_bytes(11, "big")
    block[148:156] = b"        "
    block[148:156] = b"%06o\x00 " % sum(block[:512])
    pad = -len(data) % 512
    return bytes(block) + data + b"\0" * pad + b"\0" * 1024


@pytest.fixture(params=["vfs", "overlay2"])
def driver(request: pytest.FixtureRequest, scratch: Path) -> Iterator[Driver]:
    cls = registry.get_class(request.param)
    try:
        cls.probe(scratch / request.param)
    except NotSupported as e:
        pytest.skip(f"{request.param} not supported here: {e}")
    drv = registry.open_driver(request.param, scratch)
    try:
        yield drv
    finally:
        drv.cleanup()


def _apply(driver: Driver, id: str, parent: str | None, data: bytes) -> None:
    driver.create(id, parent)
    driver.apply_diff(id, parent, io.BytesIO(data))


def _exact(driver: Driver, id: str) -> bytes | None:
    out = io.BytesIO()
    ok = driver.diff_exact(id, out)
    if not ok:
        assert out.getvalue() == b"", "a refused exact export must write nothing"
        return None
    return out.getvalue()


LONG = "deep/" + "/".join(["d" * 40] * 4) + "/file-with-a-long-name.txt"

CASES = {
    "pax": lambda: _tar(
        [
            ("etc", "dir", None),
            (
                "etc/passwd",
                "file",
                b"root:x:0:0::/root:/bin/sh\n" * 50,
                {"SCHILY.xattr.user.k": "v", "mtime": "1600000000.123456789"},
            ),
            ("etc/empty", "file", b""),
            ("etc/link", "hard", "etc/passwd"),
            ("etc/sym", "sym", "passwd"),
            (LONG, "file", os.urandom(3000)),
            ("\u00e9t\u00e9.txt", "file", b"unicode name"),
        ],
        tail=b"\0" * 4096,
    ),  # fmt: skip
    "gnu": lambda: _tar(
        [
            (LONG, "file", b"x" * 700),
            ("ln-" + "l" * 120, "sym", "t" * 150),
            ("hl", "hard", LONG),
        ],
        fmt=tarfile.GNU_FORMAT,
    ),  # fmt: skip
    "ustar-prefix": lambda: _tar(
        [("p" * 90 + "/" + "n" * 90, "file", b"prefixed")], fmt=tarfile.USTAR_FORMAT
    ),  # fmt: skip
    "base256": lambda: _base256_size_tar("big", b"base-256 size field\n"),
    "whiteout-of-own-file": lambda: _tar(
        [("gone", "file", b"kept by apply"), (".wh.gone", "file", b"")]
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exact_round_trip(driver: Driver, case: str) -> None:
    data = CASES[case]()
    _apply(driver, "l1", None, data)
    assert _exact(driver, "l1") == data
    assert driver.capabilities()["ReproducesExactDiffs"] is True


def test_exact_on_a_parent_with_whiteouts(driver: Driver) -> None:
    base = _tar([("a", "dir", None), ("a/x", "file", b"x"), ("a/y", "file", b"yy"),
                 ("b", "file", b"b")])  # fmt: skip
    top = _tar([
        ("a", "dir", None),
        ("a/.wh..wh..opq", "file", b""),
        ("a/new", "file", b"new"),
        (".wh.b", "file", b""),
        ("c", "file", b"c" * 10_000),
    ])  # fmt: skip
    _apply(driver, "base", None, base)
    _apply(driver, "top", "base", top)
    assert _exact(driver, "base") == base
    assert _exact(driver, "top") == top


def test_rewritten_path_is_not_recorded(driver: Driver) -> None:
    # The same path twice: the first payload is overwritten on disk and cannot come back.
    data = _tar([("f", "file", b"first"), ("f", "file", b"again")])
    _apply(driver, "dup", None, data)
    assert _exact(driver, "dup") is None
    out = io.BytesIO()
    driver.diff("dup", out)  # the ordinary re-export still works
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.getnames() == ["f"]


def _tree_file(driver: Driver, id: str, rel: str) -> Path:
    meta = driver.metadata(id)
    return Path(meta.get("UpperDir") or meta["Dir"], rel)


def test_changed_tree_refuses_cleanly(driver: Driver) -> None:
    data = _tar([("a", "file", b"aaaa"), ("b", "file", b"bbbb")])
    _apply(driver, "l1", None, data)
    _tree_file(driver, "l1", "b").write_bytes(b"bbbbb")  # another size
    assert _exact(driver, "l1") is None
    _tree_file(driver, "l1", "b").unlink()  # missing
    assert _exact(driver, "l1") is None


def test_recording_removed_with_layer(driver: Driver) -> None:
    _apply(driver, "l1", None, _tar([("a", "file", b"a")]))
    assert _exact(driver, "l1") is not None
    driver.remove("l1")
    driver.create("l1", None)  # an empty layer of that id has no recording
    assert _exact(driver, "l1") is None


def test_recorder_stands_alone(scratch: Path) -> None:
    """Recorder + reproduce without a driver, on a tar whose data blocks are odd sizes."""
    data = _tar([("d", "dir", None), ("d/f", "file", os.urandom(1_000_001))])
    tree = scratch / "tree"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tree)  # our own tar; Debian 12's Python 3.11.2 has no `filter`
    split = scratch / "split.gz"
    rec = Recorder(io.BytesIO(data), split)
    while rec.read(7777):
        pass
    assert rec.finish()
    assert split.stat().st_size < 2000  # framing only, not the megabyte of payload
    out = io.BytesIO()
    assert reproduce(split, tree, out)
    assert out.getvalue() == data
