"""The /etc files' text (engine/network/etcfiles.py), without a container."""

from __future__ import annotations

from pathlib import Path

from pydock.engine.network import etcfiles


def test_resolv_drops_loopback_nameservers_only(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("search example\nnameserver 127.0.0.53\nnameserver 10.1.2.3\n"
                    "nameserver ::1\nnameserver fe80::1%eth0\nnameserver 127.9.9.9\n")  # fmt: skip
    assert etcfiles.resolv_text(str(host)) == (
        "search example\nnameserver 10.1.2.3\nnameserver fe80::1%eth0\n"
    )


def test_resolv_falls_back_when_only_loopback_is_listed(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.1\nnameserver 0:0:0:0:0:0:0:1\n")
    assert etcfiles.resolv_text(str(host)) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
