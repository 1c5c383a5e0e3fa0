"""Deleting a link by name with one rtnetlink message, and flushing a namespace's TCP
metrics with generic netlink; stdlib only.

Teardown only ever deletes links (a container's host veth, an idle bridge); pulling in
pyroute2 for that costs ~100 ms of imports, while the request is 40 bytes: an
``RTM_DELLINK`` whose ``ifinfomsg`` has index 0 and an ``IFLA_IFNAME`` attribute, which
the kernel resolves by name (rtnetlink(7); net/core/rtnetlink.c rtnl_dellink). Deleting
one end of a veth pair deletes its peer too (veth(4)), whichever namespace it sits in,
synchronously, so nothing is left for the namespace's asynchronous cleanup to race with.

``_socket`` is used instead of ``socket``: the wrapper module's enum conversions cost
~3 ms of import for nothing this needs.
"""

from __future__ import annotations

import _socket
import errno
import os
import struct

NETLINK_ROUTE = 0
RTM_DELLINK = 17
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
IFLA_IFNAME = 3
_HDR = struct.Struct("=IHHII")  # struct nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # struct ifinfomsg


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def delete_link(name: str) -> bool:
    """Delete the link ``name`` in the caller's network namespace; False if there was
    none (ENODEV), an OSError for any other refusal."""
    body = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, name.encode() + b"\0")
    seq = 1
    msg = _HDR.pack(_HDR.size + len(body), RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body
    s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        s.sendto(msg, (0, 0))
        while True:
            data = s.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                length, kind, _, rseq, _ = _HDR.unpack_from(data, off)
                if kind == NLMSG_ERROR and rseq == seq:
                    (code,) = struct.unpack_from("=i", data, off + _HDR.size)
                    if code == 0:
                        return True
                    if -code == errno.ENODEV:
                        return False
                    raise OSError(-code, f"cannot delete link {name}: {os.strerror(-code)}")
                off += max(length, _HDR.size) + (-length % 4)
    finally:
        s.close()


NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
TCP_METRICS_CMD_DEL = 2
_GENL = struct.Struct("=BBH")  # struct genlmsghdr: cmd, version, reserved


def _request(s, kind: int, flags: int, seq: int, body: bytes) -> bytes:
    """Send one request and return the payload of its answer (the first message with
    ``seq``); a negative error code raises OSError."""
    s.sendto(_HDR.pack(_HDR.size + len(body), kind, flags, seq, 0) + body, (0, 0))
    while True:
        data = s.recv(65536)
        off = 0
        while off + _HDR.size <= len(data):
            length, rkind, _, rseq, _ = _HDR.unpack_from(data, off)
            if rseq == seq:
                payload = data[off + _HDR.size : off + length]
                if rkind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                return payload
            off += max(length, _HDR.size) + (-length % 4)


def flush_tcp_metrics() -> None:
    """Forget the TCP metrics (RTT, cwnd, Fast Open cookies per destination) of the
    caller's network namespace: a TCP_METRICS_CMD_DEL without an address flushes them
    all (net/ipv4/tcp_metrics.c tcp_nl_cmd_del). Anyone may read them (``ip tcp_metrics``),
    so a namespace handed to another container must not keep the last one's."""
    s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_GENERIC)
    try:
        name = _attr(CTRL_ATTR_FAMILY_NAME, b"tcp_metrics\0")
        try:
            reply = _request(
                s, GENL_ID_CTRL, NLM_F_REQUEST, 1, _GENL.pack(CTRL_CMD_GETFAMILY, 1, 0) + name
            )
        except FileNotFoundError:
            return  # no such family: this kernel keeps no TCP metrics
        off, family = _GENL.size, None
        while off + 4 <= len(reply):
            alen, akind = struct.unpack_from("=HH", reply, off)
            if akind == CTRL_ATTR_FAMILY_ID:
                (family,) = struct.unpack_from("=H", reply, off + 4)
            off += max(alen, 4) + (-alen % 4)
        if family is None:
            raise OSError(errno.EPROTO, "no tcp_metrics family id in the controller's answer")
        _request(s, family, NLM_F_REQUEST | NLM_F_ACK, 2, _GENL.pack(TCP_METRICS_CMD_DEL, 1, 0))
    finally:
        s.close()


def link_exists(name: str) -> bool:
    """Whether ``name`` is a link of the caller's namespace (sysfs shows the namespace
    sysfs was mounted in, the host's for pydock)."""
    return os.path.exists(f"/sys/class/net/{name}")
