"""What a Docker user trips over when ``run`` cannot do what was asked (issue 11, part 3):
each bad value gets Docker's sentence and exit code every time, and a container whose start
failed is left Created, as Docker leaves it, ready for a ``start`` once the cause is gone."""

from __future__ import annotations

import json

import pytest
from lifecycle_helpers import inspect


def _err(res) -> str:
    return res.stderr.decode().strip()


@pytest.mark.parametrize("cmd", ["run", "create"])
def test_workdir_that_is_a_file_is_dockers_error_every_time(overlay_pydock, cmd):
    p = overlay_pydock
    for _ in range(5):  # it was "Broken pipe" or "File exists", at random
        res = p(cmd, "--rm", "-w", "/etc/passwd", "busybox", "true")
        assert res.returncode == 125
        assert _err(res) == "pydock: Cannot mkdir: /etc/passwd is not a directory"
    res = p(cmd, "-w", "/etc/passwd/deeper", "busybox", "true")
    assert (res.returncode, _err(res)) == (125, "pydock: mkdir /etc/passwd/deeper: not a directory")
    assert p.out("ps", "-aq") == ""  # Docker's create removes what it began
    # a new directory, or one reached through a link inside the image, is fine
    assert p.out("run", "--rm", "-w", "/tmp/a/b", "busybox", "pwd") == "/tmp/a/b\n"
    p("run", "--name", "ln", "busybox", "ln", "-s", "/tmp", "/lnk", check=True)
    p("commit", "ln", "withlink", check=True)
    assert p.out("run", "--rm", "-w", "/lnk", "withlink", "pwd") == "/tmp\n"  # followed inside


def test_relative_workdir_is_refused_before_anything_is_made(overlay_pydock):
    p = overlay_pydock
    for cmd in ("run", "create"):
        res = p(cmd, "-w", "tmp", "busybox", "true")
        assert res.returncode == 125
        assert _err(res) == (
            "pydock: the working directory 'tmp' is invalid, it needs to be an absolute path"
        )
    assert p.out("ps", "-aq") == ""


def test_workdir_turned_file_after_create_fails_start_and_stays_created(overlay_pydock, scratch):
    p = overlay_pydock
    p("create", "--name", "wd", "-w", "/data", "busybox", "pwd", check=True)
    f = scratch / "plain"
    f.write_text("a file\n")
    p("cp", str(f), "wd:/data", check=True)
    res = p("start", "wd")
    assert res.returncode == 1
    assert "Cannot mkdir: /data is not a directory" in _err(res)
    assert "Broken pipe" not in _err(res) and "File exists" not in _err(res)
    st = inspect(p, "wd")["State"]
    assert st["Status"] == "created" and "Cannot mkdir: /data" in st["Error"]


def test_hostname_over_64_chars_is_the_runtimes_einval_and_leaves_created(overlay_pydock):
    p = overlay_pydock
    assert p.out("run", "--rm", "-h", "h" * 64, "busybox", "hostname") == "h" * 64 + "\n"
    for i in range(3):
        res = p("run", "--name", f"long{i}", "-h", "h" * 65, "busybox", "true")
        assert res.returncode == 125
        err = _err(res)
        assert "sethostname" in err and "Invalid argument" in err, err
        assert len(err.splitlines()) == 1
        st = inspect(p, f"long{i}")["State"]
        # Docker: StartedAt stays zero, so the state reads "created"; generic code 128
        assert (st["Status"], st["Running"], st["ExitCode"]) == ("created", False, 128)
        assert st["StartedAt"].startswith("0001-") and "sethostname" in st["Error"]
    ps = p.out("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines()
    assert sorted(ps) == ["long0 Created", "long1 Created", "long2 Created"]


def test_failed_start_is_left_created_and_starts_once_fixed(overlay_pydock, scratch):
    p = overlay_pydock
    res = p("run", "--name", "fix", "busybox", "/fixed")
    assert res.returncode == 127
    assert "Broken pipe" not in _err(res)
    st = inspect(p, "fix")["State"]
    assert (st["Status"], st["ExitCode"]) == ("created", 127)
    assert "/fixed" in st["Error"]
    assert p.out("wait", "fix") == "127\n"  # not running: answered at once, as Docker's
    res = p("start", "-a", "fix")
    assert res.returncode == 1  # start -a: the start's error alone, as docker/cli's
    assert _err(res).startswith("Error response from daemon: ") and "/fixed" in _err(res)
    assert len(_err(res).splitlines()) == 1
    # -d: the id first (Docker's client prints it as the start begins), then the error
    res = p("run", "-d", "--name", "fixd", "busybox", "/fixed")
    assert res.returncode == 127
    cid = res.stdout.decode().strip()
    assert cid == inspect(p, "fixd")["Id"] and "/fixed" in _err(res)
    assert inspect(p, "fixd")["State"]["Status"] == "created"
    script = scratch / "fixed"
    script.write_text("#!/bin/sh\necho fixed now\n")
    script.chmod(0o755)
    for name in ("fix", "fixd"):
        p("cp", str(script), f"{name}:/fixed", check=True)
    assert p.out("start", "-a", "fix") == "fixed now\n"
    p("start", "fixd", check=True)
    assert p.out("wait", "fixd") == "0\n"
    for name in ("fix", "fixd"):
        st = inspect(p, name)["State"]
        assert (st["Status"], st["ExitCode"], st["Error"]) == ("exited", 0, "")
    # a start that fails after a run that happened is "exited", with that run's StartedAt
    p("create", "--name", "again", "busybox", "sh", "-c", "rm /bin/sh; exit 3", check=True)
    res = p("start", "-a", "again")
    assert res.returncode == 3
    started = inspect(p, "again")["State"]["StartedAt"]
    res = p("start", "again")
    assert res.returncode == 1
    st = inspect(p, "again")["State"]
    assert (st["Status"], st["ExitCode"], st["StartedAt"]) == ("exited", 127, started)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--memory", "-1"],
         """invalid argument "-1" for "-m, --memory" flag: invalid size: '-1'"""),
        (["-m", "1x"], """invalid argument "1x" for "-m, --memory" flag: invalid size: '1x'"""),
        (["-m", "1.2.3"], 'invalid argument "1.2.3" for "-m, --memory" flag: strconv.ParseFloat: '
                          'parsing "1.2.3": invalid syntax'),
        (["-m", "64m", "--memory-swap", "-2"],
         """invalid argument "-2" for "--memory-swap" flag: invalid size: '-2'"""),
    ],
)  # fmt: skip
def test_bad_sizes_get_dockers_messages(overlay_pydock, flags, message):
    res = overlay_pydock("run", "--rm", *flags, "busybox", "true")
    assert (res.returncode, _err(res)) == (125, f"pydock: {message}")
    assert overlay_pydock.out("ps", "-aq") == ""


def test_memory_swap_minus_one_is_unlimited(overlay_pydock):
    p = overlay_pydock
    p("create", "--name", "sw", "-m", "64MiB", "--memory-swap", "-1", "busybox", "true",
      check=True)  # fmt: skip
    hc = inspect(p, "sw")["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"]) == (64 << 20, -1)


def test_container_names_follow_dockers_pattern_at_any_length(overlay_pydock):
    p = overlay_pydock
    for bad in ("a", "é1", "-x", "a/b", "a b"):
        res = p("create", f"--name={bad}", "busybox", "true")
        assert res.returncode == 125
        assert _err(res) == (
            f"pydock: Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    long = "n" * 300  # Docker sets no limit; a file name may hold 255 bytes
    p("run", "--name", long, "busybox", "true", check=True)
    assert p.out("ps", "-a", "--format", "{{.Names}}") == long + "\n"
    assert inspect(p, long)["Name"] == "/" + long
    res = p("create", "--name", long, "busybox", "true")
    assert res.returncode == 125 and f'"/{long}" is already in use' in _err(res)
    p("rename", long, "short", check=True)
    p("rename", "short", long + "x", check=True)
    assert inspect(p, long + "x")["Name"] == "/" + long + "x"
    p("system", "boot", check=True)  # the name sweep keeps a long name that is held
    assert json.loads(p.out("inspect", long + "x"))[0]["Name"] == "/" + long + "x"
    p("rm", long + "x", check=True)
    assert list((p.root / "names").iterdir()) == []


def test_hostname_conflicts_with_another_containers_network(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "netowner", "busybox", "sleep", "60", check=True)
    for cmd in ("run", "create"):
        res = p(cmd, "--network", "container:netowner", "-h", "mine", "busybox", "hostname")
        assert res.returncode == 125
        assert _err(res) == "pydock: conflicting options: hostname and the network mode"
    assert p.out("ps", "-aq").split() == [inspect(p, "netowner")["Id"][:12]]
    p("rm", "-f", "netowner", check=True)
