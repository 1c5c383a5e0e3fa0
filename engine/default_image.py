"""The embedded default image: ``busybox:latest`` built from the host's static busybox.

No registry is reachable on a fresh machine, so pydock makes its demo image itself: one
layer holding /bin/busybox (Debian's busybox-static), a hard link for each applet at the
path busybox reports for it (as the official busybox image does), /etc/passwd and
/etc/group, and the usual empty directories. Everything in it is derived from the binary,
timestamps included, so the same busybox always gives the same image id.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import subprocess
import tarfile

from .errors import EngineError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_REF = "busybox:latest"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""
DIRS = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sbin": 0o755,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
    "var/spool": 0o755,
    "var/spool/mail": 0o755,
    "var/www": 0o755,
}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise EngineError(
        "no static busybox on this host to build the default image "
        "(install Debian's busybox-static)",
        125,
    )


def applets(busybox: str) -> list[str]:
    """Applet paths relative to /, as the binary itself lists them (``--list-full``)."""
    out = subprocess.run([busybox, "--list-full"], capture_output=True, check=True, text=True)
    return sorted({p.strip().lstrip("/") for p in out.stdout.splitlines() if p.strip()})


def build_layer(busybox: str) -> tuple[bytes, int]:
    """The layer tar and its timestamp (the binary's mtime, for reproducible ids)."""
    st = os.stat(busybox)
    mtime = int(st.st_mtime)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, type_: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = type_, mode, mtime
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.linkname = link
            info.size = len(data) if type_ == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)

        for d, mode in sorted(DIRS.items()):
            add(d, tarfile.DIRTYPE, mode)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for applet in applets(busybox):
            if applet != "bin/busybox":
                add(applet, tarfile.LNKTYPE, 0o755, link="bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD.encode())
        add("etc/group", tarfile.REGTYPE, 0o644, GROUP.encode())
    return buf.getvalue(), mtime


def build() -> tuple[bytes, bytes]:
    """(config bytes, layer tar bytes) of the default image."""
    busybox = find_busybox()
    layer, mtime = build_layer(busybox)
    created = datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [
            {"created": created, "created_by": f"pydock: static busybox from {busybox}"},
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode(), layer
