"""Deleting a link by name with one rtnetlink message, stdlib only.

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


def link_exists(name: str) -> bool:
    """Whether ``name`` is a link of the caller's namespace (sysfs shows the namespace
    sysfs was mounted in, the host's for pydock)."""
    return os.path.exists(f"/sys/class/net/{name}")
