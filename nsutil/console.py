"""A container's terminal, made inside the container and handed out through a socket.

What runc's ``--console-socket`` does, for ``process.terminal``: the pty must belong to the
container's own devpts instance (mounted ``newinstance`` at its /dev/pts), or ``tty`` inside
prints "not a tty"-like host paths and the container could see the host's ptys. So the
container's init, once its root is in place, opens ``/dev/pts/ptmx`` (the instance's own
multiplexer; /dev/ptmx is only a symlink to it, see Documentation/filesystems/devpts.rst),
unlocks a new pty, takes the slave as its stdio and controlling terminal, and sends the
master to the engine over a unix socket with SCM_RIGHTS (unix(7)) before it execs.

Child side: :func:`make_console`. Engine side: :func:`receive_master`. Stdlib (``_socket``,
``fcntl``, ``termios``) and the cffi module only, all imported here at the top: the child
runs after pivot_root, where the host's extension modules can no longer be loaded.
"""

from __future__ import annotations

import _socket
import array
import fcntl
import os
import stat
import struct
import termios

from pydock.nsutil import syscalls as sc

_PTMX = "/dev/pts/ptmx"
_PTMX_DEV = (5, 2)  # Documentation/admin-guide/devices.txt: 5,2 = /dev/ptmx
_CONSOLE = "/dev/console"


def _open_master() -> int:
    """Open the container's ptmx, refusing anything that is not a pty multiplexer (in an
    ``exec`` the container's root decides what /dev/pts holds)."""
    fd = os.open(_PTMX, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        if not stat.S_ISCHR(st.st_mode) or dev != _PTMX_DEV:
            raise OSError(19, "not a pty multiplexer (is a devpts instance mounted?)", _PTMX)
        os.set_blocking(fd, True)
        # unlockpt(3): a new devpts slave is locked until its master clears the lock.
        fcntl.ioctl(fd, sc.lib.TIOCSPTLCK, struct.pack("i", 0))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_slave(master: int) -> int:
    """TIOCGPTPEER (Linux 4.13, tty_ioctl(4)): the slave of this very master, without a path
    lookup a container could redirect."""
    return fcntl.ioctl(master, sc.lib.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)


def _mount_console(slave: int) -> None:
    """/dev/console is the container's pty, as runc makes it: a bind mount of the slave."""
    if not os.path.lexists(_CONSOLE):
        os.close(os.open(_CONSOLE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    sc.mount(f"/proc/self/fd/{slave}", _CONSOLE, None, sc.lib.MS_BIND)


def send_fd(sock: int, fd: int) -> None:
    s = _socket.socket(fileno=sock)
    try:
        fds = array.array("i", [fd])
        s.sendmsg([b"M"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds.tobytes())])
    finally:
        s.detach()


def receive_master(sock: int) -> int:
    """The engine's end: the pty master the container's init sent (close-on-exec)."""
    s = _socket.socket(fileno=sock)
    try:
        space = _socket.CMSG_SPACE(array.array("i").itemsize)
        _, anc, _, _ = s.recvmsg(1, space, _socket.MSG_CMSG_CLOEXEC)
    finally:
        s.detach()
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for extra in fds[1:]:
                os.close(extra)
            if fds:
                return fds[0]
    raise OSError(71, "the container sent no terminal")  # EPROTO


def make_console(
    sock: int,
    *,
    uid: int = 0,
    size: dict | None = None,
    mount_console: bool = True,
) -> None:
    """In the container's init, root in place, still privileged: a new session on a new pty
    of the container's devpts as stdio and controlling terminal; the master goes to ``sock``.

    ``uid`` owns the slave (the process's user may reopen it, as runc's
    fixStdioPermissions allows); ``size`` is OCI ``process.consoleSize``.
    """
    os.setsid()  # credentials(7): only a session leader may take a controlling terminal
    master = _open_master()
    try:
        slave = _open_slave(master)
        try:
            if uid:
                os.fchown(slave, uid, -1)
            if size:
                rows, cols = int(size.get("height", 0)), int(size.get("width", 0))
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            if mount_console:
                _mount_console(slave)
            send_fd(sock, master)
            for target in (0, 1, 2):
                os.dup2(slave, target, inheritable=True)
        finally:
            os.close(slave)
    finally:
        os.close(master)
    fcntl.ioctl(0, sc.lib.TIOCSCTTY, 0)  # tty_ioctl(4)


def window_size(fd: int) -> dict | None:
    """The size of the terminal on ``fd`` as OCI ``process.consoleSize`` (None if no tty)."""
    try:
        raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols = struct.unpack("HHHH", raw)[:2]
    return {"height": rows, "width": cols} if rows and cols else None
