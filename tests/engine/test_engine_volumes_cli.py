"""Volumes and bind mounts end to end: ``volume`` commands, ``-v``, ``--mount``, labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _inspect(pydock, ref: str) -> dict:
    return json.loads(pydock.out("inspect", ref))[0]


def _volumes(pydock) -> list[str]:
    return pydock.out("volume", "ls", "-q").split()


def test_volume_lifecycle(overlay_pydock):
    p = overlay_pydock
    assert p.out("volume", "create", "--label", "team=blue", "data").strip() == "data"
    assert p.out("volume", "create", "data").strip() == "data"  # existing: returned as is
    anon = p.out("volume", "create").strip()
    assert len(anon) == 64
    info = json.loads(p.out("volume", "inspect", "data"))[0]
    assert info["Name"] == "data" and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "blue"}
    assert info["Mountpoint"] == str(p.root / "volumes" / "data" / "_data")
    assert Path(info["Mountpoint"]).is_dir()
    assert p.out("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data") == "data local\n"
    assert sorted(_volumes(p)) == sorted(["data", anon])
    assert p.out("volume", "ls", "-q", "--filter", "label=team=blue").split() == ["data"]
    assert p.out("volume", "ls", "-q", "--filter", "name=dat").split() == ["data"]
    table = p.out("volume", "ls").splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and len(table) == 3
    res = p("volume", "inspect", "nope")
    assert res.returncode == 1 and "no such volume" in res.stderr.decode()
    res = p("volume", "create", "-bad name")
    assert res.returncode != 0
    assert p.out("volume", "rm", "data", anon).split() == ["data", anon]
    assert _volumes(p) == []
    assert p("volume", "rm", "data").returncode == 1
    assert p("volume", "rm", "-f", "data").returncode == 0


def test_named_volume_outlives_containers_and_is_seeded_from_the_image(overlay_pydock):
    p = overlay_pydock
    # a new, empty volume first receives what the image has at the mount path
    out = p.out("run", "--rm", "-v", "etcvol:/etc", "busybox", "sh", "-c",
                "cat /etc/passwd | head -1; echo kept > /etc/mine")  # fmt: skip
    assert out.startswith("root:")
    mp = Path(json.loads(p.out("volume", "inspect", "etcvol"))[0]["Mountpoint"])
    assert (mp / "passwd").exists() and (mp / "mine").read_text() == "kept\n"
    # named volumes stay after `run --rm`, and the next container sees the data
    assert p.out("run", "--rm", "-v", "etcvol:/etc:ro", "busybox", "cat", "/etc/mine") == "kept\n"
    res = p("run", "--rm", "-v", "etcvol:/etc:ro", "busybox", "touch", "/etc/x")
    assert res.returncode != 0 and b"Read-only file system" in res.stderr
    # nocopy: a new volume stays empty; only the /etc files every container gets are
    # mounted over it, as Docker's are
    out = p.out("run", "--rm", "-v", "empty:/etc:nocopy", "busybox", "ls", "/etc")
    assert out == "hostname\nhosts\nresolv.conf\n"
    # a non-empty volume is never overwritten by the image's content
    assert "mine" in p.out("run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc").split()


def test_volume_in_use_refuses_rm_and_prune_takes_unused(overlay_pydock):
    p = overlay_pydock
    cid = p.out("create", "-v", "busy:/data", "-v", "/anon", "busybox", "true").strip()
    mounts = {m["Destination"]: m for m in _inspect(p, cid)["Mounts"]}
    assert mounts["/data"]["Name"] == "busy" and mounts["/data"]["Type"] == "volume"
    anon = mounts["/anon"]["Name"]
    res = p("volume", "rm", "busy")
    assert res.returncode == 1 and f"volume is in use - [{cid}]" in res.stderr.decode()
    p.out("volume", "create", "idle")
    # prune (Docker 23+): unused anonymous volumes only; in-use ones are kept
    out = p.out("volume", "prune", "-f")
    assert "Total reclaimed space" in out
    assert sorted(_volumes(p)) == sorted(["busy", anon, "idle"])
    assert p.out("volume", "ls", "-q", "--filter", "dangling=true").split() == ["idle"]
    p("rm", cid, check=True)
    out = p.out("volume", "prune", "-f")
    assert anon in out.split() and "idle" not in out.split()
    out = p.out("volume", "prune", "-f", "--all")
    assert sorted(out.split("\n\n")[0].split()[2:]) == ["busy", "idle"]
    assert _volumes(p) == []


def test_run_rm_takes_anonymous_volumes_along(overlay_pydock):
    p = overlay_pydock
    p.out("run", "--rm", "-v", "/scratch", "-v", "named:/n", "busybox", "true")
    assert _volumes(p) == ["named"]


def test_bind_mounts(overlay_pydock, scratch: Path):
    p = overlay_pydock
    host = scratch / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = p.out("run", "--rm", "-v", f"{host}:/h", "busybox", "sh", "-c",
                "cat /h/in; echo from container > /h/out")  # fmt: skip
    assert out == "from host\n" and (host / "out").read_text() == "from container\n"
    res = p("run", "--rm", "-v", f"{host}:/h:ro", "busybox", "touch", "/h/x")
    assert res.returncode != 0 and not (host / "x").exists()
    # -v creates a missing host directory, as Docker does; --mount refuses it
    missing = scratch / "made-by-v"
    p.out("run", "--rm", "-v", f"{missing}:/m", "busybox", "true")
    assert missing.is_dir()
    res = p("run", "--rm", "--mount", f"type=bind,source={scratch / 'nope'},target=/m",
            "busybox", "true")  # fmt: skip
    assert res.returncode == 125 and b"bind source path does not exist" in res.stderr
    # a file bind mount over an image file
    f = scratch / "hosts"
    f.write_text("1.2.3.4 pinned\n")
    assert p.out("run", "--rm", "-v", f"{f}:/etc/motd:ro", "busybox", "cat", "/etc/motd") == (
        "1.2.3.4 pinned\n"
    )


def test_mount_flag_types_and_inspect(overlay_pydock, scratch: Path):
    p = overlay_pydock
    host = scratch / "src"
    host.mkdir()
    cid = p.out(
        "run", "-d", "--mount", f"type=bind,source={host},target=/b,readonly",
        "--mount", "type=volume,source=mvol,target=/v",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "--label", "role=test", "-l", "empty=",
        "busybox", "sleep", "30",
    ).strip()  # fmt: skip
    try:
        info = _inspect(p, cid)
        assert info["Config"]["Labels"] == {"role": "test", "empty": ""}
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert mounts["/b"] == {"Type": "bind", "Source": str(host), "Destination": "/b",
                                "Mode": "", "RW": False, "Propagation": "rprivate"}  # fmt: skip
        assert mounts["/v"]["Type"] == "volume" and mounts["/v"]["Name"] == "mvol"
        assert mounts["/v"]["Source"] == str(p.root / "volumes" / "mvol" / "_data")
        assert mounts["/t"]["Type"] == "tmpfs"
        assert {m["Target"] for m in info["HostConfig"]["Mounts"]} == {"/b", "/v", "/t"}
    finally:
        p("rm", "-f", cid, check=True)
    assert _volumes(p) == ["mvol"]  # a named volume outlives its container


def test_mount_output(overlay_pydock, scratch: Path):
    p = overlay_pydock
    host = scratch / "src"
    host.mkdir()
    out = p.out(
        "run", "--rm", "--mount", f"type=bind,source={host},target=/b,readonly",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "busybox", "sh", "-c",
        "grep -E ' /(b|t) ' /proc/mounts; stat -c %a /t; touch /b/x 2>/dev/null; true",
    )  # fmt: skip
    lines = out.splitlines()
    b = [ln for ln in lines if " /b " in ln][0]
    t = [ln for ln in lines if " /t " in ln][0]
    assert " ro," in b
    assert t.startswith("tmpfs /t tmpfs rw,nosuid,nodev,noexec") and "size=1024k" in t
    assert "1770" in lines
    assert not (host / "x").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("-v", "data:relative", "must be absolute"),
        ("-v", "bad name!:/x", "includes invalid characters"),
        ("-v", "/a:/x:bogus", "invalid mode: bogus"),
        ("-v", "/a:/x:ro:extra", "invalid volume specification"),
        ("--mount", "type=volume", "target is required"),
        ("--mount", "type=nfs,target=/x", "invalid mount type"),
        ("--mount", "type=tmpfs,source=x,target=/x", "source is not allowed"),
        ("--mount", "type=volume,target=/x,colour=red", "unexpected key 'colour'"),
    ],
)
def test_bad_mount_flags(overlay_pydock, flag, value, message):
    res = overlay_pydock("run", "--rm", flag, value, "busybox", "true")
    assert res.returncode == 125 and message in res.stderr.decode()
    assert overlay_pydock.out("ps", "-aq") == ""
    assert _volumes(overlay_pydock) == []


def test_duplicate_mount_point(overlay_pydock):
    res = overlay_pydock("run", "--rm", "-v", "aa:/x", "-v", "bb:/x", "busybox", "true")
    assert res.returncode == 125 and b"Duplicate mount point: /x" in res.stderr
