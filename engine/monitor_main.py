"""The lean half of a container's monitor: the process that sits beside a running container.

pydock has no daemon. A container started with ``run -d``/``start`` is kept by one monitor
process per container (what conmon and containerd-shim are to Podman and Docker). That
process is forked by the pydock command, spawns the container (so it is its parent), and
then ``execve``s this file under ``python -I -S``: no site-packages, no pydock package, only
C-level stdlib modules (``_signal``, ``_socket``, ``_json``, ``select``, ``fcntl``), because
it lives for the container's whole life and its memory is paid per container. Heavier work
(tearing down, restart policy, respawning) happens only at the container's exit, when this
program ``execve``s back into ``python -m pydock.engine.shim`` in the same process: the pid
never changes, so the record's ``Owner`` and the container's parent stay the same.

While the container runs it:
  * copies the container's stdout/stderr (pipes, or the pty master for ``-t``) into the
    Docker json-file log and to every attached client;
  * serves attach clients on ``<container dir>/attach.sock`` (and one pre-connected client
    fd for ``run -t``/``start -a``): framed messages, see ``FRAME`` below;
  * reaps the container through a pidfd and hands its exit status to the shim;
  * with a health check (``health=INTERVAL_NS``), starts ``pydock.engine.healthprobe`` one
    interval after the start and one interval after each probe ended (moby's timing): the
    engine is loaded in that short-lived child, never here. Without one, nothing of this
    runs: no timer, no child.

Frames on an attach connection are ``type (1 byte) | length (4 bytes, big endian) | data``.
Client -> monitor: ``i`` stdin bytes, ``c`` close stdin, ``w`` window size (two
big-endian u16: rows, cols). Monitor -> client: ``1`` stdout, ``2`` stderr, ``x`` the exit
code in ASCII, after which the monitor closes the connection.
"""

import _signal
import _socket
import os
import select
import struct
import sys
import time
from _json import encode_basestring_ascii as _jstr

FRAME = struct.Struct(">cI")
READ = select.POLLIN | select.POLLPRI
GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def now() -> str:
    """RFC 3339 UTC with nanoseconds, as Docker's json-file driver writes its times."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


class Log:
    """Docker's json-file log: one ``{"log","stream","time"}`` line per line of output.

    With ``attrs`` (the log-opt extras, as JSON text) each line also carries them, as
    json-file's ``attrs`` (between "stream" and "time", where Docker writes it). With
    ``max_size`` it rotates as Docker's loggerutils.LogFile: before each entry, a file at
    or past ``max_size`` becomes ``.1`` (``.1`` becomes ``.2`` ..., at most ``files - 1``
    kept; with one file it is truncated), ``.N.gz`` when ``compress``.
    """

    def __init__(self, path: str, max_size: int = -1, files: int = 1, compress: bool = False,
                 attrs: str = "") -> None:  # fmt: skip
        self.path = path
        self.max_size, self.files, self.compress = max_size, files, compress
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.attrs = b',"attrs":%s' % attrs.encode() if attrs else b""
        self.partial = {"stdout": b"", "stderr": b""}

    def add(self, stream: str, data: bytes, final: bool = False) -> None:
        lines = (self.partial[stream] + data).split(b"\n")
        rest = lines.pop()
        out = [line + b"\n" for line in lines]
        if final and rest:
            out.append(rest)
            rest = b""
        self.partial[stream] = rest
        if out:
            t, kind = now().encode(), stream.encode()
            self.write([
                b'{"log":%s,"stream":"%s"%s,"time":"%s"}\n'
                % (_jstr(x.decode("utf-8", "replace")).encode(), kind, self.attrs, t)
                for x in out
            ])  # fmt: skip

    def write(self, entries: list[bytes]) -> None:
        if self.max_size <= 0:
            os.write(self.fd, b"".join(entries))
            return
        batch: list[bytes] = []
        for entry in entries:
            if self.size >= self.max_size:
                if batch:
                    os.write(self.fd, b"".join(batch))
                    batch = []
                self._rotate()
            batch.append(entry)
            self.size += len(entry)
        if batch:
            os.write(self.fd, b"".join(batch))

    def _rotate(self) -> None:
        os.close(self.fd)
        ext = ".gz" if self.compress else ""
        if self.files >= 2:
            try:
                os.unlink(f"{self.path}.{self.files - 1}{ext}")
            except FileNotFoundError:
                pass
            for i in range(self.files - 1, 1, -1):
                try:
                    os.rename(f"{self.path}.{i - 1}{ext}", f"{self.path}.{i}{ext}")
                except FileNotFoundError:
                    pass
            os.rename(self.path, f"{self.path}.1")
            if self.compress:
                _gzip(f"{self.path}.1")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self.fd = os.open(self.path, flags, 0o640)
        self.size = 0


def _gzip(path: str) -> None:
    """``path`` -> ``path.gz`` (gzip through zlib, a C module: loaded only with compress)."""
    import zlib

    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    tmp = f"{path}.gz.tmp"
    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        while chunk := os.read(src, 1 << 20):
            os.write(dst, packer.compress(chunk))
        os.write(dst, packer.flush())
    finally:
        os.close(src)
        os.close(dst)
    os.rename(tmp, f"{path}.gz")
    os.unlink(path)


class Client:
    """One attach connection: frames in, frames out."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def send(self, kind: bytes, data: bytes) -> bool:
        try:
            os.write(self.fd, FRAME.pack(kind, len(data)) + data)
            return True
        except OSError:
            return False

    def frames(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= FRAME.size:
            kind, n = FRAME.unpack_from(self.buf)
            if len(self.buf) < FRAME.size + n:
                break
            out.append((kind, self.buf[FRAME.size : FRAME.size + n]))
            self.buf = self.buf[FRAME.size + n :]
        return out


def listen(path: str) -> _socket.socket:
    """The attach socket at ``path``, listening (root only)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    # sun_path holds 108 bytes, less than <root>/containers/<64 hex>/attach.sock can
    # need: bind through the directory's fd (/proc/self/fd/N resolves to it).
    dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    old = os.umask(0o077)  # only root may attach
    try:
        s.bind(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
    finally:
        os.umask(old)
        os.close(dfd)
    s.listen(8)
    return s


class Prober:
    """The container's health probes: one child at a time, an interval apart."""

    def __init__(self, args: dict[str, str], poll: select.poll) -> None:
        self.interval = int(args["health"]) / 1e9
        self.argv = [args["python"], "-I", "-m", "pydock.engine.healthprobe",
                     f"root={args['root']}", f"cid={args['cid']}",
                     f"pid={args['pid']}"]  # fmt: skip
        self.poll = poll
        self.due = time.monotonic() + self.interval
        self.child = 0
        self.pidfd = -1

    def timeout_ms(self) -> int | None:
        """How long the monitor may sleep in poll(): until the next probe is due."""
        if self.pidfd >= 0:
            return None  # a probe runs: its end wakes us
        return max(0, int((self.due - time.monotonic()) * 1000) + 1)

    def tick(self) -> None:
        if self.pidfd >= 0 or time.monotonic() < self.due:
            return
        try:
            self.child = os.posix_spawn(self.argv[0], self.argv, os.environ,
                                        file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull,
                                                       os.O_RDONLY, 0),
                                                      (os.POSIX_SPAWN_DUP2, 2, 1)])  # fmt: skip
            self.pidfd = os.pidfd_open(self.child)
        except OSError as e:
            os.write(2, f"pydock monitor: health probe: {e!r}\n".encode())
            self.due = time.monotonic() + self.interval
            return
        self.poll.register(self.pidfd, READ)

    def reap(self) -> None:
        self.poll.unregister(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        os.waitpid(self.child, 0)
        self.due = time.monotonic() + self.interval

    def finish(self) -> None:
        """The container is gone: its probe ends with it (it sees the exit and writes
        nothing); wait a little for that, then end it, before the shim takes over."""
        if self.pidfd < 0:
            return
        if not select.select([self.pidfd], [], [], 5.0)[0]:
            try:
                os.kill(self.child, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.reap()


class Monitor:
    def __init__(self, args: dict[str, str]) -> None:
        self.args = args
        self.pid = int(args["pid"])
        self.tty = args["tty"] == "1"
        self.stdin = int(args["in"])  # -1: stdin not open
        self.outputs = {int(args["out"]): "stdout"}
        if int(args["err"]) >= 0:
            self.outputs[int(args["err"])] = "stderr"
        self.log = None  # the "none" log driver keeps nothing
        if args["log"]:
            self.log = Log(args["log"], int(args.get("logmax", "-1")),
                           int(args.get("logfiles", "1")), args.get("logzip") == "1",
                           args.get("logattrs", ""))  # fmt: skip
        self.poll = select.poll()
        self.clients: dict[int, Client] = {}
        self.listener = self._listen(args)
        for fd in filter(None, args["clients"].split(",")):
            self._add_client(int(fd))
        for fd in self.outputs:
            self.poll.register(fd, READ)
        self.pidfd = os.pidfd_open(self.pid)
        self.poll.register(self.pidfd, READ)
        for fd in (*self.outputs, self.stdin):
            if fd >= 0:  # inherited through execve; a probe child must not hold them
                os.set_inheritable(fd, False)
        self.prober = Prober(args, self.poll) if int(args.get("health", "0")) > 0 else None

    def _listen(self, args: dict[str, str]) -> _socket.socket:
        if args.get("listen"):  # made by the shim before it reported the start
            s = _socket.socket(fileno=int(args["listen"]))
            os.set_inheritable(s.fileno(), False)
        else:
            s = listen(args["sock"])
        self.poll.register(s.fileno(), READ)
        return s

    def _add_client(self, fd: int) -> None:
        os.set_inheritable(fd, False)
        self.clients[fd] = Client(fd)
        self.poll.register(fd, READ)

    def _drop_client(self, fd: int) -> None:
        self.poll.unregister(fd)
        del self.clients[fd]
        os.close(fd)

    def _broadcast(self, kind: bytes, data: bytes) -> None:
        for fd, c in list(self.clients.items()):
            if not c.send(kind, data):
                self._drop_client(fd)

    def _output(self, fd: int, final: bool = False) -> bool:
        """Copy one read of ``fd``; False at its end (EOF, or EIO on a pty master)."""
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        stream = self.outputs[fd]
        if data:
            self._broadcast(b"1" if stream == "stdout" else b"2", data)
            if self.log is not None:
                self.log.add(stream, data)
            return True
        if self.log is not None:
            self.log.add(stream, b"", final=True)
        self.poll.unregister(fd)
        os.close(fd)
        del self.outputs[fd]
        return False

    def _client_input(self, fd: int) -> None:
        c = self.clients[fd]
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            self._drop_client(fd)
            return
        for kind, payload in c.frames(data):
            if kind == b"i" and self.stdin >= 0:
                try:
                    os.write(self.stdin, payload)
                except OSError:
                    pass
            elif kind == b"c" and self.stdin >= 0 and not self.tty:
                os.close(self.stdin)  # the container reads EOF, as with `docker run -i`
                self.stdin = -1
            elif kind == b"w" and self.tty and len(payload) == 4:
                rows, cols = struct.unpack(">HH", payload)
                winsize = struct.pack("HHHH", rows, cols, 0, 0)
                try:
                    import fcntl  # only -t: not loaded where the json-file writer is
                    import termios  # (the foreground run imports this module for Log)

                    fcntl.ioctl(self.stdin, termios.TIOCSWINSZ, winsize)
                except OSError:
                    pass

    def run(self) -> int:
        """Serve until the container's PID 1 is reaped; return its Docker exit code."""
        status = None
        prober = self.prober
        while status is None:
            if prober is not None:
                prober.tick()
            for fd, ev in self.poll.poll(prober.timeout_ms() if prober else None):
                if fd == self.pidfd:
                    status = os.waitpid(self.pid, 0)[1]
                elif prober is not None and fd == prober.pidfd:
                    prober.reap()
                elif fd in self.outputs:
                    self._output(fd)
                elif fd == self.listener.fileno():
                    cfd, _ = self.listener._accept()
                    self._add_client(cfd)
                elif fd in self.clients and ev & (READ | GONE):
                    self._client_input(fd)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
        # PID 1 gone: the kernel kills the rest of its pid namespace, so the write ends close.
        deadline = time.monotonic() + 2.0
        while self.outputs and time.monotonic() < deadline:
            for fd, _ in self.poll.poll(100):
                if fd in self.outputs:
                    self._output(fd, final=True)
        for fd in list(self.outputs):
            if self.log is not None:
                self.log.add(self.outputs[fd], b"", final=True)
        if prober is not None:
            prober.finish()
        self._broadcast(b"x", str(code).encode())
        return code


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    for sig in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGPIPE, _signal.SIGTTOU):
        _signal.signal(sig, _signal.SIG_IGN)
    up_since = time.monotonic()
    code = 255
    mon = None
    try:
        mon = Monitor(args)
        code = mon.run()
    except BaseException as e:  # noqa: BLE001 - said to monitor.log; the shim cleans up
        os.write(2, f"pydock monitor {args.get('cid', '')[:12]}: {e!r}\n".encode())
    finally:
        if mon is not None:
            try:
                os.unlink(args["sock"])
            except OSError:
                pass
        uptime_ms = int((time.monotonic() - up_since) * 1000)
        # Back to the full engine (same pid) for teardown and the restart policy.
        os.execv(
            args["python"],
            [args["python"], "-I", "-m", "pydock.engine.shim", "exited",
             f"root={args['root']}", f"cid={args['cid']}", f"pid={args['pid']}", f"code={code}",
             f"backoff={args['backoff']}", f"uptime={uptime_ms}"],
        )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
