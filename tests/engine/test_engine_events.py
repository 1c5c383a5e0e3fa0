"""``pydock events`` (issue 11): the durable event log every state change appends to,
Docker's line format, --since/--until, --filter, --format and follow mode."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time

from helpers import PYDOCK
from lifecycle_helpers import inspect, wait_for

LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (\w+) (\S+) (\S+)(?: \((.*)\))?$")


def past(p, *args: str) -> list[tuple[str, str, str, str]]:
    """(type, action, actor, attributes) of every stored event matching ``args``."""
    out = p.out("events", "--since", "1h", "--until", "0s", *args).splitlines()
    rows = []
    for line in out:
        m = LINE.fullmatch(line)
        assert m, line
        rows.append((m.group(1), m.group(2), m.group(3), m.group(4) or ""))
    return rows


def actions(p, *args: str) -> list[str]:
    return [f"{t} {a}" for t, a, _, _ in past(p, *args)]


def test_container_life_is_in_the_event_log_in_dockers_format(overlay_pydock):
    p = overlay_pydock
    p("run", "--rm", "-l", "team=blue", "--name", "once", "busybox", "true", check=True)
    cid = p.out("run", "-d", "--name", "bg", "busybox", "sleep", "60").strip()
    p("pause", "bg", check=True)
    p("unpause", "bg", check=True)
    p("rename", "bg", "bg2", check=True)
    p("kill", "-s", "USR1", "bg2", check=True)  # sleep as PID 1 ignores it
    p("restart", "-t", "0", "bg2", check=True)
    p("stop", "-t", "0", "bg2", check=True)
    p("rm", "bg2", check=True)
    rows = past(p)
    once = [r for r in rows if "name=once" in r[3]]
    assert [r[1] for r in once] == ["create", "start", "die", "destroy"]
    assert once[0][3] == "image=busybox, name=once, team=blue"
    assert once[2][3] == "exitCode=0, image=busybox, name=once, team=blue"
    mine = [(a, attrs) for t, a, actor, attrs in rows if actor == cid]
    assert [a for a, _ in mine] == [
        "create", "start", "pause", "unpause", "rename", "kill",
        "kill", "kill", "die", "stop", "start", "restart",
        "kill", "kill", "die", "stop", "destroy",
    ]  # fmt: skip
    assert mine[4][1] == "image=busybox, name=bg2, oldName=/bg"
    assert mine[5][1] == "image=busybox, name=bg2, signal=10"
    assert mine[8][1] == "exitCode=137, image=busybox, name=bg2"
    # the log is a file under the root that outlives the commands that wrote it
    stored = [json.loads(x) for x in (p.root / "events.log").read_text().splitlines()]
    first = stored[0]
    assert first["Type"] == "container" and first["Action"] == "create"
    assert first["status"] == "create" and first["from"] == "busybox"
    assert first["Actor"]["Attributes"]["name"] == "once" and first["scope"] == "local"
    assert first["timeNano"] // 10**9 == first["time"]


def test_image_and_volume_events(overlay_pydock, scratch):
    p = overlay_pydock
    image_id = inspect(p, "busybox")["Id"]
    p("tag", "busybox", "mine:1", check=True)
    p("save", "-o", str(scratch / "b.tar"), "mine:1", check=True)
    p("rmi", "mine:1", check=True)
    p("load", "-i", str(scratch / "b.tar"), check=True)
    p("volume", "create", "data", check=True)
    p("volume", "rm", "data", check=True)
    rows = past(p)
    assert [(t, a) for t, a, _, _ in rows] == [
        ("image", "tag"), ("image", "save"), ("image", "untag"), ("image", "load"),
        ("volume", "create"), ("volume", "destroy"),
    ]  # fmt: skip
    assert rows[0][2:] == (image_id, "name=mine:1")
    assert rows[2][2:] == (image_id, f"name={image_id}")
    assert rows[4][2:] == ("data", "driver=local")


def test_filters_and_format(overlay_pydock):
    p = overlay_pydock
    p("run", "--name", "web1", "-l", "app=web", "busybox", "true", check=True)
    assert (
        p("run", "--name", "db1", "-l", "app=db", "busybox", "sh", "-c", "exit 3").returncode == 3
    )
    p("volume", "create", "v1", check=True)
    p("tag", "busybox", "other:2", check=True)
    assert actions(p, "--filter", "type=volume") == ["volume create"]
    assert actions(p, "-f", "event=die") == ["container die", "container die"]
    assert actions(p, "-f", "event=die", "-f", "event=create", "-f", "container=db") == [
        "container create", "container die"]  # fmt: skip
    assert actions(p, "-f", "label=app=web", "-f", "event=start") == ["container start"]
    assert actions(p, "-f", "label=app", "-f", "event=start") == ["container start"] * 2
    assert actions(p, "-f", "image=other") == ["image tag"]
    assert len(actions(p, "-f", "image=busybox")) == 6  # both containers' (the tag is other:2's)
    assert actions(p, "-f", "volume=v") == ["volume create"]
    assert actions(p, "-f", "network=x") == []
    fmt = "{{.Type}}/{{.Action}}/{{.Actor.Attributes.name}}/{{.Actor.Attributes.exitCode}}"
    out = p.out("events", "--since", "1h", "--until", "0s", "-f", "event=die", "--format", fmt)
    assert out == "container/die/web1/0\ncontainer/die/db1/3\n"
    js = p.out("events", "--since", "1h", "--until", "0s", "-f", "type=volume", "--format",
               "json")  # fmt: skip
    ev = json.loads(js)
    assert ev["Type"] == "volume" and ev["Actor"] == {"ID": "v1", "Attributes": {"driver": "local"}}
    res = p("events", "--filter", "colour=red")
    assert res.returncode == 1 and res.stderr == b"pydock: Invalid filter 'colour'\n"


def test_since_and_until_bound_the_stored_events(overlay_pydock):
    p = overlay_pydock
    p("volume", "create", "early", check=True)
    stamp = json.loads((p.root / "events.log").read_text().splitlines()[-1])["timeNano"]
    middle = f"{(stamp + 1) // 10**9}.{(stamp + 1) % 10**9:09d}"
    p("volume", "create", "late", check=True)
    assert [r[2] for r in past(p)] == ["early", "late"]
    since = p.out("events", "--since", middle, "--until", "0s").splitlines()
    assert len(since) == 1 and " volume create late " in since[0]
    until = p.out("events", "--since", "1h", "--until", middle).splitlines()
    assert len(until) == 1 and " volume create early " in until[0]


def test_follow_shows_new_events_until_interrupted(overlay_pydock):
    p = overlay_pydock
    p("volume", "create", "before", check=True)  # not shown: follow starts from now
    fmt = "{{.Action}} {{.Actor.ID}}"
    argv = [PYDOCK, "--root", str(p.root), *p._args(("events", "--format", fmt))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    log = str(p.root / "events.log")

    def following() -> bool:  # it has the log open (and has read to its end)
        fds = f"/proc/{proc.pid}/fd"
        for fd in os.listdir(fds):
            try:
                if os.readlink(f"{fds}/{fd}") == log:
                    return True
            except FileNotFoundError:
                continue  # closed meanwhile
        return False

    try:
        wait_for(following, what="events to open the log")
        p("volume", "create", "during", check=True)
        p("volume", "rm", "during", check=True)
        seen = bytearray()

        def two_lines() -> bool:
            if select.select([proc.stdout], [], [], 0.2)[0]:
                seen.extend(os.read(proc.stdout.fileno(), 4096))
            return seen.count(b"\n") >= 2

        wait_for(two_lines, what="two events")
        assert bytes(seen) == b"create during\ndestroy during\n"
        proc.send_signal(signal.SIGINT)  # our own child, by pid
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # --until in the future: follows, then ends by itself
    until = f"{time.time() + 1.5:.3f}"
    res = p("events", "--until", until, timeout=30)
    assert res.returncode == 0
