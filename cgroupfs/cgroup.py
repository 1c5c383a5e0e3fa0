"""One container's cgroup across every hierarchy of the host: create, attach, limit, freeze,
kill, destroy.

Hot-path notes: create() is one mkdir per hierarchy when the parent exists, attach() one
open+write+close per hierarchy, destroy() one rmdir per directory. Nothing walks a tree or
runs a program; extra reads happen only where the kernel needs values copied (v1 cpuset) or
delegated (v2 subtree_control) in directories this object created itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import select
import signal
import time

from . import fsio, v1, v2
from .errors import CgroupError
from .layout import UNIFIED, Layout, detect, own_paths
from .resources import strict_note
from .stats import Stats

# Controllers a pydock cgroup may use on v2; enabled in the subtree_control of intermediate
# cgroups this object creates, and of the existing parent of a container's cgroup when it
# does not delegate them yet (see _delegate_existing).
_V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")

# The v2 leaf a pydock process moves itself into when the cgroup it was started in holds
# only itself and must delegate controllers to containers (systemd's init.scope, for the
# same rule). A process in it counts the parent as its own cgroup (Cgroup._base).
SELF_LEAF = "engine.leaf"


def _live(pid: int) -> bool:
    """True unless ``pid`` is gone or already a zombie (exiting tasks drain by themselves)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] not in (b"Z", b"X")


class Cgroup:
    """A cgroup named by an OCI ``linux.cgroupsPath``.

    A relative path ("pydock/<id>") is placed under the calling process's own cgroup in each
    hierarchy (``own`` overrides /proc/self/cgroup, e.g. for a caller that already read it);
    an absolute path (Docker's --cgroup-parent) is taken from each hierarchy's root.
    """

    # Filesystem hooks, overridable by a subclass that emulates cgroupfs on a plain directory
    # (the fake_v2 tests): on the real kernel mkdir populates the interface files.
    _mkdir = staticmethod(os.mkdir)
    _rmdir = staticmethod(os.rmdir)
    _write = staticmethod(fsio.write)  # writes whose result is the kernel's rule (EBUSY)

    def __init__(
        self, path: str, layout: Layout | None = None, *, own: dict[str, str] | None = None
    ) -> None:
        if not path or path in ("/", "."):
            raise CgroupError(f"invalid cgroupsPath {path!r}")
        norm = posixpath.normpath(path)
        if ".." in norm.split("/"):
            raise CgroupError(f"cgroupsPath {path!r} must not contain '..'")
        self.layout = layout or detect()
        self.path = path
        rel = norm.lstrip("/")
        if not path.startswith("/") and own is None:
            own = own_paths()
        self.paths: dict[str, str] = {}
        for name, mnt in self.layout.hierarchies.items():
            base = "/" if own is None else self._base(name, own)
            self.paths[name] = posixpath.join(mnt + base.rstrip("/"), rel)
        # Co-mounted controllers share a directory: operate on each directory once.
        self._dirs = list(dict.fromkeys(self.paths.values()))
        self._unified = self.paths.get(UNIFIED)
        self._v2 = self.layout.mode == "v2"
        self._created: list[str] = []
        self._freezer: str | None = None

    def _base(self, name: str, own: dict[str, str]) -> str:
        """The caller's cgroup in hierarchy ``name``, relative to that hierarchy's mount."""
        try:
            base = own[name]
        except KeyError:
            raise CgroupError(f"the calling process has no {name} cgroup") from None
        if name == UNIFIED and base.endswith("/" + SELF_LEAF):
            base = posixpath.dirname(base)  # moved there by _delegate_existing
        root = self.layout.root_of(name)
        if root == "/":
            return base
        if base == root or base.startswith(root + "/"):
            return base[len(root) :] or "/"
        raise CgroupError(f"own {name} cgroup {base} is outside the mounted cgroup {root}")

    @property
    def created(self) -> tuple[str, ...]:
        """Directories this object created (parents first); destroy() removes these."""
        return tuple(self._created)

    # -- create / attach ---------------------------------------------------------------

    def _mkdir_p(self, d: str, top: str) -> bool:
        """mkdir -p that records what it made; True if ``d`` was created here.

        Tries the leaf first: when the parent exists (the usual case) that is one syscall.
        """
        try:
            self._mkdir(d, 0o755)
        except FileExistsError:
            return False
        except FileNotFoundError:
            parent = posixpath.dirname(d)
            if d == top or parent == d:
                raise CgroupError(f"cgroup hierarchy {top} is gone") from None
            if self._mkdir_p(parent, top) and self._v2:
                self._delegate(parent)
            try:
                self._mkdir(d, 0o755)
            except FileExistsError:
                return False
            except OSError as e:
                raise CgroupError(f"cannot create cgroup {d}: {e.strerror}") from e
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {d}: {e.strerror}") from e
        self._created.append(d)
        return True

    def create(self) -> None:
        """mkdir -p in every hierarchy, then make the new directories usable."""
        mounts = dict(zip(self.paths.values(), self.layout.hierarchies.values(), strict=True))
        for d in self._dirs:
            self._mkdir_p(d, mounts[d])
        if self._v2 and self._unified is not None:
            parent = posixpath.dirname(self._unified)
            if parent not in self._created and parent != self.layout.hierarchies[UNIFIED]:
                self._delegate_existing(parent)
        if self._created and "cpuset" in self.paths:
            self._fill_cpuset(self.layout.hierarchies["cpuset"])

    def _fill_cpuset(self, mnt: str) -> None:
        """v1 cpuset: a new cpuset starts with empty cpus/mems and refuses tasks until set,
        so copy them down from the nearest ancestor that has them (cgroup-v1/cpusets.rst)."""
        mine = [d for d in self._created if d.startswith(mnt + "/")]
        if not mine:
            return
        src = posixpath.dirname(mine[0])
        while True:
            cpus = fsio.read(f"{src}/cpuset.cpus").strip()
            mems = fsio.read(f"{src}/cpuset.mems").strip()
            if (cpus and mems) or src == mnt:
                break
            src = posixpath.dirname(src)
        for d in mine:
            fsio.write(f"{d}/cpuset.cpus", cpus)
            fsio.write(f"{d}/cpuset.mems", mems)

    def _delegate(self, d: str) -> None:
        """v2: a cgroup gets a controller's files only if its parent lists the controller in
        cgroup.subtree_control. Called for intermediate cgroups we just created, before their
        child is made; never for the leaf, which holds processes ("no internal processes"
        rule, cgroup-v2.rst), nor for a cgroup we did not create."""
        avail = set(fsio.read(f"{d}/cgroup.controllers").split())
        want = " ".join(f"+{c}" for c in _V2_CONTROLLERS if c in avail)
        if want:
            fsio.write(f"{d}/cgroup.subtree_control", want)

    def _delegate_existing(self, d: str) -> None:
        """v2: let the existing parent ``d`` of the container's cgroup (the caller's own
        cgroup, or a --cgroup-parent) delegate the controllers it has, as runc's fs2
        manager enables them along a cgroup's path. Costs two reads when it already does.

        A cgroup holding processes cannot delegate (the "no internal processes" rule,
        cgroup-v2.rst): the write fails with EBUSY. When the only process there is this
        one (a service or a CI job running pydock), it moves itself into SELF_LEAF below
        ``d`` (its own PID only, staying inside the caller's subtree) and enables them
        then. Other processes there (a login shell in its session scope) cannot be moved:
        the cgroup gets no controllers and a limit fails saying why (v2._write). On
        hybrid hosts this never runs: their controllers are v1's.
        """
        avail = fsio.read(f"{d}/cgroup.controllers").split()
        have = set(fsio.read(f"{d}/cgroup.subtree_control").split())
        want = " ".join(f"+{c}" for c in _V2_CONTROLLERS if c in avail and c not in have)
        if not want or self._enable(d, want):
            return
        me = str(os.getpid())
        if fsio.read(f"{d}/cgroup.procs").split() != [me]:
            return
        leaf = f"{d}/{SELF_LEAF}"
        try:
            self._mkdir(leaf, 0o755)
        except FileExistsError:
            pass
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {leaf}: {e.strerror}") from e
        self._write(f"{leaf}/cgroup.procs", me)
        self._enable(d, want)

    def _enable(self, d: str, want: str) -> bool:
        """Write ``want`` to d's subtree_control; False when the kernel refuses (EBUSY:
        members of its own; the limits then say what is missing)."""
        try:
            self._write(f"{d}/cgroup.subtree_control", want)
        except CgroupError as e:
            if isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.EBUSY:
                return False
            raise
        return True

    def attach(self, pid: int) -> None:
        """Move ``pid`` (a whole process) into this cgroup in every hierarchy."""
        for d in self._dirs:
            fsio.write(f"{d}/cgroup.procs", str(pid))

    # -- resources / stats ---------------------------------------------------------------

    def apply(self, resources: dict, *, strict: bool = True) -> list[str]:
        """Apply OCI ``linux.resources``.

        A requested limit this host cannot enforce (swap without swap accounting, unknown
        fields...) raises CgroupError when ``strict``;
        otherwise it is returned as a warning line, so the caller decides, never silence.
        On hybrid hosts the v1 hierarchies carry the controllers (device rules included:
        the v1 devices controller, as runc does there); on v2, device rules become an eBPF
        program attached to the cgroup (devfilter.py), and a refused load is an error.
        """
        warnings: list[str] = []
        note = strict_note if strict else warnings.append
        if self._v2:
            v2.apply(self._unified, resources, note)
        else:
            v1.apply(self.paths, resources, note)
        return warnings

    def stats(self) -> Stats:
        if self._v2:
            return v2.stats(self._unified)
        return v1.stats(self.paths, self._unified)

    # -- freezer ---------------------------------------------------------------------------

    def _freezer_kind(self) -> str | None:
        """ "v2" (cgroup.freeze, also on hybrid's unified mount, kernel >= 5.2), "v1"
        (freezer.state) or None. Decided once: it costs a stat."""
        if self._freezer is None:
            if self._unified is not None and os.path.exists(f"{self._unified}/cgroup.freeze"):
                self._freezer = "v2"
            elif "freezer" in self.paths:
                self._freezer = "v1"
            else:
                self._freezer = ""
        return self._freezer or None

    def freeze(self, timeout: float = 5.0) -> None:
        """Freeze every member and return once the kernel reports the cgroup frozen."""
        kind = self._freezer_kind()
        if kind == "v2":
            fsio.write(f"{self._unified}/cgroup.freeze", "1")
            self._wait_v2_frozen(True, timeout)
        elif kind == "v1":
            self._freeze_v1(timeout)
        else:
            raise CgroupError("no freezer: neither cgroup.freeze nor a freezer hierarchy")

    def _wait_v2_frozen(self, want: bool, timeout: float) -> None:
        # cgroup.events "frozen" flips once every task has stopped; changes to the file raise
        # a poll event (cgroup-v2.rst), so wait on it instead of sleeping blindly.
        path = f"{self._unified}/cgroup.events"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(f"cannot open {path}: {e.strerror}") from e
        try:
            poller = select.poll()
            poller.register(fd, select.POLLPRI | select.POLLERR)
            deadline = time.monotonic() + timeout
            while True:
                os.lseek(fd, 0, os.SEEK_SET)
                state = fsio.keyed(os.read(fd, 4096).decode()).get("frozen")
                if state == int(want):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                poller.poll(min(left, 0.05) * 1000)
        finally:
            os.close(fd)
        if want:
            fsio.write(f"{self._unified}/cgroup.freeze", "0")
        raise CgroupError(f"cgroup {self._unified} did not freeze within {timeout:g}s")

    def _freeze_v1(self, timeout: float) -> None:
        state = f"{self.paths['freezer']}/freezer.state"
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            # Re-writing FROZEN retries tasks that were busy (e.g. in vfork) on the last
            # pass; the state reads FREEZING until all are stopped (cgroup-v1/freezer).
            fsio.write(state, "FROZEN")
            if fsio.read(state).strip() == "FROZEN":
                return
            if time.monotonic() >= deadline:
                fsio.write(state, "THAWED")
                raise CgroupError(f"cgroup {state} did not freeze within {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def thaw(self) -> None:
        kind = self._freezer_kind()
        if kind == "v2":
            fsio.write(f"{self._unified}/cgroup.freeze", "0")
        elif kind == "v1":
            fsio.write(f"{self.paths['freezer']}/freezer.state", "THAWED")
        else:
            raise CgroupError("no freezer: neither cgroup.freeze nor a freezer hierarchy")

    def frozen(self) -> bool:
        kind = self._freezer_kind()
        if kind == "v2":
            events = fsio.keyed(fsio.read(f"{self._unified}/cgroup.events"))
            return events.get("frozen") == 1
        if kind == "v1":
            return fsio.read(f"{self.paths['freezer']}/freezer.state").strip() == "FROZEN"
        return False

    # -- members -----------------------------------------------------------------------------

    def _primary(self) -> str:
        return self._unified or self._dirs[0]

    def procs(self) -> list[int]:
        """PIDs in this cgroup (not in its child cgroups)."""
        text = fsio.read(f"{self._primary()}/cgroup.procs")
        return [int(x) for x in text.split()]

    def _tree_procs(self) -> list[int]:
        """PIDs in this cgroup and in child cgroups a container may have made (cgroupns)."""
        out: list[int] = []
        todo = [self._primary()]
        while todo:
            d = todo.pop()
            out.extend(int(x) for x in fsio.read(f"{d}/cgroup.procs").split())
            with os.scandir(d) as it:
                todo.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        return out

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every member, descendants included.

        SIGKILL uses cgroup.kill where it exists (kernel >= 5.14): one write, race-free
        against forks. Otherwise freeze (so nothing forks away), signal each pid, thaw.
        Returns without waiting for the members to exit; destroy() waits for the drain.
        """
        if (
            sig == signal.SIGKILL
            and self._unified is not None
            and fsio.try_write(f"{self._unified}/cgroup.kill", "1")
        ):
            return
        frozen = self._freezer_kind() is not None
        if frozen:
            self.freeze()
        try:
            for pid in self._tree_procs():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        finally:
            if frozen:
                self.thaw()

    # -- destroy ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs)

    def destroy(self, timeout: float = 2.0) -> None:
        """Remove the leaf and every directory this object created, deepest first.

        EBUSY while members are still exiting is retried until ``timeout``; a cgroup with
        a live member raises CgroupError at once (kill it first).
        """
        leaves = set(self._dirs)
        targets = sorted(set(self._created) | leaves, key=lambda d: d.count("/"), reverse=True)
        deadline = time.monotonic() + timeout
        for d in targets:
            self._remove(d, d in leaves, deadline)
            if d in self._created:
                self._created.remove(d)

    def _remove(self, d: str, leaf: bool, deadline: float) -> None:
        delay = 0.001
        while True:
            try:
                self._rmdir(d)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise CgroupError(f"cannot remove cgroup {d}: {e.strerror}") from e
            pids = [int(x) for x in (fsio.read_opt(f"{d}/cgroup.procs") or "").split()]
            live = [p for p in pids if _live(p)]
            if live:
                raise CgroupError(f"cgroup {d} still has members: {' '.join(map(str, live))}")
            with os.scandir(d) as it:
                subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
            if subdirs:
                if not leaf:
                    # Someone else's cgroup now lives under a parent we created: leave it.
                    return
                # Child cgroups the container made inside our leaf are ours to remove.
                for sub in subdirs:
                    self._remove(sub, True, deadline)
                continue
            if time.monotonic() >= deadline:
                raise CgroupError(f"cgroup {d} is still busy (members exiting?)")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    # -- clone3 ----------------------------------------------------------------------------

    def v2_fd(self) -> int | None:
        """An O_DIRECTORY fd of the cgroup2 directory for clone3(CLONE_INTO_CGROUP), or None
        without a cgroup2 mount. The caller closes it. On hybrid hosts this places the child
        in the unified hierarchy only: attach() is still needed for the v1 ones."""
        if self._unified is None:
            return None
        try:
            return os.open(self._unified, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(f"cannot open {self._unified}: {e.strerror}") from e
