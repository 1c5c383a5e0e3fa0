"""The request-loop stand-in for pyfuse3 (pydock.fuse_union.loop), on real fds and trio.

The whole server runs on it in the other fuse_union tests; these pin down the parts that
decide when a scheduler pass or a spin happens, without timing assumptions.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pyfuse3
import pytest
import trio
import trio.testing
from pydock.fuse_union import loop


def idle() -> bool:
    """The spin decisions below, as on an idle machine (this one may be busy)."""
    return True


def test_read_lock_excludes_and_hands_over() -> None:
    order: list[str] = []

    async def main() -> None:
        lock = loop.ReadLock()
        inside = 0

        async def user(name: str) -> None:
            nonlocal inside
            async with lock:
                inside += 1
                assert inside == 1
                order.append(name)
                await trio.sleep(0.01)  # yields while holding it
                inside -= 1

        async with trio.open_nursery() as n:
            for name in "abc":
                n.start_soon(user, name)

    trio.run(main)
    assert sorted(order) == ["a", "b", "c"]


def test_free_read_lock_is_taken_without_a_scheduler_pass() -> None:
    async def main() -> None:
        lock = loop.ReadLock()
        ran = False

        async def other() -> None:
            nonlocal ran
            ran = True

        async with trio.open_nursery() as n:
            n.start_soon(other)
            async with lock:
                pass
            assert not ran  # no yield happened, so the other task has not run yet

    trio.run(main)


def test_queued_request_returns_at_once_and_budget_forces_a_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = 0
    real_checkpoint = trio.lowlevel.checkpoint

    async def counting_checkpoint() -> None:
        nonlocal passes
        passes += 1
        await real_checkpoint()

    async def no_wait(fd: int) -> None:
        raise AssertionError("a queued request must not wait in epoll")

    monkeypatch.setattr(trio.lowlevel, "checkpoint", counting_checkpoint)
    monkeypatch.setattr(trio.lowlevel, "wait_readable", no_wait)
    a, b = socket.socketpair()
    try:
        b.send(b"x")  # stays queued: readable throughout

        async def main() -> None:
            ready = loop._Readiness(idle)
            for _ in range(loop.BUDGET):
                await ready.wait_readable(a.fileno())
            assert passes == 0  # served BUDGET times without the scheduler
            await ready.wait_readable(a.fileno())
            assert passes == 1  # budget spent: a scheduler pass first
            for _ in range(loop.BUDGET - 1):
                await ready.wait_readable(a.fileno())
            assert passes == 1

        trio.run(main)
    finally:
        a.close()
        b.close()


def test_spin_only_after_enough_close_requests() -> None:
    async def main() -> None:
        ready = loop._Readiness(idle)
        assert not ready._should_spin()  # a fresh (idle) server sleeps at once
        for _ in range(loop.SPIN_MIN_CLOSE):
            ready._record(True)
        assert ready._should_spin()
        for _ in range(loop.HISTORY - loop.SPIN_MIN_CLOSE + 1):
            ready._record(False)  # mostly far apart again: back to sleeping
        assert not ready._should_spin()

    trio.run(main)


def test_no_spin_while_another_task_is_runnable() -> None:
    async def main() -> None:
        ready = loop._Readiness(idle)
        for _ in range(loop.HISTORY):
            ready._record(True)
        async with trio.open_nursery() as n:
            n.start_soon(trio.sleep, 0)
            assert not ready._should_spin()  # that task would wait for the spin
        assert ready._should_spin()

    trio.run(main)


def test_idle_session_tasks_woken_by_the_lock_do_not_stop_a_spin() -> None:
    """pyfuse3 keeps idle session tasks parked on the read lock; each release wakes one,
    which only parks again. Counted as runnable work, they would keep every wait off the
    spin."""

    async def main() -> None:
        ready = loop._Readiness(idle)
        lock = loop.ReadLock(ready)
        for _ in range(loop.HISTORY):
            ready._record(True)
        await lock.acquire()
        async with trio.open_nursery() as n:
            n.start_soon(lock.acquire)  # an idle session task: parks on the held lock
            await trio.testing.wait_all_tasks_blocked()
            lock.release()  # wakes it: runnable, but only to take the lock
            assert trio.lowlevel.current_statistics().tasks_runnable == 1
            assert ready.woken == 1
            assert ready._should_spin()
        assert ready.woken == 0  # it ran and took the lock
        lock.release()

    trio.run(main)


def test_no_spin_on_a_busy_machine() -> None:
    async def main() -> None:
        ready = loop._Readiness(lambda: False)
        for _ in range(loop.HISTORY):
            ready._record(True)
        assert not ready._should_spin()

    trio.run(main)


def test_cpu_gate_counts_runnable_tasks(tmp_path: Path) -> None:
    f = tmp_path / "loadavg"
    f.write_text("")
    gate = loop.CpuGate(str(f))
    try:
        cpus = gate.cpus
        f.write_text(f"3.90 2.80 2.10 {cpus + 1}/115 4242\n")
        assert not gate()  # one more than the CPUs: someone would wait
        f.write_text(f"0.52 0.58 0.59 {cpus}/115 4242\n")
        assert gate()
        f.write_text("garbage\n")
        assert not gate()
    finally:
        gate.close()
    absent = loop.CpuGate(str(tmp_path / "absent"))
    assert not absent()  # no file, no spin
    real = loop.CpuGate()
    try:
        assert isinstance(real(), bool)  # this kernel's own file parses
        assert real._fd is not None
    finally:
        real.close()


def test_wait_sleeps_until_a_late_request_and_records_it_as_far() -> None:
    r, w = os.pipe()
    try:

        async def main() -> None:
            ready = loop._Readiness(idle)
            for _ in range(loop.HISTORY):
                ready._record(True)
            # arrives long after the spin gave up (the writer waits for the spin to end)
            gate = threading.Event()
            threading.Thread(target=lambda: (gate.wait(), os.write(w, b"x"))).start()
            async with trio.open_nursery() as n:

                async def release_after_spin() -> None:
                    await trio.sleep(4 * loop.SPIN_NS / 1e9)
                    gate.set()

                n.start_soon(release_after_spin)
                await ready.wait_readable(r)
            assert not ready._close & 1  # the last wait: not close

        trio.run(main)
    finally:
        os.close(r)
        os.close(w)


def test_install_puts_the_stand_in_under_pyfuse3() -> None:
    saved = pyfuse3.trio  # type: ignore[attr-defined]
    try:
        loop.install()
        st = pyfuse3.trio  # type: ignore[attr-defined]
        assert isinstance(st.Lock(), loop.ReadLock)
        assert st.open_nursery is trio.open_nursery
        assert st.ClosedResourceError is trio.ClosedResourceError
        assert st.lowlevel.current_trio_token is trio.lowlevel.current_trio_token
    finally:
        pyfuse3.trio = saved  # type: ignore[attr-defined]
