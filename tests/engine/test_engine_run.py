"""``pydock run`` end to end: a real container per test, on every built-in driver."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from helpers import no_mounts_under
from leaks import Snapshot


def test_echo_hello(pydock):
    res = pydock("run", "--rm", "busybox", "echo", "hello")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"hello\n"
    assert pydock.out("ps", "-aq") == ""  # --rm removed it


def test_isolation_from_inside(pydock, scratch: Path):
    marker = scratch / "host-only-marker"
    marker.write_text("host")
    script = (
        "echo pid=$$; hostname; cat /proc/self/cgroup;"
        " cat /proc/net/dev | tail -n +3 | cut -d: -f1;"
        f" test -e {marker} && echo visible || echo invisible;"
        " for n in mnt pid uts ipc net cgroup; do readlink /proc/1/ns/$n; done"
    )
    # --cgroupns private: Docker's default on v2 only (test_engine_cgroupfs_inside.py)
    res = pydock(
        "run", "--rm", "--network", "none", "--cgroupns", "private", "--hostname", "box1",
        "busybox", "sh", "-c", script,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().split("\n")
    assert lines[0] == "pid=1"  # the entrypoint is PID 1 of its own pid namespace
    assert lines[1] == "box1"
    cgroup_lines = [ln for ln in lines if ln.count(":") == 2]
    # in its own cgroup namespace the container's cgroup is the root of every hierarchy
    assert cgroup_lines and all(ln.endswith(":/") for ln in cgroup_lines)
    ifaces = [ln.strip() for ln in lines if ln.strip() in ("lo", "eth0")]
    assert ifaces == ["lo"]
    assert "invisible" in lines
    host_ns = {
        os.readlink(f"/proc/self/ns/{n}") for n in ("mnt", "pid", "uts", "ipc", "net", "cgroup")
    }
    container_ns = [
        ln for ln in lines if ln.startswith(("mnt:", "pid:", "uts:", "ipc:", "net:", "cgroup:"))
    ]
    assert len(container_ns) == 6 and not host_ns & set(container_ns)


def test_container_cgroup_seen_from_host(pydock):
    cid = pydock.out("run", "-d", "busybox", "sleep", "60").strip()
    info = json.loads(pydock.out("inspect", cid))[0]
    assert info["State"]["Running"] is True
    pid = info["State"]["Pid"]
    cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"pydock-{cid}" in cgroups
    mem = [ln for ln in cgroups.splitlines() if ":memory:" in ln][0]
    own_mem = [ln for ln in Path("/proc/self/cgroup").read_text().splitlines() if ":memory:" in ln][
        0
    ]
    # nested under the caller's own memory cgroup
    assert mem.split(":", 2)[2].startswith(own_mem.split(":", 2)[2].rstrip("/") + "/pydock-")
    pydock("rm", "-f", cid, check=True)
    assert (
        not Path(f"/proc/{pid}").exists() or "pydock" not in Path(f"/proc/{pid}/cgroup").read_text()
    )


def _layer_digest(eng, layer_id: str) -> str:
    """sha256 of the layer's exported diff: the same tree always exports the same bytes."""
    import hashlib
    import io

    buf = io.BytesIO()
    eng.driver().diff(layer_id, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_writes_land_in_container_layer_only(pydock):
    from pydock.engine.engine import Engine

    eng = Engine(pydock.root, pydock.driver)
    top = eng.images.layer_chain(eng.images.resolve("busybox"))[-1][7:]
    image_before = _layer_digest(eng, top)
    before = pydock.out("run", "--rm", "busybox", "cat", "/etc/passwd")
    script = "echo data > /newfile && echo extra >> /etc/passwd && rm /etc/group"
    res = pydock("run", "--name", "writer", "busybox", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    # a second container from the same image sees the image as it was
    check = "cat /etc/passwd; test -e /newfile && echo newfile; test -e /etc/group && echo g"
    res = pydock("run", "--rm", "busybox", "sh", "-c", check)
    assert res.stdout.decode() == before + "g\n"
    # the writes are the container's layer's changes, and the image layer is unchanged
    changes = eng.driver().changes(eng.containers.resolve("writer"))
    got = {(c.path, c.kind.letter) for c in changes}
    assert {("/newfile", "A"), ("/etc/passwd", "C"), ("/etc/group", "D")} <= got
    assert _layer_digest(eng, top) == image_before


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["sh", "-c", "exit 3"], 3),
        (["no-such-command"], 127),
        (["/etc/passwd"], 126),
    ],
)
def test_exit_codes(pydock, args, code):
    res = pydock("run", "--rm", "busybox", *args)
    assert res.returncode == code, res.stderr
    if code in (126, 127):
        err = res.stderr.decode().strip()
        assert err.count("\n") == 0 and "Traceback" not in err


def _wait_running(pydock, name: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        res = pydock("inspect", name)
        if res.returncode == 0:
            info = json.loads(res.stdout)[0]
            if info["State"]["Status"] == "running":
                return info
        time.sleep(0.05)
    raise AssertionError(f"{name} never ran")


def test_killed_container_exits_128_plus_signal(pydock):
    import signal

    proc = pydock.popen(
        "run",
        "--rm",
        "--name",
        "k9",
        "busybox",
        "sleep",
        "60",
    )
    info = _wait_running(pydock, "k9")
    os.kill(info["State"]["Pid"], signal.SIGKILL)  # the container's PID 1, started by us
    assert proc.wait(timeout=30) == 137


def test_signals_are_forwarded(pydock):
    import signal

    proc = pydock.popen(
        "run",
        "--rm",
        "--name",
        "trap",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 42' TERM; while true; do sleep 0.1; done",
    )
    _wait_running(pydock, "trap")
    time.sleep(0.3)  # let the shell install its trap
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 42


def test_unknown_image_is_125_one_line(pydock):
    # --pull never: a missing Docker Hub name would otherwise be pulled from Docker Hub,
    # which tests never contact (pulls are tested against 127.0.0.1: registry_runpull)
    res = pydock("run", "--rm", "--pull", "never", "no-such-image:1.0", "true")
    assert res.returncode == 125
    err = res.stderr.decode()
    assert err == "pydock: Error response from daemon: No such image: no-such-image:1.0\n"


def test_bad_flag_is_125(pydock):
    res = pydock("run", "--no-such-flag", "busybox", "true")
    assert res.returncode == 125
    assert "Traceback" not in res.stderr.decode()


def test_env_workdir_user_entrypoint(pydock):
    out = pydock.out(
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "busybox",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; echo $HOSTNAME",
    )
    foo, cwd, uid, gid, hostname = out.split("\n")[:5]
    assert (foo, cwd, uid, gid) == ("bar", "/tmp", "65534", "65534")
    assert len(hostname) == 12
    out = pydock.out("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert out == "via entrypoint\n"


def test_capabilities_are_dockers_default(pydock):
    out = pydock.out("run", "--rm", "busybox", "grep", "CapEff", "/proc/self/status")
    # Docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap
    # net_bind_service net_raw sys_chroot mknod audit_write setfcap
    assert out.split()[1] == "00000000a80425fb"


def test_masked_and_readonly_paths(pydock):
    res = pydock(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "wc -c < /proc/keys; echo 1 > /proc/sys/kernel/domainname && echo wrote",
    )
    out = res.stdout.decode().split()
    assert out[0] == "0"
    assert "wrote" not in out


def test_ps_logs_inspect_for_kept_container(pydock):
    pydock("run", "--name", "kept", "busybox", "sh", "-c", "echo out; echo err >&2; exit 2")
    ps = pydock.out("ps", "-a").splitlines()
    assert ps[0].split() == [
        "CONTAINER",
        "ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    assert "Exited (2)" in ps[1] and ps[1].endswith("kept")
    assert pydock.out("ps").splitlines()[1:] == []
    logs = pydock("logs", "kept")
    assert logs.stdout == b"out\n" and logs.stderr == b"err\n"
    info = json.loads(pydock.out("inspect", "kept"))[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 2
    assert info["Name"] == "/kept" and info["GraphDriver"]["Name"] == pydock.driver
    dup = pydock("run", "--name", "kept", "busybox", "true")
    assert dup.returncode == 125 and b"already in use" in dup.stderr
    pydock("rm", "kept", check=True)
    assert pydock.out("ps", "-aq") == ""


def test_create_then_start(pydock):
    cid = pydock.out("create", "--name", "later", "busybox", "sh", "-c", "echo started").strip()
    assert json.loads(pydock.out("inspect", cid))[0]["State"]["Status"] == "created"
    pydock("start", "-a", "later", check=True)
    assert pydock.out("logs", "later") == "started\n"


def test_sigkill_during_run_is_recovered(pydock, scratch):
    before = Snapshot.take()
    proc = pydock.popen(
        "run",
        "--name",
        "victim",
        "busybox",
        "sleep",
        "60",
    )
    cid = _wait_running(pydock, "victim")["Id"]
    proc.kill()
    proc.wait()
    # the next command notices the owner is gone and finishes the container
    ps = pydock.out("ps", "-a")
    assert "Exited (255)" in ps
    after = Snapshot.take()
    # (only what this container could have left: other tests may run beside this one)
    mine = [x for x in after.leaked_since(before) if cid in x or str(pydock.root) in x]
    assert mine == []
    assert no_mounts_under(pydock.root)
    pydock("rm", "victim", check=True)
    assert pydock.out("run", "--rm", "busybox", "echo", "ok") == "ok\n"


def test_home_and_term(pydock) -> None:
    """HOME from the user's /etc/passwd entry, "/" without one (as runc sets it); TERM=xterm
    only with -t; the image's or the user's own values win."""
    out = pydock.out("run", "--rm", "busybox", "sh", "-c", "echo $HOME; echo ${TERM-unset}")
    assert out == "/root\nunset\n"
    assert (
        pydock.out("run", "--rm", "-u", "www-data", "busybox", "sh", "-c", "echo $HOME")
        == "/var/www\n"
    )
    assert pydock.out("run", "--rm", "-u", "4242", "busybox", "sh", "-c", "echo $HOME") == "/\n"
    assert pydock.out("run", "--rm", "-e", "HOME=/x", "busybox", "sh", "-c", "echo $HOME") == "/x\n"
    out = pydock.out("run", "--rm", "-t", "busybox", "sh", "-c", "echo $TERM")
    assert out == "xterm\r\n"
    out = pydock.out("run", "--rm", "-t", "-e", "TERM=vt100", "busybox", "sh", "-c", "echo $TERM")
    assert out == "vt100\r\n"
    cid = pydock.out("run", "-d", "busybox", "sleep", "600").strip()
    assert pydock.out("exec", "-t", cid, "sh", "-c", "echo $TERM") == "xterm\r\n"
    assert pydock.out("exec", cid, "sh", "-c", "echo ${TERM-unset}; echo $HOME") == "unset\n/root\n"
    pydock("rm", "-f", cid, check=True)
    res = pydock("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert res.returncode == 125 and b"unable to find user nosuchuser" in res.stderr


def test_etc_files_without_a_network(pydock) -> None:
    """--network none and host get /etc/hosts, /etc/hostname and /etc/resolv.conf as
    Docker writes them; host's hostname and files are the host's."""
    out = pydock.out("run", "--rm", "--network", "none", "-h", "lonely", "busybox", "sh", "-c",
                     "hostname; cat /etc/hostname; grep -c localhost /etc/hosts; "
                     "test -f /etc/resolv.conf && echo resolv")  # fmt: skip
    assert out.split("\n")[:4] == ["lonely", "lonely", "2", "resolv"]
    host = os.uname().nodename
    out = pydock.out("run", "--rm", "--network", "host", "busybox", "sh", "-c",
                     "hostname; cat /etc/hostname; cat /etc/hosts")  # fmt: skip
    assert out == f"{host}\n{host}\n" + Path("/etc/hosts").read_text()
    cid = pydock.out("create", "--network", "host", "busybox", "true").strip()
    info = json.loads(pydock.out("inspect", cid))[0]
    assert info["Config"]["Hostname"] == host
    pydock("rm", cid, check=True)


def test_config_env_holds_the_image_env(pydock) -> None:
    cid = pydock.out("create", "-e", "FOO=bar", "-e", "PATH=/x", "busybox", "true").strip()
    env = json.loads(pydock.out("inspect", cid))[0]["Config"]["Env"]
    assert env == ["PATH=/x", "FOO=bar"]  # the image's PATH, replaced in place by -e
    pydock("rm", cid, check=True)
