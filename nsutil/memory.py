"""Own a forked process's memory ahead of time, so its first writes do not fault.

A forked process shares its parent's pages copy-on-write: its first write to each page
traps, and the kernel copies the page (fork(2)). Python writes to nearly every object it
touches (reference counts), so a forked Python that runs a code path pays one fault per
page that path reaches. On this project's machines a copy-on-write fault costs ~3.7 µs;
the start worker's part of a served ``run`` touched ~1,200 pages (4.4 ms of CPU) and the
held container init ~360 (1.1 ms). Both processes wait idle before their run, so they
take their copies while idle instead (madvise(2) MADV_POPULATE_WRITE, Linux 5.14): the run
then writes to pages that are already its own. The price is memory: the process keeps a
private copy of every writable page it maps (~25 MB for a pydock worker).
"""

from __future__ import annotations

from pydock.nsutil._native import ffi, lib

#: a writable private mapping larger than this is address space reserved for later (an
#: allocator's arena, a thread stack), not pages the process uses: populating it would
#: allocate all of it
MAX_MAPPING = 64 << 20

#: kernel-provided mappings that are not ordinary memory
_SPECIAL = ("[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]")


def own_private_memory(maps: str = "/proc/self/maps") -> int:
    """Populate every private writable mapping of this process for writing (each shared
    page copied now); returns the bytes populated. Best effort: a kernel without
    MADV_POPULATE_WRITE, or a mapping that cannot be populated, is left as it is."""
    done = 0
    with open(maps, "rb") as f:
        lines = f.read().splitlines()
    for line in lines:
        fields = line.split(None, 5)
        # address perms offset dev inode [path]; "rw-p": readable, writable, private
        if len(fields) < 5 or fields[1][1:2] != b"w" or fields[1][3:4] != b"p":
            continue
        if len(fields) == 6 and fields[5].strip().decode(errors="replace") in _SPECIAL:
            continue
        lo, _, hi = fields[0].partition(b"-")
        start, end = int(lo, 16), int(hi, 16)
        if end - start > MAX_MAPPING:
            continue
        if lib.madvise(ffi.cast("void *", start), end - start, lib.MADV_POPULATE_WRITE) == 0:
            done += end - start
    return done
