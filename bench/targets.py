"""What ``bench start-latency`` and ``bench scale`` time: pydock per driver and the peers.

Every target prepares once (``prepare`` raises :class:`Unavailable` with the reason when the
peer is missing or cannot run here), then gives the argv of one container run. Peers get the
same busybox image pydock runs (see images.py): runc and crun an OCI bundle of its rootfs
(no image work at all), Docker and Podman a ``docker save`` tarball of it loaded into them.
Nothing is silently dropped: an unavailable target stays in the report with its reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import images
from .hostcg import PeerCgroupParent
from .machine import version_of

PEER_NAMES = ("runc", "crun", "docker", "podman", "python")
PEER_TAG = "pydock-bench/busybox:latest"


class Unavailable(Exception):
    """This target cannot run on this machine; ``str()`` says why."""


def _last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _run(argv: list[str], what: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, **kw)
    except OSError as e:
        raise Unavailable(f"{what}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what}: timed out after {timeout:.0f}s") from None
    if p.returncode != 0:
        raise Unavailable(f"{what} failed (exit {p.returncode}): {_last_line(p.stderr)}")
    return p


class Target:
    name = ""
    kind = "peer"  # "pydock" or "peer"
    #: argv of one run; filled by prepare()
    version: str | None = None
    env: dict[str, str] | None = None
    trace_file: Path | None = None
    #: the storage driver its store uses ("" where the target has none of pydock's)
    driver = ""

    def prepare(self) -> None:
        """Make the target runnable; raise Unavailable(reason) if it cannot be."""

    def load(self, tar: Path) -> None:
        """Load a ``docker save`` archive into the target's own image store."""
        raise NotImplementedError(f"{self.name} has no image store of its own")

    def argv(self, image: str | None = None) -> list[str]:
        raise NotImplementedError

    def supports_image(self, image: str) -> bool:
        """Whether the target can run an arbitrary pydock image (bench scale's layer images)."""
        return False

    def start_idle(self, n: int) -> None:
        """Start ``n`` idle containers (``sleep``) that stay running until stop_idle()."""
        raise Unavailable(f"{self.name} cannot keep idle containers in this harness")

    def stop_idle(self) -> None:
        """Stop the idle containers started by start_idle()."""

    def settle(self, timeout: float = 5.0) -> None:
        """After a timed run, outside the timing: wait until the work the run left going in
        the background is done, so that it does not land on the next target's run."""

    def close(self) -> None:
        """Undo prepare(): stop daemons, remove state, cgroups and mounts made for the peer."""


def pydock_bin() -> str:
    cand = Path(sys.executable).parent / "pydock"
    if cand.exists():
        return str(cand)
    found = shutil.which("pydock")
    if not found:
        raise Unavailable("no pydock executable next to this Python or on PATH")
    return found


class Pydock(Target):
    kind = "pydock"

    def __init__(
        self, root: Path, driver: str, workdir: Path, network: str = "none", start_pool: int = 0,
        pooled: bool = True,
    ) -> None:  # fmt: skip
        """``start_pool``: the root's daemon.json "start-pool" (engine/starter.py); a target
        with ``pooled=False`` runs without the workers (PYDOCK_NO_START_POOL), the cold
        start a first run or a machine without a pool sees."""
        self.root, self.driver, self.network = root, driver, network
        self.start_pool, self.pooled = start_pool, pooled and start_pool > 0
        suffix = "" if self.pooled or not start_pool else " (no start pool)"
        self.name = f"pydock/{driver}{suffix}"
        self.trace_file = workdir / f"trace-{driver}{'-cold' if suffix else ''}.jsonl"
        self._idle: list[str] = []

    def prepare(self) -> None:
        from .. import __version__

        self.bin = pydock_bin()
        self.version = f"pydock {__version__}"
        try:
            images.ensure_busybox(self.root, self.driver)
        except Exception as e:  # noqa: BLE001 - any failure is this target's reason
            raise Unavailable(f"storage driver {self.driver}: {e}") from None
        self.env = dict(os.environ, PYDOCK_TRACE=str(self.trace_file))
        self.env.pop("PYDOCK_NO_START_POOL", None)
        if not self.pooled:
            self.env["PYDOCK_NO_START_POOL"] = "1"
        _set_daemon_option(self.root, "start-pool", self.start_pool)
        if self.network == "bridge":  # ready namespaces, as the default root has them
            _set_daemon_option(self.root, "netns-pool", 2)

    def _base(self) -> list[str]:
        return [self.bin, "--root", str(self.root), f"--storage-driver={self.driver}"]

    def settle(self, timeout: float = 5.0) -> None:
        """With start workers: until the pool is full and idle again. A served run's
        teardown follows its answer, and its successor then prepares (forks and moves a
        held init into a new cgroup, takes its memory): milliseconds of CPU, and a v1
        cgroup attach that holds up every fork and exit on the machine for an RCU grace
        period. Measured on the next target's run, they would be charged to a peer."""
        if not self.pooled:
            return
        from ..engine import prestart

        d = self.root / "starters"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                names = os.listdir(d)
            except OSError:
                return
            idle = sum(1 for n in names if n.endswith(".sock") and prestart.alive(n[:-5]))
            busy = any(
                n.endswith((".pending", ".claimed", ".teardown"))
                and prestart.alive(n.partition(".")[0])
                for n in names
            )
            if idle >= self.start_pool and not busy:
                return
            time.sleep(0.002)

    def argv(self, image: str | None = None) -> list[str]:
        return [*self._base(), "run", "--rm", "--network", self.network, image or "busybox", "true"]

    def supports_image(self, image: str) -> bool:
        return True

    def start_idle(self, n: int) -> None:
        for _ in range(n):
            p = _run([*self._base(), "run", "-d", "--network", "none", "busybox", "sleep", "86400"],
                     f"{self.name} run -d")  # fmt: skip
            self._idle.append(p.stdout.decode().strip())

    def stop_idle(self) -> None:
        for i in range(0, len(self._idle), 50):
            subprocess.run([*self._base(), "rm", "-f", *self._idle[i : i + 50]],
                           capture_output=True, timeout=600)  # fmt: skip
        self._idle.clear()

    def close(self) -> None:
        if self.start_pool:  # the workers this bench's runs started
            from ..engine import starter

            # A successor in waiting goes on once its predecessor's teardown ends and
            # follows daemon.json: without a pool there, it leaves instead of preparing.
            # stop() waits for teardowns in flight.
            _set_daemon_option(self.root, "start-pool", 0)
            starter.stop(str(self.root))
        if self.network == "bridge":  # the bridge and the pool's namespaces
            subprocess.run([*self._base(), "network", "prune", "-f"], capture_output=True,
                           timeout=120)  # fmt: skip


def _set_daemon_option(root: Path, key: str, value: object) -> None:
    """Set one key of ``<root>/daemon.json`` (the bench owns its root)."""
    path = root / "daemon.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        cfg = {}
    if cfg.get(key) != value:
        cfg[key] = value
        path.write_text(json.dumps(cfg, indent=2) + "\n")


def _runc_config(bundle: Path, binary: str, cgroup: str) -> None:
    """``runc spec`` edited into the container pydock runs: rw root, ``true``, no tty, a cgroup
    nested under the caller's (a relative cgroupsPath is placed under runc's own cgroup)."""
    cfg_path = bundle / "config.json"
    cfg_path.unlink(missing_ok=True)
    _run([binary, "spec", "--bundle", str(bundle)], f"{binary} spec")
    cfg = json.loads(cfg_path.read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    cfg["root"] = {"path": "rootfs", "readonly": False}
    cfg["hostname"] = "pydock-bench"
    cfg["linux"]["cgroupsPath"] = cgroup
    cfg_path.write_text(json.dumps(cfg, indent=2))


class OciRuntime(Target):
    """runc or crun on a bare bundle of the busybox rootfs: the hard anchor."""

    def __init__(self, binary: str, root: Path, driver: str, workdir: Path) -> None:
        self.name = binary
        self.binary, self.root, self.driver = binary, root, driver
        self.bundle = workdir / f"{binary}-bundle"
        self.state = Path("/run/pydock-bench") / binary
        self._n = 0

    def prepare(self) -> None:
        path = shutil.which(self.binary)
        if not path:
            raise Unavailable(f"{self.binary} is not installed (Debian package {self.binary})")
        self.version = version_of([path, "--version"])
        if not (self.bundle / "rootfs" / "bin" / "busybox").exists():
            shutil.rmtree(self.bundle, ignore_errors=True)
            images.ensure_busybox(self.root, self.driver)
            images.export_rootfs(self.root, self.driver, images.BUSYBOX, self.bundle / "rootfs")
        _runc_config(self.bundle, path, f"pydock-bench-{self.binary}")
        self.state.mkdir(parents=True, exist_ok=True)
        self.path = path

    def argv(self, image: str | None = None) -> list[str]:
        self._n += 1
        cid = f"pydock-bench-{os.getpid()}-{self._n}"
        return [self.path, "--root", str(self.state), "run", "--bundle", str(self.bundle), cid]

    def close(self) -> None:
        shutil.rmtree(self.state, ignore_errors=True)
        _rmdir_quiet(self.state.parent)


class Docker(Target):
    """A private dockerd (own data root, socket, no bridge, no iptables) started for the run."""

    name = "docker"

    def __init__(self, root: Path, driver: str, workdir: Path, run_dir: Path | None = None) -> None:
        self.root, self.driver, self.workdir = root, driver, workdir
        self.run_dir = run_dir or Path("/run/pydock-bench/docker")
        self.sock = self.run_dir / "docker.sock"
        self.data = workdir / "docker-data"
        self.proc: subprocess.Popen | None = None
        self.cg: PeerCgroupParent | None = None
        self._idle: list[str] = []

    def _cli(self) -> list[str]:
        assert self.client, "prepare() finds the client"
        return [self.client, "-H", f"unix://{self.sock}"]

    def prepare(self) -> None:
        self.start_daemon()
        tar = self.workdir / "busybox-docker.tar"
        images.docker_archive(self.root, self.driver, images.BUSYBOX, PEER_TAG, tar)
        _run([*self._cli(), "load", "-i", str(tar)], "docker load")

    def start_daemon(self) -> None:
        """Start the private dockerd and wait until it answers (no image loaded)."""
        dockerd = shutil.which("dockerd")
        if not dockerd:
            raise Unavailable("dockerd is not installed (Debian package docker.io)")
        # Debian's client matches its daemon; another client on PATH is used only without it.
        debian = "/usr/bin/docker"
        self.client = debian if os.path.exists(debian) else shutil.which("docker")
        if not self.client:
            raise Unavailable("no docker client")
        self.cg = _cgroup_parent("pydock-bench-docker")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.workdir / "dockerd.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [dockerd, "--data-root", str(self.data), "--exec-root", str(self.run_dir / "exec"),
             "--pidfile", str(self.run_dir / "dockerd.pid"), "-H", f"unix://{self.sock}",
             "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--storage-driver=overlay2", f"--cgroup-parent={self.cg.path}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            p = subprocess.run([*self._cli(), "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, text=True)  # fmt: skip
            if p.returncode == 0:
                self.version = f"Docker {p.stdout.strip()} (dockerd, overlay2)"
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "dockerd.log").read_text(errors="replace")
                raise Unavailable(f"dockerd did not start: {_last_line(log)}")
            time.sleep(0.2)

    def cli(self, *args: str, what: str = "docker", timeout: float = 300):  # noqa: ANN201
        """Run the client against this daemon; :class:`Unavailable` with its message on failure."""
        return _run([*self._cli(), *args], what, timeout=timeout)

    def argv(self, image: str | None = None) -> list[str]:
        return [*self._cli(), "run", "--rm", "--network", "none", image or PEER_TAG, "true"]

    def supports_image(self, image: str) -> bool:
        return True

    def load(self, tar: Path) -> None:
        _run([*self._cli(), "load", "-i", str(tar)], "docker load")

    def start_idle(self, n: int) -> None:
        for _ in range(n):
            p = _run([*self._cli(), "run", "-d", "--network", "none", PEER_TAG, "sleep", "86400"],
                     "docker run -d")  # fmt: skip
            self._idle.append(p.stdout.decode().strip())

    def stop_idle(self) -> None:
        for i in range(0, len(self._idle), 50):
            subprocess.run([*self._cli(), "rm", "-f", *self._idle[i : i + 50]],
                           capture_output=True, timeout=600)  # fmt: skip
        self._idle.clear()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        _unmount_under(self.data)
        _unmount_under(self.run_dir)
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        _rmdir_quiet(self.run_dir.parent)
        if self.cg:
            self.cg.cleanup()


class Podman(Target):
    """Podman with private storage, cgroupfs, runc (crun refuses hybrid cgroups) and the
    ulimits these machines need (the default nofile/nproc limits cannot be set here)."""

    name = "podman"

    def __init__(self, root: Path, driver: str, workdir: Path) -> None:
        self.root, self.driver, self.workdir = root, driver, workdir
        self.store = workdir / "podman-store"
        self.run_dir = Path("/run/pydock-bench/podman")
        self.cg: PeerCgroupParent | None = None
        self._idle: list[str] = []

    def _cli(self) -> list[str]:
        assert self.bin, "prepare() finds podman"
        return [self.bin, "--root", str(self.store), "--runroot", str(self.run_dir),
                "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--runtime", "runc"]  # fmt: skip

    def prepare(self) -> None:
        self.bin = shutil.which("podman")
        if not self.bin:
            raise Unavailable("podman is not installed (Debian package podman)")
        self.version = version_of([self.bin, "--version"])
        self.cg = _cgroup_parent("pydock-bench-podman")
        tar = self.workdir / "busybox-docker.tar"
        images.docker_archive(self.root, self.driver, images.BUSYBOX, PEER_TAG, tar)
        _run([*self._cli(), "load", "-i", str(tar)], "podman load")

    def _run_flags(self) -> list[str]:
        assert self.cg is not None, "prepare() makes the cgroup parent"
        return ["--network", "none", "--ulimit", "nofile=1024:1024",
                "--ulimit", "nproc=4096:4096", "--cgroup-parent", self.cg.path]  # fmt: skip

    def argv(self, image: str | None = None) -> list[str]:
        return [*self._cli(), "run", "--rm", *self._run_flags(), image or PEER_TAG, "true"]

    def supports_image(self, image: str) -> bool:
        return True

    def load(self, tar: Path) -> None:
        _run([*self._cli(), "load", "-i", str(tar)], "podman load")

    def start_idle(self, n: int) -> None:
        for _ in range(n):
            p = _run([*self._cli(), "run", "-d", *self._run_flags(), PEER_TAG, "sleep", "86400"],
                     "podman run -d")  # fmt: skip
            self._idle.append(p.stdout.decode().strip())

    def stop_idle(self) -> None:
        for i in range(0, len(self._idle), 50):
            subprocess.run([*self._cli(), "rm", "-f", "-t", "0", *self._idle[i : i + 50]],
                           capture_output=True, timeout=600)  # fmt: skip
        self._idle.clear()

    def close(self) -> None:
        if self.bin:
            reset = [*self._cli(), "system", "reset", "-f"]
            subprocess.run(reset, capture_output=True, timeout=300)
        _unmount_under(self.store)
        _unmount_under(self.run_dir)
        shutil.rmtree(self.store, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        _rmdir_quiet(self.run_dir.parent)
        if self.cg:
            self.cg.cleanup()


class PythonFloor(Target):
    """``python -c pass`` with pydock's own interpreter: the floor any Python engine pays."""

    name = "python"

    def prepare(self) -> None:
        self.version = f"Python {sys.version.split()[0]} ({sys.executable})"

    def argv(self, image: str | None = None) -> list[str]:
        return [sys.executable, "-c", "pass"]


def _rmdir_quiet(path: Path) -> None:
    """Remove the shared /run/pydock-bench once the last peer using it is closed."""
    try:
        os.rmdir(path)
    except OSError:
        pass


def _cgroup_parent(name: str) -> PeerCgroupParent:
    try:
        return PeerCgroupParent(name)
    except RuntimeError as e:
        raise Unavailable(str(e)) from None


def _unmount_under(path: Path) -> None:
    """Lazily unmount whatever a peer left mounted under ``path`` (deepest first)."""
    from ..nsutil import syscalls

    prefix = os.fspath(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f]
    for mp in sorted({p for p in points if (p + "/").startswith(prefix)}, key=len, reverse=True):
        try:
            syscalls.umount(mp, 2)  # MNT_DETACH
        except OSError:
            pass


def make(name: str, root: Path, driver: str, workdir: Path) -> Target:
    """The peer called ``name`` (one of PEER_NAMES)."""
    if name in ("runc", "crun"):
        return OciRuntime(name, root, driver, workdir)
    if name == "docker":
        return Docker(root, driver, workdir)
    if name == "podman":
        return Podman(root, driver, workdir)
    if name == "python":
        return PythonFloor()
    raise ValueError(f"unknown peer {name!r}: choose from {', '.join(PEER_NAMES)}")
