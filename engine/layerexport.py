"""Writing an image layer's tar for ``push``, ``save`` and copies between drivers.

A layer's identity is the sha256 of its original tar (the config's ``rootfs.diff_ids``).
Drivers that recorded the tar's framing when it was applied (``Driver.diff_exact``,
:mod:`pydock.drivers.tarsplit`) write those very bytes back, so the image keeps its id and
every registry digest. Otherwise -- no recording (an imported or committed layer, another
driver), or an export that does not hash to the diff id -- the layer is re-exported with
``Driver.diff``: an equivalent tar with another digest, which the callers then put into a
new config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from pydock.drivers.base import DriverError

#: ``attempt(write)`` opens a fresh sink (truncating any earlier attempt), calls
#: ``write(sink)`` and returns the sha256 digest ("sha256:...") of what was written.
Attempt = Callable[[Callable[[BinaryIO], None]], str]


class _NoRecord(Exception):
    pass


def export_layer(driver, layer_id: str, diff_id: str, attempt: Attempt) -> bool:  # noqa: ANN001
    """Export ``layer_id`` through ``attempt``; True if the original tar (``diff_id``) was
    reproduced, False if the sink holds a re-export instead."""

    def exact(sink: BinaryIO) -> None:
        if not driver.diff_exact(layer_id, sink):
            raise _NoRecord

    try:
        if attempt(exact) == diff_id:
            return True
    except (_NoRecord, DriverError, OSError):
        pass
    attempt(lambda sink: driver.diff(layer_id, sink))
    return False
