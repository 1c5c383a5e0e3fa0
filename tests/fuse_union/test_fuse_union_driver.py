"""The fuse-union driver: one store with overlay2, server life cycle, a killed server.

The conformance suite (tests/drivers) covers the driver interface; these cover what is
particular to fuse-union: the store it shares with overlay2, the FUSE server process per
mount, and what happens when that process is killed -- with a driver and with a running
container.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import PYDOCK, run_pydock
from pydock.drivers import registry
from pydock.fuse_union.driver import FuseUnionDriver, in_mountinfo
from pydock.overlay.driver import Overlay2Driver

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def _server_pid(drv: FuseUnionDriver, id: str) -> int:
    return int((drv.runtime / f"{id}.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_shares_overlay2_store(scratch: Path) -> None:
    ovl = registry.open_driver("overlay2", scratch)
    fu = registry.open_driver("fuse-union", scratch)
    assert isinstance(fu, FuseUnionDriver) and fu.home == ovl.home == scratch / "overlay2"
    assert not (scratch / "fuse-union").exists()
    ovl.create("img", None)
    ovl.apply_diff("img", None, _tar({"etc/hostname": b"base\n"}))
    diff_ino = os.stat(ovl.home / "img" / "diff").st_ino
    assert fu.exists("img") and fu.list_layers() == ["img"]
    fu.create_rw("ctr", "img")
    root = fu.get("ctr")
    try:
        Path(root, "etc/hostname").write_bytes(b"changed\n")
        Path(root, "new").write_bytes(b"n")
        assert ovl.mounted("ctr")  # one reference count and mount point for both
    finally:
        fu.put("ctr")
    assert not ovl.mounted("ctr") and not in_mountinfo(root)
    kroot = ovl.get("ctr")  # kernel overlay takes over the layer fuse-union wrote
    try:
        assert Path(kroot, "etc/hostname").read_bytes() == b"changed\n"
        assert Path(kroot, "new").read_bytes() == b"n"
    finally:
        ovl.put("ctr")
    assert os.stat(ovl.home / "img" / "diff").st_ino == diff_ino  # never re-extracted
    assert [str(c.path) for c in fu.changes("ctr")] == [str(c.path) for c in ovl.changes("ctr")]
    fu.remove("ctr")
    ovl.remove("img")


def test_get_put_starts_and_reaps_one_server(scratch: Path) -> None:
    fu = registry.open_driver("fuse-union", scratch)
    fu.create("img", None)
    fu.apply_diff("img", None, _tar({"f": b"x"}))
    fu.create_rw("ctr", "img")
    root = fu.get("ctr")
    pid = _server_pid(fu, "ctr")
    assert fu.get("ctr") == root and _server_pid(fu, "ctr") == pid  # one per mount
    fu.put("ctr")
    assert _alive(pid) and Path(root, "f").read_bytes() == b"x"
    fu.put("ctr")
    assert not _alive(pid) and not in_mountinfo(root)
    fu.remove("ctr")
    fu.remove("img")


def test_killed_server_is_detached_and_reported(
    scratch: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fu = registry.open_driver("fuse-union", scratch)
    fu.create("img", None)
    fu.apply_diff("img", None, _tar({"f": b"x"}))
    fu.create_rw("ctr", "img")
    root = fu.get("ctr")
    os.kill(_server_pid(fu, "ctr"), signal.SIGKILL)
    time.sleep(0.1)
    with pytest.raises(OSError) as e:
        os.listdir(root)
    assert e.value.errno == errno.ENOTCONN  # fails at once, does not hang
    assert fu.mounted("ctr")  # still there to be put
    fu.put("ctr")
    assert "died" in capfd.readouterr().err
    assert not in_mountinfo(root) and not fu.mounted("ctr")
    # the next get mounts afresh
    assert Path(fu.get("ctr"), "f").read_bytes() == b"x"
    os.kill(_server_pid(fu, "ctr"), signal.SIGKILL)
    time.sleep(0.1)
    assert fu.mounted("ctr")
    fu.put("ctr")
    fu.remove("ctr")
    fu.remove("img")
    assert not in_mountinfo(root)


def test_server_killed_under_running_container(scratch: Path) -> None:
    root = scratch / "root"
    base = ["--storage-driver", "fuse-union"]
    assert run_pydock(root, *base, "image", "bootstrap").returncode == 0
    script = "i=0; while echo $i > /counter; do i=$((i+1)); sleep 0.05; done; exit 3"
    proc = subprocess.Popen(
        [PYDOCK, "--root", str(root), *base, "run", "--name", "victim", "--network", "none",
         "busybox", "sh", "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        pidfiles: list[Path] = []
        deadline = time.monotonic() + 20
        while not pidfiles and time.monotonic() < deadline:
            pidfiles = list((root / "overlay2" / ".fuse-union").glob("*.pid"))
            time.sleep(0.05)
        assert pidfiles, "the container's FUSE server never started"
        time.sleep(0.5)  # let the container loop for a while
        os.kill(int(pidfiles[0].read_text().split()[0]), signal.SIGKILL)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, err  # the container's next write failed
    assert b"died" in err
    rm = run_pydock(root, *base, "rm", "victim")
    assert rm.returncode == 0, rm.stderr
    with open("/proc/self/mountinfo") as f:
        assert str(root) not in f.read()


def test_engine_shares_layers_between_drivers(scratch: Path) -> None:
    root = scratch / "root"
    assert run_pydock(root, "--storage-driver", "overlay2", "image", "bootstrap").returncode == 0

    def layers() -> list[tuple[str, int]]:  # layer dirs and their diff inodes
        store = root / "overlay2"
        return sorted(
            (n, os.stat(store / n / "diff").st_ino)
            for n in os.listdir(store)
            if (store / n / "diff").is_dir()
        )

    before = layers()
    res = run_pydock(root, "--storage-driver", "fuse-union", "run", "--rm", "--network", "none",
                     "busybox", "echo", "hello")  # fmt: skip
    assert res.returncode == 0 and res.stdout == b"hello\n", res.stderr
    assert os.listdir(root / "layerdb") == ["overlay2"]  # records shared, nothing copied
    assert layers() == before
    assert not (root / "fuse-union").exists()


def test_overlay2_store_kept_by_fuse_union_when_kernel_overlay_fails(scratch: Path) -> None:
    """The automatic choice keeps a store with layers only through a driver that works."""
    drv = Overlay2Driver(scratch / "overlay2")
    drv.create("base", None)

    class Broken(Overlay2Driver):
        @classmethod
        def probe(cls, home: str | Path) -> None:
            from pydock.drivers.base import NotSupported

            raise NotSupported("overlay2: no overlay here (test stand-in)")

    saved = registry.get_class
    registry.get_class = lambda n: Broken if n == "overlay2" else saved(n)  # type: ignore
    try:
        name, reasons = registry.choose(scratch)
    finally:
        registry.get_class = saved  # type: ignore[assignment]
    assert name == "fuse-union"
    assert "no overlay here" in reasons["overlay2"]


@pytest.mark.guest
def test_container_execs_from_a_store_on_tmpfs(scratch: Path) -> None:
    # tmpfs before Linux 6.6 (Debian 12's 6.1, in the guests) refuses RWF_NOWAIT reads with
    # EOPNOTSUPP: the server's fast read path failed every exec ("exec failed: Operation not
    # supported"). The server must fall back to plain reads and the container run.
    point = scratch / "tmpfs"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(point)], check=True)
    try:
        root = point / "root"
        args = ["--storage-driver", "fuse-union"]
        assert run_pydock(root, *args, "image", "bootstrap").returncode == 0
        # --privileged: the point is reading binaries, not device rules (v2 needs eBPF there)
        res = run_pydock(root, *args, "run", "--rm", "--network", "none", "--privileged",
                         "busybox", "sh", "-c", "echo hi; cat /bin/busybox | wc -c")  # fmt: skip
        assert res.returncode == 0, res.stderr
        # the image's busybox is the host's (image bootstrap)
        assert res.stdout.decode().split() == ["hi", str(os.path.getsize("/bin/busybox"))]
    finally:
        subprocess.run(["umount", str(point)], check=True)
