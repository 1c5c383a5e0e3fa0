"""The overlay2 storage driver: image layers as overlayfs lower dirs, containers as upper dirs.

Layout and whiteout forms are Docker's and containers/storage's (:mod:`.layout`), so a
reader who knows ``/var/lib/docker/overlay2`` knows this store. What differs is mounting:
the new mount API with one ``fsconfig("lowerdir+")`` per layer (Linux >= 6.8) lets a chain
reach overlay's own limit of 500 layers instead of what fits in one page of mount options;
mount(2) with short ``l/`` links is the fallback (:mod:`.mount`).

Options (``--storage-opt overlay2.KEY=VALUE``):

* ``mountopt`` -- extra overlay options, comma separated (``metacopy=on``, ...). metacopy is
  dropped if the probe found the kernel does not honour it. With metacopy or redirect_dir
  the upper dir is no longer a complete diff, so diff/changes fall back to comparing the
  mounted layer with its mounted parent ("Native Overlay Diff: false", as in Docker).
* ``mount_method`` -- ``fsconfig`` or ``mount`` to force one (tests, old kernels).

Mounts are reference counted across pydock processes (:class:`pydock.drivers.layers.RefCounts`
under ``<home>/.refs``); a count left by a process that died is reconciled against what
is really mounted. Disk usage is recorded when it changes -- after ``apply_diff`` and on the
last ``put`` of a writable layer -- in ``<id>/usage.json``, never measured on demand.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import Counter
from pathlib import Path

from pydock.drivers.base import (
    Change,
    Driver,
    DriverError,
    DriverOptions,
    LayerExists,
    LayerInUse,
    LayerNotFound,
    NotSupported,
    Usage,
)
from pydock.drivers.layers import (
    OverlayWhiteoutReader,
    OverlayWhiteouts,
    RefCounts,
    TempDir,
    apply_tar,
    cleanup_temp_dirs,
    measure_usage,
    read_json,
    reproduce_tar,
    tree_changes,
    write_json_atomic,
    write_tar,
)
from pydock.drivers.layers import diff_size as changes_size
from pydock.overlay import mount as mnt
from pydock.overlay import probe as probe_mod
from pydock.overlay.changes import layer_changes
from pydock.overlay.layout import LINK_DIR, LayerPaths, Layout, check_id, new_short_name

TYPE_CHECKING = False  # typing costs milliseconds to import on the start path
if TYPE_CHECKING:
    from typing import BinaryIO

USAGE_FILE = "usage.json"
TAR_SPLIT_FILE = "tar-split.gz"  # the applied tar's framing (pydock.drivers.tarsplit)
VOLATILE_MARK = "volatile"  # in an ephemeral writable layer's dir
#: in a writable layer's work dir while fuse-union's metadata-only copy-ups may be in its
#: upper dir (pydock.fuse_union.metacopy.MARK)
METACOPY_MARK = "fuse-union-metacopy"
REFS_DIR = ".refs"
_METHOD_NAMES = {
    mnt.FSCONFIG: "fsconfig lowerdir+ (new mount API)",
    mnt.LEGACY: "mount(2) with short l/ links",
}


def _mount_options(opts: str | None) -> list[str]:
    return [o.strip() for o in (opts or "").split(",") if o.strip()]


class Overlay2Driver(Driver):
    """overlay2 on the kernel's overlayfs; see the module docstring."""

    name = "overlay2"

    def __init__(self, home: str | Path, options: DriverOptions | None = None) -> None:
        super().__init__(home, options)
        forced = self.options.get("mount_method")
        if forced is not None and forced not in mnt.METHODS:
            raise DriverError(
                f"overlay2: mount_method must be one of {', '.join(mnt.METHODS)}, not {forced!r}"
            )
        self.home = self.home.absolute()
        result = probe_mod.probe(self.home, forced)
        if not result.supported:
            raise NotSupported(f"overlay2: {result.reason}")
        self.probed = result
        self.method = result.method
        self.layout = Layout(self.home)
        self.layout.link_dir.mkdir(exist_ok=True)
        self.refs = RefCounts(self.home / REFS_DIR)
        user = _mount_options(self.options.get("mountopt"))
        if "metacopy=on" in user and not result.metacopy:
            user = [o for o in user if o != "metacopy=on"]  # unsupported: drop, as c/storage does
        self.metacopy = "metacopy=on" in user
        self.native_diff = not self.metacopy and not any(
            o.startswith("redirect_dir=") and o != "redirect_dir=off" for o in user
        )
        self.mount_options = [*probe_mod.base_options(result.index_param), *user]
        self._held: Counter[str] = Counter()  # refs this process took, for cleanup()
        cleanup_temp_dirs(self.home)

    @classmethod
    def probe(cls, home: str | Path) -> None:
        result = probe_mod.probe(Path(home).absolute())
        if not result.supported:
            raise NotSupported(f"overlay2: {result.reason}")

    # -- layers ----------------------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        self._create(id, parent, rw=False)

    def create_rw(self, id: str, parent: str | None, *, ephemeral: bool = False) -> None:
        self._create(id, parent, rw=True, ephemeral=ephemeral)

    def _create(self, id: str, parent: str | None, *, rw: bool, ephemeral: bool = False) -> None:
        check_id(id)
        if self.exists(id):
            raise LayerExists(f"overlay2: layer {id!r} already exists")
        lower = ""
        if parent is not None:
            if not self.exists(parent):
                raise LayerNotFound(f"overlay2: parent layer {parent!r} not found")
            lower = self.layout.lower_text_for_child(parent)
            # Mounting needs every parent as a lower dir, plus this layer's own diff when it
            # is read-only (no upper); overlay refuses more than 500 (OVL_MAX_STACK).
            depth = lower.count(":") + 1 + (0 if rw else 1)
            if depth > mnt.MAX_LOWER:
                raise DriverError(
                    f"overlay2: layer {id!r} would stack {depth} lower layers; "
                    f"overlay allows at most {mnt.MAX_LOWER}"
                )
        short = new_short_name()
        final = self.home / id
        link = self.layout.link_dir / short
        with TempDir(self.home, id) as tmp:
            os.chmod(tmp.path, 0o700)
            os.mkdir(tmp.path / "diff", 0o755)
            (tmp.path / "link").write_text(short)
            if lower:
                (tmp.path / "lower").write_text(lower)
            if rw:
                os.mkdir(tmp.path / "work", 0o700)
            if ephemeral:
                # Mounted "volatile" (overlayfs.rst): no syncs, none at unmount either; the
                # layer dies with its container, and after a crash it is removed anyway.
                os.close(os.open(tmp.path / VOLATILE_MARK, os.O_CREAT | os.O_WRONLY, 0o600))
            else:
                u = measure_usage(tmp.path / "diff")
                write_json_atomic(
                    tmp.path / USAGE_FILE, {"size": u.size, "inodes": u.inodes}, durable=False
                )
            # The link may dangle for an instant; a crash here leaves only a dead symlink.
            os.symlink(f"../{id}/diff", link)
            try:
                tmp.commit(final)
            except OSError as e:
                link.unlink(missing_ok=True)
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise LayerExists(f"overlay2: layer {id!r} already exists") from None
                raise

    def apply_diff(self, id: str, parent: str | None, stream: BinaryIO) -> int:
        import tarfile  # when a layer is applied, never on `pydock run`

        p = self.layout.existing(id)
        if parent is not None and self.layout.parent_of(id) != parent:
            raise DriverError(f"overlay2: layer {id!r} was not created on {parent!r}")
        if self.refs.count(id) > 0:
            raise LayerInUse(f"overlay2: layer {id!r} is mounted; cannot apply a diff to it")
        if any(os.scandir(p.diff)):
            raise DriverError(f"overlay2: layer {id!r} already has content")
        # Unpack beside the layer, then swap it in for the empty diff dir with one rename
        # (rename(2) may replace an empty directory). A bad tar removes the layer, as
        # Docker's layer store does, so the store never holds a half-applied layer.
        try:
            with TempDir(self.home, id) as tmp:
                os.chmod(tmp.path, 0o755)
                try:
                    size = apply_tar(
                        stream,
                        tmp.path,
                        whiteouts=OverlayWhiteouts(),
                        tar_split=p.dir / TAR_SPLIT_FILE,
                    )
                except tarfile.TarError as e:  # e.g. not a tar at all (raised on open)
                    raise DriverError(f"overlay2: invalid layer tar for {id!r}: {e}") from None
                tmp.commit(p.diff)
            self._record_usage(p)
        except BaseException:
            with contextlib.suppress(DriverError, OSError):
                self.remove(id)
            raise
        return size

    def remove(self, id: str) -> None:
        p = self.layout.existing(id)
        with self.refs.hold(id) as ref:
            if ref.count > 0 and (not self._needs_mount(id) or mnt.is_mountpoint(str(p.merged))):
                raise LayerInUse(f"overlay2: layer {id!r} is mounted")
            # A container's writable layer is never a parent: no need to read every lower file.
            children = [] if self.layout.is_rw(id) else self._children(id)
            if children:
                raise LayerInUse(f"overlay2: layer {id!r} has child layers ({children[0]}, ...)")
            if mnt.is_mountpoint(str(p.merged)):
                mnt.unmount(str(p.merged))  # left by a process that died holding it
            short = self.layout.short_name(id)
            # Rename first so the layer vanishes atomically, into a locked temp dir that is
            # deleted on the way out; a crash leaves it for cleanup_temp_dirs, and at worst a
            # dangling l/ link.
            with TempDir(self.home, id) as tmp:
                os.rename(p.dir, tmp.path / "layer")
                (self.layout.link_dir / short).unlink(missing_ok=True)
                ref.count = 0
        self.refs.discard(id)

    def _children(self, id: str) -> list[str]:
        """Layers whose nearest parent is ``id`` (their lower file starts with its link)."""
        mine = f"{LINK_DIR}/{self.layout.short_name(id)}"
        out = []
        for other in self.layout.layer_ids():
            try:
                text = (self.home / other / "lower").read_text()
            except FileNotFoundError:
                continue
            if text.split(":", 1)[0].strip() == mine:
                out.append(other)
        return out

    def exists(self, id: str) -> bool:
        try:
            check_id(id)
        except DriverError:
            return False
        return (self.home / id / "diff").is_dir()

    def list_layers(self) -> list[str]:
        return self.layout.layer_ids()

    def parent(self, id: str) -> str | None:
        self.layout.existing(id)
        return self.layout.parent_of(id)

    # -- mounts ----------------------------------------------------------------------------
    def _needs_mount(self, id: str) -> bool:
        return (self.home / id / "lower").exists()

    def _link_path(self, entry: str) -> str:
        return str(self.home / entry)

    def get(self, id: str) -> str:
        p = self.layout.existing(id)
        if not self._needs_mount(id):
            # A base layer is complete in its diff dir; nothing to mount (as in Docker).
            with self.refs.hold(id) as ref:
                ref.count += 1
            self._held[id] += 1
            return str(p.diff)
        merged = str(p.merged)
        with self.refs.hold(id) as ref:
            is_mounted = mnt.is_mountpoint(merged)
            if ref.count > 0 and not is_mounted:
                ref.count = 0  # stale: the mount went away (reboot, or a holder died)
            if ref.count == 0 and not is_mounted:
                self._mount(id, p)
            ref.count += 1
        self._held[id] += 1
        return merged

    def _mount(self, id: str, p: LayerPaths) -> None:
        lowers = [self._link_path(e) for e in self.layout.lower_names(id)]
        os.makedirs(p.merged, mode=0o700, exist_ok=True)
        options = self.mount_options
        if self.layout.is_rw(id):
            upper, work, readonly = str(p.diff), str(p.work), False
            self._upper_complete(id, p)  # metacopy=off refuses metacopy files (EPERM)
            if os.path.exists(p.dir / VOLATILE_MARK):
                options = [*options, "volatile"]
        else:
            # A read-only image layer: its own diff is simply the top lower dir.
            lowers.insert(0, self._link_path(f"{LINK_DIR}/{self.layout.short_name(id)}"))
            upper, work, readonly = None, None, True
        try:
            mnt.mount_overlay(
                str(p.merged), lowers, upper, work,
                readonly=readonly, options=options,
                method=self.method, relative_to=str(self.home),
            )  # fmt: skip
        except OSError as e:
            raise DriverError(f"overlay2: cannot mount layer {id!r}: {e.strerror or e}") from None

    def put(self, id: str) -> None:
        p = self.layout.existing(id)
        with self.refs.hold(id) as ref:
            if ref.count <= 0:
                raise DriverError(f"overlay2: layer {id!r} is not mounted")
            ref.count -= 1
            if ref.count == 0 and self._needs_mount(id):
                merged = str(p.merged)
                if mnt.is_mountpoint(merged):
                    mnt.unmount(merged)
            if (
                ref.count == 0
                and self.layout.is_rw(id)
                and not os.path.exists(p.dir / VOLATILE_MARK)
            ):
                self._record_usage(p)
        if self._held[id] > 0:
            self._held[id] -= 1

    def mounted(self, id: str) -> bool:
        p = self.layout.existing(id)
        if self.refs.count(id) <= 0:
            return False
        return not self._needs_mount(id) or mnt.is_mountpoint(str(p.merged))

    def cleanup(self) -> None:
        for id, n in list(self._held.items()):
            for _ in range(n):
                try:
                    self.put(id)
                except (DriverError, OSError):
                    break
        self._held.clear()

    # -- diffs -----------------------------------------------------------------------------
    def _parent_diffs(self, id: str) -> list[Path]:
        return self.layout.lower_diffs(id)

    def diff(self, id: str, out: BinaryIO) -> None:
        p = self.layout.existing(id)
        if self.native_diff and self._upper_complete(id, p):
            # The diff dir *is* the layer's change set; whiteouts and opaque markers are
            # converted back to their tar form by the reader.
            write_tar(out, p.diff, whiteout_reader=OverlayWhiteoutReader())
            return
        with self._naive(id) as (layer_root, changes):
            write_tar(out, layer_root, changes)

    def diff_exact(self, id: str, out: BinaryIO) -> bool:
        # An image layer's diff dir holds exactly the files its tar wrote (whiteouts as
        # 0/0 char devices, which the recording never references), and is never written
        # again: containers write to their own upper dirs.
        p = self.layout.existing(id)
        return reproduce_tar(p.dir / TAR_SPLIT_FILE, p.diff, out)

    def changes(self, id: str) -> list[Change]:
        p = self.layout.existing(id)
        if self.native_diff and self._upper_complete(id, p):
            return layer_changes(p.diff, self._parent_diffs(id))
        with self._naive(id) as (_, changes):
            return changes

    def diff_size(self, id: str) -> int:
        p = self.layout.existing(id)
        if self.native_diff and self._upper_complete(id, p):
            return _regular_bytes(p.diff)
        with self._naive(id) as (layer_root, changes):
            return changes_size(layer_root, changes)

    def _upper_complete(self, id: str, p: LayerPaths) -> bool:
        """Is the upper dir a complete change set? Settles fuse-union's metacopy files if it can.

        fuse-union copies up only the metadata of a chmod'ed/chown'ed file, leaving the data
        in the lower layer, and marks the work dir; such an upper must be settled (data
        copied in) before the native diff or a kernel mount with ``metacopy=off`` reads it.
        Not while fuse-union still serves it (its server is the upper's only writer): then
        the caller compares the mounted trees. One stat when there is nothing to do.
        """
        if not os.path.exists(p.work / METACOPY_MARK):
            return True
        if mnt.is_mountpoint(str(p.merged)):
            return False
        from pydock.fuse_union import metacopy

        metacopy.settle(str(p.diff), str(p.work), [str(d) for d in self.layout.lower_diffs(id)])
        return True

    def _naive(self, id: str) -> _NaiveDiff:
        return _NaiveDiff(self, id)

    def usage(self, id: str) -> Usage:
        p = self.layout.existing(id)
        try:
            data = read_json(p.dir / USAGE_FILE)
            return Usage(int(data["size"]), int(data["inodes"]))
        except (OSError, ValueError, KeyError, TypeError):
            # A store written without the record: measure once and remember.
            return self._record_usage(p)

    def _record_usage(self, p: LayerPaths) -> Usage:
        u = measure_usage(p.diff)
        # a cache of what the tree holds: re-measured if lost, so not fsync'ed
        write_json_atomic(p.dir / USAGE_FILE, {"size": u.size, "inodes": u.inodes}, durable=False)
        return u

    # -- driver-wide -----------------------------------------------------------------------
    def status(self) -> list[tuple[str, str]]:
        return [
            ("Backing Filesystem", self.probed.backing_fs),
            ("Supports d_type", str(self.probed.d_type).lower()),
            ("Native Overlay Diff", str(self.native_diff).lower()),
            ("Using metacopy", str(self.metacopy).lower()),
            ("Mount method", self._method_text()),
        ]

    def _method_text(self) -> str:
        """The mount method, and why the new mount API's was not taken where it was not."""
        text = _METHOD_NAMES.get(self.method, self.method)
        note = self.probed.method_note
        return f"{text} ({note})" if note else text

    def capabilities(self) -> dict[str, bool]:
        # diff_exact reproduces applied layers from their tar-split whatever the diff mode
        return {"ReproducesExactDiffs": True, "NativeOverlayDiff": self.native_diff}

    def metadata(self, id: str) -> dict[str, str]:
        p = self.layout.existing(id)
        out = {"UpperDir": str(p.diff), "WorkDir": str(p.work), "MergedDir": str(p.merged)}
        lowers = self._parent_diffs(id)
        if lowers:
            out["LowerDir"] = ":".join(str(d) for d in lowers)
        return out


class _NaiveDiff:
    """Mount a layer and its parent and compare the trees (metacopy/redirect_dir stores)."""

    def __init__(self, driver: Overlay2Driver, id: str) -> None:
        self.driver = driver
        self.id = id
        self.parent = driver.layout.parent_of(id)

    def __enter__(self) -> tuple[str, list[Change]]:
        root = self.driver.get(self.id)
        try:
            parent_root = self.driver.get(self.parent) if self.parent else None
        except BaseException:
            self.driver.put(self.id)
            raise
        return root, tree_changes(root, parent_root)

    def __exit__(self, *exc: object) -> None:
        try:
            if self.parent:
                self.driver.put(self.parent)
        finally:
            self.driver.put(self.id)


def _regular_bytes(root: Path) -> int:
    """Sum of regular-file sizes under ``root``, hard links once (Docker's DiffSize)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue  # removed by the running container since the walk listed it
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total
