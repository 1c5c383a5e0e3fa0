"""The /etc/hosts, /etc/hostname and /etc/resolv.conf each container gets.

They live in the container's directory and are bind-mounted over the image's files, as
Docker does, so the image's layers are never written. Peers on a user-defined network
find each other by name through /etc/hosts: the engine rewrites the hosts file of every
container on that network when one joins or leaves (Docker uses an embedded DNS server at
127.0.0.11 instead; a hosts file needs no server process and covers names, not aliases
or round-robin). Rewrites happen in place, never by rename: a bind mount pins the inode.
"""

from __future__ import annotations

import os
from pathlib import Path

HOST_RESOLV = "/etc/resolv.conf"
#: what Docker writes when the host only lists loopback resolvers (libnetwork resolvconf)
FALLBACK_NAMESERVERS = ["8.8.8.8", "8.8.4.4"]

_HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

FILES = ("hosts", "hostname", "resolv.conf")


def hosts_text(
    own: list[tuple[str, str]], peers: list[tuple[str, str]], extra: list[str] | None = None
) -> str:
    """localhost lines, then ``--add-host`` entries (``name:ip``, as Docker puts them
    before the container's own), then the container's own address(es), then its peers'."""
    lines = [f"{ip}\t{name}\n" for name, _, ip in (e.partition(":") for e in extra or [])]
    lines += [f"{ip}\t{names}\n" for ip, names in own + peers]
    return _HOSTS_HEADER + "".join(lines)


def with_extra_hosts(hosts: str, extra: list[str] | None) -> str:
    """A hosts file (the host's, for ``--network host``) with ``--add-host`` lines added."""
    if not extra:
        return hosts
    if hosts and not hosts.endswith("\n"):
        hosts += "\n"
    return hosts + "".join(f"{ip}\t{name}\n" for name, _, ip in (e.partition(":") for e in extra))


def _is_loopback(addr: str) -> bool:
    """127.0.0.0/8 or ::1 (RFC 1122 3.2.1.3, RFC 4291 2.5.3). With the builtin _socket,
    not ipaddress: every container start reads the host's nameservers, and importing
    ipaddress costs ~3 ms of it."""
    import _socket

    host = addr.split("%")[0]
    for family, loopback in ((_socket.AF_INET, None), (_socket.AF_INET6, bytes(15) + b"\1")):
        try:
            packed = _socket.inet_pton(family, host)
        except OSError:
            continue
        return packed[0] == 127 if loopback is None else packed == loopback
    return False


def resolv_for(hc: dict | None, host_file: str = HOST_RESOLV) -> str:
    """The container's resolv.conf: the host's (filtered, :func:`resolv_text`), or, with
    any of ``--dns``, ``--dns-search``, ``--dns-option``, one built as libnetwork's
    resolvconf.Build writes it, each part the user's or else the host's."""
    hc = hc or {}
    dns, search = hc.get("Dns") or [], hc.get("DnsSearch") or []
    options = hc.get("DnsOptions") or []
    if not (dns or search or options):
        return resolv_text(host_file)
    host = resolv_text(host_file).splitlines()

    def host_values(key: str) -> list[str]:
        return [v for line in host if (f := line.split())[:1] == [key] for v in f[1:]]

    if not dns:
        dns = [v for line in host if (f := line.split())[:1] == ["nameserver"] for v in f[1:2]]
    search = search or host_values("search")
    options = options or host_values("options")
    out = ""
    if search and " ".join(search).strip() != ".":  # "--dns-search ." means none
        out += "search " + " ".join(s for s in search if s != ".") + "\n"
    out += "".join(f"nameserver {ns}\n" for ns in dns)
    if options and " ".join(options).strip():
        out += "options " + " ".join(options) + "\n"
    return out


def resolv_text(host_file: str = HOST_RESOLV) -> str:
    """The host's resolv.conf without loopback nameservers, which would mean the
    container's own loopback (systemd-resolved's 127.0.0.53, dnsmasq on 127.0.0.1); if none
    are left, Docker's fallback public resolvers are written (nothing is contacted here)."""
    try:
        with open(host_file) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    out, servers = [], 0
    for line in lines:
        fields = line.split()
        if fields[:1] == ["nameserver"]:
            if len(fields) < 2 or _is_loopback(fields[1]):
                continue
            servers += 1
        out.append(line)
    if not servers:
        out += [f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS]
    return "\n".join(out) + "\n"


def write_inplace(path: Path, text: str) -> None:
    """Replace a file's content keeping its inode (it may be bind-mounted somewhere)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def write_all(cdir: Path, hostname: str, hosts: str, resolv: str | None = None) -> None:
    write_inplace(cdir / "hostname", hostname + "\n")
    write_inplace(cdir / "resolv.conf", resolv_text() if resolv is None else resolv)
    write_inplace(cdir / "hosts", hosts)


HOST_HOSTS = "/etc/hosts"


def write_unnetworked(cdir: Path, mode: str, hostname: str, hc: dict | None = None) -> None:
    """The files of a container without a network of pydock's, as Docker writes them:
    ``none`` gets the localhost lines and the host's resolvers (loopback ones dropped,
    they are not reachable from its own loopback); ``host`` shares the host's network
    and so its /etc/hosts and resolv.conf as they are."""
    hc = hc or {}
    extra = hc.get("ExtraHosts")
    if extra and any(e.endswith(":host-gateway") for e in extra):
        from .manager import host_gateway

        extra = host_gateway(cdir.parent.parent, extra)  # cdir: <root>/containers/<id>
    if mode == "host":
        custom = hc.get("Dns") or hc.get("DnsSearch") or hc.get("DnsOptions")
        resolv = resolv_for(hc) if custom else _read(HOST_RESOLV)
        write_all(cdir, hostname, with_extra_hosts(_read(HOST_HOSTS), extra), resolv)
    else:
        write_all(cdir, hostname, hosts_text([], [], extra), resolv_for(hc))


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
