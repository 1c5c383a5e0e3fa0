"""Named volumes (Docker's "local" driver) and the ``-v`` / ``--mount`` grammar.

::

    volumes/<name>/_data          the volume's content: what containers mount
    volumes/<name>/volume.json    Name, CreatedAt, Driver, Labels, Options
    volumes/volumes.lock          flock: shared while a container is being given volumes,
                                  exclusive for rm/prune, so a volume is never removed
                                  between "exists" and "a container record names it"

A volume is made atomically (built under a temporary name, then renamed into place), so
concurrent first uses of one name agree on one volume. Whether a volume is in use is read
from the container records (their ``Mounts``), the one source of truth, as Docker counts
references. A new, empty volume receives a copy of what the image has at the mount path,
as Docker's does (unless ``nocopy``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path

from .errors import Conflict, InvalidInput, NotFound
from .fsutil import FileLock, read_json, write_json

ANON_LABEL = "com.docker.volume.anonymous"  # Docker 23+ marks anonymous volumes with it
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_VALID_NAME_MSG = (
    'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
    "use absolute path"
)


# -- the flags' grammar -----------------------------------------------------------------------


def _mount_point(kind: str, source: str, dest: str, rw: bool, **extra) -> dict:
    """A mount as Docker's inspect lists it (plus private ``_`` keys used at create)."""
    mp = {"Type": kind, "Source": source, "Destination": dest, "Mode": "", "RW": rw,
          "Propagation": ""}  # fmt: skip
    mp.update(extra)
    return mp


def _check_dest(dest: str, spec: str) -> str:
    if not dest.startswith("/"):
        raise InvalidInput(
            f"invalid volume specification: '{spec}': invalid mount config for type "
            f"\"volume\": invalid mount path: '{dest}' mount path must be absolute",
            125,
        )
    if os.path.normpath(dest) == "/":
        raise InvalidInput(f"invalid volume specification: '{spec}': destination can't be '/'", 125)
    return os.path.normpath(dest)


def parse_volume_flag(spec: str) -> dict:
    """``-v``: ``/ctr/path`` (anonymous volume), ``NAME:/ctr/path[:opts]`` (named volume)
    or ``/host/path:/ctr/path[:opts]`` (bind); opts: ro, rw, nocopy, z/Z, a propagation."""
    parts = spec.split(":")
    if len(parts) > 3 or not all(parts):
        raise InvalidInput(f"invalid volume specification: '{spec}'", 125)
    if len(parts) == 1:
        return _mount_point("volume", "", _check_dest(parts[0], spec), True, Name="",
                            Driver="local", _copy=True)  # fmt: skip
    source, dest = parts[0], _check_dest(parts[1], spec)
    rw, copy, propagation, mode = True, True, "", parts[2] if len(parts) == 3 else ""
    for opt in mode.split(",") if mode else []:
        if opt in ("ro", "rw"):
            rw = opt == "rw"
        elif opt == "nocopy":
            copy = False
        elif opt in _PROPAGATIONS:
            propagation = opt
        elif opt not in ("z", "Z"):  # SELinux relabelling: nothing to relabel here
            raise InvalidInput(f"invalid mode: {opt}", 125)
    if source.startswith("/"):
        mp = _mount_point("bind", os.path.normpath(source), dest, rw,
                          Propagation=propagation or "rprivate", _create_source=True)  # fmt: skip
    else:
        if not _NAME.match(source):
            raise InvalidInput(
                f'create {source}: "{source}" includes invalid characters for a local volume '
                f"name, {_VALID_NAME_MSG}",
                125,
            )
        if propagation:
            raise InvalidInput(f"invalid mode: {propagation} (volumes take no propagation)", 125)
        mp = _mount_point("volume", "", dest, rw, Name=source, Driver="local", _copy=copy)
    mp["Mode"] = mode
    return mp


def _bool_opt(key: str, value: str | None) -> bool:
    if value is None or value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidInput(f"invalid value for {key}: {value}", 125)


def parse_mount_flag(spec: str) -> dict:
    """``--mount type=bind|volume|tmpfs,source=,target=,readonly,...`` (Docker's CSV)."""
    fields: dict[str, str | None] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not key:
            raise InvalidInput(f"invalid argument {spec!r} for --mount: empty field", 125)
        fields[key] = value if eq else None
    kind = fields.pop("type", None) or "volume"
    source = fields.pop("source", None) or fields.pop("src", None) or ""
    target = fields.pop("target", None) or fields.pop("destination", None)
    target = target or fields.pop("dst", None)
    if not target:
        raise InvalidInput("invalid argument for --mount: target is required", 125)
    if not target.startswith("/"):
        raise InvalidInput(f"invalid mount target {target!r}: must be absolute", 125)
    target = os.path.normpath(target)
    rw = True
    for key in ("readonly", "ro"):
        if key in fields:
            rw = not _bool_opt(key, fields.pop(key))
    fields.pop("consistency", None)  # macOS file sharing; meaningless on Linux
    if kind == "bind":
        propagation = fields.pop("bind-propagation", None) or "rprivate"
        if propagation not in _PROPAGATIONS:
            raise InvalidInput(f"invalid bind-propagation: {propagation}", 125)
        if not source.startswith("/"):
            raise InvalidInput(
                'invalid mount config for type "bind": invalid mount path: '
                f"'{source}' mount path must be absolute",
                125,
            )
        if not os.path.exists(source):
            raise InvalidInput(
                f'invalid mount config for type "bind": bind source path does not exist: {source}',
                125,
            )
        mp = _mount_point("bind", os.path.normpath(source), target, rw, Propagation=propagation)
    elif kind == "volume":
        if source and not _NAME.match(source):
            raise InvalidInput(f'invalid volume name "{source}": {_VALID_NAME_MSG}', 125)
        copy = not _bool_opt("volume-nocopy", fields.pop("volume-nocopy")) if (
            "volume-nocopy" in fields
        ) else True  # fmt: skip
        mp = _mount_point("volume", "", target, rw, Name=source, Driver="local", _copy=copy)
    elif kind == "tmpfs":
        if source:
            raise InvalidInput('invalid mount config for type "tmpfs": source is not allowed', 125)
        opts = []
        if fields.get("tmpfs-size"):
            from .limits import parse_bytes

            opts.append(f"size={parse_bytes(fields.pop('tmpfs-size') or '', 'tmpfs-size')}")
        if fields.get("tmpfs-mode"):
            mode = fields.pop("tmpfs-mode") or ""
            try:
                opts.append(f"mode={int(mode, 8):o}")
            except ValueError:
                raise InvalidInput(f"invalid tmpfs-mode: {mode}", 125) from None
        mp = _mount_point("tmpfs", "", target, rw, _tmpfs=opts)
    else:
        raise InvalidInput(f"invalid mount type {kind!r}: bind, volume or tmpfs", 125)
    if fields:
        raise InvalidInput(f"unexpected key '{sorted(fields)[0]}' in '{spec}'", 125)
    return mp


def check_duplicates(mounts: list[dict]) -> None:
    seen: set[str] = set()
    for mp in mounts:
        if mp["Destination"] in seen:
            raise InvalidInput(f"Duplicate mount point: {mp['Destination']}", 125)
        seen.add(mp["Destination"])


def public(mp: dict) -> dict:
    """The mount point as inspect shows it (without the create-time ``_`` keys)."""
    return {k: v for k, v in mp.items() if not k.startswith("_")}


def oci_mounts(mounts: list[dict]) -> list[dict]:
    """Runtime-spec ``mounts`` entries; parents before children (sorted by depth), as
    Docker orders them, so a mount at /a/b is not hidden by one at /a."""
    out = []
    for mp in sorted(mounts, key=lambda m: m["Destination"].count("/")):
        if mp["Type"] == "tmpfs":
            opts = ["nosuid", "nodev", "noexec", *mp.get("_tmpfs", [])]
            out.append({"destination": mp["Destination"], "type": "tmpfs", "source": "tmpfs",
                        "options": opts + ([] if mp["RW"] else ["ro"])})  # fmt: skip
            continue
        opts = ["rbind", mp.get("Propagation") or "rprivate"]
        if not mp["RW"]:
            opts.append("ro")
        out.append({"destination": mp["Destination"], "type": "bind", "source": mp["Source"],
                    "options": opts})  # fmt: skip
    return out


# -- the store ------------------------------------------------------------------------------


def _now() -> str:
    from .containers import now

    return now()


class VolumeStore:
    def __init__(self, root: str | Path) -> None:
        self.dir = Path(root) / "volumes"
        self.lock = FileLock(self.dir / "volumes.lock")

    def ensure(self) -> None:
        self.dir.mkdir(mode=0o701, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.dir / name

    def mountpoint(self, name: str) -> str:
        return str(self.dir / name / "_data")

    def exists(self, name: str) -> bool:
        return (self.dir / name / "volume.json").is_file()

    def names(self) -> list[str]:
        try:
            entries = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        return [n for n in entries if _NAME.match(n) and self.exists(n)]

    def inspect(self, name: str) -> dict:
        try:
            meta = read_json(self.dir / name / "volume.json")
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"get {name}: no such volume") from None
        return {
            "CreatedAt": meta["CreatedAt"],
            "Driver": meta.get("Driver", "local"),
            "Labels": meta.get("Labels") or {},
            "Mountpoint": self.mountpoint(name),
            "Name": name,
            "Options": meta.get("Options") or {},
            "Scope": "local",
        }

    def create(
        self, name: str | None = None, labels: dict | None = None, anonymous: bool = False
    ) -> tuple[str, bool]:
        """Make volume ``name`` (a random one if None; labelled anonymous if ``anonymous``,
        as the volumes Docker makes for a container are); return (name, created).

        An existing volume of that name is returned as it is, as ``docker volume create``
        does. The caller holds ``self.lock`` (shared suffices: creation is atomic)."""
        self.ensure()
        labels = dict(labels or {})
        if name is None:
            name = os.urandom(32).hex()
            if anonymous:
                labels[ANON_LABEL] = ""
        elif not _NAME.match(name):
            raise InvalidInput(
                f'create {name}: "{name}" includes invalid characters for a local volume '
                f"name, {_VALID_NAME_MSG}",
                125,
            )
        if self.exists(name):
            return name, False
        tmp = self.dir / f".tmp-{os.getpid()}-{os.urandom(4).hex()}"
        tmp.mkdir(mode=0o701)
        try:
            (tmp / "_data").mkdir(mode=0o755)
            write_json(tmp / "volume.json", {"Name": name, "CreatedAt": _now(), "Driver": "local",
                                             "Labels": labels, "Options": {}})  # fmt: skip
            try:
                os.rename(tmp, self.dir / name)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                return name, False  # someone else made it first: theirs is the volume
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        from . import events

        events.emit(self.dir.parent, "volume", "create", name, {"driver": "local"})
        return name, True

    def remove(self, name: str, users: list[str]) -> None:
        """Delete a volume no container uses (the caller holds ``self.lock`` exclusively)."""
        if not self.exists(name):
            raise NotFound(f"get {name}: no such volume")
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        # Rename first: a half-deleted volume never looks like a volume.
        doomed = self.dir / f".rm-{name}-{os.urandom(4).hex()}"
        os.rename(self.dir / name, doomed)
        shutil.rmtree(doomed)
        from . import events

        events.emit(self.dir.parent, "volume", "destroy", name, {"driver": "local"})

    def size(self, name: str) -> int:
        total = 0
        for top, _dirs, files in os.walk(self.mountpoint(name)):
            for f in files:
                try:
                    total += os.lstat(os.path.join(top, f)).st_blocks * 512
                except OSError:
                    pass
        return total


def remove_anonymous(root: str | Path, rec: dict, all_containers) -> None:
    """Remove the anonymous volumes of container ``rec`` (already removed) that no other
    container uses, as Docker does for ``run --rm``. ``all_containers()`` lists the
    records, read under the store lock."""
    store = VolumeStore(root)
    names = [m["Name"] for m in rec.get("Mounts") or [] if m.get("Type") == "volume"]
    if not names:
        return
    store.ensure()
    with store.lock:
        used = users_of(all_containers())
        for name in names:
            try:
                info = store.inspect(name)
            except NotFound:
                continue
            if ANON_LABEL in info["Labels"] and not used.get(name):
                store.remove(name, [])


def users_of(containers: list[dict]) -> dict[str, list[str]]:
    """Volume name -> ids of the containers (any state) whose records mount it."""
    out: dict[str, list[str]] = {}
    for rec in containers:
        for mp in rec.get("Mounts") or []:
            if mp.get("Type") == "volume" and mp.get("Name"):
                out.setdefault(mp["Name"], []).append(rec["Id"])
    return out


# -- giving a container its mounts -------------------------------------------------------------


def attach(root: str | Path, mounts: list[dict]) -> FileLock:
    """Create the volumes ``mounts`` name (anonymous ones get a name) and fill in their
    Source. Returns the store lock, held shared: release it once the container's record,
    which names the volumes, is saved."""
    store = VolumeStore(root)
    store.ensure()
    lock = store.lock.acquire(shared=True)
    try:
        for mp in mounts:
            # -v creates a missing host directory (--mount refuses it), as Docker's does
            create = mp["Type"] == "bind" and mp.pop("_create_source", False)
            if create and not os.path.lexists(mp["Source"]):
                os.makedirs(mp["Source"], mode=0o755, exist_ok=True)
            if mp["Type"] != "volume":
                continue
            name, created = store.create(mp.get("Name") or None, anonymous=not mp.get("Name"))
            mp["Name"], mp["Source"] = name, store.mountpoint(name)
            mp["_new"] = created
    except BaseException:
        lock.release()
        raise
    return lock


def attach_for(root: str | Path, opts, image_config: dict) -> FileLock:
    """``attach`` for a container's RunOptions: its -v/--mount mount points plus an
    anonymous volume for each VOLUME of the image they do not cover, as Docker adds."""
    taken = {m["Destination"] for m in opts.mounts}
    for path in sorted((image_config.get("config") or {}).get("Volumes") or {}):
        dest = os.path.normpath(path)
        if dest.startswith("/") and dest not in taken:
            opts.mounts.append(
                _mount_point("volume", "", dest, True, Name="", Driver="local", _copy=True)
            )
            taken.add(dest)
    return attach(root, opts.mounts)


def copy_image_content(mounts: list[dict], rootfs: str) -> None:
    """Fill each new, empty volume with what the image has at its mount path (owner,
    modes and all), as Docker does on first use; ``nocopy`` turns it off."""
    from ..nsutil.rootfs import secure_join

    for mp in mounts:
        if mp["Type"] != "volume" or not mp.get("_copy", True) or not mp.get("_new"):
            continue
        src = secure_join(rootfs, mp["Destination"])
        dst = mp["Source"]
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or os.listdir(dst):
            continue
        _copy_tree(src, dst)
        os.chown(dst, st.st_uid, st.st_gid)
        os.chmod(dst, stat.S_IMODE(st.st_mode))


def _copy_tree(src: str, dst: str) -> None:
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        st = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            os.symlink(os.readlink(s), d)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(d)
            _copy_tree(s, d)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(s, d, follow_symlinks=False)
        else:  # devices, fifos, sockets: recreate the node
            os.mknod(d, st.st_mode, st.st_rdev)
        os.lchown(d, st.st_uid, st.st_gid)
        if not entry.is_symlink():
            os.chmod(d, stat.S_IMODE(st.st_mode))
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
