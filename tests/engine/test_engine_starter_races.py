"""Start workers at their edges: a client that dies mid-run, a ``-d`` run's monitor,
``system warm --stop`` racing a client's claim, a SIGTERM forwarded before the worker has
read the request, and clients a worker or a client must not trust.

Uses test_engine_starter's ``pooled`` fixture (a store with ``"start-pool": 1`` whose
workers are stopped and checked for leftovers afterwards).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import test_engine_starter as base
from helpers import PYDOCK, mounts_below
from pdcli import Pydock
from pydock.engine import client, starter

pooled = base.pooled  # the fixture, under its name in this module
_pid, _served, _wait_idle_worker = base._pid, base._served, base._wait_idle_worker

_FORWARDED_MASK = sum(1 << (s - 1) for s in (1, 2, 3, 10, 12, 15, 28))  # HUP..WINCH


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}"), f"process {pid} still runs"


def _cmd(p: Pydock, *args: str) -> list[str]:
    return [PYDOCK, "--root", str(p.root), *p._args(args)]


def test_client_killed_mid_run_ends_the_run(pooled: Pydock, scratch: Path) -> None:
    """As with an in-process run, whose container dies with pydock (parent-death
    signal): the worker follows its client, the container its worker, and the next
    command reconciles the ``--rm`` container away."""
    sock = _wait_idle_worker(pooled.root)
    proc = subprocess.Popen(
        _cmd(pooled, "run", "--rm", "busybox", "sh", "-c", "echo $$ up; exec sleep 60"),
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"1 up\n"
    cid = pooled.out("ps", "-q", "--no-trunc").strip()
    pid1 = json.loads((pooled.root / "containers" / cid / "container.json").read_text())
    proc.kill()
    proc.wait()
    _wait_gone(_pid(sock))
    _wait_gone(pid1["State"]["Pid"])
    assert pooled.out("ps", "-aq") == ""  # reconciled: --rm removed it
    assert mounts_below(pooled.root) == []


def test_detached_runs_monitor_does_not_inherit_blocked_signals(
    pooled: Pydock, scratch: Path
) -> None:
    """A worker blocks the forwarded signals until the container's wait proxies them;
    a monitor forked meanwhile would keep that mask across execve for life."""
    cid = _served(pooled, scratch, "run", "-d", "busybox", "sleep", "30").stdout.decode().strip()
    try:
        rec = json.loads((pooled.root / "containers" / cid / "container.json").read_text())
        monitor = rec["State"]["Owner"]["Pid"]
        status = Path(f"/proc/{monitor}/status").read_text()
        blocked = int(status.split("SigBlk:")[1].split()[0], 16)
        assert blocked & _FORWARDED_MASK == 0, hex(blocked)
    finally:
        pooled("rm", "-f", cid, check=True)


def _request(argv: list[str], cwd: Path) -> bytes:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return client._request(argv)
    finally:
        os.chdir(old)


def _hand_over(conn: socket.socket, p: Pydock, scratch: Path, *args: str) -> bytes:
    """Send a worker a ``pydock run`` request as the client does; its answer."""
    with open(os.devnull, "rb") as null, open(scratch / "out", "wb") as out:
        fds = [null.fileno(), out.fileno(), out.fileno()]
        req = _request(["--root", str(p.root), *p._args(args)], scratch)
        socket.send_fds(conn, [req], fds)
        conn.settimeout(30)
        return conn.recv(64)


def test_stop_spares_a_claimed_worker(pooled: Pydock, scratch: Path) -> None:
    """``system warm --stop`` takes an idle worker's socket before it signals it: a
    worker a client claimed first serves its run instead of dying under it."""
    sock = _wait_idle_worker(pooled.root)
    d = pooled.root / "starters"
    claimed = d / sock.replace(".sock", ".claimed")
    os.rename(d / sock, claimed)  # what client._claim does
    assert starter.stop(str(pooled.root), timeout=1.0) == 0
    assert os.path.exists(f"/proc/{_pid(sock)}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(str(claimed))
        assert _hand_over(conn, pooled, scratch, "run", "--rm", "busybox", "echo", "ok") == (
            b"exit 0"
        )
    assert (scratch / "out").read_bytes() == b"ok\n"
    _wait_gone(_pid(sock))


def test_sigterm_before_the_request_is_the_runs(pooled: Pydock, scratch: Path) -> None:
    """The client forwards signals from the moment it handed over; those that reach the
    worker before it read the request are passed on at the container's start (a PID 1
    without a handler ignores them, as after an in-process run's proxy). The worker must
    neither retire nor die of them: its client would get no answer."""
    sock = _wait_idle_worker(pooled.root)
    d = pooled.root / "starters"
    claimed = d / sock.replace(".sock", ".claimed")
    os.rename(d / sock, claimed)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(str(claimed))
        deadline = time.monotonic() + 10
        while claimed.exists():  # the worker unlinks it once it accepted
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            os.kill(_pid(sock), sig)
        time.sleep(0.1)
        reply = _hand_over(conn, pooled, scratch, "run", "--rm", "busybox", "sh", "-c",
                           "sleep 0.5; echo done")  # fmt: skip
    # sh as PID 1 ignores SIGTERM and SIGHUP; SIGINT ends it (130, as after an in-process
    # run's proxy) once it has set up its handler, which may be just after it arrives.
    assert reply in (b"exit 0", b"exit 130"), reply
    assert (scratch / "out").read_bytes() == (b"done\n" if reply == b"exit 0" else b"")


def test_client_trusts_only_a_root_listener(pooled: Pydock, scratch: Path) -> None:
    """A socket in the pool directory that someone else listens on (here uid 65534) is
    not a worker: the client neither hands it its stdio nor signals the pid in its name."""
    _wait_idle_worker(pooled.root)
    starter.stop(str(pooled.root))
    d = pooled.root / "starters"
    fake = d / "1-1.sock"
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.bind(str(fake))
            os.setresuid(65534, 65534, 65534)
            s.listen(1)
            os.write(ready_w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        assert os.read(ready_r, 1) == b"x"  # EOF: the listener failed to start
        # Before the fix the client sent its request and signalled pid 1 with what it got.
        assert client._claim(str(pooled.root)) is None
    finally:
        os.close(go_w)
        os.waitpid(pid, 0)
        os.close(ready_r)
        for leftover in d.glob("1-1.*"):
            leftover.unlink()


def test_client_in_another_mount_namespace_is_not_served(pooled: Pydock, scratch: Path) -> None:
    """A client that sees other files (another mount namespace, a chroot) runs the
    command itself: the worker would resolve its paths in the wrong tree."""
    _wait_idle_worker(pooled.root)
    trace = scratch / "trace.jsonl"
    env = dict(os.environ, PYDOCK_TRACE=str(trace))
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private",
         *_cmd(pooled, "run", "--rm", "busybox", "echo", "ok")],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0 and res.stdout == b"ok\n", res.stderr
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" not in marks


_ATTRS = (
    "ulimit -n; ulimit -c; grep Cpus_allowed_list /proc/self/status; "
    "cut -d' ' -f19 /proc/self/stat; cat /proc/self/oom_score_adj"
)


def test_served_container_has_the_clients_limits_and_scheduling(
    pooled: Pydock, scratch: Path
) -> None:
    """The container inherits the client's rlimits, nice value, CPU affinity and
    oom_score_adj, as it inherits an in-process run's, not the worker's."""

    def client_setup() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 300))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.nice(5)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        Path("/proc/self/oom_score_adj").write_text("300")

    args = ("run", "--rm", "busybox", "sh", "-c", _ATTRS)
    served = _served(pooled, scratch, *args, preexec_fn=client_setup)
    inproc = pooled(*args, preexec_fn=client_setup,
                    env=dict(os.environ, PYDOCK_NO_START_POOL="1"))  # fmt: skip
    assert served.returncode == 0 and inproc.returncode == 0, (served.stderr, inproc.stderr)
    assert served.stdout == inproc.stdout
    cpu = min(os.sched_getaffinity(0))
    assert served.stdout.decode().split() == [
        "200", "0", "Cpus_allowed_list:", str(cpu), "5", "300"
    ]  # fmt: skip


def test_client_with_fewer_capabilities_is_not_served(pooled: Pydock, scratch: Path) -> None:
    """A root client whose capability bounding set lacks one runs the command itself: a
    worker would lend it every capability it has."""
    _wait_idle_worker(pooled.root)
    trace = scratch / "trace.jsonl"
    res = subprocess.run(
        ["setpriv", "--bounding-set", "-sys_module",
         *_cmd(pooled, "run", "--rm", "busybox", "grep", "CapBnd", "/proc/self/status")],
        env=dict(os.environ, PYDOCK_TRACE=str(trace)), capture_output=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" not in marks


def test_abandoned_claim_retires_the_worker(pooled: Pydock, scratch: Path) -> None:
    """A client that dies between its claim (the rename) and its connection leaves a
    worker nobody will connect to: it retires after CLAIM_WAIT instead of waiting, and
    counting as the pool's, until its idle timeout."""
    sock = _wait_idle_worker(pooled.root)
    d = pooled.root / "starters"
    os.rename(d / sock, d / sock.replace(".sock", ".claimed"))
    _wait_gone(_pid(sock), timeout=starter.CLAIM_WAIT * 2 + 5)
    assert not list(d.glob(sock.replace(".sock", ".*")))


def test_client_with_closed_stdin_is_not_served(pooled: Pydock, scratch: Path) -> None:
    """With fd 0 closed, the client's socket would take its number and be handed over as
    the container's stdin (``cat`` then reads the hand-over socket for ever): such a
    client runs the command itself, as without a pool."""
    _wait_idle_worker(pooled.root)
    args = _cmd(pooled, "run", "-i", "--rm", "busybox", "cat")
    trace = scratch / "trace.jsonl"
    res = subprocess.run(args, preexec_fn=lambda: os.close(0), capture_output=True, timeout=30,
                         env=dict(os.environ, PYDOCK_TRACE=str(trace)))  # fmt: skip
    inproc = subprocess.run(args, preexec_fn=lambda: os.close(0), capture_output=True,
                            timeout=30, env=dict(os.environ, PYDOCK_NO_START_POOL="1"))  # fmt: skip
    # (the in-process error depends on which file took fd 0: only the code is stable)
    assert res.returncode == inproc.returncode == 125, (res.stderr, inproc.stderr)
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert "handoff" not in marks


def test_fill_adds_to_a_live_pool(pooled: Pydock, scratch: Path) -> None:
    """Workers do not inherit the fill lock (an flock follows its open file into a
    fork): with one line of workers alive, a larger pool must still be filled."""
    _wait_idle_worker(pooled.root)
    (pooled.root / "daemon.json").write_text(json.dumps({"start-pool": 2}))
    assert "started 1" in pooled.out("system", "warm")
    deadline = time.monotonic() + 20
    while len(base._workers(pooled.root)) < 2:
        assert time.monotonic() < deadline, os.listdir(pooled.root / "starters")
        time.sleep(0.02)


def test_workers_keep_no_inherited_descriptor(pooled: Pydock, scratch: Path) -> None:
    """A pipe the caller passed to ``pydock`` (a job server's, a script's) reaches EOF
    when pydock exits, not when the workers it forked retire."""
    starter.stop(str(pooled.root))
    r, w = os.pipe()
    try:
        res = subprocess.run(_cmd(pooled, "system", "warm"), pass_fds=(w,),
                             capture_output=True, timeout=60)  # fmt: skip
        assert b"started 1" in res.stdout, res.stderr
        os.close(w)
        w = -1
        ready, _, _ = select.select([r], [], [], 10)
        assert ready and os.read(r, 1) == b""
        _wait_idle_worker(pooled.root)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_zombie_worker_is_not_alive() -> None:
    """A SIGKILLed worker stays a zombie until init reaps it (late, on some machines):
    it must neither count as the pool's nor make ``--stop`` wait."""
    from pydock.engine.containers import proc_start_time

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        os._exit(0)
    try:
        key = f"{pid}-{proc_start_time(pid)}"
        assert starter._alive(key)
        os.write(w, b"x")
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not starter._alive(key)
    finally:
        os.waitpid(pid, 0)
        os.close(r)
        os.close(w)
