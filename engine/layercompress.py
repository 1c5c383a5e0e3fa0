"""Layer blobs as tar streams: gzip, zstd or plain, decompressed while the driver reads.

Pull and load hand a layer blob here and the storage driver's ``apply_diff`` reads the tar
straight out of the decompressor, so no uncompressed copy of a layer is ever written.
The media type decides the codec (image-spec media-types.md: ``...tar``, ``...tar+gzip``,
``...tar+zstd``; Docker's ``...rootfs.diff.tar.gzip``). Where it names none -- docker save
archives list layers by path only, and some registries serve gzip blobs as ``...tar`` --
the magic number does: gzip ``1f 8b`` (RFC 1952 2.3.1), zstd ``28 b5 2f fd`` (RFC 8878 3.1.1)
or a skippable frame's ``5? 2a 4d 18``.

A broken stream is bad input: every codec error becomes one ``InvalidInput`` line. The zstd
reader itself ends quietly when its input stops inside a frame, so the compressed bytes are
also walked frame by frame (headers and block sizes only, RFC 8878 3.1) to report a
truncated stream as such rather than as whatever the half tar looks like.

``zstandard`` is imported only when a zstd layer is met: never on ``pydock run``'s path.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from .errors import InvalidInput

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SKIPPABLE_MAGIC = b"\x2a\x4d\x18"  # 0x184D2A5?, little-endian, after the nibble byte


def codec(media_type: str, head: bytes = b"") -> str:
    """``"gzip"``, ``"zstd"`` or ``""`` (a plain tar) for a blob and its first bytes."""
    if media_type.endswith(("+gzip", ".gzip")):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or (head[1:4] == SKIPPABLE_MAGIC and head[0] & 0xF0 == 0x50):
        return "zstd"  # a zstd stream may open with a skippable frame (RFC 8878 3.1.2)
    return ""


def _head(stream: BinaryIO) -> bytes:
    """The first four bytes without consuming them (peek, or read and seek back)."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return peek(4)[:4]
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        head = stream.read(4)
        stream.seek(-len(head), 1)
        return head
    return b""  # a one-way stream: only its media type can name a codec


class _Checked:
    """Reads from a decompressor, turning its errors into one-line InvalidInput."""

    def __init__(self, reader, name: str, errors: tuple[type[BaseException], ...]) -> None:  # noqa: ANN001
        self.reader, self.name, self.errors = reader, name, errors

    def read(self, n: int = -1) -> bytes:
        try:
            return self.reader.read(n)
        except self.errors as e:
            raise InvalidInput(f"invalid {self.name}-compressed layer: {e}") from None


class _ZstdFrames:
    """Follows the frame structure of the bytes it is fed, without decompressing them.

    RFC 8878 3.1.1: a frame is its magic, a header whose size the descriptor byte gives,
    blocks each led by a 3-byte header (bit 0 last block, bits 1-2 type, bits 3-23 size;
    an RLE block carries one byte), then a 4-byte checksum if the descriptor says so.
    Skippable frames (3.1.2) are magic 0x184D2A5? plus a 4-byte length.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.need = 4  # bytes wanted in buf for the next step
        self.skip = 0  # bytes to pass over before that
        self.step = self._magic
        self.checksum = False

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            k = min(self.need - len(self.buf), n - i)
            self.buf += data[i : i + k]
            i += k
            if len(self.buf) == self.need:
                field = bytes(self.buf)
                self.buf.clear()
                self.step(field)

    def at_boundary(self) -> bool:
        return self.step == self._magic and not self.buf and not self.skip

    def _magic(self, b: bytes) -> None:
        if b == ZSTD_MAGIC:
            self.step, self.need = self._descriptor, 1
        elif b[1:] == SKIPPABLE_MAGIC and b[0] & 0xF0 == 0x50:
            self.step, self.need = self._skippable, 4
        else:
            raise InvalidInput(f"invalid zstd-compressed layer: no frame magic ({b.hex()})")

    def _skippable(self, b: bytes) -> None:
        self.skip = int.from_bytes(b, "little")
        self.step, self.need = self._magic, 4

    def _descriptor(self, b: bytes) -> None:
        fhd = b[0]
        single = fhd >> 5 & 1
        fcs = (single, 2, 4, 8)[fhd >> 6]  # Frame_Content_Size field bytes
        dict_id = (0, 1, 2, 4)[fhd & 3]
        self.checksum = bool(fhd >> 2 & 1)
        self.skip = (0 if single else 1) + dict_id + fcs  # window descriptor unless single
        self.step, self.need = self._block, 3

    def _block(self, b: bytes) -> None:
        h = int.from_bytes(b, "little")
        kind, size = h >> 1 & 3, h >> 3
        if kind == 3:
            raise InvalidInput("invalid zstd-compressed layer: reserved block type")
        self.skip = 1 if kind == 1 else size
        if h & 1:  # the last block
            self.skip += 4 if self.checksum else 0
            self.step, self.need = self._magic, 4


class _Tee:
    """The compressed source, shown to a frame walker on its way to the decompressor."""

    def __init__(self, stream: BinaryIO, frames: _ZstdFrames) -> None:
        self.stream, self.frames = stream, frames

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.frames.feed(data)
        return data


class _Zstd(_Checked):
    def __init__(
        self, reader, errors: tuple[type[BaseException], ...], frames: _ZstdFrames
    ) -> None:  # noqa: ANN001
        super().__init__(reader, "zstd", errors)
        self.frames = frames

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        if not data and n != 0 and not self.frames.at_boundary():
            raise InvalidInput("invalid zstd-compressed layer: the stream ends inside a frame")
        return data


@contextlib.contextmanager
def decompressed(stream: BinaryIO, media_type: str = "") -> Iterator[BinaryIO]:
    """The uncompressed tar of a layer blob, read as it is consumed."""
    kind = codec(media_type) or codec("", _head(stream))
    if kind == "gzip":
        with gzip.GzipFile(fileobj=stream) as g:  # type: ignore[arg-type]
            yield _Checked(g, "gzip", (EOFError, zlib.error, gzip.BadGzipFile))  # type: ignore[misc]
    elif kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise InvalidInput(
                "zstd-compressed layer: the zstandard package is not installed"
            ) from None
        # read_across_frames: a layer may be several frames (zstd:chunked writes one per
        # file plus skippable frames, which libzstd steps over).
        frames = _ZstdFrames()
        reader = zstandard.ZstdDecompressor().stream_reader(
            _Tee(stream, frames),  # type: ignore[arg-type] # zstandard needs only read()
            read_across_frames=True,
            closefd=False,
        )
        with reader:
            yield _Zstd(reader, (zstandard.ZstdError,), frames)  # type: ignore[misc]
    else:
        yield stream
