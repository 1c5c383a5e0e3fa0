"""The session-wide leftover check (tests/leaks.py) itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from leaks import mounts_of

BEFORE = "24 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
# what the first `ip netns add` on a machine adds: /run/netns bound onto itself, and the
# namespace's own nsfs mount below it
NETNS_BIND = "45 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n"
NETNS_NS = "46 45 0:4 net:[4026532301] /run/netns/t1 rw shared:1 - nsfs nsfs rw\n"

# A machine that never made a named network namespace, in a mount namespace of its own
# (nothing here reaches the host's mounts): the first `ip netns add` and its `del` leave
# only the bind mount, which is no leak; a namespace left mounted is one.
FRESH_MACHINE = """
import subprocess, sys
sys.path.insert(0, {tests!r})
from leaks import Snapshot
subprocess.run(["umount", "/run/netns"], capture_output=True)  # as on a fresh machine
before = Snapshot.take()
subprocess.run(["ip", "netns", "add", "pdtest-leakcheck"], check=True)
left = Snapshot.take().leaked_since(before)
subprocess.run(["ip", "netns", "del", "pdtest-leakcheck"], check=True)
gone = Snapshot.take().leaked_since(before)
print(repr((left, gone)))
"""


def test_netns_bind_mount_is_not_a_leak() -> None:
    assert mounts_of(BEFORE + NETNS_BIND) == mounts_of(BEFORE)


def test_a_namespace_left_under_run_netns_is_a_leak() -> None:
    leaked = mounts_of(BEFORE + NETNS_BIND + NETNS_NS) - mounts_of(BEFORE)
    assert leaked == {"/run/netns/t1 (nsfs)"}


def test_first_netns_on_a_fresh_machine() -> None:
    code = FRESH_MACHINE.format(tests=str(Path(__file__).parent))
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", code],
        capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    left, gone = eval(res.stdout)  # noqa: S307 - our own repr() of two lists of str

    def ours(lines: list[str]) -> list[str]:  # not a namespace another test makes meanwhile
        return [x for x in lines if "pdtest-leakcheck" in x or x.startswith("mounts: /run/netns (")]

    assert ours(left) == ["mounts: /run/netns/pdtest-leakcheck (nsfs)", "netns: pdtest-leakcheck"]
    assert ours(gone) == []
