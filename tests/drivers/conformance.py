"""The storage-driver conformance suite, written once and run against every driver.

Like containers/storage's ``drivers/graphtest``: every ``test_*`` here takes a ``driver``
fixture (a fresh :class:`pydock.drivers.base.Driver` under ``scratch``) and checks the
interface's promises with real OCI layer tars. ``test_conformance.py`` parametrizes the
fixture over :func:`pydock.drivers.registry.names`; a plugin author imports this module and
provides their own ``driver`` fixture.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
from pathlib import Path

import pytest
from layertar import E, d, f, hard, opaque, snapshot, sym, tar_bytes, tar_stream, whiteout
from pydock.drivers.base import Change, ChangeKind, Driver, LayerInUse, UnsafeLayer

A, C, D = ChangeKind.ADD, ChangeKind.MODIFY, ChangeKind.DELETE


def _apply(driver: Driver, id: str, parent: str | None, data: bytes) -> int:
    driver.create(id, parent)
    return driver.apply_diff(id, parent, io.BytesIO(data))


def _read(root: str, rel: str) -> bytes:
    return Path(root, rel).read_bytes()


class _Mounted:
    """``with _Mounted(driver, id) as root:`` — get/put around a block."""

    def __init__(self, driver: Driver, id: str) -> None:
        self.driver, self.id = driver, id

    def __enter__(self) -> str:
        return self.driver.get(self.id)

    def __exit__(self, *exc: object) -> None:
        self.driver.put(self.id)


# -- basics --------------------------------------------------------------------------------


def test_create_empty(driver: Driver) -> None:
    driver.create("base", None)
    assert driver.exists("base")
    assert "base" in driver.list_layers()
    assert driver.parent("base") is None
    with _Mounted(driver, "base") as root:
        assert os.listdir(root) == []
    assert driver.changes("base") == []
    driver.remove("base")
    assert not driver.exists("base")


def test_layer_stacking(driver: Driver) -> None:
    _apply(driver, "l1", None, tar_bytes(f("a", b"a1"), f("b", b"b1"), d("d"), f("d/x", b"x1")))
    _apply(driver, "l2", "l1", tar_bytes(f("a", b"a2"), f("c", b"c2")))
    _apply(driver, "l3", "l2", tar_bytes(d("d"), f("d/x", b"x3"), f("d/y", b"y3")))
    assert driver.parent("l3") == "l2"
    with _Mounted(driver, "l3") as root:
        got = {p: _read(root, p) for p in ["a", "b", "c", "d/x", "d/y"]}
    assert got == {"a": b"a2", "b": b"b1", "c": b"c2", "d/x": b"x3", "d/y": b"y3"}
    with _Mounted(driver, "l1") as root:  # lower layers are untouched
        assert sorted(os.listdir(root)) == ["a", "b", "d"]
        assert _read(root, "a") == b"a1" and _read(root, "d/x") == b"x1"


# -- whiteouts -----------------------------------------------------------------------------


def _lower_for_whiteouts(driver: Driver) -> None:
    _apply(
        driver,
        "low",
        None,
        tar_bytes(
            d("etc"),
            f("etc/passwd", b"root"),
            f("etc/group", b"wheel"),
            d("etc/gone"),
            f("etc/gone/f"),
            d("opq"),
            f("opq/old1"),
            f("opq/old2"),
            d("opq/sub"),
            f("opq/sub/deep"),
        ),
    )


@pytest.mark.parametrize("order", ["whiteouts-first", "whiteouts-last"])
def test_whiteouts_and_opaque(driver: Driver, order: str) -> None:
    _lower_for_whiteouts(driver)
    marks = [whiteout("etc/group"), whiteout("etc/gone"), opaque("opq")]
    content = [d("etc"), d("opq"), f("opq/new", b"n"), d("opq/sub"), f("opq/sub/n", b"s")]
    entries = marks + content if order == "whiteouts-first" else content + marks
    if order == "whiteouts-first":  # parents before children even then
        entries = [d("etc"), d("opq"), *marks, *content[2:]]
    _apply(driver, "up", "low", tar_bytes(*entries))
    with _Mounted(driver, "up") as root:
        assert sorted(os.listdir(f"{root}/etc")) == ["passwd"]
        assert sorted(os.listdir(f"{root}/opq")) == ["new", "sub"]
        assert sorted(os.listdir(f"{root}/opq/sub")) == ["n"]
    with _Mounted(driver, "low") as root:
        assert sorted(os.listdir(f"{root}/etc")) == ["gone", "group", "passwd"]


def test_rename_across_layers(driver: Driver) -> None:
    _apply(driver, "l1", None, tar_bytes(d("dir"), f("dir/old", b"payload", mode=0o600)))
    _apply(driver, "l2", "l1", tar_bytes(whiteout("dir/old"), f("new", b"payload", mode=0o600)))
    with _Mounted(driver, "l2") as root:
        assert os.listdir(f"{root}/dir") == []
        assert _read(root, "new") == b"payload"
    changes = driver.changes("l2")
    assert Change("/dir/old", D) in changes and Change("/new", A) in changes


# -- what a layer preserves ----------------------------------------------------------------

RICH = [
    d("bin", mtime="1500000000.5"),
    f("bin/su", b"#!su", mode=0o4755, uid=0, gid=0),
    f("bin/sgid", b"g", mode=0o2711),
    d("tmp", mode=0o1777),
    d("home", mode=0o750, uid=1234, gid=5678),
    f("home/owned", b"mine", uid=1234, gid=5678, mtime="1700000000.123456789"),
    f("home/xa", b"x", xattrs={"user.color": b"blue", "trusted.secret": b"\x00\xffbin"}),
    hard("home/xa-link", "home/xa"),
    sym("home/abs", "/etc/passwd"),
    sym("home/rel", "../bin/su", uid=1234, gid=5678),
    d("dev"),
    E("dev/null", "chr", mode=0o666, dev=(1, 3)),
    E("dev/loop0", "blk", mode=0o660, gid=6, dev=(7, 0)),
    E("dev/pipe", "fifo", mode=0o620, uid=1234),
    f("dev/empty", b""),
]


def _rich_entries() -> list[E]:
    return list(RICH)


def test_metadata_preserved(driver: Driver) -> None:
    size = _apply(driver, "rich", None, tar_bytes(*_rich_entries()))
    assert size == len(b"#!su") + 1 + len(b"mine") + 1
    with _Mounted(driver, "rich") as root:
        snap = snapshot(root)
        st = os.lstat(f"{root}/bin/su")
        assert stat.S_IMODE(st.st_mode) == 0o4755
        assert stat.S_IMODE(os.lstat(f"{root}/bin/sgid").st_mode) == 0o2711
        assert stat.S_IMODE(os.lstat(f"{root}/tmp").st_mode) == 0o1777
        owned = os.lstat(f"{root}/home/owned")
        assert (owned.st_uid, owned.st_gid) == (1234, 5678)
        assert owned.st_mtime_ns == 1_700_000_000_123_456_789
        assert os.lstat(f"{root}/bin").st_mtime_ns == 1_500_000_000_500_000_000
        assert os.getxattr(f"{root}/home/xa", "user.color") == b"blue"
        assert os.getxattr(f"{root}/home/xa", "trusted.secret") == b"\x00\xffbin"
        a, b = os.lstat(f"{root}/home/xa"), os.lstat(f"{root}/home/xa-link")
        assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)
        assert os.readlink(f"{root}/home/abs") == "/etc/passwd"
        rel = os.lstat(f"{root}/home/rel")
        assert (rel.st_uid, rel.st_gid) == (1234, 5678)
        null = os.lstat(f"{root}/dev/null")
        assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
        assert stat.S_ISBLK(os.lstat(f"{root}/dev/loop0").st_mode)
        pipe = os.lstat(f"{root}/dev/pipe")
        assert stat.S_ISFIFO(pipe.st_mode) and pipe.st_uid == 1234
    assert snap["/home/xa"][-1] == ("/home/xa", "/home/xa-link")


# -- a container's writable layer ----------------------------------------------------------


def test_rw_layer_changes(driver: Driver) -> None:
    _apply(
        driver,
        "img",
        None,
        tar_bytes(
            d("etc"),
            f("etc/passwd", b"root\n"),
            f("etc/group", b"g"),
            d("tmp"),
            d("usr"),
            f("usr/keep"),
        ),
    )
    driver.create_rw("ctr", "img")
    with _Mounted(driver, "ctr") as root:
        with open(f"{root}/etc/passwd", "ab") as fh:
            fh.write(b"user\n")
        os.unlink(f"{root}/etc/group")
        Path(root, "tmp/new").write_bytes(b"new")
        os.mkdir(f"{root}/data")
        Path(root, "data/f").write_bytes(b"f")
        assert sorted(driver.changes("ctr")) == driver.changes("ctr")
    assert driver.changes("ctr") == sorted(
        [
            Change("/data", A),
            Change("/data/f", A),
            Change("/etc", C),
            Change("/etc/group", D),
            Change("/etc/passwd", C),
            Change("/tmp", C),
            Change("/tmp/new", A),
        ]
    )


def test_diff_round_trip(driver: Driver) -> None:
    _apply(driver, "base", None, tar_bytes(*_rich_entries(), d("gone"), f("gone/x"), f("plain")))
    driver.create_rw("ctr", "base")
    with _Mounted(driver, "ctr") as root:
        r = Path(root)
        (r / "bin/su").write_bytes(b"changed")
        os.chmod(r / "bin/sgid", 0o755)
        os.chown(r / "home/owned", 42, 43)
        os.setxattr(r / "plain", "user.added", b"1")
        os.setxattr(r / "plain", "trusted.added", b"2")
        os.unlink(r / "home/abs")
        os.chmod(r / "home", 0o755)
        os.rename(r / "home/owned", r / "home/moved")
        shutil.rmtree(r / "gone")
        (r / "gone").write_bytes(b"now a file")
        os.link(r / "plain", r / "home/plain-link")
        os.mknod(r / "dev/zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
        os.mkfifo(r / "fifo2", 0o600)
        os.symlink("plain", r / "sym2")
        os.makedirs(r / "new/deep")
        (r / "new/deep/f").write_bytes(b"deep")
        os.utime(r / "new/deep/f", ns=(1, 1_234_567_891_234_567_891))
        os.chmod(r / "tmp", 0o1770)
        expected = snapshot(root)
    out = io.BytesIO()
    driver.diff("ctr", out)
    driver.create("copy", "base")
    driver.apply_diff("copy", "base", io.BytesIO(out.getvalue()))
    with _Mounted(driver, "copy") as root:
        got = snapshot(root)
    assert got == expected
    assert driver.changes("copy") == driver.changes("ctr")


def test_sizes(driver: Driver) -> None:
    payload = [os.urandom(100_000), os.urandom(50_000), b"tiny"]
    entries = [f(f"f{i}", p) for i, p in enumerate(payload)]
    total = sum(map(len, payload))
    assert _apply(driver, "l1", None, tar_bytes(*entries)) == total
    assert driver.diff_size("l1") == total
    u = driver.usage("l1")
    assert u.size >= total and u.inodes >= len(payload)
    driver.create_rw("rw", "l1")
    with _Mounted(driver, "rw") as root:
        Path(root, "big").write_bytes(os.urandom(1 << 20))
    assert driver.diff_size("rw") == 1 << 20
    assert driver.usage("rw").size >= 1 << 20


# -- mounts --------------------------------------------------------------------------------


def test_get_put_refcount(driver: Driver) -> None:
    _apply(driver, "l1", None, tar_bytes(f("hello", b"hi")))
    driver.create_rw("rw", "l1")
    p1 = driver.get("rw")
    p2 = driver.get("rw")
    assert p1 == p2 and _read(p1, "hello") == b"hi"
    driver.put("rw")
    assert driver.mounted("rw")
    assert _read(p1, "hello") == b"hi"
    driver.put("rw")
    assert not driver.mounted("rw")


def test_remove_while_mounted(driver: Driver) -> None:
    _apply(driver, "l1", None, tar_bytes(f("hello", b"hi")))
    driver.create_rw("rw", "l1")
    driver.get("rw")
    with pytest.raises(LayerInUse):
        driver.remove("rw")
    driver.put("rw")
    driver.remove("rw")
    assert not driver.exists("rw")
    driver.remove("l1")
    assert driver.list_layers() == []


# -- hostile input and crashes -------------------------------------------------------------


def _hostile(outside: Path) -> dict[str, bytes]:
    o = str(outside)
    rel_up = "../" * 12 + o.lstrip("/")
    return {
        "dotdot": tar_bytes(f("../escape", b"x")),
        "nested-dotdot": tar_bytes(d("a"), f("a/../../escape", b"x")),
        "absolute": tar_bytes(f(f"{o}/escape", b"x")),
        "symlink-write-through": tar_bytes(sym("a", o), f("a/escape", b"x")),
        "relative-symlink-write-through": tar_bytes(sym("a", rel_up), f("a/canary", b"pwned")),
        "symlink-then-dir": tar_bytes(sym("a", o), d("a/sub"), f("a/sub/escape")),
        "hardlink-outside-absolute": tar_bytes(hard("h", f"{o}/canary")),
        "hardlink-outside-dotdot": tar_bytes(hard("h", rel_up + "/canary")),
        "hardlink-through-symlink": tar_bytes(sym("s", o), hard("h", "s/canary")),
        "whiteout-through-symlink": tar_bytes(sym("s", o), whiteout("s/canary")),
        "opaque-through-symlink": tar_bytes(sym("s", o), opaque("s")),
    }


def _tree(path: Path) -> list[tuple[str, int, bytes]]:
    out = []
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out.append((str(p), st.st_mode, p.read_bytes() if p.is_file() else b""))
    return out


@pytest.mark.parametrize(
    "case",
    [
        "dotdot",
        "nested-dotdot",
        "absolute",
        "symlink-write-through",
        "relative-symlink-write-through",
        "symlink-then-dir",
        "hardlink-outside-absolute",
        "hardlink-outside-dotdot",
        "hardlink-through-symlink",
        "whiteout-through-symlink",
        "opaque-through-symlink",
    ],
)
def test_hostile_layer_refused(driver: Driver, scratch: Path, case: str) -> None:
    outside = scratch / "outside"
    outside.mkdir()
    (outside / "canary").write_bytes(b"canary")
    before = _tree(outside)
    home_parent = _tree(driver.home.parent) if driver.home.parent != scratch else None
    driver.create("evil", None)
    with pytest.raises(UnsafeLayer) as info:
        driver.apply_diff("evil", None, io.BytesIO(_hostile(outside)[case]))
    assert "\n" not in str(info.value)
    assert _tree(outside) == before
    assert not (scratch / "escape").exists() and not Path("/escape").exists()
    assert not driver.exists("evil")
    if home_parent is not None:
        assert _tree(driver.home.parent) == home_parent


class _Exploding(io.RawIOBase):
    """A layer stream that fails part-way, as a dropped registry connection would."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self.data, self.pos, self.fail_at = data, 0, fail_at

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self.pos >= self.fail_at:
            raise ConnectionResetError("registry went away")
        n = min(len(b), self.fail_at - self.pos)
        b[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def test_crash_mid_apply(driver: Driver) -> None:
    data = tar_bytes(*(f(f"file{i}", os.urandom(20_000)) for i in range(20)))
    driver.create("half", None)
    with pytest.raises(ConnectionResetError):
        driver.apply_diff("half", None, io.BufferedReader(_Exploding(data, len(data) // 2)))
    assert not driver.exists("half")
    assert "half" not in driver.list_layers()
    fresh = type(driver)(driver.home, driver.options)  # a new process's start-up recovery
    fresh.cleanup()
    assert not [p for p in os.listdir(driver.home) if p.startswith(".tmp-")]
    driver.create("half", None)  # the id is free again
    driver.apply_diff("half", None, tar_stream(f("ok", b"ok")))
    with _Mounted(driver, "half") as root:
        assert os.listdir(root) == ["ok"]
