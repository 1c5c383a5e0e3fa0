"""``run``/``create`` pull a missing image (``--pull always|missing|never``), and Docker Hub's
names go to ``registry-mirrors`` first.

Docker Hub is never contacted: the default endpoint is tested by resolution alone
(endpoints.pull_endpoints opens no connection), and end to end through a mirror that is the
real registry on 127.0.0.1. Every mirror list in these tests ends with a live mirror, so a
pull never falls through to registry-1.docker.io.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pdcli import Pydock
from pydock.engine.distribution import reference as refmod
from pydock.engine.distribution.client import Registry
from pydock.engine.distribution.endpoints import Endpoint, pull_endpoints, search_target
from pydock.engine.distribution.manifests import Inspector
from pydock.engine.distribution.search import index_registry
from pydock.engine.errors import InvalidInput
from registryfix import REGISTRY_BIN, free_port

HUB = Endpoint("registry-1.docker.io", "https")


def _mirrors(root: Path, *urls: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "daemon.json").write_text(json.dumps({"registry-mirrors": list(urls)}))


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("busybox", [HUB]),
        ("user/x", [HUB]),
        ("docker.io/library/busybox", [HUB]),
        ("index.docker.io/user/x:v1", [HUB]),
        ("localhost:5000/x", [Endpoint("localhost:5000")]),
        ("127.0.0.1:5000/x", [Endpoint("127.0.0.1:5000")]),
        ("reg.example/team/x@sha256:" + "a" * 64, [Endpoint("reg.example")]),
    ],
)
def test_default_endpoints(scratch: Path, ref: str, want: list[Endpoint]) -> None:
    assert pull_endpoints(refmod.parse(ref), scratch) == want


def test_mirrors_come_first_for_docker_hub_names_only(scratch: Path) -> None:
    _mirrors(scratch, "http://127.0.0.1:5001", "https://mirror.example/")
    mirrors = [Endpoint("127.0.0.1:5001", "http", True), Endpoint("mirror.example", "https", True)]
    for ref in ("busybox", "user/x", "docker.io/library/busybox:1.36"):
        assert pull_endpoints(refmod.parse(ref), scratch) == [*mirrors, HUB]
    for ref in ("localhost:5000/x", "127.0.0.1:5000/x"):
        assert pull_endpoints(refmod.parse(ref), scratch) == [Endpoint(ref.split("/")[0])]


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ("ftp://m.example", "unsupported scheme"),
        ("http://m.example/path", "path, query, or fragment"),
        ("https://u:p@m.example", "username/password not allowed"),
        ("m.example", "unsupported scheme"),
    ],
)
def test_bad_mirror_is_one_clear_error(scratch: Path, mirror: str, message: str) -> None:
    _mirrors(scratch, mirror)
    with pytest.raises(InvalidInput, match=message):
        pull_endpoints(refmod.parse("busybox"), scratch)


def test_insecure_registries_take_names_and_cidrs(scratch: Path) -> None:
    (scratch / "daemon.json").write_text(
        json.dumps({"insecure-registries": ["10.0.0.0/8", "reg.example:5000"]})
    )
    # deciding costs no connection and no DNS query (names are matched as written)
    assert Registry("10.1.2.3:5000", root=scratch).insecure
    assert Registry("reg.example:5000", root=scratch).insecure
    assert not Registry("11.1.2.3:5000", root=scratch).insecure
    assert not Registry("reg.example", root=scratch).insecure
    assert Registry("[::1]:5000", root=scratch).insecure  # loopback always is


def test_search_and_manifest_inspect_never_use_mirrors(scratch: Path) -> None:
    """Docker searches Docker Hub's index itself, and docker's CLI (manifest inspect)
    knows no mirrors: both go to Docker Hub over verified HTTPS. Nothing connects here."""
    _mirrors(scratch, "http://127.0.0.1:5001")
    reg = index_registry(scratch, search_target("busybox")[0])
    assert (reg.endpoint, reg.scheme, reg.domain) == ("index.docker.io", "https", "docker.io")
    assert reg.url("/v1/search?q=busybox&n=25") == (
        "https://index.docker.io/v1/search?q=busybox&n=25"
    )
    local = index_registry(scratch, "127.0.0.1:5000")
    assert local.insecure and local.scheme is None  # probed: HTTPS, then plain HTTP
    hub = Inspector(scratch, insecure=False).registry(refmod.parse("busybox"))
    assert (hub.endpoint, hub.scheme) == ("registry-1.docker.io", "https")
    insecure = Inspector(scratch, insecure=True).registry(refmod.parse("127.0.0.1:5000/x"))
    assert (insecure.endpoint, insecure.scheme) == ("127.0.0.1:5000", None)
    assert Inspector(scratch, insecure=False).registry(refmod.parse("127.0.0.1:5000/x")).scheme == (
        "https"
    )


def test_search_index_from_term() -> None:
    assert search_target("busybox") == ("index.docker.io", "busybox")
    assert search_target("library/busybox") == ("index.docker.io", "busybox")
    assert search_target("docker.io/user/x") == ("index.docker.io", "user/x")
    assert search_target("user/x") == ("index.docker.io", "user/x")
    assert search_target("localhost:5000/x") == ("localhost:5000", "x")
    assert search_target("127.0.0.1:5000/a/b") == ("127.0.0.1:5000", "a/b")


# -- end to end ------------------------------------------------------------------------------

needs_registry = pytest.mark.skipif(
    not os.path.exists(REGISTRY_BIN), reason="docker-registry absent"
)


def _store(pd: Pydock) -> tuple:
    root = pd.root
    return (
        sorted(os.listdir(root / "images" / "sha256")),
        (root / "repositories.json").read_text(),
        sorted(os.listdir(root / "layerdb" / "vfs")),
        pd.out("ps", "-aq"),
    )


@needs_registry
def test_run_pulls_a_hub_name_through_the_mirror(pd: Pydock, registry) -> None:
    # The mirror holds Docker Hub's repository names: library/mybox is "mybox".
    pd.out("tag", "busybox", f"{registry.host}/library/mybox:v1")
    pd.out("push", f"{registry.host}/library/mybox:v1")
    pd.out("rmi", f"{registry.host}/library/mybox:v1", "busybox")  # nothing local is left
    dead = f"http://127.0.0.1:{free_port()}"
    _mirrors(pd.root, dead, f"http://{registry.host}")  # the first fails: the next serves
    res = pd("run", "--rm", "mybox:v1", "echo", "hi")
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert res.stdout == b"hi\n"  # stdout is the container's; the pull went to stderr
    lines = err.splitlines()
    assert lines[0] == "Unable to find image 'mybox:v1' locally"
    assert lines[1] == "v1: Pulling from library/mybox"
    assert any(x.endswith(": Pull complete") for x in lines)
    assert lines[-1] == "Status: Downloaded newer image for mybox:v1"
    assert pd.out("images", "--format", "{{.Repository}}:{{.Tag}}").split() == ["mybox:v1"]
    # present now: no pull, no message
    again = pd("run", "--rm", "mybox:v1", "true")
    assert again.returncode == 0 and again.stderr == b""


@needs_registry
def test_create_pull_policies(pd: Pydock, registry) -> None:
    name = f"{registry.host}/app:v1"
    pd.out("tag", "busybox", name)
    pd.out("push", name)
    pd.out("rmi", name)
    before = _store(pd)
    never = pd("create", "--pull", "never", name, "true")
    assert never.returncode == 125 and never.stdout == b""
    assert never.stderr.decode() == f"pydock: Error response from daemon: No such image: {name}\n"
    bad = pd("create", "--pull", "sometimes", name, "true")
    assert bad.returncode == 125
    assert bad.stderr.decode().strip() == (
        'pydock: invalid pull option: \'sometimes\': must be one of "always", "missing" or "never"'
    )
    assert _store(pd) == before
    created = pd("create", name, "true")  # missing: pulls, then prints only the id
    assert created.returncode == 0, created.stderr
    cid = created.stdout.decode().strip()
    assert len(cid) == 64 and created.stdout.decode().count("\n") == 1
    assert created.stderr.decode().startswith(f"Unable to find image '{name}' locally\n")
    # always: pulls although the image is here (and finds it up to date)
    always = pd("run", "--rm", "--pull", "always", name, "true")
    assert always.returncode == 0, always.stderr
    err = always.stderr.decode()
    assert "Unable to find image" not in err
    assert f"Status: Image is up to date for {name}" in err


@needs_registry
def test_unreachable_registry_is_one_line_and_changes_nothing(pd: Pydock) -> None:
    port = free_port()  # nothing listens there
    before = _store(pd)
    res = pd("run", "--rm", f"127.0.0.1:{port}/x", "true")
    assert res.returncode == 125
    assert res.stderr.decode().splitlines() == [
        f"Unable to find image '127.0.0.1:{port}/x:latest' locally",
        f'pydock: Error response from daemon: Get "http://127.0.0.1:{port}/v2/": dial tcp '
        f"127.0.0.1:{port}: connect: connection refused",
    ]
    assert _store(pd) == before


@needs_registry
def test_unknown_tag_fails_the_run_cleanly(pd: Pydock, registry) -> None:
    before = _store(pd)
    res = pd("run", "--rm", f"{registry.host}/nothing:here", "true")
    assert res.returncode == 125
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("pydock: Error response from daemon: ")
    assert "manifest unknown" in lines[1]
    assert _store(pd) == before


@needs_registry
def test_pull_of_a_hub_name_goes_through_the_mirror(pd: Pydock, registry) -> None:
    pd.out("tag", "busybox", f"{registry.host}/library/mybox:latest")
    pd.out("push", f"{registry.host}/library/mybox:latest")
    _mirrors(pd.root, f"http://{registry.host}")
    lines = pd.out("pull", "mybox").splitlines()
    assert lines[:2] == ["Using default tag: latest", "latest: Pulling from library/mybox"]
    assert lines[-2:] == ["Status: Downloaded newer image for mybox:latest",
                          "docker.io/library/mybox:latest"]  # fmt: skip
    assert pd.out("pull", "-q", "docker.io/library/mybox:latest") == (
        "docker.io/library/mybox:latest\n"
    )


def test_info_shows_index_insecure_registries_and_mirrors(pd: Pydock) -> None:
    (pd.root / "daemon.json").write_text(json.dumps({
        "registry-mirrors": ["http://127.0.0.1:5001", "https://mirror.example/"],
        "insecure-registries": ["10.0.0.0/8", "reg.example:5000"],
    }))  # fmt: skip
    out = pd.out("info")
    tail = out[out.index("Registry: ") :].splitlines()
    assert tail == [
        "Registry: https://index.docker.io/v1/",
        "Insecure Registries:",
        " reg.example:5000",
        " 10.0.0.0/8",
        " 127.0.0.0/8",
        "Registry Mirrors:",
        " http://127.0.0.1:5001/",
        " https://mirror.example/",
    ]
    (pd.root / "daemon.json").write_text(json.dumps({"registry-mirrors": ["ftp://x"]}))
    res = pd("info")
    assert res.returncode == 1 and res.stdout == b""  # fails before printing anything
    assert "invalid mirror: unsupported scheme 'ftp'" in res.stderr.decode()
    run = pd("run", "--rm", "mybox", "true")  # a pull with a bad mirror list: one line, 125
    assert run.returncode == 125
    assert run.stderr.decode().splitlines()[1:] == [
        "pydock: Error response from daemon: invalid mirror: unsupported scheme 'ftp' in 'ftp://x'"
    ]
