"""Docker's management-command spellings (``image ls|list``, ``container export`` ...): each
runs the top-level command's own parser and handler, so flags and output are the same."""

from __future__ import annotations

import json

import pytest

CONTAINER_WORDS = (
    "ls", "list", "ps", "run", "create", "start", "stop", "restart", "kill", "rm", "logs",
    "inspect", "exec", "attach", "wait", "top", "stats", "pause", "unpause", "rename", "diff",
    "commit", "cp", "port", "export", "update", "prune",
)  # fmt: skip
IMAGE_WORDS = ("list", "ls", "remove", "rm", "load", "save", "inspect", "pull", "push", "tag",
               "history", "import", "prune")  # fmt: skip


@pytest.mark.parametrize(("group", "word"), [("container", w) for w in CONTAINER_WORDS]
                         + [("image", w) for w in IMAGE_WORDS])  # fmt: skip
def test_every_docker_alias_is_a_command(pd, group, word):
    res = pd(group, word, "--help")
    assert res.returncode == 0, res.stderr
    assert b"usage: pydock" in res.stdout


def test_image_list_remove_load_are_images_rmi_load(pd, tmp_path):
    assert pd.out("image", "list", "--format", "{{.Repository}}:{{.Tag}}") == pd.out(
        "images", "--format", "{{.Repository}}:{{.Tag}}"
    )
    archive = tmp_path / "bb.tar"
    pd("save", "-o", str(archive), "busybox", check=True)
    pd("tag", "busybox", "other:1", check=True)
    assert pd.out("image", "remove", "other:1") == "Untagged: other:1\n"
    pd("rmi", "busybox", check=True)
    res = pd("image", "load", "-i", str(archive))
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == "Loaded image: busybox:latest\n"
    assert pd.out("image", "ls", "-q") != ""


def test_container_inspect_takes_containers_only(pd):
    cid = pd.out("create", "--name", "c1", "busybox").strip()
    assert json.loads(pd.out("container", "inspect", "c1"))[0]["Id"] == cid
    res = pd("container", "inspect", "busybox")  # an image: not a container
    assert res.returncode == 1
    assert res.stderr.decode() == "Error: No such container: busybox\n"
    res = pd("image", "inspect", "c1")
    assert res.returncode == 1
    assert res.stderr.decode() == "Error: No such image: c1\n"


def test_container_prune_parses_as_docker(pd):
    res = pd("container", "prune", "--bogus")
    assert res.returncode == 125
    assert res.stderr.decode().count("\n") == 1  # one line, no argparse usage block
    cid = pd.out("create", "busybox").strip()
    res = pd("container", "prune", "-f")
    assert res.returncode == 0
    assert res.stdout.decode().startswith(f"Deleted Containers:\n{cid}\n\n")
