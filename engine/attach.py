"""The client side of attaching to a container: the user's terminal <-> a monitor socket.

Used by ``run -t``, ``run`` with a restart policy, ``start -a`` and ``attach``. The
terminal is put in raw mode when the container has a tty (its own line discipline, on the
container's pty, does the echoing and ^C), its size is sent at once and again on every
SIGWINCH, and the detach sequence (Docker's default Ctrl-P Ctrl-Q, or ``--detach-keys``)
is recognised here: the client closes its connection and the container keeps running.
Frames are monitor_main's (``type | length | data``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys

from .errors import InvalidInput

FRAME = struct.Struct(">cI")
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
DETACHED = -1  # relay()'s result when the user detached


#: moby/term's ASCII table: ``ctrl-@`` is NUL, ``ctrl-a``..``ctrl-z`` 1..26, then 27..31
_CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_"


def parse_detach_keys(spec: str | None, what: str = "detach") -> bytes:
    """Docker's ``--detach-keys`` (moby/term ToBytes): comma-separated keys, each a single
    character, ``ctrl-`` and one of ``@ a..z [ \\ ] ^ _`` (lower case, exactly), or ``DEL``;
    empty or unset is Ctrl-P Ctrl-Q. Anything else is the daemon's "Invalid detach keys
    (SPEC) provided" (``what="escape"``: exec's wording, "Invalid escape keys")."""
    out = bytearray()
    for key in (spec or DEFAULT_DETACH_KEYS).split(","):
        if len(key) == 1 and key.isascii():  # Go counts bytes: "é" is two, and unknown
            out += key.encode()
        elif len(key) == 6 and key.startswith("ctrl-") and key[5] in _CTRL:
            out.append(_CTRL.index(key[5]))
        elif key == "DEL":
            out.append(127)
        else:
            raise InvalidInput(f"Invalid {what} keys ({spec}) provided")
    return bytes(out)


def _frame(kind: bytes, data: bytes = b"") -> bytes:
    return FRAME.pack(kind, len(data)) + data


def _winsize(fd: int) -> bytes | None:
    import fcntl
    import termios

    try:
        raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols = struct.unpack("HHHH", raw)[:2]
    return struct.pack(">HH", rows, cols)


class _DetachScanner:
    """Finds the detach sequence in the input stream, holding back a partial match."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for b in data:
            cand = self.held + bytes([b])
            if self.keys.startswith(cand):
                self.held = cand
                if cand == self.keys:
                    return bytes(out), True
            else:  # not the sequence after all: what was held goes through
                out += self.held
                self.held = b""
                if self.keys[:1] == bytes([b]):
                    self.held = bytes([b])
                else:
                    out.append(b)
        return bytes(out), False


def relay(sock: int, *, stdin: bool, tty: bool, detach_keys: str | None = None) -> int:
    """Copy between our stdio and the monitor connection ``sock`` until the container
    exits (its exit code) or the user detaches (``DETACHED``). Closes ``sock``."""
    import select

    scanner = _DetachScanner(parse_detach_keys(detach_keys))
    restore = None
    wake_r = wake_w = -1
    old_winch = None
    if tty and stdin and os.isatty(0):
        import termios
        import tty as ttymod

        restore = termios.tcgetattr(0)
        ttymod.setraw(0)
    try:
        if tty and os.isatty(0):
            size = _winsize(0)
            if size:
                os.write(sock, _frame(b"w", size))
            wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            old_winch = signal.signal(signal.SIGWINCH, lambda *_: None)
            signal.set_wakeup_fd(wake_w)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if stdin:
            poller.register(0, select.POLLIN)
        if wake_r >= 0:
            poller.register(wake_r, select.POLLIN)
        buf = b""
        out = {b"1": sys.stdout.buffer, b"2": sys.stderr.buffer}
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            for fd, _ev in events:
                if fd == wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                    size = _winsize(0)
                    if size:
                        os.write(sock, _frame(b"w", size))
                elif fd == 0:
                    data = os.read(0, 65536)
                    if not data:
                        poller.unregister(0)
                        os.write(sock, _frame(b"c"))
                        continue
                    data, detach = scanner.feed(data) if tty else (data, False)
                    if data:
                        os.write(sock, _frame(b"i", data))
                    if detach:
                        return DETACHED
                elif fd == sock:
                    data = os.read(sock, 65536)
                    if not data:
                        return 255  # the monitor went away without a word
                    buf += data
                    while len(buf) >= FRAME.size:
                        kind, n = FRAME.unpack_from(buf)
                        if len(buf) < FRAME.size + n:
                            break
                        payload, buf = buf[FRAME.size : FRAME.size + n], buf[FRAME.size + n :]
                        if kind == b"x":
                            return int(payload or b"255")
                        if kind in out:
                            out[kind].write(payload)
                            out[kind].flush()
    finally:
        os.close(sock)
        if wake_w >= 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGWINCH, old_winch)
            os.close(wake_r)
            os.close(wake_w)
        if restore is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, restore)


def connect(sock_path: str) -> int:
    """A connection to a running container's monitor (its attach.sock)."""
    import _socket

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    # through the directory's fd: the full path may not fit sun_path's 108 bytes
    dfd = os.open(os.path.dirname(sock_path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.connect(f"/proc/self/fd/{dfd}/{os.path.basename(sock_path)}")
    except OSError:
        s.close()
        raise
    finally:
        os.close(dfd)
    return s.detach()
