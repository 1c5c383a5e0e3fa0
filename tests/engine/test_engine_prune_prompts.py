"""Every prompt that guards a deletion, fed through a pipe as scripts do (docker/cli 20.10's
command.PromptForConfirmation): only ``y``/``Y`` proceeds; ``n``, ``yes``, an empty line and
end of input all refuse, delete nothing, exit 0, and print what Docker prints after the
question: ``Total reclaimed space: 0B`` (image, container, volume prune) or nothing
(network prune).
"""

from __future__ import annotations

import pytest
from pdcli import Pydock

IMAGE_Q = (
    "WARNING! This will remove all images without at least one container associated to "
    "them.\nAre you sure you want to continue? [y/N] "
)
REFUSALS = [b"n\n", b"", b"yes\n", b"\n", b" y\n", b"N\n"]


@pytest.mark.parametrize("answer", REFUSALS)
def test_image_prune_refuses_without_a_y(pd: Pydock, answer: bytes) -> None:
    before = pd.out("images", "-q", "--no-trunc")
    res = pd("image", "prune", "-a", input=answer)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == IMAGE_Q + "Total reclaimed space: 0B\n"
    assert res.stderr == b""
    assert pd.out("images", "-q", "--no-trunc") == before != ""


def test_image_prune_proceeds_on_y(pd: Pydock) -> None:
    iid = pd.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    res = pd("image", "prune", "-a", input=b"Y\n")
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert out.startswith(IMAGE_Q + "Deleted Images:\n")
    assert f"deleted: {iid}" in out and "untagged: busybox:latest" in out
    assert pd.out("images", "-q") == ""


def test_dangling_prune_question(pd: Pydock) -> None:
    res = pd("image", "prune", input=b"")
    assert res.stdout.decode() == (
        "WARNING! This will remove all dangling images.\n"
        "Are you sure you want to continue? [y/N] Total reclaimed space: 0B\n"
    )


def test_container_volume_network_prune_refuse(pd: Pydock) -> None:
    cid = pd.out("create", "busybox", "true").strip()
    pd.out("volume", "create", "keepme")
    for answer in (b"", b"yes\n", b"n\n"):
        res = pd("container", "prune", input=answer)
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode() == (
            "WARNING! This will remove all stopped containers.\n"
            "Are you sure you want to continue? [y/N] Total reclaimed space: 0B\n"
        )
        assert pd.out("ps", "-aq", "--no-trunc").split() == [cid]
        res = pd("volume", "prune", "--all", input=answer)
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode().endswith(
            "Are you sure you want to continue? [y/N] Total reclaimed space: 0B\n"
        )
        assert pd.out("volume", "ls", "-q").split() == ["keepme"]
        res = pd("network", "prune", input=answer)
        assert res.returncode == 0, res.stderr
        assert res.stdout.decode() == (
            "WARNING! This will remove all custom networks not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
    out = pd.out("container", "prune", input=b"y\n")
    assert f"Deleted Containers:\n{cid}\n" in out
    assert "keepme" in pd.out("volume", "prune", "--all", input=b"y\n")
