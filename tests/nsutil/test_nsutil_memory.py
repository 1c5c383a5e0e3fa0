"""nsutil.memory: a forked process takes its copy-on-write pages ahead, by the kernel's count.

Each check runs in a forked child (the test process keeps its own memory shared as it
was) and reports the child's minor-fault count around its writes (getrusage(2)): a fault
count, not a time, so the result does not depend on the machine's load.
"""

from __future__ import annotations

import mmap
import os
import resource

from pydock.nsutil import memory

PAGES = 2048  # 8 MiB of 4 KiB pages, touched by the parent before the fork


def _in_child(body) -> int:
    """Run ``body()`` (returning a small int) in a forked child; return what it returned."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, str(body()).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        return int(os.read(r, 64))
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def _faults_writing(buf: bytearray) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(0, len(buf), mmap.PAGESIZE):
        buf[i] = 7
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_writes_after_owning_do_not_fault():
    buf = bytearray(b"\1" * (PAGES * mmap.PAGESIZE))  # the parent's pages, all present
    shared = _in_child(lambda: _faults_writing(buf))
    owned = _in_child(lambda: _faults_writing(buf) if memory.own_private_memory() else -1)
    assert shared >= PAGES  # copy-on-write: every page written is a fault
    assert 0 <= owned < PAGES // 20  # owned ahead: the writes find their pages
    assert buf[0] == 1  # the children's copies were their own


def test_content_is_kept():
    buf = bytearray(os.urandom(PAGES * mmap.PAGESIZE))
    digest = hash(bytes(buf))
    assert _in_child(lambda: int(memory.own_private_memory() > 0 and hash(bytes(buf)) == digest))


def test_reserved_address_space_is_not_allocated():
    # A private writable mapping larger than MAX_MAPPING stays unpopulated.
    size = memory.MAX_MAPPING * 2
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        area[0] = 1  # one page present

        def rss_of_area() -> int:
            memory.own_private_memory()
            with open("/proc/self/smaps", "rb") as f:
                blocks = f.read().split(b"\n")
            # find the mapping of exactly `size` bytes and return its Rss in KiB
            for i, line in enumerate(blocks):
                head = line.split(None, 1)
                if head and b"-" in head[0] and not head[0].endswith(b":"):
                    lo, _, hi = head[0].partition(b"-")
                    try:
                        if int(hi, 16) - int(lo, 16) != size:
                            continue
                    except ValueError:
                        continue
                    for follow in blocks[i + 1 : i + 25]:
                        if follow.startswith(b"Rss:"):
                            return int(follow.split()[1])
            return -1

        rss_kib = _in_child(rss_of_area)
        assert 0 <= rss_kib < 1024  # one page, not 128 MiB
    finally:
        area.close()
