"""What a container's writable layer holds, seen through ``ps -s``, ``diff``, ``commit`` and
``cp``, on every storage driver, end to end through the ``pydock`` command."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

from helpers import mounts_below
from imagetar import Entry, docker_save, layer_tar


def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_ps_size_matches_what_the_container_wrote(pydock) -> None:
    p = pydock
    p(
        "run",
        "--name",
        "ws",
        "busybox",
        "sh",
        "-c",
        "head -c 1048576 /dev/urandom > /blob",
        check=True,
    )
    p("create", "--name", "idle", "busybox", "true", check=True)
    out = p.out("ps", "-a", "-s")
    assert out.splitlines()[0].split()[-1] == "SIZE"
    sizes = {}
    for line in p.out("ps", "-a", "--format", "{{.Names}}\t{{.Size}}").splitlines():
        name, size = line.split("\t")
        sizes[name] = size
    rw, _, virtual = sizes["ws"].partition(" (virtual ")
    assert rw.endswith("MB") and 1.04 <= float(rw[:-2]) <= 1.1, sizes["ws"]
    image = float(sizes["idle"].partition(" (virtual ")[2].rstrip("MB)"))
    assert abs(float(virtual.rstrip("MB)")) - (image + float(rw[:-2]))) < 0.02
    assert sizes["idle"].partition(" ")[0] == "0B"  # nothing written: Docker's 0B
    obj = p.out("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "ws").split()
    assert 1048576 <= int(obj[0]) < 1100000 and int(obj[1]) > int(obj[0])


def test_ps_size_of_a_running_container_is_measured_now(pydock) -> None:
    """Docker measures the writable layer when asked: 2 MiB written by a container that is
    still running shows as 2.1MB, a started container that wrote nothing as 0B (its mount
    point stubs hold no bytes), not the figure of the layer's last unmount."""
    p = pydock
    script = "head -c 2097152 /dev/urandom > /blob && touch /done; exec sleep 60"
    p("run", "-d", "--name", "ws", "busybox", "sh", "-c", script, check=True)
    p("run", "-d", "--name", "idle", "busybox", "sleep", "60", check=True)
    wait_for(lambda: p("exec", "ws", "test", "-f", "/done").returncode == 0)
    sizes = dict(
        line.split("\t")
        for line in p.out("ps", "-s", "--format", "{{.Names}}\t{{.Size}}").splitlines()
    )
    image = sizes["idle"].partition(" (virtual ")[2].rstrip(")")
    assert sizes["idle"] == f"0B (virtual {image})"
    assert sizes["ws"].startswith("2.1MB (virtual "), sizes
    rw = int(p.out("inspect", "-s", "-f", "{{.SizeRw}}", "ws"))
    assert rw == 2097152  # the blob; /done and the stubs are empty
    p("rm", "-f", "ws", "idle", check=True)


def test_diff_lists_added_changed_deleted(pydock) -> None:
    p = pydock
    script = "echo new > /tmp/added; echo more >> /etc/group; rm /etc/passwd; mkdir /d"
    p("run", "--name", "df", "busybox", "sh", "-c", script, check=True)
    lines = p.out("diff", "df").splitlines()
    assert "A /tmp/added" in lines
    assert "C /etc/group" in lines
    assert "D /etc/passwd" in lines
    assert "A /d" in lines
    assert "C /etc" in lines and "C /tmp" in lines
    assert lines == sorted(lines, key=lambda line: line[2:])
    assert p("diff", "nosuch").returncode == 1


def _bare_image(scratch: Path) -> Path:
    """An image of /bin alone: no /dev, /proc, /sys or /etc for the runtime to find."""
    entries = [
        Entry("bin/", type=tarfile.DIRTYPE, mode=0o755),
        Entry("bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755),
    ]
    entries += [Entry(f"bin/{n}", type=tarfile.SYMTYPE, link="busybox")
                for n in ("sh", "true", "echo", "mkdir", "cat", "sleep")]  # fmt: skip
    layer = layer_tar(entries)
    archive = scratch / "bare.tar"
    archive.write_bytes(docker_save([layer], "bare:1"))
    return archive


def _last_layer_names(p, image: str, scratch: Path) -> set[str]:
    """The entry names of ``image``'s top layer, from a ``save`` archive."""
    out = scratch / "saved.tar"
    p("save", "-o", str(out), image, check=True)
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        data = tar.extractfile(manifest[0]["Layers"][-1]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        return {m.name.rstrip("/") for m in layer.getmembers()}


def test_diff_and_commit_leave_out_the_runtime_stubs(pydock, scratch: Path) -> None:
    """Docker's init layer holds the mount points the runtime makes (/dev, /proc, /sys,
    /etc/hosts, /etc/hostname, /etc/resolv.conf, and /etc for them): a fresh container
    diffs empty and commits an empty layer; what the container writes to /etc/hosts goes
    to its own copy, not the layer."""
    p = pydock
    p("load", "-i", str(_bare_image(scratch)), check=True)
    p("run", "--name", "fresh", "bare:1", "true", check=True)
    assert p.out("diff", "fresh") == ""
    p("run", "-d", "--name", "up", "busybox", "sleep", "60", check=True)
    assert p.out("diff", "up") == ""  # busybox has /etc, without the three files
    p("rm", "-f", "up", check=True)
    script = "echo hi > /etc/hosts; mkdir /etc/app; echo x > /etc/app/conf; mkdir /w"
    p("run", "--name", "ws", "bare:1", "sh", "-c", script, check=True)
    assert p.out("diff", "ws").splitlines() == ["C /etc", "A /etc/app", "A /etc/app/conf", "A /w"]
    cid = p.out("inspect", "-f", "{{.Id}}", "ws").strip()
    assert (p.root / "containers" / cid / "hosts").read_text() == "hi\n"
    p("commit", "ws", "bare:w", check=True)
    assert _last_layer_names(p, "bare:w", scratch) == {"etc", "etc/app", "etc/app/conf", "w"}
    p("commit", "fresh", "bare:fresh", check=True)
    assert _last_layer_names(p, "bare:fresh", scratch) == set()
    # the committed image runs, and its /etc/app came along
    assert p.out("run", "--rm", "bare:w", "cat", "/etc/app/conf") == "x\n"


def test_commit_makes_an_image_with_the_layer_and_config(pydock) -> None:
    p = pydock
    p(
        "run", "--name", "src", "-e", "GREETING=hi", "busybox", "sh", "-c",
        "echo committed > /data.txt; rm /etc/passwd",
        check=True,
    )  # fmt: skip
    image_id = p.out(
        "commit", "-m", "add data", "-a", "Ada <ada@example.org>",
        "-c", 'CMD ["cat", "/data.txt"]', "-c", "ENV MODE=test", "-c", "LABEL stage=one",
        "src", "snap:v1",
    ).strip()  # fmt: skip
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert p.out("run", "--rm", "snap:v1") == "committed\n"
    env = p.out("run", "--rm", "snap:v1", "env").split()
    assert "GREETING=hi" in env and "MODE=test" in env
    assert p("run", "--rm", "snap:v1", "test", "-e", "/etc/passwd").returncode == 1  # a whiteout
    base = p.out("inspect", "-f", "{{json .RootFS.Layers}}", "busybox")
    new = p.out("inspect", "-f", "{{json .RootFS.Layers}}", "snap:v1")
    assert new.startswith(base.rstrip("]\n")) and new.count("sha256:") == base.count("sha256:") + 1
    assert p.out("inspect", "-f", "{{.Config.Labels.stage}}", "snap:v1").strip() == "one"
    hist = p.out("history", "--no-trunc", "snap:v1").splitlines()
    assert "add data" in hist[1]
    # an untagged commit prints only the id; committing an unchanged container twice gives
    # one layer shared by both images (the diff is the same bytes, so the same chain id)
    p("create", "--name", "empty", "busybox", "true", check=True)
    a = p.out("commit", "empty").strip()
    b = p.out("commit", "-c", "USER nobody", "empty").strip()
    assert a != b
    la = p.out("inspect", "-f", "{{json .RootFS.Layers}}", a)
    lb = p.out("inspect", "-f", "{{json .RootFS.Layers}}", b)
    assert la == lb
    bad = p("commit", "-c", "FROM scratch", "empty")
    assert bad.returncode == 1 and b"not a valid change command" in bad.stderr


def test_commit_of_a_running_container_pauses_it(overlay_pydock) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo x > /x; sleep 60", check=True)
    image = p.out("commit", "live", "live:snap").strip()
    assert p.out("inspect", "-f", "{{.State.Status}}", "live").strip() == "running"
    assert p.out("run", "--rm", image, "cat", "/x") == "x\n"


def _tar_of(data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in data.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mode = 0o640
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_cp_in_and_out(pydock, scratch: Path) -> None:
    p = pydock
    host = scratch / "host"
    (host / "tree" / "sub").mkdir(parents=True)
    (host / "tree" / "sub" / "f.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(host / "tree" / "sub" / "f.sh", 0o750)
    (host / "tree" / "link").symlink_to("sub/f.sh")
    (host / "one.txt").write_text("one\n")
    p("create", "--name", "box", "busybox", "cat", "/one.txt", "/tree/sub/f.sh", check=True)
    # into a stopped container: a file to a new name, a directory into an existing one
    p("cp", str(host / "one.txt"), "box:/one.txt", check=True)
    p("cp", str(host / "tree"), "box:/", check=True)
    p("cp", "-", "box:/tmp", input=_tar_of({"x/from-tar": b"tar\n"}), check=True)
    out = p.out("start", "-a", "box")
    assert out == "one\n#!/bin/sh\necho run\n"
    # out again, from the stopped container, with modes and links kept
    back = scratch / "back"
    back.mkdir()
    p("cp", "box:/tree", str(back), check=True)
    assert (back / "tree" / "sub" / "f.sh").read_text() == "#!/bin/sh\necho run\n"
    assert (back / "tree" / "sub" / "f.sh").stat().st_mode & 0o777 == 0o750
    assert os.readlink(back / "tree" / "link") == "sub/f.sh"
    p("cp", "box:/tmp/x/from-tar", str(back / "renamed"), check=True)
    assert (back / "renamed").read_text() == "tar\n"
    assert (back / "renamed").stat().st_mode & 0o777 == 0o640
    p("cp", "box:/tree/sub/.", str(back / "contents"), check=True)
    assert sorted(os.listdir(back / "contents")) == ["f.sh"]
    data = p("cp", "box:/tree", "-", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["tree", "tree/link", "tree/sub", "tree/sub/f.sh"]
    # errors as Docker words them
    res = p("cp", "box:/nope", str(back))
    assert res.returncode == 1 and b"Could not find the file /nope" in res.stderr
    res = p("cp", str(host / "tree"), "box:/one.txt")
    assert res.returncode == 1 and b"cannot copy a directory to a file" in res.stderr
    res = p("cp", str(host / "one.txt"), str(back))
    assert res.returncode != 0 and b"must specify at least one container" in res.stderr
    # a stopped container's root is unmounted again afterwards
    assert not [m for m in mounts_below(scratch / "root") if "/merged" in m]


def test_cp_into_a_running_container(overlay_pydock, scratch: Path) -> None:
    p = overlay_pydock
    p("run", "-d", "--name", "run", "busybox", "sleep", "60", check=True)
    f = scratch / "payload"
    f.write_bytes(b"live\n")
    p("cp", str(f), "run:/tmp/", check=True)
    data = p("cp", "run:/tmp/payload", "-", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("payload")
        assert member is not None and member.read() == b"live\n"


def test_cp_never_writes_outside_the_container_root(pydock, scratch: Path) -> None:
    p = pydock
    outside = scratch / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host\n")
    planted = (
        f"ln -s / /tmp/root; ln -s ../../../../../../../../{outside} /tmp/up; "
        f"ln -s {outside} /tmp/abs; ln -s {outside}/keep /tmp/filelink; mkdir -p {outside}"
    )
    p("run", "--name", "evil", "busybox", "sh", "-c", planted, check=True)
    payload = scratch / "payload"
    payload.write_text("pwned\n")
    # each link is followed *inside* the container: the files land in its own tree
    for dest in ("/tmp/up/a", "/tmp/abs/b", "/tmp/root/c", "/tmp/filelink"):
        p("cp", str(payload), f"evil:{dest}", check=True)
    p("cp", "-", "evil:/tmp/abs", input=_tar_of({"d": b"pwned\n"}), check=True)
    for evil in (
        _tar_of({"../../../../../../../../tmp/e": b"x"}),
        _tar_of({f"{outside}/f": b"x"}),
    ):
        res = p("cp", "-", "evil:/tmp", input=evil)
        assert res.returncode == 1
    assert sorted(os.listdir(outside)) == ["keep"]
    assert (outside / "keep").read_text() == "host\n"
    data = p("cp", f"evil:{outside}", "-", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = sorted(n.split("/", 1)[1] for n in tar.getnames() if "/" in n)
    assert names == ["a", "b", "d", "keep"]
    # copying out follows a link's target inside the container only (-L)
    (scratch / "got").mkdir()
    p("cp", "-L", "evil:/tmp/filelink", str(scratch / "got" / "f"), check=True)
    assert (scratch / "got" / "f").read_text() == "pwned\n"
    p("cp", "evil:/tmp/abs", str(scratch / "got" / "l"), check=True)
    assert os.readlink(scratch / "got" / "l") == str(outside)  # a link, copied as a link
