"""Helpers shared by the overlay2 tests: building tiny layer tars and layers."""

from __future__ import annotations

import io
import tarfile

from pydock.overlay.driver import Overlay2Driver


def layer_tar(*entries: tuple[str, bytes | None]) -> io.BytesIO:
    """An uncompressed layer tar: (name, data) files, (name, None) directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def add_layer(
    d: Overlay2Driver, id: str, parent: str | None, *entries: tuple[str, bytes | None]
) -> None:
    d.create(id, parent)
    d.apply_diff(id, parent, layer_tar(*entries))
