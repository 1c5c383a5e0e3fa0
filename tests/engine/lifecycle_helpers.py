"""Shared by the lifecycle tests: waiting on records, monitors, and a pydock on a real pty."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

from helpers import PYDOCK


def inspect(pydock, name: str) -> dict:
    return json.loads(pydock.out("inspect", name))[0]


def wait_for(pred, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(pydock, name: str, status: str, timeout: float = 20.0) -> dict:
    def check():
        info = inspect(pydock, name)
        return info if info["State"]["Status"] == status else None

    return wait_for(check, timeout, f"{name} to be {status}")


def monitor_pid(pydock, name: str) -> int:
    """The pid of the container's monitor (its record's owner), read from the store."""
    cid = inspect(pydock, name)["Id"]
    rec = json.loads((pydock.root / "containers" / cid / "container.json").read_text())
    return rec["State"]["Owner"]["Pid"]


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :][:1] in (b"Z", b"X")


class PtyPydock:
    """``pydock ARGS`` with a fresh pty as its terminal (stdin, stdout and stderr)."""

    def __init__(self, pydock, *args: str, rows: int = 24, cols: int = 80) -> None:
        import fcntl
        import struct
        import termios

        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            [PYDOCK, "--root", str(pydock.root), *pydock._args(args)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = 20.0) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} never appeared; saw {self.seen[-400:]!r}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"pty closed before {needle!r}; saw {self.seen!r}")
                self.seen += data
        return self.seen

    def resize(self, rows: int, cols: int) -> None:
        """A new window size, and the SIGWINCH a terminal would send (pydock runs in a session
        of its own without this pty as its controlling terminal, so we send it by pid)."""
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc.send_signal(signal.SIGWINCH)

    def wait_output(self, timeout: float = 20.0) -> tuple[int, bytes]:
        """Wait for the exit; the exit code and everything written after what was seen."""
        code = self.proc.wait(timeout=timeout)
        rest = b""
        try:
            while select.select([self.master], [], [], 0.5)[0]:
                data = os.read(self.master, 4096)  # EIO once the last slave fd is closed
                if not data:
                    break
                rest += data
        except OSError:
            pass
        finally:
            self.close()
        return code, rest

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # our own child, by pid
            self.proc.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
