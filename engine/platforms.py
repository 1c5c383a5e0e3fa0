"""``run/create --platform``: parse a platform as containerd's platforms.Parse does and
check it against the local image (Docker 20.10's daemon refuses an image of another
platform; pydock never pulls one, since it could not run it on this host)."""

from __future__ import annotations

import os

from .errors import InvalidInput

_OS = ("linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
       "aix", "android", "dragonfly", "ios", "js", "plan9")  # fmt: skip
#: architecture aliases -> GOARCH names (containerd's normalizeArch)
_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64", "i386": "386", "386": "386",
         "aarch64": "arm64", "arm64": "arm64", "armhf": "arm", "armel": "arm", "arm": "arm",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64",
         "mips64le": "mips64le", "ppc64": "ppc64", "mips": "mips", "mipsle": "mipsle",
         "loong64": "loong64", "wasm": "wasm"}  # fmt: skip


def host() -> str:
    machine = os.uname().machine
    return f"linux/{_ARCH.get(machine, machine)}"


def normalize(text: str) -> str:
    """``os/arch[/variant]``, ``os`` or ``arch`` -> ``os/arch`` (the host's part for the
    one left out); anything else is containerd's error."""
    parts = text.lower().split("/")
    bad = InvalidInput(f'"{text}": unknown operating system or architecture: invalid argument',
                       125)  # fmt: skip
    if len(parts) == 1:
        if parts[0] in _OS:
            return f"{parts[0]}/{host().split('/')[1]}"
        if parts[0] in _ARCH:
            return f"linux/{_ARCH[parts[0]]}"
        raise bad
    if len(parts) > 3 or parts[0] not in _OS or parts[1] not in _ARCH:
        raise bad
    return f"{parts[0]}/{_ARCH[parts[1]]}"


def check(engine, ref: str, wanted: str) -> None:
    """Refuse to make a container of ``ref`` when the local image is not for ``wanted``."""
    want = normalize(wanted)
    image_id = engine.images.lookup(ref)
    if image_id is None:
        if want != host():
            raise InvalidInput(
                f"Unable to find image '{ref}' locally: no image for {want} (pydock runs "
                f"{host()} images only and pulls no other platform)",
                125,
            )
        return
    cfg = engine.images.config(image_id)
    actual = f"{cfg.get('os') or 'linux'}/{_ARCH.get(cfg.get('architecture') or '', 'amd64')}"
    if actual != want:
        raise InvalidInput(
            f"image with reference {ref} was found but does not match the specified "
            f"platform: wanted {want}, actual: {actual}",
            125,
        )
