"""``rmi`` end to end, case by case against Docker 20.10's rules (daemon/images/image_delete.go):
by tag with other tags, by tag with a container, by id with several tags, by id with a
stopped or a running container, with and without ``-f``; the ``Untagged:`` / ``Deleted:``
lines and the exact conflict messages. A refused ``rmi`` changes nothing.
"""

from __future__ import annotations

from pdcli import Pydock


def image_id(pd: Pydock, ref: str = "busybox") -> str:
    return pd.out("image", "inspect", "-f", "{{.Id}}", ref).strip()


def tags(pd: Pydock) -> list[str]:
    return sorted(pd.out("images", "--format", "{{.Repository}}:{{.Tag}}").split())


def test_rmi_force_by_id_refuses_a_running_container(pd: Pydock) -> None:
    iid = image_id(pd)
    pd.out("tag", "busybox", "other:1")
    cid = pd.out("run", "-d", "busybox", "sleep", "60").strip()
    for ref in (iid[7:19], iid):
        res = pd("rmi", "-f", ref)
        assert res.returncode == 1, res.stdout
        assert res.stdout == b""
        assert res.stderr.decode() == (
            f"Error response from daemon: conflict: unable to delete {iid[7:19]} "
            f"(cannot be forced) - image is being used by running container {cid[:12]}\n"
        )
        assert tags(pd) == ["busybox:latest", "other:1"]  # nothing was untagged
    # by tag, -f untags (the image stays, dangling, for the running container) as Docker
    res = pd("rmi", "-f", "busybox", "other:1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines() == ["Untagged: busybox:latest", "Untagged: other:1"]
    assert pd.out("images", "--format", "{{.ID}} {{.Repository}} {{.Tag}}").split() == [
        iid[7:19], "<none>", "<none>"
    ]  # fmt: skip
    assert pd.out("exec", cid, "echo", "alive").strip() == "alive"
    pd.out("rm", "-f", cid)


def test_rmi_by_id_with_a_stopped_container(pd: Pydock) -> None:
    iid = image_id(pd)
    cid = pd.out("create", "busybox", "echo", "still here").strip()
    res = pd("rmi", iid[7:19])
    assert res.returncode == 1
    assert res.stderr.decode() == (
        f"Error response from daemon: conflict: unable to delete {iid[7:19]} "
        f"(must be forced) - image is being used by stopped container {cid[:12]}\n"
    )
    res = pd("rmi", "busybox")  # its only tag: the image would be left dangling
    assert res.returncode == 1
    assert res.stderr.decode() == (
        'Error response from daemon: conflict: unable to remove repository reference "busybox" '
        f"(must force) - container {cid[:12]} is using its referenced image {iid[7:19]}\n"
    )
    assert tags(pd) == ["busybox:latest"]
    # forced: Docker untags and deletes the image; the container keeps its layers and runs
    res = pd("rmi", "-f", iid[7:19])
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines() == ["Untagged: busybox:latest", f"Deleted: {iid}"]
    assert pd.out("images", "-q") == ""
    assert pd("image", "inspect", iid).returncode == 1
    assert pd.out("start", "-a", cid).strip() == "still here"
    pd.out("rm", cid)
    # the layers went with the last container, through the store's garbage collection
    out = pd.out("image", "prune", "-f")
    assert out.strip() != "Total reclaimed space: 0B"
    assert not list((pd.root / "layerdb" / "vfs").iterdir())


def test_rmi_tag_of_an_image_with_other_tags_only_untags(pd: Pydock) -> None:
    iid = image_id(pd)
    pd.out("tag", "busybox", "other:1")
    pd.out("tag", "busybox", "127.0.0.1:5000/a/b:v1")
    cid = pd.out("create", "busybox", "true").strip()  # does not matter: other tags remain
    res = pd("rmi", "other:1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == "Untagged: other:1\n"
    assert tags(pd) == ["127.0.0.1:5000/a/b:v1", "busybox:latest"]
    pd.out("rm", cid)
    # by id with tags in two repositories: must be forced
    res = pd("rmi", iid[7:19])
    assert res.returncode == 1
    assert res.stderr.decode() == (
        f"Error response from daemon: conflict: unable to delete {iid[7:19]} "
        "(must be forced) - image is referenced in multiple repositories\n"
    )
    assert tags(pd) == ["127.0.0.1:5000/a/b:v1", "busybox:latest"]
    res = pd("rmi", "-f", iid)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert sorted(lines[:2]) == ["Untagged: 127.0.0.1:5000/a/b:v1", "Untagged: busybox:latest"]
    assert lines[2] == f"Deleted: {iid}"
    assert len(lines) == 4 and lines[3].startswith("Deleted: sha256:")  # its one layer
    assert pd.out("images", "-q") == ""


def test_rmi_by_id_with_one_tag_and_the_last_tag(pd: Pydock) -> None:
    iid = image_id(pd)
    pd.out("tag", "busybox", "other:1")
    assert pd.out("rmi", "busybox") == "Untagged: busybox:latest\n"
    out = pd.out("rmi", iid[7:19]).splitlines()  # one tag left: no -f needed
    assert out[:2] == ["Untagged: other:1", f"Deleted: {iid}"]


def test_rmi_errors_come_last_and_force_forgives_missing_images(pd: Pydock) -> None:
    pd.out("tag", "busybox", "other:1")
    res = pd("rmi", "nosuch:1", "other:1")
    assert res.returncode == 1
    assert res.stdout.decode() == "Untagged: other:1\n"
    assert res.stderr.decode() == "Error: No such image: nosuch:1\n"
    res = pd("rmi", "-f", "nosuch:1")  # Docker: reported, but not a failure with -f
    assert res.returncode == 0
    assert res.stderr.decode() == "Error: No such image: nosuch:1\n"
