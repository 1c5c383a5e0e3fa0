"""pydock's stores do not depend on the caller's umask, records are root's only, and a
user who is not root gets one clear line.

With ``umask 000`` an unprivileged user could once replace a created container's
``config.json`` and have root's later ``start`` run it; ``-e`` secrets were in 0644 files.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import test_engine_starter
from helpers import PYDOCK
from pdcli import Pydock

pooled = test_engine_starter.pooled  # a store with one start worker (and its leak checks)


def _umask_000() -> None:
    os.umask(0)


def _modes(root: Path) -> dict[str, int]:
    """Permission bits of the store's own directories and files: the root, each store
    directory, and what each holds one level down (not layer contents, which keep the
    image's modes, /tmp's 1777 among them)."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for top in root.iterdir():
        out[top.name] = stat.S_IMODE(top.lstat().st_mode)
        if top.is_dir() and not top.is_symlink():
            for child in top.iterdir():
                if not child.is_symlink():
                    out[f"{top.name}/{child.name}"] = stat.S_IMODE(child.lstat().st_mode)
    return out


def _check_container(root: Path, cid: str, modes: dict[str, int]) -> None:
    writable = {k: oct(m) for k, m in modes.items() if m & 0o022}
    assert writable == {}, f"group or world writable: {writable}"
    assert modes["containers"] == 0o700
    assert modes[f"containers/{cid}"] == 0o700
    cdir = root / "containers" / cid
    for name in ("config.json", "container.json"):
        assert stat.S_IMODE((cdir / name).stat().st_mode) == 0o600, name
    for name in os.listdir(cdir):
        m = stat.S_IMODE((cdir / name).lstat().st_mode)
        assert not m & 0o002, (name, oct(m))


def _run_detached(p: Pydock, **kw) -> str:
    res = p("run", "-d", "-e", "SECRET=hunter2", "busybox", "sleep", "600",
            preexec_fn=_umask_000, **kw)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout.decode().strip()


def test_umask_000_in_process(scratch: Path) -> None:
    # a fresh root made under umask 000, every store in it created by this run
    p = Pydock(scratch / "root", "overlay2")
    res = p("image", "bootstrap", preexec_fn=_umask_000)
    assert res.returncode == 0, res.stderr
    try:
        cid = _run_detached(p, env=dict(os.environ, PYDOCK_NO_START_POOL="1"))
        modes = _modes(p.root)
        assert modes["."] == 0o711
        _check_container(p.root, cid, modes)
        # a container's processes still get Docker's umask, not the caller's
        out = p.out("exec", cid, "sh", "-c", "umask")
        assert out.strip() == "0022"
    finally:
        p.cleanup()


def test_umask_000_served_by_a_start_worker(pooled: Pydock) -> None:
    cid = _run_detached(pooled)
    _check_container(pooled.root, cid, _modes(pooled.root))


def test_save_output_follows_the_callers_umask(pd: Pydock, scratch: Path) -> None:
    for umask, want in ((0o077, 0o600), (0o022, 0o644)):
        out = scratch / f"save-{umask:o}.tar"
        res = pd("save", "-o", str(out), "busybox", preexec_fn=lambda u=umask: os.umask(u))
        assert res.returncode == 0, res.stderr
        assert stat.S_IMODE(out.stat().st_mode) == want


@pytest.mark.parametrize("args,code", [(("ps",), 1), (("run", "--rm", "busybox", "true"), 125),
                                       (("images",), 1)])  # fmt: skip
def test_not_root_gets_one_line(pooled: Pydock, args: tuple[str, ...], code: int) -> None:
    def nobody() -> None:
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)

    before = sorted(os.listdir(pooled.root / "starters"))
    res = subprocess.run([PYDOCK, "--root", str(pooled.root), *args], capture_output=True,
                         timeout=60, preexec_fn=nobody, cwd="/")  # fmt: skip
    err = res.stderr.decode()
    assert res.returncode == code, err
    assert err.count("\n") == 1 and err.startswith("pydock: must run as root"), err
    assert "Traceback" not in err
    assert sorted(os.listdir(pooled.root / "starters")) == before


def test_help_and_version_need_no_root() -> None:
    def nobody() -> None:
        os.setresuid(65534, 65534, 65534)

    for args in (("--version",), ("run", "--help")):
        res = subprocess.run([PYDOCK, *args], capture_output=True, timeout=60,
                             preexec_fn=nobody, cwd="/")  # fmt: skip
        assert res.returncode == 0, res.stderr
