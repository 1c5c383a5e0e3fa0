"""Docker's "web app on localhost:8080" as a test: a busybox httpd published with -p and
-P, fetched from the host on 127.0.0.1, on the bridge's gateway and on the container's
own address; after rm nothing of it is left (veth, lease, rule, netns, table).
Only loopback and the test's own bridge subnet are ever contacted."""

from __future__ import annotations

import ipaddress
import json
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from imagetar import Entry, config_for, docker_save, layer_tar, sha
from netfix import free_port, leftovers, state, table_rules

HTTPD = "mkdir -p /www && echo hello-pydock > /www/index.html && exec httpd -f -p 8080 -h /www"


@pytest.fixture
def net(bridge_net):
    p, cfg, _ = bridge_net
    return p, cfg


def fetch(url: str, tries: int = 50) -> str:
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def container_ip(p, network: str, name: str) -> str:
    info = json.loads(p.out("network", "inspect", network))[0]
    for c in info["Containers"].values():
        if c["Name"] == name:
            return c["IPv4Address"].split("/")[0]
    raise AssertionError(f"{name} not on {network}")


def test_publish_reaches_httpd_from_localhost_gateway_and_bridge(net):
    p, cfg = net
    port = free_port()
    cid = p.out(
        "run", "-d", "--name", "web1", "-p", f"{port}:8080", "busybox", "sh", "-c", HTTPD
    ).strip()
    assert p.out("port", "web1") == f"8080/tcp -> 0.0.0.0:{port}\n"
    assert p.out("port", "web1", "8080") == f"0.0.0.0:{port}\n"
    ip = container_ip(p, "bridge", "web1")
    assert ipaddress.IPv4Address(ip) in cfg["subnet"]
    assert fetch(f"http://127.0.0.1:{port}/") == "hello-pydock\n"
    assert fetch(f"http://{cfg['gateway']}:{port}/") == "hello-pydock\n"
    assert fetch(f"http://{ip}:8080/") == "hello-pydock\n"
    tags = [r.get("comment") for r in table_rules(p.root)]
    assert f"ctr:{cid[:12]}" in tags
    # a second container cannot take the same host port
    res = p("run", "-d", "-p", f"{port}:8080", "busybox", "sleep", "5")
    assert res.returncode == 125 and b"already allocated" in res.stderr
    p.out("rm", "-f", "web1")
    assert leftovers(p.root, [cfg["bridge"]], [cid]) == []
    assert state(p.root)["containers"] == {}


def _exposing_image(scratch: Path) -> Path:
    layer = layer_tar(
        [
            Entry("bin/", type=tarfile.DIRTYPE, mode=0o755),
            Entry("bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755),
            Entry("bin/sh", type=tarfile.SYMTYPE, link="busybox"),
            Entry("bin/httpd", type=tarfile.SYMTYPE, link="busybox"),
            Entry("bin/mkdir", type=tarfile.SYMTYPE, link="busybox"),
            Entry("bin/echo", type=tarfile.SYMTYPE, link="busybox"),
        ]
    )
    cfg = json.loads(config_for([layer], ["sh", "-c", HTTPD]))
    cfg["config"]["ExposedPorts"] = {"8080/tcp": {}}
    cfg["rootfs"]["diff_ids"] = [sha(layer)]
    archive = scratch / "web.tar"
    archive.write_bytes(docker_save([layer], "web:1", config=json.dumps(cfg).encode()))
    return archive


def test_publish_all_maps_exposed_ports(net, scratch: Path):
    p, _ = net
    p.out("load", "-i", str(_exposing_image(scratch)))
    p.out("run", "-d", "--name", "web2", "-P", "web:1")
    line = p.out("port", "web2").strip()
    assert line.startswith("8080/tcp -> 0.0.0.0:")
    port = int(line.rsplit(":", 1)[1])
    assert fetch(f"http://127.0.0.1:{port}/") == "hello-pydock\n"


def test_bad_publish_is_one_line_125(net):
    p, _ = net
    for bad in ("http:80", "1.2.3:80:80", "80/sctp", "70000"):
        res = p("run", "--rm", "-p", bad, "busybox", "true")
        assert res.returncode == 125, bad
        assert len(res.stderr.decode().strip().splitlines()) == 1
