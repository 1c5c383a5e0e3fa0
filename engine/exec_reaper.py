"""The parent of a detached ``exec`` process (``exec -d``), for as long as that process lives.

``runc exec`` leaves its process the child of whoever started it; a ``docker exec -d`` one
is the child of containerd-shim, which reaps it. pydock has no daemon, and the container's
monitor cannot adopt it (a process's parent can only be an ancestor that is a subreaper), so
``exec -d`` forks this tiny reaper: it spawns the process as its child (parent-death signal
SIGKILL: killing the reaper ends the process too), then ``execve``s this file under
``python -I -S`` (no site-packages, a few MB) and waits. The process is in the container's
pid namespace and cgroup, so it dies with the container (the kernel kills a pid namespace
whose init exits, pid_namespaces(7)), and then the reaper reaps it and exits.

With ``-t`` the reaper also holds the pty master and drains it, as the shim does for a
detached ``docker exec -dt``: nobody reads that output, but the process must not block on
a full terminal.

Usage: ``python -I -S exec_reaper.py PID [MASTER_FD]``.
"""

import os
import select
import sys


def reap(pid: int, master: int) -> None:
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if master >= 0:
        poller.register(master, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                os.waitpid(pid, 0)
                return
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave fd is closed
                data = b""
            if not data:
                poller.unregister(master)


if __name__ == "__main__":
    reap(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else -1)
