"""cffi build script (API mode): compiled at install time into pydock.nsutil._native."""

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int unshare(int flags);
    int setns(int fd, int nstype);
    """
)
ffibuilder.set_source(
    "pydock.nsutil._native",
    """
    #define _GNU_SOURCE
    #include <sched.h>
    """,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
