"""Byte-exact re-export of applied layers ("tar-split"): keep a layer tar's framing, not its data.

An image's ``rootfs.diff_ids`` are sha256 sums of the original layer tars. A tar written
back from the unpacked tree is equivalent but not identical (entry order, header fields,
padding), so pushing or saving it would change every digest and the image id. Docker solves
this with tar-split; this module does the same job in its own format: while a layer is
applied, :class:`Recorder` sees every byte the unpacker reads and stores everything that is
*not* regular-file content -- header blocks, PAX/GNU extension blocks and their data,
padding, the end-of-archive blocks and any trailing bytes -- plus, for each regular file, a
reference (its path inside the layer and its size). :func:`reproduce` later interleaves the
stored bytes with the files read back from the layer's own tree, which is immutable for
image layers.

The raw tar is parsed here (512-byte blocks, POSIX.1-2001 pax ``x``/``g`` headers, GNU
``L``/``K`` long names, octal or base-256 numbers) rather than through ``tarfile``
internals; the rules mirror how :mod:`tarfile` (which the unpacker uses) consumes a stream,
so the recorder and the unpacker agree on where each payload lies.

Stored file (gzip): ``MAGIC`` then records ``b"R" <varint n> <n bytes>`` (stored bytes) and
``b"F" <varint size> <varint n> <n bytes path>`` (a payload read from ``path``), then
``b"E"``. A recording that cannot be reproduced (the same path written twice, a path the
tar later replaces, a pax global ``path``) is not stored at all; a reproduction whose files
are missing or of another size is refused before any byte is written. Callers still compare
the export's digest with the diff id and fall back to a plain re-export on a mismatch.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

from pydock.drivers.base import DriverError, UnsafeLayer
from pydock.drivers.safefs import SafeRoot, split_member_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

MAGIC = b"pydock-tar-split-1\n"
BLOCK = 512
_FLUSH = 1 << 16  # stored bytes are written in records of at most this size

# Entry types as tarfile groups them (POSIX ustar, GNU, pax): which ones carry data blocks.
_REGULAR = frozenset(b"0\x007S")  # regular, old regular, contiguous, GNU sparse
_KNOWN = _REGULAR | frozenset(b"12345") | frozenset(b"6LK")
_PAX = frozenset(b"xgX")  # per-file, global, Solaris per-file
_GNU_LONG = frozenset(b"LK")
_WHITEOUT = ".wh."


def _num(field: bytes) -> int:
    """A numeric header field: NUL/space-terminated octal, or GNU base-256 (high bit set)."""
    if field and field[0] in (0o200, 0o377):
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if field[0] == 0o377 else n
    text = field.split(b"\0", 1)[0].strip()
    return int(text or b"0", 8)


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """``"%d %s=%s\\n"`` records (pax(1) "extended header"); the length counts itself."""
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        sp = data.index(b" ", pos)
        length = int(data[pos:sp])
        if length <= 0:
            raise ValueError("bad pax record length")
        rec = data[sp + 1 : pos + length - 1]  # without the trailing newline
        key, _, value = rec.partition(b"=")
        out[key] = value
        pos += length
    return out


def _padding(size: int) -> int:
    return -size % BLOCK


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Recorder:
    """A read-only stream over ``stream`` that records the tar's framing to ``path``.

    Use as the unpacker's input, then call :meth:`finish` after the unpacker is done: it
    reads what the unpacker left (the end-of-archive blocks and padding), so the
    recording covers the whole stream, and stores the file if it is reproducible.
    :meth:`abort` removes any partial file.
    """

    def __init__(self, stream: BinaryIO, path: str | os.PathLike[str]) -> None:
        self.stream = stream
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._out = gzip.open(self._tmp, "wb", compresslevel=6)  # noqa: SIM115
        self._out.write(MAGIC)
        self._raw = bytearray()
        self.exact = True
        # parser state: what the next bytes are, and how many of them remain
        self._state = "header"
        self._need = BLOCK
        self._acc = bytearray()  # a header block or extension data being collected
        self._ext_type = 0
        self._pad = 0  # padding after the current payload or extension data
        self._pax: dict[bytes, bytes] = {}
        self._longname: bytes | None = None
        self._refs: set[tuple[str, ...]] = set()
        self._ref_dirs: set[tuple[str, ...]] = set()

    # -- the stream interface the unpacker sees -----------------------------------------
    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if data:
            try:
                self._feed(memoryview(data))
            except (ValueError, IndexError):
                # A header the recorder cannot read: the unpacker decides whether the tar
                # is valid; the recording is simply not kept.
                self._give_up()
                self._acc.clear()
        return data

    def finish(self) -> bool:
        """Read the rest of the stream, close the recording; True if it was stored."""
        while self.read(1 << 20):
            pass
        if self._state not in ("header", "trailer") or self._acc:
            self.exact = False  # the stream ended inside an entry
        self._flush()
        self._out.write(b"E")
        self._out.close()
        if self.exact:
            os.rename(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
        return self.exact

    def abort(self) -> None:
        self._out.close()
        self._tmp.unlink(missing_ok=True)

    # -- recording ------------------------------------------------------------------------
    def _store(self, data: memoryview | bytes) -> None:
        self._raw += data
        if len(self._raw) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._raw:
            self._out.write(b"R" + _varint(len(self._raw)))
            self._out.write(self._raw)
            self._raw.clear()

    def _reference(self, path: str, size: int) -> None:
        self._flush()
        name = path.encode("utf-8", "surrogateescape")
        self._out.write(b"F" + _varint(size) + _varint(len(name)) + name)

    # -- the parser -----------------------------------------------------------------------
    def _feed(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            st = self._state
            if st == "trailer":
                self._store(data[pos:])
                return
            take = min(self._need, end - pos)
            chunk = data[pos : pos + take]
            pos += take
            self._need -= take
            if st == "skip":  # referenced payload: its bytes live in the layer's tree
                pass
            elif st in ("header", "ext"):
                self._acc += chunk
                self._store(chunk)
            else:  # "data" (stored payload) or "pad"
                self._store(chunk)
            if self._need == 0:
                self._advance()

    def _advance(self) -> None:
        st = self._state
        if st == "header":
            block = bytes(self._acc)
            self._acc.clear()
            self._header(block)
        elif st == "ext":
            data = bytes(self._acc)
            self._acc.clear()
            self._extension(data)
            self._then_pad()
        elif st in ("skip", "data"):
            self._then_pad()
        else:  # pad done
            self._state, self._need = "header", BLOCK

    def _then_pad(self) -> None:
        if self._pad:
            self._state, self._need, self._pad = "pad", self._pad, 0
        else:
            self._state, self._need = "header", BLOCK

    def _header(self, block: bytes) -> None:
        if block.count(0) == BLOCK:
            # End of archive: tarfile stops at the first zero block; the rest is trailer.
            self._state = "trailer"
            return
        typ = block[156]
        size = _num(block[124:136])
        if typ in _PAX or typ in _GNU_LONG:
            self._ext_type = typ
            self._state, self._need, self._pad = "ext", size, _padding(size)
            if size == 0:
                self._then_pad()
            return
        pax, self._pax = self._pax, {}
        longname, self._longname = self._longname, None
        if typ == ord("S") or any(k.startswith(b"GNU.sparse.") for k in pax):
            # Sparse files carry a map, not the file's bytes (and old GNU sparse headers
            # extension blocks): not reproducible from the tree; stop interpreting.
            self._give_up()
            return
        if b"size" in pax:
            size = int(pax[b"size"])
        short = block[0:100].split(b"\0", 1)[0]
        # V7 tar: a regular entry whose name ends in "/" is a directory (and has no data).
        is_dir = typ == ord("5") or (typ == 0 and short.endswith(b"/"))
        carries_data = not is_dir and (typ in _REGULAR or typ not in _KNOWN)
        path = self._entry(block, short, typ, pax, longname, is_dir)
        if not carries_data or size == 0:
            self._state, self._need = "header", BLOCK
            return
        refer = path is not None and typ in b"0\x007"
        self._state = "skip" if refer else "data"
        self._need, self._pad = size, _padding(size)
        if refer:
            self._reference(path, size)  # type: ignore[arg-type]

    def _give_up(self) -> None:
        self.exact = False
        self._state = "trailer"

    def _entry(
        self, block: bytes, short: bytes, typ: int, pax: dict, longname: bytes | None, is_dir: bool
    ) -> str | None:
        """Track one entry's path; return it when a payload there could be referenced."""
        if longname is not None:
            raw = longname
        elif b"path" in pax:
            raw = pax[b"path"]
        else:
            raw = short
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                raw = prefix + b"/" + raw
        name = raw.decode("utf-8", "surrogateescape")
        try:
            key = tuple(split_member_name(name))
        except UnsafeLayer:
            self.exact = False
            return None
        # A later entry on a referenced path replaces that file: its bytes are gone.
        if key in self._refs or (not is_dir and key in self._ref_dirs):
            self.exact = False
        if is_dir or not key or key[-1].startswith(_WHITEOUT) or typ not in b"0\x007":
            return None  # whiteouts are not files in the tree (overlay: 0/0 char devices)
        self._refs.add(key)
        for i in range(1, len(key)):
            self._ref_dirs.add(key[:i])
        return "/".join(key)

    def _extension(self, data: bytes) -> None:
        typ = self._ext_type
        if typ == ord("L"):
            self._longname = data.split(b"\0", 1)[0]
        elif typ == ord("K"):
            pass  # long link name: only framing for us, the target needs no payload
        else:
            try:
                recs = _pax_records(data)
            except ValueError:
                self.exact = False
                return
            if typ == ord("g"):
                if b"path" in recs or b"size" in recs:
                    self.exact = False  # global path/size: not worth mirroring
            else:
                self._pax.update(recs)
        # (records after a pax header apply to the next entry only; tarfile merges "g"
        # records into every later entry, which only matters for path/size, refused above)


# -- reproduction ---------------------------------------------------------------------------


def _read_records(path: Path) -> list[tuple[bytes, bytes | int, str | None]]:
    """Decode a stored recording: [(b"R", bytes, None) | (b"F", size, path)]."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        raise ValueError("not a pydock tar-split file")
    pos = len(MAGIC)

    def varint() -> int:
        nonlocal pos
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    out: list[tuple[bytes, bytes | int, str | None]] = []
    while True:
        kind = data[pos : pos + 1]
        pos += 1
        if kind == b"E":
            return out
        if kind == b"R":
            n = varint()
            out.append((b"R", data[pos : pos + n], None))
            pos += n
        elif kind == b"F":
            size = varint()
            n = varint()
            out.append((b"F", size, data[pos : pos + n].decode("utf-8", "surrogateescape")))
            pos += n
        else:
            raise ValueError("corrupt pydock tar-split file")


def _open_payload(root: SafeRoot, path: str, size: int) -> int | None:
    """Open ``path`` in the layer without following symlinks; None unless a file of ``size``."""
    parts = path.split("/")
    try:
        pfd = root.dir_fd(parts[:-1], create=False, entry=path)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    except (OSError, DriverError):
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        os.close(fd)
        return None
    return fd


def reproduce(split_path: str | os.PathLike[str], tree: str | os.PathLike[str], out) -> bool:  # noqa: ANN001
    """Write the original layer tar to ``out`` from the recording and the layer's ``tree``.

    Returns False, having written nothing, when there is no usable recording or a
    referenced file is missing or has another size. Raises :class:`DriverError` if a file
    changes while it is copied (the output is then incomplete).
    """
    try:
        records = _read_records(Path(split_path))
    except (OSError, ValueError, IndexError, EOFError):
        return False
    with SafeRoot(tree) as root:
        for kind, size, path in records:  # check everything before the first byte goes out
            if kind == b"F":
                assert isinstance(size, int) and path is not None  # F records: (size, path)
                fd = _open_payload(root, path, size)
                if fd is None:
                    return False
                os.close(fd)
        for kind, value, path in records:
            if kind == b"R":
                out.write(value)
                continue
            size = value
            assert isinstance(size, int) and path is not None
            fd = _open_payload(root, path, size)
            if fd is None:
                raise DriverError(f"layer file {path!r} changed during an exact export")
            with os.fdopen(fd, "rb") as f:
                left = size
                while left:
                    chunk = f.read(min(left, 1 << 20))
                    if not chunk:
                        raise DriverError(f"layer file {path!r} shrank during an exact export")
                    out.write(chunk)
                    left -= len(chunk)  # type: ignore[operator]
    return True
