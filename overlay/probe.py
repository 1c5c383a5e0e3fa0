"""Can this host run overlay2 at ``home``? If not, say why -- and remember the answer.

The checks mirror what makes Docker's and containers/storage's overlay drivers refuse a
host, but each is asked of the kernel directly rather than inferred from versions:

1. the backing filesystem of home must not be overlay (or aufs/ecryptfs): overlayfs refuses
   them as upperdir ("filesystem on ... not supported as upperdir");
2. it must fill in ``d_type`` in readdir: overlay needs it to tell whiteouts and directories
   apart without a stat per entry, and refuses to merge correctly without it
   (xfs formatted with ftype=0 is the classic case);
3. it must store ``trusted.*`` xattrs: opaque directories are the xattr
   ``trusted.overlay.opaque=y`` (ramfs, for one, has none);
4. a real overlay of two tiny lower layers and an upper, with a whiteout and an opaque
   directory, must mount there and merge as documented (this also loads the module).

Metacopy (``metacopy=on``) is probed and reported but never required. The result is cached
as JSON in ``home`` keyed by kernel release and home's device, so ``pydock`` start-up does
not pay for a test mount; it runs again after a kernel update or when home moves.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections import namedtuple
from pathlib import Path

from pydock.drivers.base import NotSupported
from pydock.overlay import mount as mnt

CACHE_NAME = ".probe-overlay2.json"
CACHE_VERSION = 2  # 2: method_note
OPAQUE_XATTR = "trusted.overlay.opaque"
METACOPY_XATTR = "trusted.overlay.metacopy"
#: Backing filesystems overlay refuses as upperdir (and Docker refuses outright).
UNSUPPORTED_BACKING = {"overlay": "overlayfs", "aufs": "aufs", "ecryptfs": "ecryptfs"}


_FIELDS = (
    "supported reason backing_fs d_type method metacopy index_param kernel dev method_note version"
)


class ProbeResult(namedtuple("ProbeResult", _FIELDS, defaults=("", CACHE_VERSION))):
    """What the probe found (a namedtuple: cheap to import on the start path).

    supported/reason: whether overlay2 works here and, if not, why; backing_fs: Docker's
    name for home's filesystem ("extfs", "xfs", "tmpfs", ...); d_type; method:
    mount.FSCONFIG or mount.LEGACY; metacopy: the kernel honours metacopy=on here;
    index_param: overlay has the "index" feature (so index=off is passed); kernel and dev:
    what the cached result is valid for; method_note: why the new mount API's method was
    not taken ("" when it was, or a method was forced); version: the cache format.
    """

    __slots__ = ()


def backing_fs(path: Path) -> str:
    """The filesystem type of the mount holding ``path``, from /proc/self/mountinfo.

    Matched by device number (the mount whose major:minor is the path's ``st_dev``; the last
    such line is the top of any stack), so no statfs binding is needed.
    """
    st = os.stat(path)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    fstype = "unknown"
    best = -1
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[2] != dev:
                continue
            point = fields[4].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= best:
                best = len(point)
                fstype = fields[fields.index("-") + 1]
    return fstype


def docker_fs_name(fstype: str) -> str:
    """Docker's spelling for ``Backing Filesystem`` (pkg/fsutils names ext2/3/4 "extfs")."""
    return {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}.get(
        fstype, fstype
    )


def supports_d_type(directory: Path) -> bool:
    """Whether readdir on ``directory``'s filesystem reports entry types (not DT_UNKNOWN).

    ``os.scandir`` hides DT_UNKNOWN by falling back to lstat, so this reads the raw
    ``struct dirent`` through libc with ctypes (probe-time only, never on the hot path).
    """
    import ctypes
    import shutil  # the probe runs once per kernel and device; keep these off `run`
    import tempfile

    class Dirent(ctypes.Structure):  # glibc's struct dirent on 64-bit Linux (== dirent64)
        _fields_ = [
            ("d_ino", ctypes.c_uint64),
            ("d_off", ctypes.c_int64),
            ("d_reclen", ctypes.c_ushort),
            ("d_type", ctypes.c_ubyte),
            ("d_name", ctypes.c_char * 256),
        ]

    dt_unknown = 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    probe_dir = Path(tempfile.mkdtemp(prefix=".dtype-", dir=directory))
    try:
        (probe_dir / "f").write_bytes(b"")
        (probe_dir / "d").mkdir()
        handle = libc.opendir(os.fsencode(probe_dir))
        if not handle:
            raise OSError(ctypes.get_errno(), f"opendir {probe_dir}")
        types = {}
        try:
            while True:
                ent = libc.readdir(handle)
                if not ent:
                    break
                types[ent.contents.d_name.decode()] = ent.contents.d_type
        finally:
            libc.closedir(handle)
        return types.get("f", dt_unknown) != dt_unknown and types.get("d", dt_unknown) != (
            dt_unknown
        )
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


def _try_trusted_xattr(directory: Path) -> str | None:
    """None if ``trusted.overlay.*`` xattrs can be set in ``directory``, else why not."""
    import shutil  # the probe runs once per kernel and device; keep these off `run`
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=".xattr-", dir=directory))
    try:
        os.setxattr(d, OPAQUE_XATTR, b"y")
        return None
    except OSError as e:
        return f"it cannot store trusted.* xattrs ({e.strerror}), which opaque directories need"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _test_mount(work_root: Path, method: str, options: list[str]) -> None:
    """Mount a two-layer overlay with a whiteout and an opaque dir; check it merges right."""
    lower1, lower2, upper, work, merged = (work_root / n for n in ("l1", "l2", "u", "w", "m"))
    for d in (lower1, lower2, upper, work, merged):
        d.mkdir()
    (lower2 / "gone").write_bytes(b"x")
    (lower2 / "kept").write_bytes(b"x")
    (lower2 / "opq").mkdir()
    (lower2 / "opq" / "hidden").write_bytes(b"x")
    os.mknod(lower1 / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (lower1 / "opq").mkdir()
    os.setxattr(lower1 / "opq", OPAQUE_XATTR, b"y")
    mnt.mount_overlay(
        str(merged), [str(lower1), str(lower2)], str(upper), str(work),
        options=options, method=method,
    )  # fmt: skip
    try:
        seen = sorted(os.listdir(merged))
        hidden = os.listdir(merged / "opq")
        (merged / "new").write_bytes(b"y")
        in_upper = (upper / "new").exists()
    finally:
        mnt.unmount(str(merged))
    if seen != ["kept", "opq"] or hidden or not in_upper:
        raise NotSupported(
            f"overlay at {work_root.parent} does not merge as documented "
            f"(saw {seen}, opaque dir showed {hidden}, upper write {in_upper})"
        )


def _probe_metacopy(work_root: Path, method: str, options: list[str]) -> bool:
    """Mount with metacopy=on, chmod a lower file, and look for the metacopy xattr in upper."""
    lower, upper, work, merged = (work_root / n for n in ("ml", "mu", "mw", "mm"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    (lower / "f").write_bytes(b"data")
    try:
        mnt.mount_overlay(
            str(merged), [str(lower)], str(upper), str(work),
            options=[*options, "metacopy=on"], method=method,
        )  # fmt: skip
    except OSError:
        return False
    try:
        os.chmod(merged / "f", 0o600)
    finally:
        mnt.unmount(str(merged))
    try:
        os.getxattr(upper / "f", METACOPY_XATTR)
        return True
    except OSError:
        return False


def base_options(index_param: bool) -> list[str]:
    """Options every mount gets: ``index=off`` where the kernel has the feature.

    Like moby's overlay2: with index=on the kernel pins an upper to the exact lower it was
    first mounted with (ESTALE after layers are copied or re-created), which a layer store
    that moves and re-applies layers must not risk.
    """
    return ["index=off"] if index_param else []


def run_probe(home: Path, force_method: str | None = None) -> ProbeResult:
    """All checks, uncached. Never raises for an unsupported host: see ``result.reason``."""
    import shutil  # the probe runs once per kernel and device; keep these off `run`
    import tempfile

    kernel = os.uname().release
    st = os.stat(home)
    fstype = backing_fs(home)
    name = docker_fs_name(fstype)
    index_param = os.path.exists("/sys/module/overlay/parameters/index")

    def fail(reason: str, d_type: bool = False) -> ProbeResult:
        return ProbeResult(False, reason, name, d_type, "", False, index_param, kernel, st.st_dev)

    if fstype in UNSUPPORTED_BACKING:
        return fail(
            f"{home} is on {UNSUPPORTED_BACKING[fstype]}, which overlay cannot use as its "
            f"upper layer (put the pydock root on another filesystem or use vfs)"
        )
    d_type = supports_d_type(home)
    if not d_type:
        return fail(
            f"the backing filesystem of {home} ({name}) does not report d_type in readdir "
            f"(xfs needs ftype=1); overlay would mis-merge directories"
        )
    bad_xattr = _try_trusted_xattr(home)
    if bad_xattr:
        return fail(f"the backing filesystem of {home} ({name}): {bad_xattr}", d_type)
    # The probe proves the exact mount the driver will make. lowerdir+ (6.8) cannot be
    # detected by fsconfig's answer alone: before 6.5 overlay accepts any key at
    # FSCONFIG_SET_STRING and refuses it only at FSCONFIG_CMD_CREATE ("unrecognized mount
    # option"), so a refused test mount by fsconfig falls back to mount(2)'s.
    if force_method:
        methods = [force_method]
        note = ""
    elif mnt.lowerdir_plus_supported():
        methods = [mnt.FSCONFIG, mnt.LEGACY]
        note = ""
    else:
        methods = [mnt.LEGACY]
        note = "this kernel's overlay refuses fsconfig lowerdir+"
    options = base_options(index_param)
    work_root = Path(tempfile.mkdtemp(prefix=".probe-", dir=home))
    try:
        for method in methods:
            try:
                (work_root / method).mkdir()
                _test_mount(work_root / method, method, options)
                break
            except NotSupported as e:
                return fail(str(e), d_type)
            except OSError as e:
                if e.errno == 19:  # ENODEV: no such filesystem type, and it could not be loaded
                    why = "the kernel has no overlay filesystem (not built in, module not loadable)"
                    return fail(why, d_type)
                if method == methods[-1]:
                    return fail(f"a test overlay mount in {home} failed: {e.strerror or e}", d_type)
                why = str(e.strerror or e)
                why = why.partition(" refused: ")[2] or why  # the kernel's part, not our path
                note = f"a test mount with fsconfig lowerdir+ was refused: {why}"
        metacopy = _probe_metacopy(work_root, method, options)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    return ProbeResult(
        True, "", name, d_type, method, metacopy, index_param, kernel, st.st_dev, note
    )


def probe(home: Path, force_method: str | None = None) -> ProbeResult:
    """The cached probe result for ``home`` (running the probe if the cache is stale)."""
    home.mkdir(parents=True, exist_ok=True)
    cache = home / CACHE_NAME
    st = os.stat(home)
    kernel = os.uname().release
    with contextlib.suppress(OSError, ValueError, TypeError):
        data = json.loads(cache.read_text())
        result = ProbeResult(**data)
        if (
            result.version == CACHE_VERSION
            and result.kernel == kernel
            and result.dev == st.st_dev
            and (force_method is None or result.method == force_method or not result.supported)
        ):
            return result
    result = run_probe(home, force_method)
    tmp = cache.with_name(f"{CACHE_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result._asdict()))
    os.replace(tmp, cache)
    return result
