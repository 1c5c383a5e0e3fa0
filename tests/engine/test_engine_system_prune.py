"""``system prune``: Docker 20.10's warning, the prompt that refuses a non-answer, the
sections in Docker's order and its filters; the stores stay as they were on a refusal or
a bad filter."""

from __future__ import annotations

import json
import re

import pytest

WARNING = (
    "WARNING! This will remove:\n"
    "  - all stopped containers\n"
    "  - all networks not used by at least one container\n"
    "{volumes}"
    "  - all dangling images\n"
    "  - all dangling build cache\n"
    "{filters}"
    "\n"
    "Are you sure you want to continue? [y/N] "
)


def _state(pd) -> dict:
    return {
        "containers": sorted(pd.out("ps", "-aq", "--no-trunc").split()),
        "images": sorted(pd.out("images", "-q", "--no-trunc").split()),
        "tags": sorted(pd.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()),
        "networks": sorted(pd.out("network", "ls", "--format", "{{.Name}}").split()),
        "volumes": sorted(pd.out("volume", "ls", "-q").split()),
    }


@pytest.fixture
def world(pd) -> dict:
    """A stopped and a running container, an unused network, a used and an unused volume,
    a dangling image and an unused tagged one."""
    stopped = pd.out("create", "--label", "keep=no", "busybox", "true").strip()
    running = pd.out("run", "-d", "-v", "used:/d", "busybox", "sleep", "60").strip()
    pd("volume", "create", "spare", check=True)
    pd("network", "create", "spare-net", check=True)
    src = pd.out("create", "busybox").strip()
    dangling = pd.out("commit", src).strip()  # no tag: dangling
    extra = pd.out("commit", src, "extra:1").strip()
    pd("rm", src, check=True)
    return {"stopped": stopped, "running": running, "dangling": dangling, "extra": extra}


@pytest.mark.parametrize("answer", [b"n\n", b"", b"yes\n"])
def test_prompt_refuses_and_changes_nothing(pd, world, answer):
    before = _state(pd)
    res = pd("system", "prune", "--volumes", "--filter", "label=a=b", input=answer)
    assert res.returncode == 0, res.stderr
    filters = "\n  Items to be pruned will be filtered with:\n  - label=a=b\n"
    assert res.stdout.decode() == WARNING.format(
        volumes="  - all volumes not used by at least one container\n", filters=filters
    )
    assert _state(pd) == before


def test_prune_sections_in_docker_order(pd, world):
    res = pd("system", "prune", input=b"y\n")
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert out.startswith(WARNING.format(volumes="", filters=""))
    body = out[len(WARNING.format(volumes="", filters="")) :]
    assert body.startswith(
        f"Deleted Containers:\n{world['stopped']}\n\nDeleted Networks:\nspare-net\n\n"
        f"Deleted Images:\ndeleted: {world['dangling']}\n"
    )
    assert re.search(r"\n\nTotal reclaimed space: [0-9.]+[kMG]?B\n$", body)
    after = _state(pd)
    assert after["containers"] == [world["running"]]
    assert world["dangling"] not in after["images"] and world["extra"] in after["images"]
    assert after["volumes"] == ["spare", "used"]  # volumes only with --volumes
    assert "spare-net" not in after["networks"]


def test_prune_all_and_volumes(pd, world):
    out = pd.out("system", "prune", "-a", "-f", "--volumes")
    assert "Deleted Volumes:\nspare\n\n" in out
    assert "untagged: extra:1\n" in out and f"deleted: {world['extra']}\n" in out
    assert out.index("Deleted Volumes:") < out.index("Deleted Images:")
    after = _state(pd)
    assert after["volumes"] == ["used"]  # the running container's
    assert after["tags"] == ["busybox:latest"]  # the running container's image stays
    assert json.loads(pd.out("inspect", world["running"]))[0]["State"]["Running"]


def test_filters(pd, world):
    before = _state(pd)
    res = pd("system", "prune", "-f", "--volumes", "--filter", "until=1h")
    assert (res.returncode, res.stderr.decode()) == (
        1, 'pydock: ERROR: The "until" filter is not supported with "--volumes"\n',
    )  # fmt: skip
    res = pd("system", "prune", "-f", "--filter", "bogus=1")
    assert res.returncode == 1 and res.stdout == b""
    assert _state(pd) == before
    # label!=keep: the stopped container carries keep=no and stays; the images carry no
    # label and go (dangling only)
    out = pd.out("system", "prune", "-f", "--filter", "label!=keep")
    assert "Deleted Containers:" not in out
    assert f"deleted: {world['dangling']}" in out
    assert world["stopped"] in _state(pd)["containers"]
    out = pd.out("system", "prune", "-f", "--filter", "label=keep=no")
    assert out.startswith(f"Deleted Containers:\n{world['stopped']}\n\n")
