"""``manifest inspect`` and ``search`` against registries on 127.0.0.1.

manifest inspect runs against the real registry (and, where the docker CLI is installed,
is compared byte for byte with ``docker manifest inspect``, which needs no daemon). search
runs against the real registry, which has no search API, and against FakeSearchIndex: a
stand-in for Docker Hub's index (which cannot be reached here) that answers the v1 search
API with fixed results and records the queries it gets.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdcli import Pydock
from pydock.engine.distribution.gojson import indent
from registryfix import REGISTRY_BIN, free_port, put_manifest

needs_registry = pytest.mark.skipif(
    not os.path.exists(REGISTRY_BIN), reason="docker-registry absent"
)


def test_go_indent_keeps_tokens() -> None:
    raw = b' {"a" : [ ], "b":{},"c":"x\\u003c\\"y", "d": [1, -2.50e3 ,true,null]}\n'
    assert indent(raw, "\t") == (
        '{\n\t"a": [],\n\t"b": {},\n\t"c": "x\\u003c\\"y",\n\t"d": [\n\t\t1,\n\t\t-2.50e3,'
        "\n\t\ttrue,\n\t\tnull\n\t]\n}\n"
    )


# -- manifest inspect ----------------------------------------------------------------------


def _get(host: str, path: str, accept: str) -> tuple[bytes, str]:
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        r = conn.getresponse()
        return r.read(), r.getheader("Content-Type", "")
    finally:
        conn.close()


@pytest.fixture
def pushed(pd: Pydock, registry) -> dict:
    """busybox as HOST/bb:v1, a Docker manifest list and an OCI index naming it."""
    host = registry.host
    pd.out("tag", "busybox", f"{host}/bb:v1")
    pd.out("push", f"{host}/bb:v1")
    v2 = "application/vnd.docker.distribution.manifest.v2+json"
    raw, _ = _get(host, "/v2/bb/manifests/v1", v2)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    entries = [
        {"mediaType": v2, "digest": digest, "size": len(raw),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": v2, "digest": digest, "size": len(raw),
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    ]  # fmt: skip
    listed = "application/vnd.docker.distribution.manifest.list.v2+json"
    put_manifest(host, "bb", "list", {"schemaVersion": 2, "mediaType": listed,
                                      "manifests": entries})  # fmt: skip
    oci = "application/vnd.oci.image.index.v1+json"
    put_manifest(host, "bb", "oci", {"schemaVersion": 2, "mediaType": oci, "manifests": entries})
    return {"host": host, "raw": raw, "digest": digest, "entries": entries, "v2": v2}


@needs_registry
def test_manifest_inspect_image_and_lists(pd: Pydock, pushed: dict) -> None:
    host, raw = pushed["host"], pushed["raw"]
    out = pd.out("manifest", "inspect", "--insecure", f"{host}/bb:v1")
    assert out == json.dumps(json.loads(raw), indent="\t") + "\n"  # the registry's bytes
    verbose = json.loads(pd.out("manifest", "inspect", "--insecure", "-v", f"{host}/bb:v1"))
    assert list(verbose) == ["Ref", "Descriptor", "Raw", "SchemaV2Manifest"]
    assert verbose["Ref"] == f"{host}/bb:v1"
    platform = {"architecture": "amd64", "os": "linux"}
    assert verbose["Descriptor"] == {"mediaType": pushed["v2"], "digest": pushed["digest"],
                                     "size": len(raw), "platform": platform}  # fmt: skip
    assert base64.b64decode(verbose["Raw"]) == raw
    assert verbose["SchemaV2Manifest"] == json.loads(raw)
    want = {"schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [{"mediaType": e["mediaType"], "size": e["size"], "digest": e["digest"],
                           "platform": e["platform"]} for e in pushed["entries"]]}  # fmt: skip
    for tag in ("list", "oci"):  # an OCI index prints as the Docker list docker rebuilds
        out = pd.out("manifest", "inspect", "--insecure", f"{host}/bb:{tag}")
        assert out == json.dumps(want, indent="   ") + "\n"
        records = json.loads(pd.out("manifest", "inspect", "--insecure", "-v", f"{host}/bb:{tag}"))
        assert [r["Ref"] for r in records] == [f"{host}/bb:{tag}@{pushed['digest']}"] * 2
        assert [r["Descriptor"]["platform"] for r in records] == [
            e["platform"] for e in pushed["entries"]
        ]


@needs_registry
@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_manifest_inspect_matches_docker_cli(pd: Pydock, pushed: dict, scratch: Path) -> None:
    env = {**os.environ, "DOCKER_CONFIG": str(scratch / "docker-config")}
    for tag in ("v1", "list", "oci"):
        for extra in ([], ["-v"]):
            args = ["manifest", "inspect", "--insecure", *extra, f"{pushed['host']}/bb:{tag}"]
            docker = subprocess.run(["docker", *args], capture_output=True, env=env, timeout=60)
            assert docker.returncode == 0, docker.stderr
            assert pd.out(*args).encode() == docker.stdout, (tag, extra)


@needs_registry
def test_manifest_inspect_errors(pd: Pydock, pushed: dict) -> None:
    host = pushed["host"]
    for args, line in [
        (["--insecure", f"{host}/bb:nope"], f"no such manifest: {host}/bb:nope"),
        (["--insecure", f"{host}/other"], f"no such manifest: {host}/other:latest"),
        ([f"{host}/bb:v1"], f"no such manifest: {host}/bb:v1"),  # plain HTTP needs --insecure
    ]:
        res = pd("manifest", "inspect", *args)
        assert (res.returncode, res.stdout, res.stderr.decode()) == (1, b"", f"pydock: {line}\n")
    port = free_port()
    res = pd("manifest", "inspect", "--insecure", f"127.0.0.1:{port}/x")
    assert res.returncode == 1
    assert res.stderr.decode().startswith(
        "pydock: failed to configure transport: error pinging v2 registry: Get "
    )
    assert res.stderr.decode().endswith(f"127.0.0.1:{port}: connect: connection refused\n")
    for args in ([], ["a", "b", "c"]):
        res = pd("manifest", "inspect", *args)
        assert res.returncode == 1
        assert res.stderr.decode().startswith(
            'pydock: "pydock manifest inspect" requires at least 1 and at most 2 arguments.'
        )


# -- search --------------------------------------------------------------------------------


class FakeSearchIndex:
    """Fake: Docker Hub's v1 search API on 127.0.0.1 (the real index is unreachable here)."""

    RESULTS = [
        {"name": "tiny/box", "description": "A small box", "star_count": 3,
         "is_official": False, "is_automated": True},
        {"name": "busybox", "description": "Busybox base image, with a description\nthat goes "
         "on and on for quite a while", "star_count": 3000, "is_official": True,
         "is_automated": False},
        {"name": "user/busybox-extra", "description": "", "star_count": 12,
         "is_official": False, "is_automated": False},
    ]  # fmt: skip

    def __init__(self) -> None:
        self.queries: list[dict] = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/v1/search":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                q = urllib.parse.parse_qs(url.query)
                index.queries.append(q)
                body = json.dumps({"num_results": 3, "query": q["q"][0],
                                   "results": index.RESULTS}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index() -> Iterator[FakeSearchIndex]:
    idx = FakeSearchIndex()
    try:
        yield idx
    finally:
        idx.stop()


def test_search_table_filters_limit_format(pd: Pydock, index: FakeSearchIndex) -> None:
    term = f"{index.host}/busybox"
    assert pd.out("search", term) == (
        "NAME                 DESCRIPTION                                     STARS     "
        "OFFICIAL   AUTOMATED\n"
        "busybox              Busybox base image, with a description that …   3000      "
        "[OK]       \n"
        "user/busybox-extra                                                   12        "
        "           \n"
        "tiny/box             A small box                                     3                    "
        "[OK]\n"
    )
    assert index.queries[-1] == {"q": ["busybox"], "n": ["25"]}
    no_trunc = pd.out("search", "--no-trunc", "--format", "{{.Description}}", term)
    assert no_trunc.splitlines()[0] == (
        "Busybox base image, with a description that goes on and on for quite a while"
    )
    fmt = "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}"
    assert pd.out("search", "--format", fmt, "--filter", "is-official=true", term) == (
        "busybox|3000|[OK]|\n"
    )
    assert pd.out("search", "--format", "{{.Name}}", "-f", "stars=10", term).split() == [
        "busybox", "user/busybox-extra",
    ]  # fmt: skip
    assert pd.out("search", "--format", "{{.Name}}", "-f", "is-automated=true", term) == (
        "tiny/box\n"
    )
    pd.out("search", "--limit", "7", term)
    assert index.queries[-1]["n"] == ["7"]


def test_search_bad_input(pd: Pydock, index: FakeSearchIndex) -> None:
    term = f"{index.host}/busybox"
    asked = len(index.queries)
    for args, code, line in [
        (["--filter", "color=red"], 1, "Error response from daemon: Invalid filter 'color'"),
        (["-f", "is-official=maybe"], 1,
         "Error response from daemon: Invalid filter 'is-official=[maybe]'"),
        (["-f", "stars=many"], 1, "Error response from daemon: Invalid filter 'stars=many'"),
        (["--limit", "0"], 1,
         "Error response from daemon: Limit 0 is outside the range of [1, 100]"),
        (["-f", "nofilter"], 125, 'invalid argument "nofilter" for "-f, --filter" flag: bad '
         "format of filter (expected name=value)"),
    ]:  # fmt: skip
        res = pd("search", *args, term)
        assert (res.returncode, res.stdout, res.stderr.decode()) == (code, b"", f"pydock: {line}\n")
    assert len(index.queries) == asked  # refused before asking


@needs_registry
def test_search_on_a_v2_registry_says_it_has_no_search(pd: Pydock, registry) -> None:
    res = pd("search", f"{registry.host}/busybox")
    assert res.returncode == 1 and res.stdout == b""
    err = res.stderr.decode()
    assert err.count("\n") == 1
    assert err.startswith("pydock: Error response from daemon: Unexpected status code 404: ")
    assert f"{registry.host} has no search API" in err
