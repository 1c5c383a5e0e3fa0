"""A quicker request loop for pyfuse3 on trio: no scheduler pass a request does not need.

pyfuse3's session loop takes, for every request, a ``trio.Lock`` (only one task may
wait on the FUSE fd) and then waits for the fd with ``trio.lowlevel.wait_readable``. Each
of those is a full pass through trio's scheduler even when nothing has to wait: an
uncontended ``Lock.acquire`` still yields (a cancel-shielded checkpoint), and
``wait_readable`` always parks the task and goes through epoll, even with a request
already queued. A pass costs several microseconds of Python, about as much as serving a
cached ``getattr``; a warm ``find`` is a stream of such small requests.

pyfuse3 reaches trio through its module attribute ``pyfuse3.trio`` -- the hook
``pyfuse3.asyncio.enable()`` uses to put asyncio underneath -- so :func:`install` puts a
thin stand-in there that is trio except for two things:

* ``Lock`` is :class:`ReadLock`: taken without yielding when it is free;
* ``lowlevel.wait_readable`` first asks ``poll(2)`` without a timeout, and returns at once
  when a request is queued; while requests come close together it keeps asking for a
  short while (:data:`SPIN_NS`) before it sleeps.

Why spin: a request that finds the server asleep in epoll costs a wake-up -- on this
class of VM about 60 us between the kernel queueing the request and the server reading
it, several times what serving a cached request costs. A caller that issues requests
back to back (``find``: open a directory, two getdents, close) waits that long for every
one of them. Polling for :data:`SPIN_NS` after a request catches the next one without a
wake-up. It is spent only while it pays: a short record of recent waits is kept and the
spin happens only when at least half of them saw the next request within
:data:`SPIN_NS` (measured either way, so a sleeping server notices when requests start
coming close together). So an idle or slowly used mount never spins, and a busy one
spends at most :data:`SPIN_NS` of CPU per request that does not come.

Skipping a checkpoint must not starve other tasks (worker-thread results, signals, the
other session tasks): after :data:`BUDGET` requests served without a pass, the next wait
first yields to the scheduler (a checkpoint), and no spin starts while another task (other than an
idle session task about to park again) is runnable, nor while more tasks want a CPU than
the machine has (:class:`CpuGate`).
Everything else -- cancellation, ``notify_closing`` at unmount, ``ClosedResourceError``
-- is trio's own, unchanged.
"""

from __future__ import annotations

import functools
import os
import select
import time
import types
from collections.abc import Callable
from typing import Any

import trio

#: requests served back to back without a scheduler pass before one is forced
BUDGET = 16
#: how long a wait polls before it sleeps, and what counts as a request "close" to the last
SPIN_NS = 100_000
#: the waits remembered (bits of an int), and how many must have been close for a spin
HISTORY = 8
SPIN_MIN_CLOSE = 4


class ReadLock:
    """``trio.Lock`` as pyfuse3 uses it (``async with``), without a yield when free.

    A waiter is woken on release and takes the lock if it is still free then; a task
    that gets the lock back first simply keeps serving (which is fine here: any task
    may read the next request, none is owed a turn). Woken waiters are counted in
    ``ready`` while they have not run yet: they are idle session tasks that will only
    park again, so they must not count as work that a spin would keep waiting.
    """

    def __init__(self, ready: _Readiness | None = None) -> None:
        self._held = False
        self._lot = trio.lowlevel.ParkingLot()
        self._ready = ready

    async def acquire(self) -> None:
        while self._held:
            await self._lot.park()
            if self._ready is not None:
                self._ready.woken -= 1
        self._held = True

    def release(self) -> None:
        self._held = False
        if self._lot:
            self._lot.unpark()
            if self._ready is not None:
                self._ready.woken += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _Readiness:
    """``wait_readable`` with a non-blocking ``poll(2)`` first, and the adaptive spin."""

    def __init__(self, spare_cpu: Callable[[], bool] | None = None) -> None:
        self._polls: dict[int, Any] = {}
        self._budget = BUDGET
        self._close = 0  # one bit per recent wait: the request came within SPIN_NS
        #: session tasks woken by :class:`ReadLock` that have not run yet
        self.woken = 0
        self.spare_cpu = CpuGate() if spare_cpu is None else spare_cpu

    def _record(self, close: bool) -> None:
        self._close = ((self._close << 1) | close) & ((1 << HISTORY) - 1)

    def _should_spin(self) -> bool:
        if self._close.bit_count() < SPIN_MIN_CLOSE:
            return False
        if trio.lowlevel.current_statistics().tasks_runnable > self.woken:
            return False
        return self.spare_cpu()

    async def wait_readable(self, fd: int) -> None:
        p = self._polls.get(fd)
        if p is None:
            p = self._polls[fd] = select.poll()
            p.register(fd, select.POLLIN)
        if self._budget <= 0:
            # let the other tasks run; a checkpoint, not a sleep in epoll, whose wake-up
            # the next request would wait for
            self._budget = BUDGET
            await trio.lowlevel.checkpoint()
        start = time.monotonic_ns()
        if p.poll(0):
            self._budget -= 1
            self._record(True)
            return
        if self._should_spin():
            deadline = start + SPIN_NS
            while time.monotonic_ns() < deadline:
                if p.poll(0):
                    self._budget -= 1
                    self._record(True)
                    return
                os.sched_yield()  # a busy CPU goes to whoever else wants it
        self._budget = BUDGET
        await trio.lowlevel.wait_readable(fd)
        self._record(time.monotonic_ns() - start < SPIN_NS)


class CpuGate:
    """Is a CPU free for a spin right now? Only while no more tasks are running or
    runnable than there are CPUs: this server and the process it serves need two, and a
    third that wants a CPU would wait behind the spin, or (it yields) take the CPU and
    leave the next request waiting a whole time slice -- measured under a load of 3-4 on
    2 cores, spinning made a warm find slower, not faster.

    The count is the numerator of /proc/loadavg's fourth field ("running/total",
    fs/proc/loadavg.c), an instant reading, unlike the averages beside it; it is read
    with one pread of a descriptor kept open. Without the file no spin happens.
    """

    def __init__(self, loadavg: str = "/proc/loadavg") -> None:
        self.cpus = os.cpu_count() or 1
        try:
            self._fd: int | None = os.open(loadavg, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None

    def __call__(self) -> bool:
        if self._fd is None:
            return False
        try:
            fields = os.pread(self._fd, 128, 0).split()  # b"0.52 0.58 0.59 2/115 4242"
            return int(fields[3].partition(b"/")[0]) <= self.cpus
        except (OSError, IndexError, ValueError):
            return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def stand_in() -> types.SimpleNamespace:
    """A module-like object: trio with :class:`ReadLock` and the quicker wait."""
    ready = _Readiness()

    class _Lowlevel(types.SimpleNamespace):
        def __getattr__(self, name: str) -> Any:
            return getattr(trio.lowlevel, name)

    class _Trio(types.SimpleNamespace):
        def __getattr__(self, name: str) -> Any:
            return getattr(trio, name)

    return _Trio(
        Lock=functools.partial(ReadLock, ready),
        lowlevel=_Lowlevel(wait_readable=ready.wait_readable),
    )


def install() -> None:
    """Make pyfuse3's session loop use :func:`stand_in` (call before ``pyfuse3.main``)."""
    import pyfuse3

    pyfuse3.trio = stand_in()  # type: ignore[attr-defined]
