"""A real registry for tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1,
plus a fault-injecting, request-counting HTTP proxy in front of it.

The proxy is a test tool, not a mock: every request still goes to the real registry; the
proxy only counts them and, when a test asks, corrupts, truncates or fails some answers.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RegistryProcess:
    def __init__(self, workdir: Path, *, tls: tuple[Path, Path] | None = None,
                 htpasswd: Path | None = None, token: dict | None = None) -> None:  # fmt: skip
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        storage = workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: pydock-test-secret",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: pydock-test", f"    path: {htpasswd}"]
        if token:
            lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
        cfg = workdir / "config.yml"
        cfg.write_text("\n".join(lines) + "\n")
        self.log = open(workdir / "registry.log", "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {(workdir / 'registry.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("registry did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


#: fault(method, path) -> None (pass through) or one of "500", "corrupt", "truncate"
Fault = Callable[[str, str], str | None]


class Proxy:
    """HTTP proxy on 127.0.0.1 to a plain-HTTP registry: counts requests, injects faults."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, str]] = []
        self.fault: Fault | None = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def _any(self) -> None:
                proxy.requests.append((self.command, self.path))
                if self.headers.get("Range"):
                    proxy.ranges.append((self.path, self.headers["Range"]))
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                action = proxy.fault(self.command, self.path) if proxy.fault else None
                if action == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = self.headers.get("Host", "")
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if action == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if action == "truncate":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def blob_gets(self) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and "/blobs/" in p]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def push_blob(host: str, repo: str, data: bytes) -> str:
    """Upload ``data`` as a blob of ``repo`` (one monolithic POST + PUT); its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        r = conn.getresponse()
        r.read()
        assert r.status == 202, r.status
        location = r.getheader("Location") or ""
        path = urllib.parse.urlsplit(location)
        target = f"{path.path}?{path.query + '&' if path.query else ''}digest={digest}"
        conn.request("PUT", target, body=data, headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status
    finally:
        conn.close()
    return digest


def put_manifest(host: str, repo: str, ref: str, doc: dict) -> str:
    """PUT a hand-built manifest (its ``mediaType`` is the Content-Type); its digest."""
    body = json.dumps(doc).encode()
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("PUT", f"/v2/{repo}/manifests/{ref}", body=body,
                     headers={"Content-Type": doc["mediaType"]})  # fmt: skip
        r = conn.getresponse()
        r.read()
        assert r.status == 201, (r.status, r.reason)
    finally:
        conn.close()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def push_oci_image(
    host: str, repo: str, tag: str, config: bytes, blobs: list[tuple[bytes, str]]
) -> str:
    """Push an image as an OCI manifest: ``blobs`` are (layer blob, media type) pairs."""
    layers = [
        {"mediaType": mt, "digest": push_blob(host, repo, blob), "size": len(blob)}
        for blob, mt in blobs
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_blob(host, repo, config),
            "size": len(config),
        },
        "layers": layers,
    }
    return put_manifest(host, repo, tag, manifest)


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
