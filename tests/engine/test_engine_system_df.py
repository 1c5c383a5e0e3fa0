"""``system df``: Docker 20.10's four rows and their arithmetic (shared layers, active
images/containers/volumes, integer percentages), the ``-v`` tables and ``--format``.

Expected figures are computed from what other commands report (``inspect --size``, image
``Size``) and from the volumes on disk, never hard-coded."""

from __future__ import annotations

import json

from pydock.engine.format import human_size
from pydock.engine.volumes import VolumeStore


def _pct(part: int, total: int) -> str:
    return f"{human_size(part)} ({part * 100 // total}%)" if total else human_size(part)


def _setup(pd) -> dict:
    """busybox used by a running and a stopped container; an unused image committed from
    the stopped one (it shares busybox's layer); a used and an unused volume."""
    pd("run", "--rm", "-v", "v1:/d", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /d/f",
       check=True)  # fmt: skip
    pd("run", "--rm", "-v", "v2:/d", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /d/f",
       check=True)  # fmt: skip
    running = pd.out("run", "-d", "-v", "v1:/d", "busybox", "sleep", "60").strip()
    stopped = pd.out("run", "-d", "busybox", "sh", "-c", "head -c 200000 /dev/zero > /f").strip()
    pd("wait", stopped, check=True)
    pd("commit", stopped, "derived:1", check=True)

    def inspect(ref: str, *extra: str) -> dict:
        return json.loads(pd.out("inspect", *extra, ref))[0]

    vs = VolumeStore(pd.root)
    return {
        "running": running, "stopped": stopped,
        "bb": inspect("busybox")["Size"], "derived": inspect("derived:1")["Size"],
        "rw_running": inspect(running, "--size")["SizeRw"],
        "rw_stopped": inspect(stopped, "--size")["SizeRw"],
        "v1": vs.size("v1"), "v2": vs.size("v2"),
    }  # fmt: skip


def test_summary_rows_and_arithmetic(overlay_pydock):
    pd = overlay_pydock
    s = _setup(pd)
    assert s["derived"] > s["bb"] > 0 and s["rw_stopped"] > 0
    # every layer once: busybox's layer and the commit's (derived holds both)
    layers = s["derived"]
    # the only active image (busybox) holds nothing alone: all of it is shared with derived
    images = ["Images", "2", "1", human_size(layers), _pct(layers, layers)]
    rw = s["rw_running"] + s["rw_stopped"]
    containers = ["Containers", "2", "1", human_size(rw), _pct(s["rw_stopped"], rw)]
    vol = s["v1"] + s["v2"]
    volumes = ["Local", "Volumes", "2", "1", human_size(vol), _pct(s["v2"], vol)]
    lines = pd.out("system", "df").splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert lines[1].split() == " ".join(images).split()
    assert lines[2].split() == " ".join(containers).split()
    assert lines[3].split() == " ".join(volumes).split()
    assert lines[4].split() == ["Build", "Cache", "0", "0", "0B", "0B"]
    assert len(lines) == 5
    # the columns are Docker's tabwriter's (min width 10, padding 3)
    assert lines[0].startswith("TYPE            TOTAL     ACTIVE    SIZE")


def test_verbose_tables(overlay_pydock):
    pd = overlay_pydock
    s = _setup(pd)
    out = pd.out("system", "df", "-v")
    sections = out.split("\n\n")
    assert sections[0] == "Images space usage:"
    head, *rows = sections[1].splitlines()
    assert head.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE", "SHARED",
                            "SIZE", "UNIQUE", "SIZE", "CONTAINERS"]  # fmt: skip
    by_repo = {r.split()[0]: r.split() for r in rows}
    bb, derived = human_size(s["bb"]), human_size(s["derived"])
    assert by_repo["busybox"][-4:] == [bb, bb, "0B", "2"]
    assert by_repo["derived"][1] == "1"
    assert by_repo["derived"][-4:] == [derived, bb, human_size(s["derived"] - s["bb"]), "0"]
    assert sections[2] == "Containers space usage:"
    head, *rows = sections[3].splitlines()
    assert head.split()[:2] == ["CONTAINER", "ID"] and "LOCAL VOLUMES" in head
    sizes = {r.split()[0]: r for r in rows}
    assert f"   {human_size(s['rw_stopped'])}   " in sizes[s["stopped"][:12]]
    assert "   1   " in sizes[s["running"][:12]]  # one local volume
    assert sections[4] == "Local Volumes space usage:"
    assert [r.split() for r in sections[5].splitlines()] == [
        ["VOLUME", "NAME", "LINKS", "SIZE"],
        ["v1", "1", human_size(s["v1"])],
        ["v2", "0", human_size(s["v2"])],
    ]
    assert sections[6] == "Build cache usage: 0B"
    assert sections[7].split() == ["CACHE", "ID", "CACHE", "TYPE", "SIZE", "CREATED", "LAST",
                                   "USED", "USAGE", "SHARED"]  # fmt: skip


def test_format(pd):
    pd.out("create", "busybox")
    assert pd.out("system", "df", "--format", "{{.Type}}={{.TotalCount}}/{{.Active}}") == (
        "Images=1/1\nContainers=1/0\nLocal Volumes=0/0\nBuild Cache=0/0\n"
    )
    first = json.loads(pd.out("system", "df", "--format", "json").splitlines()[0])
    assert sorted(first) == ["Active", "Reclaimable", "Size", "TotalCount", "Type"]
    fmt = "{{range .Images}}{{.Repository}}:{{.Containers}} {{end}}{{len .Volumes}}"
    out = pd.out("system", "df", "-v", "--format", fmt)
    assert out == "busybox:1 0"
    res = pd("system", "df", "--format", "{{.Nope}}")
    assert res.returncode == 1
    assert res.stderr.decode().startswith("pydock: template parsing error: ")
    assert "can't evaluate field Nope in type *formatter.diskUsageImagesContext" in (
        res.stderr.decode()
    )
