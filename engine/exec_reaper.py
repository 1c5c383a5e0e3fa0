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

``exec -it`` starts the same reaper with a control socket to the command (CTL_FD), which
has a copy of the master and relays it to the user's terminal: while that socket is open
the reaper leaves the master alone, and sends the exit code (``CODE\n``) on it when the
process ends. When the command goes (the user typed the detach keys, or it was killed) the
reaper drains the master as for ``exec -dt``: the process runs on, as Docker's does.

Usage: ``python -I -S exec_reaper.py PID [MASTER_FD [CTL_FD]]``.
"""

import os
import select
import sys


def reap(pid: int, master: int = -1, ctl: int = -1) -> None:
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if ctl >= 0:
        poller.register(ctl, select.POLLIN)
    elif master >= 0:
        poller.register(master, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                if ctl >= 0:
                    try:  # Docker's code for a signal's death is 128+N
                        os.write(ctl, b"%d\n" % (code if code >= 0 else 128 - code))
                    except OSError:
                        pass  # the command went just now
                return
            if fd == ctl:
                try:
                    gone = not os.read(ctl, 512)
                except OSError:
                    gone = True
                if gone:  # detached: the output is ours to drain from now on
                    poller.unregister(ctl)
                    os.close(ctl)
                    ctl = -1
                    if master >= 0:
                        poller.register(master, select.POLLIN)
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave fd is closed
                data = b""
            if not data:
                poller.unregister(master)


if __name__ == "__main__":
    reap(*(int(a) for a in sys.argv[1:4]))
