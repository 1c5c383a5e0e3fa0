"""What the runtime leaves in a writable layer only to mount on, hidden from ``diff`` and
``commit`` as Docker hides it.

To start a container the runtime creates its mount points in the root: the /proc, /dev
and /sys directories and the /etc/hosts, /etc/hostname and /etc/resolv.conf files the
container's own copies are bound over (with /etc when the image has none). Docker makes
these in an init layer (``<id>-init``, daemon/initlayer) between the image and the
writable layer, so ``docker diff`` of a fresh container prints nothing, its committed
layer does not carry them, and a container that writes to /etc/hosts changes the file
in its container directory, never the layer. pydock's drivers have no init layer (one
more layer per container would cost every start, and vfs a full copy), so the engine
leaves these paths out of what it shows and commits, on every driver alike:

* a stub that was added or changed is left out, unless something else the container
  changed lies below it (an /etc the image lacked, holding a file the container wrote):
  then it shows as changed (``C /etc``), as it does on Docker, where it sits in the init
  layer;
* deletions are kept: only the container deletes.

Mount points of volumes and binds (-v, --mount) and the working directory stay visible:
Docker's runtime creates those in the writable layer too.
"""

from __future__ import annotations

from ..drivers.base import Change, ChangeKind
from . import spec
from .network.etcfiles import FILES

#: mount points the runtime creates for every container (Docker's init layer holds them)
STUBS = frozenset(
    [m["destination"] for m in spec.DEFAULT_MOUNTS if m["destination"].count("/") == 1]
    + [f"/etc/{name}" for name in FILES]
    + ["/etc"]  # made for the files above when the image has none
)


def _hidden(changes: list[Change]) -> tuple[list[Change], set[str]]:
    """(the changes shown, the paths left out)."""
    candidates = {c.path for c in changes if c.path in STUBS and c.kind != ChangeKind.DELETE}
    below: set[str] = set()  # ancestors of what is shown
    for c in changes:
        if c.path in candidates:
            continue
        parent = c.path.rpartition("/")[0]
        while parent:
            below.add(parent)
            parent = parent.rpartition("/")[0]
    dropped = candidates - below
    shown = [
        Change(c.path, ChangeKind.MODIFY) if c.path in candidates else c
        for c in changes
        if c.path not in dropped
    ]
    return shown, dropped


def visible_changes(changes: list[Change]) -> list[Change]:
    """``docker diff``'s list: the driver's changes without the runtime's stubs."""
    return _hidden(changes)[0]


def hidden_paths(changes: list[Change]) -> set[str]:
    """The stub paths (absolute) that a commit of this layer leaves out."""
    return _hidden(changes)[1]


def filter_tar(src, out, dropped: set[str]) -> None:  # noqa: ANN001 - binary streams
    """Copy the layer tar ``src`` to ``out`` without the entries named in ``dropped``
    (absolute paths), every other entry as it was (PAX headers: ns mtimes, xattrs)."""
    import tarfile

    with (
        tarfile.open(fileobj=src, mode="r|", encoding="utf-8", errors="surrogateescape") as tin,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                     errors="surrogateescape") as tout,
    ):  # fmt: skip
        for member in tin:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if "/" + name.strip("/") in dropped:
                continue
            tout.addfile(member, tin.extractfile(member) if member.isreg() else None)
