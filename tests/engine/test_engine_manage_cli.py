"""pause/unpause, top, stats, ps --filter/--format, rename and container prune, end to end
through the ``pydock`` command with real containers, cgroups and freezers."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest

# written elsewhere and renamed over /tmp/c: a cp reading /tmp/c never sees it half written
COUNTER = "i=0; while :; do i=$((i+1)); echo $i >/tmp/c.n; mv /tmp/c.n /tmp/c; sleep 0.02; done"


def read_file(pydock, container: str, path: str) -> bytes:
    """A file's bytes read through ``cp CONTAINER:PATH -`` (a tar on stdout)."""
    data = pydock("cp", f"{container}:{path}", "-", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        assert member is not None
        f = tar.extractfile(member)
        assert f is not None
        return f.read()


def counter(pydock, name: str) -> int:
    return int(read_file(pydock, name, "/tmp/c").strip() or 0)


def wait_for(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_pause_stops_progress_and_unpause_resumes(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "ctr", "busybox", "sh", "-c", COUNTER, check=True)
    wait_for(lambda: counter(p, "ctr") > 2)
    assert p.out("pause", "ctr").strip() == "ctr"
    assert p.out("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "ctr").split() == [
        "paused",
        "true",
    ]
    assert "(Paused)" in p.out("ps")
    assert p.out("ps", "--format", "{{.State}}").strip() == "paused"
    frozen = counter(p, "ctr")
    time.sleep(0.5)
    assert counter(p, "ctr") == frozen  # no progress while frozen
    again = p("pause", "ctr")
    assert again.returncode == 1 and b"is already paused" in again.stderr
    assert p.out("unpause", "ctr").strip() == "ctr"
    wait_for(lambda: counter(p, "ctr") > frozen)
    assert p.out("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "ctr").split() == [
        "running",
        "false",
    ]
    res = p("unpause", "ctr")
    assert res.returncode == 1 and b"is not paused" in res.stderr


def test_paused_container_can_be_force_removed(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "frozen", "busybox", "sleep", "60", check=True)
    p("pause", "frozen", check=True)
    p("rm", "-f", "frozen", check=True)
    assert p.out("ps", "-aq") == ""


def test_pause_of_a_stopped_container_fails(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "--name", "done", "busybox", "true", check=True)
    res = p("pause", "done")
    assert res.returncode == 1 and b"is not running" in res.stderr


def test_top_lists_the_container_processes(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "tp", "busybox", "sh", "-c", "sleep 60 & sleep 61 & wait", check=True)
    pid = int(p.out("inspect", "-f", "{{.State.Pid}}", "tp"))

    def rows() -> list[list[str]]:
        return [line.split() for line in p.out("top", "tp").splitlines()]

    wait_for(lambda: len(rows()) == 4)  # title + sh + two sleeps
    out = rows()
    assert out[0] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    by_pid = {int(r[1]): r for r in out[1:]}
    assert by_pid[pid][7:] == ["sh", "-c", "sleep", "60", "&", "sleep", "61", "&", "wait"]
    sleeps = sorted(r[7:] for r in out[1:] if r[1] != str(pid))
    assert sleeps == [["sleep", "60"], ["sleep", "61"]]
    assert all(r[0] == "root" and r[5] == "?" for r in out[1:])
    custom = p.out("top", "tp", "-o", "pid,comm").splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in custom[1:]) == ["sh", "sleep", "sleep"]
    res = p("top", "tp", "--bogus")
    assert res.returncode == 1
    p("rm", "-f", "tp", check=True)
    res = p("top", "tp")
    assert res.returncode == 1 and b"No such container" in res.stderr


def test_stats_no_stream_numbers_are_plausible(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "st", "busybox", "sh", "-c", "while :; do :; done", check=True)
    out = p.out("stats", "--no-stream", "st").splitlines()
    assert [c.strip() for c in out[0].split("   ") if c.strip()] == [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    row = json.loads(p.out("stats", "--no-stream", "--format", "{{json .}}", "st"))
    assert row["Name"] == "st"
    cpu = float(row["CPUPerc"].rstrip("%"))
    assert 20.0 < cpu <= 100.0 * 2 + 1  # a busy loop: most of one of the two CPUs
    usage, limit = row["MemUsage"].split(" / ")
    assert not usage.startswith("0B") and limit.endswith("iB")
    assert 0.0 <= float(row["MemPerc"].rstrip("%")) < 100.0  # a few MiB of the host's RAM
    assert row["NetIO"] == "0B / 0B"  # --network none: only lo, which Docker leaves out
    assert int(row["PIDs"]) >= 1
    # every running container when none is named
    assert "st" in p.out("stats", "--no-stream", "--format", "{{.Name}}").split()


def test_ps_filters_and_formats(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "--name", "ok", "--label", "tier=web", "busybox", "true", check=True)
    p("run", "--name", "bad", "busybox", "sh", "-c", "exit 3", check=False)
    p("run", "-d", "--name", "up", "busybox", "sleep", "60", check=True)
    up = p.out("inspect", "-f", "{{.Id}}", "up").strip()

    def names(*args: str) -> set[str]:
        return set(p.out("ps", *args, "--format", "{{.Names}}").split())

    assert names() == {"up"}
    assert names("-a") == {"ok", "bad", "up"}
    assert names("--filter", "status=exited") == {"ok", "bad"}  # a status filter implies -a
    assert names("-a", "--filter", "exited=3") == {"bad"}
    assert names("-a", "--filter", "exited=0") == {"ok"}
    assert names("-a", "--filter", "name=^b") == {"bad"}
    assert names("-a", "--filter", "name=ok", "--filter", "name=up") == {"ok", "up"}
    assert names("-a", "--filter", f"id={up[:10]}") == {"up"}
    assert names("-a", "--filter", "ancestor=busybox") == {"ok", "bad", "up"}
    assert names("-a", "--filter", "ancestor=busybox", "--filter", "status=running") == {"up"}
    if "--label" in p.out("run", "--help"):
        assert names("-a", "--filter", "label=tier=web") == {"ok"}
    bad = p("ps", "--filter", "colour=red")
    assert bad.returncode != 0 and b"invalid filter 'colour'" in bad.stderr
    table = p.out("ps", "-a", "--format", r"table {{.ID}}\t{{.Names}}\t{{.Status}}")
    lines = table.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "NAMES", "STATUS"]
    assert any(line.startswith(up[:12]) and "Up " in line for line in lines[1:])
    assert any("Exited (3)" in line for line in lines[1:])
    rows = [json.loads(x) for x in p.out("ps", "-a", "--format", "{{json .}}").splitlines()]
    by_name = {r["Names"]: r for r in rows}
    assert by_name["up"]["State"] == "running" and by_name["up"]["ID"] == up[:12]
    assert by_name["up"]["Command"] == '"sleep 60"'
    assert by_name["bad"]["Status"].startswith("Exited (3)")
    assert p.out("ps", "-q", "--no-trunc").split() == [up]
    assert p.out("ps", "-a", "--format", "{{.ID}}", "--no-trunc").count(up) == 1


def test_rename_moves_the_name(overlay_pydock, scratch) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "old", "busybox", "sleep", "60", check=True)
    p("create", "--name", "taken", "busybox", "true", check=True)
    cid = p.out("inspect", "-f", "{{.Id}}", "old").strip()
    p("rename", "old", "new", check=True)
    assert p.out("inspect", "-f", "{{.Name}}", "new").strip() == "/new"
    assert p("inspect", "old").returncode == 1  # the old name is free again
    names = scratch / "root" / "names"
    assert (names / "new").readlink().name == cid and not (names / "old").exists()
    res = p("rename", "new", "taken")
    assert res.returncode == 1
    assert b'The container name "/taken" is already in use' in res.stderr
    assert b"failed to rename container named new" in res.stderr
    assert p.out("inspect", "-f", "{{.Name}}", cid).strip() == "/new"
    same = p("rename", "new", "new")
    assert same.returncode == 1 and b"same name" in same.stderr
    bad = p("rename", "new", "no/slash")
    assert bad.returncode == 1 and b"Invalid container name" in bad.stderr
    # the running container's monitor records its exit under the new name
    p("rm", "-f", "new", check=True)
    p("rename", "taken", "old", check=True)  # the freed name can be reused
    assert p.out("ps", "-a", "--format", "{{.Names}}").split() == ["old"]


def test_container_prune_removes_only_stopped(overlay_pydock, scratch) -> None:
    p = overlay_pydock
    p("run", "--name", "gone1", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /f", check=True)
    p("create", "--name", "gone2", "busybox", "true", check=True)
    p("run", "-d", "--name", "stays", "busybox", "sleep", "60", check=True)
    ids = {n: p.out("inspect", "-f", "{{.Id}}", n).strip() for n in ("gone1", "gone2")}
    declined = p("container", "prune", input=b"n\n")
    assert declined.returncode == 0 and b"Are you sure" in declined.stdout
    assert len(p.out("ps", "-aq").split()) == 3
    out = p.out("container", "prune", "-f").splitlines()
    assert out[0] == "Deleted Containers:"
    assert set(out[1:3]) == set(ids.values())
    assert out[-1].startswith("Total reclaimed space: ") and out[-1] != "Total reclaimed space: 0B"
    assert p.out("container", "ls", "-a", "--format", "{{.Names}}").split() == ["stays"]
    assert not any((scratch / "root" / "containers" / i).exists() for i in ids.values())
    assert p.out("container", "prune", "-f").strip() == "Total reclaimed space: 0B"


def test_container_subcommands_dispatch(overlay_pydock) -> None:
    p = overlay_pydock
    p("container", "create", "--network", "none", "--name", "c1", "busybox", "true", check=True)
    assert p.out("container", "ls", "-a", "--format", "{{.Names}}").split() == ["c1"]
    assert p.out("container", "inspect", "-f", "{{.State.Status}}", "c1").strip() == "created"
    p("container", "rename", "c1", "d1", check=True)
    p("container", "rm", "d1", check=True)
    res = p("container", "frobnicate")
    assert res.returncode == 1 and b"unknown container command" in res.stderr


@pytest.mark.parametrize("driver_name", ["overlay2"])
def test_inspect_shows_state_hostconfig_mounts_graphdriver(overlay_pydock, driver_name) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "ins", "busybox", "sleep", "60", check=True)
    obj = json.loads(p.out("inspect", "-s", "ins"))[0]
    st = obj["State"]
    for key in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Pid", "ExitCode"):
        assert key in st
    assert st["Status"] == "running" and st["Running"] and st["Pid"] > 0
    assert st["StartedAt"] != "0001-01-01T00:00:00Z"
    assert "Owner" not in st
    assert obj["RestartCount"] == 0
    assert obj["HostConfig"]["NetworkMode"] == "none"
    assert obj["Mounts"] == [] or isinstance(obj["Mounts"], list)
    assert obj["GraphDriver"]["Name"] == driver_name
    assert "UpperDir" in obj["GraphDriver"]["Data"]
    assert obj["SizeRootFs"] >= obj["SizeRw"] >= 0
    p("rm", "-f", "ins", check=True)


def test_ps_image_column_follows_the_name(overlay_pydock) -> None:
    """IMAGE shows the name a container was made from while it still means that image;
    once untagged or moved to another image, the image's short id (--no-trunc: whole)."""
    p = overlay_pydock
    image = p.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    p("tag", "busybox", "pscol:1", check=True)
    p("tag", "busybox", "pscol:2", check=True)
    p("create", "--name", "kept", "pscol:1", "true", check=True)
    p("create", "--name", "gone", "pscol:2", "true", check=True)

    def cell(name: str, *args: str) -> str:
        return p.out("ps", "-a", *args, "--filter", f"name=^{name}$", "--format", "{{.Image}}")

    assert cell("kept") == "pscol:1\n" and cell("gone") == "pscol:2\n"
    p("rmi", "pscol:2", check=True)  # only untags: busybox and pscol:1 still name it
    assert cell("gone") == image.removeprefix("sha256:")[:12] + "\n"
    assert cell("gone", "--no-trunc") == image + "\n"
    assert cell("kept") == "pscol:1\n"
    p("rm", "kept", "gone", check=True)
    p("rmi", "pscol:1", check=True)
