"""Docker-format seccomp profiles -> the OCI ``linux.seccomp`` of one container.

A Docker profile (the shipped default, seccomp_default.json, or a ``--security-opt
seccomp=FILE``) is written for every architecture and capability set at once: ``archMap``
names each native architecture's companions, and rules carry ``includes``/``excludes`` of
capabilities, architectures and a minimum kernel. Docker resolves them when it builds a
container's spec, as done here: the result is a plain runtime-spec document for the
container's capabilities on this machine. An OCI-format profile passes through the same
code unchanged (it has none of those keys).
"""

from __future__ import annotations

import json
import os

from .errors import InvalidInput

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "seccomp_default.json")

# uname machine -> (libseccomp's SCMP_ARCH_*, Go's GOARCH as profiles name it)
_ARCHES = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "i686": ("SCMP_ARCH_X86", "386"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
    "armv7l": ("SCMP_ARCH_ARM", "arm"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
    "mips64": ("SCMP_ARCH_MIPS64", "mips64"),
}
# Profiles also name these architecture spellings in includes/excludes.
_ALIASES = {"amd64": {"amd64", "x86_64"}, "386": {"386", "x86"}, "arm64": {"arm64", "aarch64"}}


def _kernel_at_least(version: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split("-")[0].split(".")[:3]:
            digits = "".join(ch for ch in p if ch.isdigit())
            out.append(int(digits or 0))
        return tuple(out)

    return parts(os.uname().release) >= parts(version)


def _native() -> tuple[str, set[str]]:
    machine = os.uname().machine
    scmp, goarch = _ARCHES.get(machine, ("", machine))
    return scmp, _ALIASES.get(goarch, {goarch})


def load_profile(path: str) -> dict:
    """A profile file as a dict; a bad file is a clear one-line error (exit 125)."""
    try:
        with open(path, "rb") as f:
            profile = json.loads(f.read())
    except OSError as e:
        raise InvalidInput(f"opening seccomp profile ({path}) failed: {e.strerror}", 125) from None
    except ValueError as e:
        raise InvalidInput(f"decoding seccomp profile ({path}) failed: {e}", 125) from None
    if not isinstance(profile, dict):
        raise InvalidInput(f"decoding seccomp profile ({path}) failed: not an object", 125)
    return profile


def _applies(rule: dict, caps: set[str], arches: set[str]) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and not set(inc["arches"]) & arches:
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
        return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    return not (exc.get("arches") and set(exc["arches"]) & arches)


#: capability set -> the default profile's linux.seccomp (see default_oci)
_default_memo: dict[tuple[str, ...], dict] = {}


def default_oci(caps: list[str]) -> dict:
    """:func:`to_oci` of the shipped default profile, memoized per capability set.

    The shipped file never changes under a running process, and handing out the same
    dict lets nsutil.seccomp find the compiled program memoized too: a start worker
    computes both before its run (starter.py). Callers must not modify the result.
    """
    key = tuple(sorted(caps))
    oci = _default_memo.get(key)
    if oci is None:
        oci = _default_memo[key] = to_oci(load_profile(DEFAULT_PROFILE), caps)
    return oci


def to_oci(profile: dict, caps: list[str]) -> dict:
    """The runtime-spec ``linux.seccomp`` for a container holding ``caps``."""
    native, arches = _native()
    out: dict = {"defaultAction": profile.get("defaultAction") or "SCMP_ACT_ERRNO"}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    archs = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            archs = [native, *(entry.get("subArchitectures") or [])]
    if archs:
        out["architectures"] = archs
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    have = set(caps)
    rules = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, have, arches):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names or not rule.get("action"):
            raise InvalidInput("seccomp profile: every syscall rule needs names and an action", 125)
        item: dict = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            item["args"] = [
                {k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                for a in rule["args"]
            ]
        if rule.get("errnoRet") is not None:
            item["errnoRet"] = rule["errnoRet"]
        rules.append(item)
    out["syscalls"] = rules
    return out
