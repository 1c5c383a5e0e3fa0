"""Shared by the nsutil tests: a busybox rootfs and a Docker-like runtime spec."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

from pydock.engine import spec as engine_spec

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "hostname", "ls", "mount", "id", "wc", "pwd", "touch", "true",
           "sleep", "head", "tail", "sed")  # fmt: skip

# Docker's defaults, as the engine writes them into every spec: a realistic input.
DOCKER_CAPS = list(engine_spec.DEFAULT_CAPS)
MASKED_PATHS = list(engine_spec.MASKED_PATHS)
READONLY_PATHS = list(engine_spec.READONLY_PATHS)


def make_busybox_rootfs(root: Path) -> Path:
    """A one-binary rootfs: static busybox plus applet symlinks."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (root / d).mkdir()
    return root


def docker_like_spec(rootfs: Path, args: list[str], **process_overrides) -> dict:
    """A minimal config.json shaped like the one Docker/containerd hand to runc."""
    process = {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"],
        "cwd": "/",
        "capabilities": {
            "bounding": DOCKER_CAPS,
            "effective": DOCKER_CAPS,
            "permitted": DOCKER_CAPS,
        },
        "noNewPrivileges": True,
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "oomScoreAdj": 0,
    }
    process.update(process_overrides)
    return {
        "ociVersion": "1.1.0",
        "process": process,
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": "pdtest-box",
        # the engine's own default mounts (a read-only cgroupfs among them, as Docker's)
        "mounts": copy.deepcopy(engine_spec.DEFAULT_MOUNTS),
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "mount"},
                {"type": "uts"},
                {"type": "ipc"},
                {"type": "network"},
                {"type": "cgroup"},
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }
