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
goes through the scheduler anyway, and no spin starts while another task (other than an
idle session task about to park again) is runnable, nor while the machine's CPUs are
busy (:func:`spare_cpu`).
Everything else -- cancellation, ``notify_closing`` at unmount, ``ClosedResourceError``
-- is trio's own, unchanged.
"""

from __future__ import annotations

import functools
import os
import select
import time
import types
from typing import Any

import trio

#: requests served back to back without a scheduler pass before one is forced
BUDGET = 16
#: how long a wait polls before it sleeps, and what counts as a request "close" to the last
SPIN_NS = 100_000
#: the waits remembered (bits of an int), and how many must have been close for a spin
HISTORY = 8
SPIN_MIN_CLOSE = 4
#: no spin while tasks wait for a CPU more than this share of the time (PSI "some avg10",
#: Documentation/accounting/psi.rst): on a busy machine the CPU is worth more to others
#: than the wake-up a spin saves; re-read at most this often
SPIN_MAX_CPU_PRESSURE = 10.0
PRESSURE_EVERY_NS = 500_000_000


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

    def __init__(self) -> None:
        self._polls: dict[int, Any] = {}
        self._budget = BUDGET
        self._close = 0  # one bit per recent wait: the request came within SPIN_NS
        #: session tasks woken by :class:`ReadLock` that have not run yet
        self.woken = 0
        self._spare_cpu = False
        self._spare_checked = 0  # monotonic_ns of the last look; 0: never looked

    def _record(self, close: bool) -> None:
        self._close = ((self._close << 1) | close) & ((1 << HISTORY) - 1)

    def _should_spin(self) -> bool:
        if self._close.bit_count() < SPIN_MIN_CLOSE:
            return False
        if trio.lowlevel.current_statistics().tasks_runnable > self.woken:
            return False
        now = time.monotonic_ns()
        if not self._spare_checked or now - self._spare_checked >= PRESSURE_EVERY_NS:
            self._spare_checked = now
            self._spare_cpu = spare_cpu()
        return self._spare_cpu

    async def wait_readable(self, fd: int) -> None:
        p = self._polls.get(fd)
        if p is None:
            p = self._polls[fd] = select.poll()
            p.register(fd, select.POLLIN)
        start = time.monotonic_ns()
        if self._budget > 0:
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


def spare_cpu(pressure_file: str = "/proc/pressure/cpu") -> bool:
    """Is there CPU to spare for a spin? From the kernel's CPU pressure (the share of
    the last 10 s some task waited for a CPU); without PSI (``psi=0``, old kernels), from
    the load average against the CPUs this process may use."""
    try:
        with open(pressure_file) as f:
            some = f.readline()  # "some avg10=1.23 avg60=... avg300=... total=..."
        return float(some.split()[1].partition("=")[2]) < SPIN_MAX_CPU_PRESSURE
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0] < len(os.sched_getaffinity(0)) - 0.5


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
