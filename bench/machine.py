"""What a report was measured on: CPU, cores, memory, kernel, distribution, cgroup layout."""

from __future__ import annotations

import os
import platform
import subprocess


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _distro() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def version_of(argv: list[str]) -> str | None:
    """The first line a program prints for its version flag, None if it cannot run."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (p.stdout or p.stderr).strip().splitlines()
    return out[0].strip() if p.returncode == 0 and out else None


def describe() -> dict:
    from .. import __version__
    from ..cgroupfs import detect

    u = os.uname()
    return {
        "hostname": u.nodename,
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _mem_total(),
        "kernel": u.release,
        "arch": u.machine,
        "os": _distro(),
        "python": platform.python_version(),
        "pydock": __version__,
        "cgroups": detect().mode,
    }


def one_line(m: dict) -> str:
    mem = f"{m['memory_bytes'] / 2**30:.0f} GiB" if m.get("memory_bytes") else "? GiB"
    return (
        f"{m['cpu']}, {m['cores']} cores, {mem}; {m['os']}, Linux {m['kernel']}; "
        f"cgroups {m['cgroups']}; Python {m['python']}; pydock {m['pydock']}"
    )
