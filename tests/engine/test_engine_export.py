"""``export`` / ``container export``: the container's merged filesystem as a tar, on every
driver, running or stopped, without what the runtime mounted or stubbed; it imports back."""

from __future__ import annotations

import io
import os
import pty
import stat
import subprocess
import tarfile

from helpers import PYDOCK


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_export_running_and_stopped_imports_back(pydock, tmp_path):
    script = "echo hi > /hello && ln /hello /hello2 && rm /bin/true && touch /ready && sleep 60"
    script = "echo v > /data/in-volume && " + script
    cid = pydock.out("run", "-d", "-v", "exp:/data", "busybox", "sh", "-c", script).strip()
    pydock("exec", cid, "sh", "-c", "while [ ! -e /ready ]; do sleep 0.05; done", check=True)
    live = pydock("export", cid, check=True).stdout
    names = _members(live)
    assert names["hello"].isfile() and names["hello"].size == 3
    assert names["hello2"].islnk() and names["hello2"].linkname == "hello"  # a hard link
    assert "bin/true" not in names and "bin/sh" in names  # the merged view: deletions gone
    assert all(not n.startswith(("./", "/")) for n in names)
    # nothing mounted at run time: /proc, /sys and the /dev tmpfs are empty mount points
    assert not [n for n in names if n.startswith(("proc/", "sys/", "dev/"))]
    # the runtime's /etc stubs (the image has none of these files) are left out
    assert not {"etc/hosts", "etc/hostname", "etc/resolv.conf"} & set(names)
    # a volume is not the container's filesystem: its mount point stays, its files do not
    assert names["data"].isdir() and "data/in-volume" not in names
    pydock("stop", "-t", "0", cid, check=True)
    out = tmp_path / "c.tar"
    pydock("container", "export", "-o", str(out), cid, check=True)
    assert set(_members(out.read_bytes())) == set(names)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # as the docker CLI's CopyToFile
    assert not [p for p in os.listdir(tmp_path) if p != "c.tar"]  # no temporary left
    pydock("import", str(out), "exported:1", check=True)
    res = pydock("run", "--rm", "exported:1", "cat", "/hello2")
    assert (res.returncode, res.stdout) == (0, b"hi\n"), res.stderr


def test_export_of_created_container_is_the_image(pd):
    cid = pd.out("create", "busybox").strip()
    names = _members(pd("export", cid, check=True).stdout)
    assert "bin/busybox" in names or "bin/sh" in names
    assert "etc/passwd" in names


def test_export_refuses_a_terminal_and_bad_refs(pd, tmp_path):
    cid = pd.out("create", "busybox").strip()
    master, slave = pty.openpty()
    try:
        res = subprocess.run(
            [PYDOCK, "--root", str(pd.root), "export", cid], stdout=slave, stderr=subprocess.PIPE,
            timeout=60,
        )  # fmt: skip
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 1
    assert res.stderr.decode() == (
        "pydock: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    )
    res = pd("export", "-o", str(tmp_path / "x.tar"), "nosuch")
    assert res.returncode == 1 and b"No such container: nosuch" in res.stderr
    assert not (tmp_path / "x.tar").exists()
    res = pd("export")
    assert (res.returncode, res.stderr.decode()) == (
        1, "pydock: \"pydock export\" requires exactly 1 argument. See 'pydock export --help'.\n",
    )  # fmt: skip
