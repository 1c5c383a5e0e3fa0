"""The host-facing flags of ``run``/``create`` -> Docker's HostConfig values.

``--add-host``, ``--dns``, ``--dns-search``, ``--dns-option``, ``--tmpfs``, ``--init``,
``--ulimit``, ``--shm-size``, ``--group-add``, ``--ipc``, ``--pid``, ``--uts``,
``--volumes-from`` and ``--expose``, each checked with Docker 20.10's rule and message
(docker/cli opts/, cli/command/container/opts.go; moby runconfig/) before anything is
made. The values are kept under Docker's HostConfig key names, so the record, ``inspect``
and the spec builder all read one dict. Only ``run`` with such a flag imports this module.
"""

from __future__ import annotations

import argparse

from .errors import InvalidInput

#: HostConfig.ShmSize when --shm-size is not given (moby's DefaultShmSize, 64 MiB)
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

#: --ulimit names -> resource.RLIMIT_* (go-units ulimit.go's table)
ULIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}  # fmt: skip

#: the options Docker's daemon lets --tmpfs carry besides the mount flags
#: (moby pkg/mount ParseTmpfsOptions)
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
_TMPFS_FLAGS = {
    "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async",
    "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime",
    "bind", "rbind", "relatime", "norelatime", "strictatime", "nostrictatime",
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
}  # fmt: skip
#: a search domain (docker/cli opts.ValidateDNSSearch)
_DOMAIN = (
    r"^(:?(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]))$"
)
HOST_GATEWAY = "host-gateway"


def _bad(value: str, flag: str, why: str) -> InvalidInput:
    """pflag's wording for a value a flag's validator refused."""
    return InvalidInput(f'invalid argument "{value}" for "{flag}" flag: {why}', 125)


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address (the builtin _socket: no ipaddress import on run's path)."""
    import _socket

    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, text)
            return True
        except OSError:
            continue
    return False


def extra_hosts(values: list[str]) -> list[str]:
    """``--add-host name:ip``; split on the first ':' so IPv6 addresses work; the special
    ``host-gateway`` is the default bridge's gateway (resolved when /etc/hosts is written)."""
    for v in values:
        name, sep, ip = v.partition(":")
        if not sep or not name:
            raise _bad(v, "--add-host", f'bad format for add-host: "{v}"')
        if ip != HOST_GATEWAY and not is_ip(ip):
            raise _bad(v, "--add-host", f'invalid IP address in add-host: "{ip}"')
    return list(values)


def dns(values: list[str]) -> list[str]:
    for v in values:
        if not is_ip(v):
            raise _bad(v, "--dns", f"{v} is not an ip address")
    return list(values)


def dns_search(values: list[str]) -> list[str]:
    """Domain names; ``.`` alone means "no search domains" (resolv.conf gets none)."""
    import re

    for v in values:
        if v == ".":
            continue
        if len(v) > 255 or not re.match(_DOMAIN, v.removesuffix(".")):
            raise _bad(v, "--dns-search", f"{v} is not a valid domain")
    return list(values)


def tmpfs(values: list[str]) -> dict[str, str]:
    """``--tmpfs /path[:opts]`` -> {path: opts}, as HostConfig.Tmpfs records it."""
    out: dict[str, str] = {}
    for v in values:
        path, _, data = v.partition(":")
        if not path.startswith("/"):
            raise InvalidInput(
                f"invalid mount config for type \"tmpfs\": invalid mount path: '{path}' "
                "mount path must be absolute",
                125,
            )
        if path.rstrip("/") == "":
            raise InvalidInput(
                "invalid mount config for type \"tmpfs\": destination can't be '/'", 125
            )
        for opt in filter(None, data.split(",")):
            key = opt.partition("=")[0]
            if key not in _TMPFS_DATA and key not in _TMPFS_FLAGS:
                raise InvalidInput(f'Invalid tmpfs option ["{key}"]', 125)
        out[path] = data
    return out


def tmpfs_options(data: str) -> list[str]:
    """The mount options of one --tmpfs: Docker's defaults (noexec, nosuid, nodev), each
    overridden by its opposite or a new value from ``data`` (moby MergeTmpfsOptions)."""
    opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}
    opts = ["noexec", "nosuid", "nodev"]
    for opt in filter(None, data.split(",")):
        key = opt.partition("=")[0]
        if key in opposite:
            opts = [o for o in opts if o != opposite[key]]
        elif key in ("noexec", "nosuid", "nodev"):
            continue  # already there
        else:
            opts = [o for o in opts if o.partition("=")[0] != key]
        opts.append(opt)
    return opts


def ulimits(values: list[str]) -> list[dict]:
    """``--ulimit name=soft[:hard]`` (go-units ParseUlimit); a later one of the same name
    replaces an earlier one, as Docker's map of them does."""
    out: dict[str, dict] = {}
    for v in values:
        name, eq, limits = v.partition("=")
        if not eq:
            raise _bad(v, "--ulimit", f"invalid ulimit argument: {v}")
        if name not in ULIMITS:
            raise _bad(v, "--ulimit", f"invalid ulimit type: {name}")
        parts = limits.split(":")
        if len(parts) > 2:
            raise _bad(v, "--ulimit", f"too many limit value arguments - {limits}, can only "
                       "have up to two, `soft[:hard]`")  # fmt: skip
        nums = []
        for p in parts:
            try:
                nums.append(int(p, 10))
            except ValueError:
                why = f'strconv.ParseInt: parsing "{p}": invalid syntax'
                raise _bad(v, "--ulimit", why) from None
        soft, hard = nums[0], nums[-1]
        if soft > hard:
            raise _bad(v, "--ulimit", f"ulimit soft limit must be less than or equal to hard "
                       f"limit: {soft} > {hard}")  # fmt: skip
        out[name] = {"Name": name, "Hard": hard, "Soft": soft}
    return list(out.values())


def rlimits(values: list[dict]) -> list[dict]:
    """HostConfig.Ulimits -> the runtime spec's process.rlimits."""
    return [{"type": ULIMITS[u["Name"]], "hard": u["Hard"], "soft": u["Soft"]} for u in values]


def shm_size(value: str | None) -> int:
    if not value:
        return DEFAULT_SHM_SIZE
    from .limits import parse_bytes

    size = parse_bytes(value, "--shm-size")
    if size < 0:
        raise InvalidInput("SHM size can not be less than 0", 125)
    return size or DEFAULT_SHM_SIZE


def _mode(value: str, flag: str, kinds: tuple[str, ...], what: str) -> str:
    """An --ipc/--pid/--uts value among ``kinds`` ("container" meaning container:NAME)."""
    if value in kinds or (
        "container" in kinds and value.startswith("container:") and value.partition(":")[2]
    ):
        return value
    raise InvalidInput(f"{flag}: invalid {what} mode", 125)


def ipc_mode(value: str | None) -> str:
    """Docker 20.10's default is ``private`` (daemon default-ipc-mode)."""
    kinds = ("", "none", "private", "shareable", "host", "container")
    return _mode(value or "private", "--ipc", kinds, "IPC") or "private"


def expose(values: list[str]) -> dict[str, dict]:
    """``--expose PORT[/PROTO]`` or a range ``START-END[/PROTO]`` -> ExposedPorts keys."""
    out: dict[str, dict] = {}
    for v in values:
        if ":" in v:
            raise InvalidInput(f"invalid port format for --expose: {v}", 125)
        port, _, proto = v.partition("/")
        start, dash, end = port.partition("-")
        try:
            lo, hi = int(start), int(end) if dash else int(start)
            if not (0 < lo <= 65535 and 0 < hi <= 65535) or hi < lo:
                raise ValueError
        except ValueError:
            raise InvalidInput(
                f"invalid range format for --expose: {v}, error: invalid port range: {port}", 125
            ) from None
        for n in range(lo, hi + 1):
            out.setdefault(f"{n}/{(proto or 'tcp').lower()}", {})
    return out


def volumes_from(values: list[str]) -> list[str]:
    for v in values:
        name, _, mode = v.partition(":")
        if not name:
            raise InvalidInput(f"invalid volumes-from specification: '{v}'", 125)
        if mode not in ("", "ro", "rw"):
            raise InvalidInput(f"invalid mode: {mode}", 125)
    return list(values)


def host_config(a: argparse.Namespace, hostname: str | None) -> dict:
    """The HostConfig entries of these flags, checked, under Docker's names and with
    Docker's values for flags not given (``Init`` and ``Tmpfs`` only when set, as
    Docker's JSON omits them)."""
    hc: dict = {
        "ExtraHosts": extra_hosts(a.add_host) or None,
        "Dns": dns(a.dns),
        "DnsSearch": dns_search(a.dns_search),
        "DnsOptions": list(a.dns_option),
        "Ulimits": ulimits(a.ulimit) or None,
        "ShmSize": shm_size(a.shm_size),
        "GroupAdd": list(a.group_add) or None,
        "IpcMode": ipc_mode(a.ipc),
        "PidMode": _mode(a.pid or "", "--pid", ("", "host", "container"), "PID"),
        "UTSMode": _mode(a.uts or "", "--uts", ("", "host"), "UTS"),
        "VolumesFrom": volumes_from(a.volumes_from) or None,
    }
    if hc["UTSMode"] == "host" and hostname:
        raise InvalidInput("conflicting options: hostname and the UTS mode", 125)
    if a.tmpfs:
        hc["Tmpfs"] = tmpfs(a.tmpfs)
    if a.init:
        hc["Init"] = True
    return hc
