"""spawn() end to end: a busybox container under a Docker-like spec, on the real kernel.

The container reports what it sees on stdout (a file in scratch, outside the rootfs); the
test then checks it and that no mount leaked to the host (the container's mounts live in
its own mount namespace, which dies with it).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from nsutil_helpers import DOCKER_CAPS, docker_like_spec
from pydock.nsutil import caps
from pydock.nsutil.rootfs import secure_join
from pydock.nsutil.spawn import SpawnError, spawn


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def run(spec: dict, scratch: Path, **kw) -> tuple[int, str]:
    """spawn, wait, return (exit code, stdout+stderr); asserts nothing leaked."""
    out_path = scratch / f"out-{len(list(scratch.glob('out-*')))}"
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = spawn(spec, stdio=(null, out, out), **kw)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(out)
        os.close(null)
    assert _mounts_under(scratch) == []
    # the caller's own children still land in its pid namespace
    assert os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")
    return os.waitstatus_to_exitcode(status), out_path.read_text()


def _kv(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_isolation_docker_like(rootfs: Path, scratch: Path) -> None:
    marker = scratch / "host-marker"
    marker.write_text("host only")
    script = f"""
echo pid=$$
echo hostname=$(hostname)
echo netdevs=$(cat /proc/net/dev | tail -n +3 | while read name rest; do echo -n "$name"; done)
[ -e {marker} ] && echo marker=visible || echo marker=absent
echo keys=$(cat /proc/keys | wc -c)
echo acpi=$(ls -A /proc/acpi 2>/dev/null | wc -w)
echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys=rw || echo procsys=ro
echo hi > /dev/null && echo devnull=$(cat /dev/null | wc -c)
echo zero=$(head -c 4 /dev/zero 2>/dev/null | wc -c)
echo ptmx=$(ls -l /dev/ptmx | sed 's/.*-> //')
echo cgroups=$(ls /sys/fs/cgroup | wc -w)
echo sysro=$(touch /sys/x 2>/dev/null && echo rw || echo ro)
"""
    spec = docker_like_spec(rootfs, ["sh", "-c", script])
    code, out = run(spec, scratch)
    assert code == 0, out
    kv = _kv(out)
    assert kv["pid"] == "1"
    assert kv["hostname"] == "pdtest-box"
    assert kv["netdevs"] == "lo:"
    assert kv["marker"] == "absent"
    assert kv["keys"] == "0"  # masked file reads empty
    assert kv["acpi"] == "0"  # masked directory is an empty tmpfs (or absent)
    assert kv["procsys"] == "ro"
    assert kv["devnull"] == "0"
    assert kv["zero"] == "4"
    assert kv["ptmx"] == "pts/ptmx"
    assert int(kv["cgroups"]) >= 1
    assert kv["sysro"] == "ro"
    assert marker.exists()


def test_kcore_masked_when_present(rootfs: Path, scratch: Path) -> None:
    if not os.path.exists("/proc/kcore"):
        pytest.skip("this kernel has no /proc/kcore")
    spec = docker_like_spec(rootfs, ["sh", "-c", "echo kcore=$(cat /proc/kcore | wc -c)"])
    code, out = run(spec, scratch)
    assert code == 0 and _kv(out)["kcore"] == "0", out


def test_user_cwd_env_umask(rootfs: Path, scratch: Path) -> None:
    spec = docker_like_spec(
        rootfs,
        ["sh", "-c", "echo id=$(id -u):$(id -g):$(id -G); echo cwd=$(pwd); echo umask=$(umask)"],
        user={"uid": 1000, "gid": 1001, "additionalGids": [1001, 20], "umask": 0o027},
        cwd="/home/app",
        env=["PATH=/bin", "FOO=bar baz"],
    )
    code, out = run(spec, scratch)
    assert code == 0, out
    kv = _kv(out)
    assert kv["id"] == "1000:1001:1001 20"
    assert kv["cwd"] == "/home/app"
    assert kv["umask"] == "0027"

    spec["process"]["args"] = ["cat", "/proc/self/environ"]
    code, out = run(spec, scratch)
    assert code == 0, out
    # exactly, nothing inherited; HOME from the user's passwd entry ("/" without one), as runc
    assert out.split("\0")[:-1] == ["PATH=/bin", "FOO=bar baz", "HOME=/"]


def _status_caps(rootfs: Path, scratch: Path, **process) -> dict[str, set[str]]:
    spec = docker_like_spec(rootfs, ["cat", "/proc/self/status"], **process)
    code, out = run(spec, scratch)
    assert code == 0, out
    return caps.parse_status_caps(out)


def test_capabilities_root(rootfs: Path, scratch: Path) -> None:
    got = _status_caps(rootfs, scratch)
    assert got["bounding"] == set(DOCKER_CAPS)
    assert got["effective"] == set(DOCKER_CAPS)

    few = ["CAP_CHOWN", "CAP_KILL"]
    got = _status_caps(
        rootfs, scratch, capabilities={"bounding": few, "effective": few, "permitted": few}
    )
    assert got["bounding"] == set(few)
    assert got["effective"] == set(few)


def test_capabilities_non_root_ambient(rootfs: Path, scratch: Path) -> None:
    amb = ["CAP_NET_BIND_SERVICE"]
    got = _status_caps(
        rootfs,
        scratch,
        user={"uid": 1000, "gid": 1000},
        capabilities={
            "bounding": DOCKER_CAPS,
            "effective": amb,
            "permitted": amb,
            "inheritable": amb,
            "ambient": amb,
        },
    )
    assert got["ambient"] == set(amb)
    assert got["effective"] == set(amb)  # after execve, ambient become effective
    assert got["bounding"] == set(DOCKER_CAPS)


def test_readonly_root_and_bind_ro(rootfs: Path, scratch: Path) -> None:
    shared = scratch / "shared"
    shared.mkdir()
    (shared / "data").write_text("from host")
    spec = docker_like_spec(
        rootfs,
        ["sh", "-c", "cat /data/data; touch /data/x || echo bind=ro; touch /y || echo root=ro"],
    )
    spec["root"]["readonly"] = True
    spec["mounts"].append(
        {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "ro"]}
    )
    code, out = run(spec, scratch)
    assert code == 0, out
    assert "from host" in out and "bind=ro" in out and "root=ro" in out
    assert not (shared / "x").exists()


def test_symlinked_mount_target_stays_in_rootfs(rootfs: Path, scratch: Path) -> None:
    outside = scratch / "outside"
    outside.mkdir()
    os.symlink(str(outside), rootfs / "escape")  # absolute link to a host directory
    spec = docker_like_spec(rootfs, ["sh", "-c", "echo proof > /escape/proof && echo ok=1"])
    spec["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"})
    code, out = run(spec, scratch)
    assert code == 0 and "ok=1" in out, out
    assert list(outside.iterdir()) == []  # the host directory was never touched
    assert (rootfs / str(outside).lstrip("/")).is_dir()  # the mount point was made inside


def test_secure_join(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    os.symlink("/etc", root / "a" / "abs")
    os.symlink("../../../../..", root / "a" / "up")
    os.symlink("loop", root / "loop")
    r = str(root)
    assert secure_join(r, "/a/abs/passwd") == f"{r}/etc/passwd"
    assert secure_join(r, "/a/up/x") == f"{r}/x"
    assert secure_join(r, "../../..") == r
    with pytest.raises(OSError):
        secure_join(r, "/loop/x")


def test_exec_missing_command_is_127(rootfs: Path, scratch: Path) -> None:
    spec = docker_like_spec(rootfs, ["no-such-command", "arg"])
    with pytest.raises(SpawnError) as info:
        run(spec, scratch)
    e = info.value
    assert (e.exit_code, e.stage, e.errno) == (127, "exec", 2)
    assert "no-such-command" in str(e) and "\n" not in str(e)
    assert _mounts_under(scratch) == []


def test_exec_not_executable_is_126(rootfs: Path, scratch: Path) -> None:
    (rootfs / "bin" / "plain").write_text("#!/bin/sh\necho hi\n")
    os.chmod(rootfs / "bin" / "plain", 0o644)
    for args in (["plain"], ["/bin/plain"]):
        with pytest.raises(SpawnError) as info:
            run(docker_like_spec(rootfs, args), scratch)
        assert info.value.exit_code == 126 and info.value.stage == "exec"


def test_setup_failure_is_125(rootfs: Path, scratch: Path) -> None:
    spec = docker_like_spec(rootfs, ["sh", "-c", "true"])
    spec["mounts"].append({"destination": "/bad", "type": "nosuchfs", "source": "x"})
    with pytest.raises(SpawnError) as info:
        run(spec, scratch)
    e = info.value
    assert (e.exit_code, e.stage) == (125, "mount")
    assert "mount" in str(e) and "/bad" in str(e)


def test_config_errors(rootfs: Path) -> None:
    spec = docker_like_spec(rootfs, ["true"])
    spec["linux"]["namespaces"] = [{"type": "pid"}]  # no mount namespace
    with pytest.raises(SpawnError, match="mount namespace"):
        spawn(spec)
    spec = docker_like_spec(rootfs, [])
    with pytest.raises(SpawnError, match="args"):
        spawn(spec)


def test_on_forked_sees_parked_child_and_failure_kills_it(rootfs: Path, scratch: Path) -> None:
    seen: list[tuple[int, str]] = []

    def record(pid: int) -> None:
        with open(f"/proc/{pid}/status") as f:
            nspid = next(line for line in f if line.startswith("NSpid:")).split()
        seen.append((pid, " ".join(nspid[1:])))

    code, _ = run(docker_like_spec(rootfs, ["true"]), scratch, on_forked=record)
    assert code == 0
    pid, nspid = seen[0]
    assert nspid == f"{pid} 1"  # host pid and PID 1 in its own namespace

    class Boom(Exception):
        pass

    def fail(pid: int) -> None:
        seen.append((pid, "fail"))
        raise Boom("cgroup setup failed")

    with pytest.raises(Boom):
        spawn(docker_like_spec(rootfs, ["sleep", "100"]), on_forked=fail)
    with pytest.raises(ChildProcessError):
        os.waitpid(seen[-1][0], os.WNOHANG)  # already reaped
    assert _mounts_under(scratch) == []


def test_join_existing_namespace_by_path(rootfs: Path, scratch: Path) -> None:
    """Join the uts namespace of a first container (runc's --net=container: style)."""
    r, w = os.pipe()
    holder = docker_like_spec(rootfs, ["sh", "-c", "read x"])
    hold_pid = spawn(holder, stdio=(r, w, w))
    os.close(r)
    try:
        spec = docker_like_spec(rootfs, ["hostname"])
        spec["hostname"] = ""
        spec["linux"]["namespaces"] = [
            {"type": "uts", "path": f"/proc/{hold_pid}/ns/uts"} if n["type"] == "uts" else n
            for n in spec["linux"]["namespaces"]
        ]
        code, out = run(spec, scratch)
        assert code == 0 and out.strip() == "pdtest-box", out
    finally:
        os.close(w)
        os.kill(hold_pid, signal.SIGKILL)
        os.waitpid(hold_pid, 0)


def test_spawn_error_report_is_json_safe() -> None:
    e = SpawnError(13, "exec", "exec /x:\nPermission denied")
    assert str(e) == "container exec failed: exec /x: Permission denied"
    assert e.exit_code == 126
    assert json.dumps({"m": str(e)})


def _until_dead(pid: int) -> None:
    """on_forked that returns only once the child has exited (a zombie, not yet reaped):
    the release that follows then finds the sync pipe's reader gone."""
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        if stat[stat.rindex(b")") + 2 :][:1] == b"Z":
            return
        time.sleep(0.01)
    raise AssertionError("the child never failed")


def test_child_failing_before_release_reports_its_error_not_broken_pipe(
    rootfs: Path, scratch: Path
) -> None:
    """A child that fails before it waits for the release (sethostname of a name over
    HOST_NAME_MAX, a cwd that is a file) must be reported as itself: the parent's write
    of "go" to a pipe nobody reads raised BrokenPipeError instead, at random."""
    spec = docker_like_spec(rootfs, ["true"])
    spec["hostname"] = "h" * 65  # HOST_NAME_MAX is 64: sethostname(2) says EINVAL
    with pytest.raises(SpawnError) as info:
        spawn(spec, on_forked=_until_dead)
    e = info.value
    assert (e.stage, e.errno, e.exit_code) == ("hostname", 22, 125)
    assert "Invalid argument" in str(e)
    assert _mounts_under(scratch) == []


def test_cwd_that_is_a_file_gets_dockers_sentence(rootfs: Path, scratch: Path) -> None:
    spec = docker_like_spec(rootfs, ["true"], cwd="/bin/busybox")
    with pytest.raises(SpawnError) as info:
        run(spec, scratch)
    assert str(info.value).endswith("Cannot mkdir: /bin/busybox is not a directory")
    assert info.value.exit_code == 125
