"""Layer decompression (engine.layercompress): codecs by media type and by magic, zstd
streams of several frames with skippable ones, and every cut of a stream refused."""

from __future__ import annotations

import gzip
import io
import os
import struct

import pytest
import zstandard
from pydock.engine.errors import InvalidInput
from pydock.engine.layercompress import decompressed

DATA = os.urandom(300_000) + bytes(2_000_000) + b"layer text " * 20_000


def read_all(blob: bytes, media_type: str = "") -> bytes:
    # BufferedReader: peek works, as for the files pull and load hand over
    with decompressed(io.BufferedReader(io.BytesIO(blob)), media_type) as s:
        out = bytearray()
        while chunk := s.read(1 << 16):
            out += chunk
    return bytes(out)


def skippable(payload: bytes) -> bytes:
    return struct.pack("<II", 0x184D2A57, len(payload)) + payload


@pytest.mark.parametrize("media_type", ["application/vnd.oci.image.layer.v1.tar+zstd", ""])
def test_zstd_frames_and_skippable_frames(media_type: str) -> None:
    one = zstandard.ZstdCompressor(write_checksum=True).compress(DATA[:1_000_000])
    cobj = zstandard.ZstdCompressor(level=1).compressobj()  # no content size in the header
    two = cobj.compress(DATA[1_000_000:]) + cobj.flush()
    blob = skippable(b"toc") + one + skippable(b"") + two
    assert read_all(blob, media_type) == DATA


def test_gzip_and_plain_by_media_type_or_magic() -> None:
    gz = gzip.compress(DATA, mtime=0)
    assert read_all(gz, "application/vnd.docker.image.rootfs.diff.tar.gzip") == DATA
    assert read_all(gz, "application/vnd.oci.image.layer.v1.tar") == DATA  # sniffed
    assert read_all(DATA, "application/vnd.oci.image.layer.v1.tar") == DATA


def test_every_cut_of_a_zstd_stream_is_refused() -> None:
    blob = zstandard.ZstdCompressor().compress(DATA)
    for cut in (1, 4, 5, 9, 12, 100, len(blob) // 2, len(blob) - 1):
        with pytest.raises(InvalidInput, match="invalid zstd-compressed layer"):
            read_all(blob[:cut], "application/vnd.oci.image.layer.v1.tar+zstd")


def test_corrupt_zstd_is_one_line() -> None:
    blob = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(DATA))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(InvalidInput, match="invalid zstd-compressed layer") as e:
        read_all(bytes(blob), "application/vnd.oci.image.layer.v1.tar+zstd")
    assert "\n" not in str(e.value)
    with pytest.raises(InvalidInput, match="no frame magic"):
        read_all(b"not zstd at all", "application/vnd.oci.image.layer.v1.tar+zstd")
