"""Boot a Debian kernel in a QEMU guest that runs pydock's guest test subset on pure cgroup v2.

The route (issue 12): QEMU's TCG (this host's /dev/kvm is PVM and runs no stock kernel), the
host's ``/`` shared read-only over 9p with a tmpfs overlay on top, so the guest runs the
worktree's own .venv; PID 1 is a busybox script from a small initramfs that loads the 9p and
overlay modules of the guest kernel, switches into that root and hands over to
``guest_init.sh``, which mounts cgroup2, runs pytest and powers off. Results leave through a
second, writable 9p share. No network card: the guest has only loopback and what tests make.

Kept free of pytest: ``python -m guests.boot`` (from tests/) boots one kernel by hand.
"""

from __future__ import annotations

import lzma
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKTREE = HERE.parent.parent
CACHE = Path(os.environ.get("PYDOCK_GUEST_CACHE", "/var/cache/pydock-guests"))
BUSYBOX = Path("/bin/busybox")  # busybox-static: the initramfs has no libc

#: Modules the first stage needs before it can reach the host's root (9p over virtio, the
#: overlay on top); modprobe --show-depends adds what they need. Built-ins are skipped.
STAGE1_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")

#: Seconds until the guest's second stage must have said it started (boot + 9p + overlay:
#: ~10 s under TCG here), and for the whole run. A guest past either is killed.
BOOT_TIMEOUT = float(os.environ.get("PYDOCK_GUEST_BOOT_TIMEOUT", "120"))
RUN_TIMEOUT = float(os.environ.get("PYDOCK_GUEST_RUN_TIMEOUT", "600"))

STARTED = "pydock-guest: stage 2 started"


@dataclass(frozen=True)
class Kernel:
    release: str  # uname -r of the guest, e.g. 6.1.0-57-amd64
    vmlinuz: Path
    modules: Path  # the unpacked lib/modules/<release>

    @property
    def line(self) -> str:
        """ "6.1" or "6.12": the kernel line, for test ids and the README table."""
        return ".".join(self.release.split(".")[:2]).split("-")[0]


class GuestError(Exception):
    """The guest could not be booted or did not finish; the message carries the console."""


def fetch_kernels() -> list[Kernel]:
    """The cached kernels, fetched on first use by dev/guest-kernels.sh (apt-get download)."""
    proc = subprocess.run(
        ["bash", str(WORKTREE / "dev/guest-kernels.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise GuestError(f"dev/guest-kernels.sh failed ({proc.returncode}): {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        release, vmlinuz, modules = line.split()
        out.append(Kernel(release, Path(vmlinuz), Path(modules)))
    return out


def _module_files(kernel: Kernel) -> list[Path]:
    """The .ko files STAGE1_MODULES need, in load order, each once."""
    base = kernel.modules.parent.parent.parent  # the package's unpacked tree
    files: list[Path] = []
    for mod in STAGE1_MODULES:
        proc = subprocess.run(
            ["modprobe", "--show-depends", "-d", str(base), "-S", kernel.release, mod],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise GuestError(f"modprobe --show-depends {mod}: {proc.stderr.strip()}")
        for line in proc.stdout.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "insmod":
                path = Path(rest.split()[0])
                if path not in files:
                    files.append(path)
            # "builtin NAME": compiled in (virtio_pci on 6.12), nothing to load
    return files


STAGE1 = """#!/bin/busybox sh
# PID 1 of the initramfs: reach the host's root read-only over 9p, put a tmpfs overlay on
# it (overlay upper dirs cannot live on 9p), and switch into it for the second stage.
/bin/busybox mkdir -p /bin /proc /sys /dev /host /ovl /newroot
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "pydock-guest: insmod $m failed"; done
# cache=loose: the export is read-only and does not change under the guest, and Python's
# imports over 9p are many small reads
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host ||
    echo "pydock-guest: 9p mount of the host root failed"
mount -t tmpfs -o mode=755 tmpfs /ovl
mkdir /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot ||
    echo "pydock-guest: overlay root failed"
cp /guest.env /newroot/pydock-guest.env
umount /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh {stage2}
"""


def build_initramfs(kernel: Kernel, env: dict[str, str], dest: Path) -> Path:
    """The initramfs (a newc cpio archive, made by cpio from a staging tree): static
    busybox, the stage-1 script, its modules (decompressed, as busybox's insmod reads plain
    .ko files) and the run's settings in /guest.env."""
    stage = dest.parent / "initramfs"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "bin").mkdir(parents=True)
    (stage / "modules").mkdir()
    shutil.copy(BUSYBOX, stage / "bin/busybox")
    init = stage / "init"
    init.write_text(STAGE1.format(stage2=HERE / "guest_init.sh"))
    init.chmod(0o755)
    names = []
    for path in _module_files(kernel):
        data = path.read_bytes()
        if path.suffix == ".xz":
            data = lzma.decompress(data)
        name = path.name.removesuffix(".xz")
        names.append(name)
        (stage / "modules" / name).write_bytes(data)
    (stage / "modules/order").write_text("".join(f"{n}\n" for n in names))
    (stage / "guest.env").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
    with open(dest, "wb") as out:
        subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc"],
            input="\n".join(files).encode(),
            stdout=out,
            cwd=stage,
            check=True,
        )
    shutil.rmtree(stage)
    return dest


def qemu_command(
    kernel: Kernel, initramfs: Path, results: Path, console: Path, worktree: Path = WORKTREE
) -> list[str]:
    # cgroup_no_v1=all: pure cgroup v2, as systemd distributions boot. panic=-1 with
    # -no-reboot: a PID 1 that dies ends QEMU at once instead of hanging the run.
    append = "console=ttyS0 panic=-1 cgroup_no_v1=all loglevel=4"
    return [
        "qemu-system-x86_64",
        "-nodefaults",
        "-no-reboot",
        "-display", "none",
        "-accel", "tcg,thread=multi",
        "-cpu", "max",
        "-smp", "2",
        "-m", "2048",
        "-kernel", str(kernel.vmlinuz),
        "-initrd", str(initramfs),
        "-append", append,
        "-serial", f"file:{console}",
        "-nic", "none",
        "-fsdev", "local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=results,path={results},security_model=passthrough",
        "-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
    ] + _worktree_share(worktree)  # fmt: skip


def _worktree_share(worktree: Path) -> list[str]:
    """The worktree on its own read-only share: a clone on another filesystem (a tmpfs
    /tmp, say) is not in the root's share, and the guest puts its own /tmp and /var/tmp
    on top. None for a worktree that does not exist (the guest then says so)."""
    if not worktree.is_dir():
        return []
    return [
        "-fsdev", f"local,id=worktree,path={worktree},security_model=passthrough,readonly=on,"
                  "multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=worktree,mount_tag=worktree",
    ]  # fmt: skip


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no console output)"
    return "\n".join(text.splitlines()[-lines:])


class Guest:
    """One boot of ``kernel`` running ``pytest_args`` in the guest; results in ``workdir``."""

    def __init__(
        self,
        kernel: Kernel,
        workdir: Path,
        pytest_args: list[str],
        *,
        worktree: Path = WORKTREE,
        boot_timeout: float = BOOT_TIMEOUT,
        run_timeout: float = RUN_TIMEOUT,
    ) -> None:
        self.kernel = kernel
        self.worktree = worktree
        self.boot_timeout = boot_timeout
        self.run_timeout = run_timeout
        self.workdir = workdir
        self.results = workdir / "results"
        self.console = workdir / "console.log"
        self.pytest_args = pytest_args
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        self.results.mkdir(parents=True, exist_ok=True)
        env = {
            "WORKTREE": str(self.worktree),
            "RELEASE": self.kernel.release,
            "MODULES": str(self.kernel.modules),
            "PYTEST_ARGS": shlex.join(self.pytest_args),
        }
        initramfs = build_initramfs(self.kernel, env, self.workdir / "initramfs.cpio")
        cmd = qemu_command(self.kernel, initramfs, self.results, self.console, self.worktree)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def wait(self) -> None:
        """Until the guest powers off; GuestError (with the console's tail) if it does not
        reach its second stage within boot_timeout, or finish within run_timeout."""
        assert self.proc is not None
        booted = False
        while self.proc.poll() is None:
            elapsed = time.monotonic() - self.started
            if not booted:
                booted = STARTED in tail(self.console, 400)
            if not booted and elapsed > self.boot_timeout:
                self._kill()
                raise self._error(f"did not boot within {self.boot_timeout:g}s")
            if elapsed > self.run_timeout:
                self._kill()
                raise self._error(f"did not finish within {self.run_timeout:g}s")
            time.sleep(0.5)
        qemu_out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
        self.proc.stdout and self.proc.stdout.close()
        if self.proc.returncode != 0:
            raise self._error(f"QEMU exited {self.proc.returncode}: {qemu_out.strip()}")
        if not (self.results / "rc").exists():
            raise self._error("the guest powered off without writing its results")

    def _kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def _error(self, what: str) -> GuestError:
        return GuestError(
            f"guest {self.kernel.release} {what}; console tail ({self.console}):\n"
            + tail(self.console)
        )

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


if __name__ == "__main__":
    import sys
    import tempfile

    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    for k in fetch_kernels():
        if wanted in k.release:
            w = Path(tempfile.mkdtemp(prefix=f"guest-{k.line}-", dir="/var/tmp"))
            g = Guest(k, w, sys.argv[2:] or ["-m", "guest", "tests"])
            g.start()
            g.wait()
            print(f"{k.release}: {g.seconds:.0f}s, results in {w}")
