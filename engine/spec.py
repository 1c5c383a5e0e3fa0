"""Image config + ``run`` flags -> an OCI runtime-spec ``config.json`` document.

The runtime spec is the only language between the engine and isolation (ARCHITECTURE.md),
so every default Docker applies to a container is written out here: the namespaces, the
mounts of /proc, /dev, /sys and friends, the default capability set, the device allow list
and the masked and read-only paths (moby's oci/defaults.go lists the same values).
"""

from __future__ import annotations

import os
import stat

from .errors import EngineError, InvalidInput

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Docker's default capability set (moby oci/caps/defaults.go)
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


def _dev(type_: str, major: int | None, minor: int | None, access: str = "rwm") -> dict:
    return {"allow": True, "type": type_, "major": major, "minor": minor, "access": access}


#: the devices cgroup allow list Docker gives every container
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    _dev("c", None, None, "m"),
    _dev("b", None, None, "m"),
    _dev("c", 1, 3),
    _dev("c", 1, 8),
    _dev("c", 1, 7),
    _dev("c", 5, 0),
    _dev("c", 1, 5),
    _dev("c", 1, 9),
    _dev("c", 136, None),
    _dev("c", 5, 2),
    _dev("c", 10, 200),
]

DEFAULT_MOUNTS = [
    {
        "destination": "/proc",
        "type": "proc",
        "source": "proc",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
    {
        # the container's own cgroups, read-only (rw with --privileged), as moby's
        # oci/defaults.go mounts them; nsutil.rootfs builds the per-host layout
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": ["ro", "nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
]


#: HostConfig values of the host flags (hostflags.py) when none is given: Docker's
#: defaults (ShmSize: moby's DefaultShmSize, 64 MiB; IpcMode: 20.10's default-ipc-mode)
HOST_DEFAULTS = {
    "ExtraHosts": None, "Dns": [], "DnsSearch": [], "DnsOptions": [], "Ulimits": None,
    "ShmSize": 64 * 1024 * 1024, "GroupAdd": None, "IpcMode": "private", "PidMode": "",
    "UTSMode": "", "VolumesFrom": None,
}  # fmt: skip


class RunOptions:
    """What ``run``/``create`` flags say about the process and its isolation.

    (A plain class: importing dataclasses would cost milliseconds on the start path.)
    """

    __slots__ = ("command", "entrypoint", "env", "workdir", "user", "hostname", "network",
                 "cgroup_parent", "publish", "publish_all", "limits", "cap_add", "cap_drop",
                 "privileged", "security_opt", "read_only", "binds", "mounts",
                 "labels", "devices", "device_cgroup_rules", "cgroupns", "host",
                 "expose")  # fmt: skip

    def __init__(
        self,
        command: list[str] | None = None,
        entrypoint: str | None = None,  # "" clears the image's entrypoint, as Docker's does
        env: list[str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        network: str = "bridge",
        cgroup_parent: str | None = None,
        publish: list[str] | None = None,  # -p values, [IP:][HOST_PORT:]PORT[/PROTO]
        publish_all: bool = False,  # -P: every EXPOSEd port on a free host port
        limits: dict | None = None,  # HostConfig Memory, MemorySwap, NanoCpus, ... (checked)
        cap_add: list[str] | None = None,
        cap_drop: list[str] | None = None,
        privileged: bool = False,
        security_opt: list[str] | None = None,
        read_only: bool = False,
        binds: list[str] | None = None,  # -v values as given (HostConfig.Binds)
        mounts: list[dict] | None = None,  # -v/--mount parsed into mount points (volumes.py)
        labels: dict[str, str] | None = None,
        devices: list[dict] | None = None,  # --device as HostConfig.Devices (devices.py)
        device_cgroup_rules: list[str] | None = None,  # --device-cgroup-rule values
        cgroupns: str | None = None,  # --cgroupns host|private; None: the host's default
        host: dict | None = None,  # HostConfig of the host flags, checked (hostflags.py)
        expose: dict | None = None,  # --expose: Config.ExposedPorts keys
    ) -> None:
        self.command = command or []
        self.entrypoint = entrypoint
        self.env = env or []
        self.workdir = workdir
        self.user = user
        self.hostname = hostname
        self.network = network
        self.cgroup_parent = cgroup_parent
        self.publish = publish or []
        self.publish_all = publish_all
        self.limits = limits or {}
        self.cap_add = cap_add or []
        self.cap_drop = cap_drop or []
        self.privileged = privileged
        self.security_opt = security_opt or []
        self.read_only = read_only
        self.binds = binds or []
        self.mounts = mounts or []
        self.labels = labels or {}
        self.devices = devices or []
        self.device_cgroup_rules = device_cgroup_rules or []
        self.cgroupns = cgroupns
        self.host = host or {}
        self.expose = expose or {}


def process_args(image_config: dict, opts: RunOptions) -> list[str]:
    """Entrypoint + Cmd, with Docker's override rules (a new entrypoint drops the image Cmd)."""
    cfg = image_config.get("config") or {}
    if opts.entrypoint is not None:
        entry = [opts.entrypoint] if opts.entrypoint else []
        cmd = opts.command
    else:
        entry = list(cfg.get("Entrypoint") or [])
        cmd = opts.command or list(cfg.get("Cmd") or [])
    args = entry + cmd
    if not args:
        raise InvalidInput("no command specified", 125)
    return args


def _env_dict(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _user_env(extra: list[str]) -> dict[str, str]:
    """``-e`` values; ``-e NAME`` takes the caller's value, or nothing when it has none
    (Docker's client resolves it the same way)."""
    out: dict[str, str] = {}
    for item in extra:
        k, eq, v = item.partition("=")
        if not k:
            raise InvalidInput(f"invalid environment variable: {item}", 125)
        if eq:
            out[k] = v
        elif k in os.environ:
            out[k] = os.environ[k]
    return out


def config_env(image_env: list[str], extra: list[str]) -> list[str]:
    """The container's ``Config.Env`` as Docker records it: the image's variables, each
    ``-e`` replacing or adding one."""
    out = _env_dict(image_env)
    out.update(_user_env(extra))
    return [f"{k}={v}" for k, v in out.items()]


def merge_env(image_env: list[str], extra: list[str], hostname: str) -> list[str]:
    """The process's environment: image Env, then HOSTNAME, then ``-e``."""
    out = _env_dict([*image_env, f"HOSTNAME={hostname}"])
    out.update(_user_env(extra))
    out.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in out.items()]


def with_term(env: list[str]) -> list[str]:
    """``env`` with TERM=xterm unless it names a TERM: what Docker gives a process that
    has a terminal (-t), below the image's and the user's variables."""
    if any(e.startswith("TERM=") for e in env):
        return env
    return [*env, "TERM=xterm"]


def _read_db(rootfs: str, db: str) -> list[list[str]]:
    """The lines of /etc/passwd or /etc/group inside the rootfs, split on ':'.

    The file is opened without following symlinks in any component, so a hostile image
    cannot point it outside its rootfs; a missing or unreadable file reads as empty.
    """
    fd = -1
    try:
        fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        for part, extra in (("etc", os.O_DIRECTORY), (db, 0)):
            nfd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | extra, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with os.fdopen(fd, "r", errors="replace") as f:
            fd = -1
            return [fields for line in f if len(fields := line.rstrip("\n").split(":")) >= 4]
    except OSError:
        return []
    finally:
        if fd >= 0:
            os.close(fd)


def _find(entries: list[list[str]], key: str) -> list[str] | None:
    """The entry whose name is ``key``, else the first whose id is ``key``."""
    by_name = [e for e in entries if e[0] == key]
    by_id = [e for e in entries if e[2] == key]
    return (by_name or by_id or [None])[0]


def resolve_user(rootfs: str, spec_user: str | None) -> dict:
    """``-u user[:group]`` (names or ids) -> the spec's process.user, by Docker's rules:
    the passwd entry gives uid and primary gid, /etc/group adds the user's other groups."""
    user, _, group = (spec_user or "").partition(":")
    uid = gid = 0
    name = "root"
    if user:
        entry = _find(_read_db(rootfs, "passwd"), user)
        if entry:
            name, uid, gid = entry[0], int(entry[2]), int(entry[3])
        elif user.isdigit():
            name, uid = "", int(user)
        else:
            raise EngineError(
                f"unable to find user {user}: no matching entries in passwd file", 125
            )
    groups = _read_db(rootfs, "group")
    if group:
        gentry = _find(groups, group)
        if gentry:
            gid = int(gentry[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise EngineError(
                f"unable to find group {group}: no matching entries in group file", 125
            )
    out: dict = {"uid": uid, "gid": gid}
    extra = sorted(
        {int(g[2]) for g in groups if name and name in g[3].split(",") and g[2].isdigit()} - {gid}
    )
    if extra:
        out["additionalGids"] = extra
    return out


def check_workdir_flag(workdir: str | None) -> None:
    """``-w`` must be absolute; checked before anything is made (moby's
    translateWorkingDir, at create)."""
    if workdir and not workdir.startswith("/"):
        raise InvalidInput(
            f"the working directory '{workdir}' is invalid, it needs to be an absolute path", 125
        )


def check_workdir(rootfs: str, cwd: str) -> None:
    """The working directory must be one the runtime can make: Docker's create makes it
    in the container's root (container.SetupWorkingDirectory) and refuses, with its own
    sentence, a path that names a file. Symlinks are followed inside ``rootfs`` only."""
    if not cwd or cwd == "/":
        return
    from ..nsutil.rootfs import secure_join

    try:
        path = secure_join(rootfs, cwd)
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return  # made at start
    except NotADirectoryError:  # a file on the way: mkdir -p cannot pass it
        raise InvalidInput(f"mkdir {cwd}: not a directory", 125) from None
    except OSError as e:
        raise InvalidInput(f"mkdir {cwd}: {e.strerror or e}", 125) from None
    if not stat.S_ISDIR(mode):
        raise InvalidInput(f"Cannot mkdir: {cwd} is not a directory", 125)


def build(image_config: dict, opts: RunOptions, rootfs: str, container_id: str) -> dict:
    """The runtime spec for one container whose merged root is mounted at ``rootfs``."""
    cfg = image_config.get("config") or {}
    hostname = default_hostname(opts, container_id)
    hc = opts.host
    shared = {"pid": hc.get("PidMode") == "host", "ipc": hc.get("IpcMode") == "host",
              "uts": hc.get("UTSMode") == "host"}  # fmt: skip
    # the host's namespace: no entry (container:NAME ones are joined at start, nsjoin.py)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount") if not shared.get(t)]
    if cgroupns_mode(opts) == "private":
        namespaces.append({"type": "cgroup"})
    if opts.network != "host":
        namespaces.append({"type": "network"})
    # One flat cgroup per container, "pydock-<id>" (the name the record's cleanup derives,
    # engine/cgroupref.py). A --cgroup-parent is the user's and is taken as given.
    leaf = f"pydock-{container_id}"
    cgroups_path = f"{opts.cgroup_parent.rstrip('/')}/{leaf}" if opts.cgroup_parent else leaf
    from .security import capabilities

    caps = capabilities(DEFAULT_CAPS, opts.cap_add, opts.cap_drop, opts.privileged)
    cwd = opts.workdir or cfg.get("WorkingDir") or "/"
    check_workdir(rootfs, cwd)
    doc = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": resolve_user(rootfs, opts.user if opts.user is not None else cfg.get("User")),
            "args": process_args(image_config, opts),
            "env": merge_env(list(cfg.get("Env") or []), opts.env, hostname),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": [dict(m, options=list(m["options"])) for m in DEFAULT_MOUNTS],
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [dict(r) for r in DEFAULT_DEVICE_RULES]},
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if shared["uts"]:
        del doc["hostname"]  # the host's UTS namespace keeps the host's name
    apply_run_options(doc, opts, caps)
    if hc:  # only a run with one of the host flags (hostflags.py) pays for this
        from .hostspec import apply

        apply(doc, hc, rootfs)
    return doc


def cgroupns_mode(opts: RunOptions) -> str:
    """--cgroupns, else Docker 20.10's default-cgroupns-mode: "private" on cgroup v2,
    "host" on v1 and hybrid hosts (where the container still sees only its own cgroups
    in /sys/fs/cgroup: nsutil.rootfs bind-mounts their directories, as runc does)."""
    if opts.cgroupns:
        return opts.cgroupns
    from ..cgroupfs.layout import detect

    return "private" if detect().mode == "v2" else "host"


def host_config(opts: RunOptions) -> dict:
    """What the limit, security and volume flags add to the record's HostConfig, under
    Docker's names (``inspect`` shows them)."""
    hc = {"Memory": 0, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "CpusetCpus": "",
          "PidsLimit": None, "BlkioWeight": 0}  # fmt: skip
    hc.update(opts.limits)
    hc.update(
        CapAdd=list(opts.cap_add) or None,
        CapDrop=list(opts.cap_drop) or None,
        Privileged=opts.privileged,
        Devices=list(opts.devices),
        DeviceCgroupRules=list(opts.device_cgroup_rules) or None,
        CgroupnsMode=cgroupns_mode(opts),
        SecurityOpt=list(opts.security_opt) or None,
        ReadonlyRootfs=opts.read_only,
        Binds=list(opts.binds) or None,
        Mounts=[
            {
                "Type": m["Type"],
                "Source": m.get("Name") or m["Source"],
                "Target": m["Destination"],
                "ReadOnly": not m["RW"],
            }
            for m in opts.mounts
            if m.get("_flag") == "mount"
        ]
        or None,  # fmt: skip
    )
    hc.update(HOST_DEFAULTS)
    hc.update(opts.host)
    return hc


def apply_run_options(doc: dict, opts: RunOptions, caps: list[str]) -> dict:
    """Limits, security and mounts from the flags, on top of the defaults in ``doc``.

    --privileged lifts Docker's confinement as Docker does: every capability, every device
    (the host's /dev nodes created in the container, all allowed by the device cgroup), no
    masked or read-only paths, /sys and /sys/fs/cgroup writable, no seccomp filter; the
    --device flags then add nothing (moby's WithDevices ignores them too). Otherwise
    --device and --device-cgroup-rule come after the default device rules.
    """
    from . import limits

    linux = doc["linux"]
    linux["resources"].update(limits.resources(opts.limits))
    from .security import host_devices, parse_security_opts

    sec = parse_security_opts(opts.security_opt)
    if not opts.privileged and (opts.devices or opts.device_cgroup_rules):
        from .devices import spec_devices

        devs, rules = spec_devices(opts.devices, opts.device_cgroup_rules)
        linux.setdefault("devices", []).extend(devs)
        linux["resources"]["devices"].extend(rules)
    doc["process"]["noNewPrivileges"] = sec.no_new_privileges
    doc["root"]["readonly"] = opts.read_only
    if opts.privileged:
        linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
        linux["devices"] = host_devices()
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        for m in doc["mounts"]:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"]
    elif sec.seccomp != "unconfined":
        from .seccomp import default_oci, load_profile, to_oci

        if sec.seccomp == "default":
            linux["seccomp"] = default_oci(caps)
        else:
            linux["seccomp"] = to_oci(load_profile(sec.seccomp), caps)
    if opts.mounts:
        from .volumes import oci_mounts

        user = oci_mounts(opts.mounts)
        taken = {m["destination"] for m in user}
        doc["mounts"] = [m for m in doc["mounts"] if m["destination"] not in taken] + user
    return doc


def with_network(spec: dict, netns: str, etc_files: dict[str, str]) -> dict:
    """The spec joining the network namespace at ``netns`` (made by engine.network, or
    another container's for ``container:NAME``), with its /etc/hosts, /etc/hostname and
    /etc/resolv.conf bind-mounted over the image's, as Docker mounts them."""
    linux = spec["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
    linux["namespaces"].append({"type": "network", "path": netns})
    return with_etc_files(spec, etc_files)


def with_etc_files(spec: dict, etc_files: dict[str, str]) -> dict:
    """``spec`` with each /etc/NAME bind-mounted from its file in the container's
    directory (the image's layers are never written)."""
    for name, source in etc_files.items():
        spec["mounts"].append(
            {"destination": f"/etc/{name}", "type": "bind", "source": source,
             "options": ["rbind", "rprivate"]}
        )  # fmt: skip
    return spec


def default_hostname(opts: RunOptions, container_id: str) -> str:
    """``-h``, else the host's own name with ``--network host`` (as Docker), else the
    short id."""
    if opts.hostname:
        return opts.hostname
    if opts.network == "host" or opts.host.get("UTSMode") == "host":
        return os.uname().nodename
    return container_id[:12]
