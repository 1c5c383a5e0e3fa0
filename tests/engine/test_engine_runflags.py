"""``run``/``create`` flags Docker users rely on (issue 11, part 4), end to end with the
installed ``pydock run``: each flag's effect inside the container, its record under
Docker's HostConfig names, and Docker's error line and exit code for a bad value."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from helpers import PYDOCK


def _hc(p, cid: str) -> dict:
    return json.loads(p.out("inspect", cid))[0]["HostConfig"]


def _bad(p, *args: str) -> str:
    """A run that must fail as Docker's does: exit 125, one line, no container made."""
    before = p.out("ps", "-aq")
    res = p("run", "--rm", *args)
    err = res.stderr.decode()
    assert res.returncode == 125, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert p.out("ps", "-aq") == before
    return err


# -- --env-file ---------------------------------------------------------------------------


def test_env_file_entries_come_before_e(overlay_pydock, scratch: Path):
    f = scratch / "env"
    f.write_bytes(
        b"\xef\xbb\xbfA=1\n# a comment\n\n  B=two words = kept\nFROM_CALLER\nUNSET_ONE\nC=3\r\n"
    )
    env = dict(os.environ, FROM_CALLER="yes")
    env.pop("UNSET_ONE", None)
    out = overlay_pydock.out("run", "--rm", "--env-file", str(f), "-e", "C=override",
                             "busybox", "env", env=env)  # fmt: skip
    lines = out.splitlines()
    assert "A=1" in lines and "B=two words = kept" in lines and "FROM_CALLER=yes" in lines
    assert "C=override" in lines  # -e wins over the file
    assert not any(ln.startswith("UNSET_ONE") for ln in lines)


def test_env_file_errors(overlay_pydock, scratch: Path):
    err = _bad(overlay_pydock, "--env-file", str(scratch / "missing"), "busybox", "true")
    assert "no such file or directory" in err
    bad = scratch / "bad"
    bad.write_text("GOOD=1\nBAD NAME=2\n")
    err = _bad(overlay_pydock, "--env-file", str(bad), "busybox", "true")
    assert "variable 'BAD NAME' contains whitespaces" in err


# -- /etc/hosts and /etc/resolv.conf ------------------------------------------------------


def test_add_host_and_dns_flags_none_network(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "--add-host", "db:10.1.2.3", "--add-host", "six:fd00::1",
                "--dns", "192.0.2.53", "--dns", "2001:db8::53", "--dns-search", "example.com",
                "--dns-option", "ndots:2", "--dns-option", "timeout:1",
                "busybox", "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf",
                ).strip()  # fmt: skip
    p("start", "-a", cid, check=True)
    hosts, resolv = p.out("logs", cid).split("---\n")
    assert "10.1.2.3\tdb\n" in hosts and "fd00::1\tsix\n" in hosts
    assert resolv == (
        "search example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"
        "options ndots:2 timeout:1\n"
    )
    hc = _hc(p, cid)
    assert hc["ExtraHosts"] == ["db:10.1.2.3", "six:fd00::1"]
    assert hc["Dns"] == ["192.0.2.53", "2001:db8::53"]
    assert hc["DnsSearch"] == ["example.com"] and hc["DnsOptions"] == ["ndots:2", "timeout:1"]


def test_dns_search_dot_means_none_and_host_nameservers_stay(overlay_pydock):
    out = overlay_pydock.out("run", "--rm", "--dns-search", ".", "--dns-option", "rotate",
                             "busybox", "cat", "/etc/resolv.conf")  # fmt: skip
    assert "search" not in out and out.endswith("options rotate\n")
    assert out.count("nameserver ") >= 1  # the host's (or Docker's fallback) resolvers


def test_defaults_recorded_as_docker(overlay_pydock):
    cid = overlay_pydock.out("create", "busybox", "true").strip()
    hc = _hc(overlay_pydock, cid)
    assert hc["Dns"] == [] and hc["DnsSearch"] == [] and hc["DnsOptions"] == []
    assert hc["ExtraHosts"] is None and hc["Ulimits"] is None and hc["GroupAdd"] is None
    assert hc["ShmSize"] == 67108864 and hc["IpcMode"] == "private"
    assert hc["PidMode"] == "" and hc["UTSMode"] == "" and hc["VolumesFrom"] is None
    assert "Init" not in hc and "Tmpfs" not in hc


@pytest.mark.parametrize(
    "args, message",
    [
        (["--add-host", "nocolon"], 'bad format for add-host: "nocolon"'),
        (["--add-host", "h:999.1.1.1"], 'invalid IP address in add-host: "999.1.1.1"'),
        (["--dns", "dns.example"], "dns.example is not an ip address"),
        (["--dns-search", "bad_domain!"], "bad_domain! is not a valid domain"),
    ],
)
def test_etc_flag_errors(overlay_pydock, args, message):
    err = _bad(overlay_pydock, *args, "busybox", "true")
    flag = args[0]
    assert f'for "{flag}" flag: {message}' in err


@pytest.fixture
def net(bridge_net):
    p, cfg, _ = bridge_net
    return p, cfg


def test_add_host_gateway_and_dns_on_the_bridge(net):
    p, cfg = net
    out = p.out("run", "--rm", "--add-host", "db:10.9.9.9", "--add-host", "host:host-gateway",
                "--dns", "192.0.2.1", "busybox", "sh", "-c",
                "cat /etc/hosts; echo ---; cat /etc/resolv.conf")  # fmt: skip
    hosts, resolv = out.split("---\n")
    lines = hosts.splitlines()
    assert f"{cfg['gateway']}\thost" in lines  # host-gateway: the default bridge's gateway
    assert lines.index("10.9.9.9\tdb") < len(lines) - 1  # before the container's own line
    assert resolv == "nameserver 192.0.2.1\n"


# -- --tmpfs, --shm-size ------------------------------------------------------------------


def test_tmpfs_mounts_with_docker_defaults(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "--tmpfs", "/scratch:size=1m,exec", "--tmpfs", "/plain", "busybox",
                "sh", "-c", "grep -E ' /(scratch|plain) ' /proc/mounts").strip()  # fmt: skip
    p("start", "-a", cid, check=True)
    mounts = {ln.split()[1]: ln.split()[3].split(",") for ln in p.out("logs", cid).splitlines()}
    assert mounts["/scratch"][0] == "rw" and "size=1024k" in mounts["/scratch"]
    assert "noexec" not in mounts["/scratch"] and "nosuid" in mounts["/scratch"]
    assert {"noexec", "nosuid", "nodev"} <= set(mounts["/plain"])
    assert _hc(p, cid)["Tmpfs"] == {"/scratch": "size=1m,exec", "/plain": ""}
    err = _bad(p, "--tmpfs", "relative", "busybox", "true")
    assert "mount path must be absolute" in err
    err = _bad(p, "--tmpfs", "/x:bogus=1", "busybox", "true")
    assert 'Invalid tmpfs option ["bogus"]' in err


def test_shm_size(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "--shm-size", "2m", "busybox", "grep", " /dev/shm ",
                "/proc/mounts").strip()  # fmt: skip
    p("start", "-a", cid, check=True)
    assert "size=2048k" in p.out("logs", cid)
    assert _hc(p, cid)["ShmSize"] == 2 * 1024 * 1024
    assert 'for "--shm-size" flag: invalid size' in _bad(p, "--shm-size", "lots", "busybox", "true")


# -- --init -------------------------------------------------------------------------------


def test_init_is_pid1_and_reaps_orphans(overlay_pydock):
    # the orphaned "sleep 0" is reparented to PID 1; only an init that reaps leaves no zombie
    script = "(sleep 0 &); sleep 0.3; ps -o pid,stat,comm; exit 3"
    res = overlay_pydock("run", "--rm", "--init", "busybox", "sh", "-c", script)
    assert res.returncode == 3, res.stderr  # the command's exit code, passed on
    rows = [ln.split() for ln in res.stdout.decode().splitlines()[1:]]
    assert rows[0][0] == "1" and rows[0][-1] == "docker-init"
    assert not [r for r in rows if r[1].startswith("Z")], rows


def test_init_forwards_stop_signal(overlay_pydock):
    p = overlay_pydock
    # sleep as PID 1 would ignore SIGTERM (no handler, pid_namespaces(7)) and be killed
    # after the timeout (137); under the init it gets the SIGTERM and dies of it (143).
    cid = p.out("run", "-d", "--init", "busybox", "sleep", "60").strip()
    p("stop", "-t", "20", cid, check=True)
    info = json.loads(p.out("inspect", cid))[0]
    assert info["State"]["ExitCode"] == 143
    assert info["HostConfig"]["Init"] is True
    assert info["Path"] == "/sbin/docker-init" and info["Args"][:2] == ["--", "sleep"]


def test_init_missing_command_is_127(overlay_pydock):
    res = overlay_pydock("run", "--rm", "--init", "busybox", "no-such-command")
    assert res.returncode == 127
    assert b"no-such-command" in res.stderr


# -- --ulimit, --group-add ----------------------------------------------------------------


def test_ulimit(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=77", "busybox",
                "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u").strip()  # fmt: skip
    p("start", "-a", cid, check=True)
    assert p.out("logs", cid).split() == ["1024", "2048", "77"]
    assert _hc(p, cid)["Ulimits"] == [
        {"Name": "nofile", "Hard": 2048, "Soft": 1024},
        {"Name": "nproc", "Hard": 77, "Soft": 77},
    ]


@pytest.mark.parametrize(
    "value, message",
    [
        ("nofile", "invalid ulimit argument: nofile"),
        ("files=1", "invalid ulimit type: files"),
        ("nofile=2048:1024", "ulimit soft limit must be less than or equal to hard limit: "
         "2048 > 1024"),
        ("nofile=x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ],
)  # fmt: skip
def test_ulimit_errors(overlay_pydock, value, message):
    err = _bad(overlay_pydock, "--ulimit", value, "busybox", "true")
    assert f'invalid argument "{value}" for "--ulimit" flag: {message}' in err


def test_group_add(overlay_pydock):
    # "root" is in the default image's /etc/group (gid 0); 4242 is in none
    p = overlay_pydock
    res = p("run", "--rm", "--group-add", "4242", "--group-add", "root", "busybox", "id", "-G")
    assert res.returncode == 0, res.stderr
    assert {b"0", b"4242"} <= set(res.stdout.split())
    res = p("run", "--rm", "--group-add", "nosuchgroup", "busybox", "true")
    assert res.returncode == 125
    assert b"Unable to find group nosuchgroup: no matching entries in group file" in res.stderr


# -- --cidfile, --expose ------------------------------------------------------------------


def test_cidfile(overlay_pydock, scratch: Path):
    p = overlay_pydock
    f = scratch / "cid"
    cid = p.out("run", "-d", "--cidfile", str(f), "busybox", "sleep", "30").strip()
    assert f.read_text() == cid
    p("rm", "-f", cid, check=True)
    err = _bad(p, "--cidfile", str(f), "busybox", "true")  # the file is still there
    assert err.endswith(
        f"Container ID file found, make sure the other container isn't running or delete {f}\n"
    )
    f2 = scratch / "cid2"
    _bad(p, "--cidfile", str(f2), "--pull", "never", "no-such-image:1", "true")
    assert not f2.exists()  # a failed create leaves no id file


def test_expose_and_publish_all(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "--expose", "80", "--expose", "9000-9001/udp", "busybox",
                "true").strip()  # fmt: skip
    cfg = json.loads(p.out("inspect", cid))[0]["Config"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "9000/udp": {}, "9001/udp": {}}
    assert "invalid port format for --expose: 1:2" in _bad(p, "--expose", "1:2", "busybox", "x")
    assert "invalid range format for --expose: 9-1" in _bad(p, "--expose", "9-1", "busybox", "x")


def test_expose_is_published_by_P(net):
    p, _ = net
    cid = p.out("run", "-d", "-P", "--expose", "8080", "busybox", "sleep", "30").strip()
    out = p.out("port", cid, "8080")
    assert out.strip().rpartition(":")[2].isdigit(), out
    p("rm", "-f", cid, check=True)


# -- --ipc, --pid, --uts ------------------------------------------------------------------


def _ns(pid: int | str, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_host_namespaces(overlay_pydock):
    p = overlay_pydock
    out = p.out("run", "--rm", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox",
                "sh", "-c", "for n in pid ipc uts; do readlink /proc/self/ns/$n; done;"
                " hostname; grep ' /dev/shm ' /proc/mounts")  # fmt: skip
    lines = out.splitlines()
    assert lines[:3] == [_ns("self", k) for k in ("pid", "ipc", "uts")]
    assert lines[3] == os.uname().nodename
    assert lines[4].split()[0] != "shm"  # the host's /dev/shm, bound in
    cid = p.out("create", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox").strip()
    hc = _hc(p, cid)
    assert (hc["PidMode"], hc["IpcMode"], hc["UTSMode"]) == ("host", "host", "host")
    assert json.loads(p.out("inspect", cid))[0]["Config"]["Hostname"] == os.uname().nodename


def test_ipc_none_has_no_dev_shm(overlay_pydock):
    out = overlay_pydock.out("run", "--rm", "--ipc", "none", "busybox", "cat", "/proc/mounts")
    assert " /dev/shm " not in out


def test_join_another_containers_pid_and_ipc(overlay_pydock):
    p = overlay_pydock
    donor = p.out("run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep",
                  "60").strip()  # fmt: skip
    dpid = json.loads(p.out("inspect", donor))[0]["State"]["Pid"]
    out = p.out("run", "--rm", "--pid", "container:donor", "--ipc", "container:donor",
                "busybox", "sh", "-c",
                "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; ps -o comm")  # fmt: skip
    lines = out.splitlines()
    assert lines[:2] == [_ns(dpid, "pid"), _ns(dpid, "ipc")]
    assert "sleep" in lines[2:]  # the donor's PID 1 is visible
    private = p.out("run", "-d", "--name", "private", "busybox", "sleep", "60").strip()
    res = p("run", "--rm", "--ipc", "container:private", "busybox", "true")
    assert res.returncode == 125
    assert b"non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in res.stderr
    p("rm", "-f", donor, private, check=True)
    res = p("run", "--rm", "--pid", "container:donor", "busybox", "true")
    assert res.returncode == 125 and b"No such container: donor" in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ipc", "bogus"], "--ipc: invalid IPC mode"),
        (["--pid", "container:"], "--pid: invalid PID mode"),
        (["--uts", "private"], "--uts: invalid UTS mode"),
        (["--uts", "host", "-h", "box"], "conflicting options: hostname and the UTS mode"),
    ],
)
def test_namespace_mode_errors(overlay_pydock, args, message):
    assert message in _bad(overlay_pydock, *args, "busybox", "true")


# -- --volumes-from -----------------------------------------------------------------------


def test_volumes_from(overlay_pydock, scratch: Path):
    p = overlay_pydock
    host_dir = scratch / "bound"
    host_dir.mkdir()
    src = p.out("create", "--name", "src", "-v", "/data", "-v", f"{host_dir}:/bound", "busybox",
                "true").strip()  # fmt: skip
    p("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c",
      "echo hi > /data/f && echo b > /bound/g", check=True)  # fmt: skip
    assert (host_dir / "g").read_text() == "b\n"
    res = p("run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c",
            "cat /data/f; touch /data/x")  # fmt: skip
    assert res.stdout == b"hi\n" and res.returncode == 1 and b"Read-only" in res.stderr
    cid = p.out("create", "--volumes-from", "src", "busybox", "true").strip()
    info = json.loads(p.out("inspect", cid))[0]
    assert info["HostConfig"]["VolumesFrom"] == ["src"]
    src_mounts = json.loads(p.out("inspect", src))[0]["Mounts"]
    src_vol = [m["Name"] for m in src_mounts if m["Type"] == "volume"]
    assert [m.get("Name") for m in info["Mounts"] if m["Type"] == "volume"] == src_vol
    assert "No such container: nope" in _bad(p, "--volumes-from", "nope", "busybox", "true")
    p("rm", cid, src, check=True)


# -- -q, --platform -----------------------------------------------------------------------


def test_quiet_suppresses_image_fetch_output(scratch: Path):
    from pdcli import Pydock

    p = Pydock(scratch / "root", "vfs")  # no bootstrap: run builds the default image
    res = p("run", "--rm", "-q", "busybox", "echo", "hi")
    assert res.returncode == 0 and res.stdout == b"hi\n" and res.stderr == b"", res.stderr


def test_platform(overlay_pydock):
    p = overlay_pydock
    for ok in ("linux/amd64", "amd64", "linux", "linux/x86_64"):
        assert p.out("run", "--rm", "--platform", ok, "busybox", "echo", "ok") == "ok\n"
    err = _bad(p, "--platform", "linux/arm64", "busybox", "true")
    assert err.endswith(
        "image with reference busybox was found but does not match the specified platform: "
        "wanted linux/arm64, actual: linux/amd64\n"
    )
    err = _bad(p, "--platform", "plan10/amd64", "busybox", "true")
    assert '"plan10/amd64": unknown operating system or architecture: invalid argument' in err


# -- -a/--attach, --sig-proxy -------------------------------------------------------------


def test_attach_names_the_streams(overlay_pydock):
    p = overlay_pydock
    script = "echo out; echo err >&2"
    res = p("run", "--rm", "-a", "stdout", "busybox", "sh", "-c", script)
    assert (res.returncode, res.stdout, res.stderr) == (0, b"out\n", b"")
    res = p("run", "--name", "kept", "-a", "STDERR", "busybox", "sh", "-c", script)
    assert (res.returncode, res.stdout, res.stderr) == (0, b"", b"err\n")
    logs = p("logs", "kept")
    assert (logs.stdout, logs.stderr) == (b"out\n", b"err\n")  # the log has both
    cfg = json.loads(p.out("inspect", "kept"))[0]["Config"]
    assert (cfg["AttachStdin"], cfg["AttachStdout"], cfg["AttachStderr"]) == (False, False, True)
    p("rm", "kept", check=True)
    assert "Conflicting options: -a and -d" in _bad(p, "-d", "-a", "stdout", "busybox", "true")
    err = _bad(p, "-a", "stdweird", "busybox", "true")
    assert 'for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR' in err


_TRAP = "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"


def _started(p, *args: str) -> subprocess.Popen:
    """``pydock run ARGS`` in the background, once the container said "ready"."""
    proc = subprocess.Popen(
        [PYDOCK, "--root", str(p.root), *p._args(("run", *args))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout.readline() == b"ready\n"
    return proc


def test_sig_proxy_default_reaches_a_monitored_container(overlay_pydock):
    # a restart policy runs the container under a monitor; the CLI still proxies SIGTERM
    proc = _started(overlay_pydock, "--name", "prox", "--restart", "on-failure:1", "busybox",
                    "sh", "-c", _TRAP)  # fmt: skip
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"got TERM\n"
    overlay_pydock("rm", "-f", "prox", check=True)


def test_sig_proxy_false_leaves_the_container_running(overlay_pydock):
    p = overlay_pydock
    proc = _started(p, "--name", "noprox", "--sig-proxy=false", "busybox", "sh", "-c", _TRAP)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0  # the command ended, by the signal
    st = json.loads(p.out("inspect", "noprox"))[0]["State"]
    assert st["Running"] is True
    assert b"got TERM" not in p("logs", "noprox").stdout
    p("rm", "-f", "noprox", check=True)
    res = p("run", "--rm", "--sig-proxy=maybe", "busybox", "true")
    assert res.returncode == 125 and b'parsing "maybe": invalid syntax' in res.stderr


# -- rm -v, stop -s -----------------------------------------------------------------------


def test_rm_v_removes_anonymous_volumes_only(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "-v", "/anon", "-v", "keepme:/named", "busybox", "true").strip()
    mounts = json.loads(p.out("inspect", cid))[0]["Mounts"]
    anon = [m["Name"] for m in mounts if m["Destination"] == "/anon"][0]
    assert set(p.out("volume", "ls", "-q").split()) == {anon, "keepme"}
    p("rm", "-v", cid, check=True)
    assert p.out("volume", "ls", "-q").split() == ["keepme"]
    p("volume", "rm", "keepme", check=True)


def test_stop_signal_flag(overlay_pydock):
    p = overlay_pydock
    cid = p.out("run", "-d", "busybox", "sh", "-c",
                "trap 'exit 5' USR1; while :; do sleep 0.1; done").strip()  # fmt: skip
    p("stop", "-s", "USR1", "-t", "30", cid, check=True)
    assert json.loads(p.out("inspect", cid))[0]["State"]["ExitCode"] == 5
    res = p("stop", "-s", "NOTASIGNAL", cid)
    assert res.returncode != 0 and b"Invalid signal: NOTASIGNAL" in res.stderr
    p("rm", cid, check=True)
