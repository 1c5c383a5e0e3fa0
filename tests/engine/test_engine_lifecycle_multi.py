"""Commands on several containers at once (stop, kill, restart) act on all of them
together, as Docker's CLI does, and report each in the order given."""

from __future__ import annotations

from datetime import datetime

from lifecycle_helpers import inspect

NAMES = ("m1", "m2", "m3")


def _finished(p, name: str) -> float:
    stamp = inspect(p, name)["State"]["FinishedAt"]
    return datetime.fromisoformat(stamp[:26].rstrip("Z")).timestamp()


def _start_deaf(p) -> None:
    # PID 1 of a namespace ignores SIGTERM it has no handler for: stop must wait -t
    for name in NAMES:
        p("run", "-d", "--name", name, "busybox", "sleep", "600", check=True)


def test_stop_is_parallel_and_in_order(overlay_pydock) -> None:
    p = overlay_pydock
    _start_deaf(p)
    res = p("stop", "-t", "2", *NAMES, "nosuch")
    assert res.returncode == 1
    assert res.stdout.decode().split() == list(NAMES)
    assert res.stderr.decode() == "Error response from daemon: No such container: nosuch\n"
    ends = [_finished(p, n) for n in NAMES]
    # one after another, each would end 2 s (its -t) after the one before
    assert max(ends) - min(ends) < 2.0, ends
    for name in NAMES:
        assert inspect(p, name)["State"]["Status"] == "exited"


def test_kill_and_restart_several(overlay_pydock) -> None:
    p = overlay_pydock
    _start_deaf(p)
    out = p.out("restart", "-t", "1", *NAMES)
    assert out.split() == list(NAMES)
    for name in NAMES:
        info = inspect(p, name)
        assert info["State"]["Running"], info["State"]
    assert p.out("kill", *NAMES).split() == list(NAMES)
    for name in NAMES:
        p("wait", name, check=True)
        assert inspect(p, name)["State"]["ExitCode"] == 137
    p("rm", *NAMES, check=True)
