"""cffi build script (API mode): compiled at install time into pydock.nsutil._native.

Binds the kernel calls Python's ``os`` module lacks (namespaces, mounts, the new mount API,
clone3, capabilities, prctl, and the bpf(2) commands cgroup v2 device filters need).
Everything goes through ``syscall(2)`` with our own struct definitions where glibc
wrappers or uapi headers may be missing or clash (glibc's <sys/mount.h> and <linux/mount.h>
cannot both be included before glibc 2.37), so the module builds on any glibc >= 2.28 and
any kernel headers; the kernel decides at run time what works.

Python sees ``pd_*`` helpers (C wrappers) plus libc's ``mount``/``umount2``/``unshare``/...
Errors come back as -1 with ``ffi.errno`` set; nsutil.syscalls turns them into OSError.
"""

from cffi import FFI

ffibuilder = FFI()

# Constants are declared with "..." so cffi reads their values from the C side at build time
# (API mode); the C preamble below provides a fallback #define for each one that older
# headers lack.
_CONSTANT_NAMES = """
CLONE_VM CLONE_FS CLONE_FILES CLONE_SIGHAND CLONE_PIDFD CLONE_PTRACE CLONE_VFORK CLONE_PARENT
CLONE_THREAD CLONE_NEWNS CLONE_SYSVSEM CLONE_SETTLS CLONE_PARENT_SETTID CLONE_CHILD_CLEARTID
CLONE_UNTRACED CLONE_CHILD_SETTID CLONE_NEWCGROUP CLONE_NEWUTS CLONE_NEWIPC CLONE_NEWUSER
CLONE_NEWPID CLONE_NEWNET CLONE_IO CLONE_NEWTIME CLONE_CLEAR_SIGHAND CLONE_INTO_CGROUP
MS_RDONLY MS_NOSUID MS_NODEV MS_NOEXEC MS_SYNCHRONOUS MS_REMOUNT MS_MANDLOCK MS_DIRSYNC
MS_NOSYMFOLLOW MS_NOATIME MS_NODIRATIME MS_BIND MS_MOVE MS_REC MS_SILENT MS_POSIXACL
MS_UNBINDABLE MS_PRIVATE MS_SLAVE MS_SHARED MS_RELATIME MS_KERNMOUNT MS_I_VERSION
MS_STRICTATIME MS_LAZYTIME MS_MGC_VAL
MNT_FORCE MNT_DETACH MNT_EXPIRE UMOUNT_NOFOLLOW
FSOPEN_CLOEXEC FSPICK_CLOEXEC FSPICK_SYMLINK_NOFOLLOW FSPICK_NO_AUTOMOUNT FSPICK_EMPTY_PATH
FSCONFIG_SET_FLAG FSCONFIG_SET_STRING FSCONFIG_SET_BINARY FSCONFIG_SET_PATH
FSCONFIG_SET_PATH_EMPTY FSCONFIG_SET_FD FSCONFIG_CMD_CREATE FSCONFIG_CMD_RECONFIGURE
FSCONFIG_CMD_CREATE_EXCL
FSMOUNT_CLOEXEC
MOVE_MOUNT_F_SYMLINKS MOVE_MOUNT_F_AUTOMOUNTS MOVE_MOUNT_F_EMPTY_PATH MOVE_MOUNT_T_SYMLINKS
MOVE_MOUNT_T_AUTOMOUNTS MOVE_MOUNT_T_EMPTY_PATH MOVE_MOUNT_SET_GROUP MOVE_MOUNT_BENEATH
OPEN_TREE_CLONE OPEN_TREE_CLOEXEC
AT_FDCWD AT_EMPTY_PATH AT_SYMLINK_NOFOLLOW AT_NO_AUTOMOUNT AT_RECURSIVE
MOUNT_ATTR_RDONLY MOUNT_ATTR_NOSUID MOUNT_ATTR_NODEV MOUNT_ATTR_NOEXEC MOUNT_ATTR__ATIME
MOUNT_ATTR_RELATIME MOUNT_ATTR_NOATIME MOUNT_ATTR_STRICTATIME MOUNT_ATTR_NODIRATIME
MOUNT_ATTR_IDMAP MOUNT_ATTR_NOSYMFOLLOW MOUNT_ATTR_SIZE_VER0
PR_SET_PDEATHSIG PR_GET_PDEATHSIG PR_GET_DUMPABLE PR_SET_DUMPABLE PR_SET_NAME PR_GET_NAME
PR_SET_KEEPCAPS PR_GET_KEEPCAPS PR_CAPBSET_READ PR_CAPBSET_DROP PR_SET_SECUREBITS
PR_GET_SECUREBITS PR_SET_CHILD_SUBREAPER PR_GET_CHILD_SUBREAPER PR_SET_NO_NEW_PRIVS
PR_GET_NO_NEW_PRIVS PR_CAP_AMBIENT PR_CAP_AMBIENT_IS_SET PR_CAP_AMBIENT_RAISE
PR_CAP_AMBIENT_LOWER PR_CAP_AMBIENT_CLEAR_ALL
LINUX_CAPABILITY_VERSION_3 LINUX_CAPABILITY_U32S_3
TIOCGPTN TIOCSPTLCK TIOCGPTPEER TIOCSCTTY
MADV_POPULATE_WRITE
PD_BPF_PROG_TYPE_CGROUP_DEVICE PD_BPF_CGROUP_DEVICE PD_BPF_F_ALLOW_MULTI
"""

_CDEF = """
struct pd_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

struct pd_cap_header {
    uint32_t version;
    int pid;
};

struct pd_cap_data {
    uint32_t effective;
    uint32_t permitted;
    uint32_t inheritable;
};

int unshare(int flags);
int setns(int fd, int nstype);
int mount(const char *source, const char *target, const char *fstype,
          unsigned long flags, const void *data);
int umount2(const char *target, int flags);
int sethostname(const char *name, size_t len);
int setdomainname(const char *name, size_t len);

int pd_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
             unsigned long a5);
int pd_pivot_root(const char *new_root, const char *put_old);
int pd_fsopen(const char *fsname, unsigned int flags);
int pd_fspick(int dfd, const char *path, unsigned int flags);
int pd_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux);
int pd_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
int pd_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                  unsigned int flags);
int pd_open_tree(int dfd, const char *path, unsigned int flags);
int pd_mount_setattr(int dfd, const char *path, unsigned int flags,
                     struct pd_mount_attr *attr, size_t size);
int madvise(void *addr, size_t length, int advice);
int pd_capget(struct pd_cap_header *hdr, struct pd_cap_data *data);
int pd_capset(struct pd_cap_header *hdr, const struct pd_cap_data *data);
long pd_clone3(uint64_t flags, uint64_t exit_signal, int cgroup_fd, int *pidfd_out);
int pd_bpf_prog_load(uint32_t prog_type, const void *insns, uint32_t insn_cnt,
                     const char *license, const char *name, char *log_buf, uint32_t log_size);
int pd_bpf_prog_attach(int target_fd, int prog_fd, uint32_t attach_type, uint32_t flags);
int pd_bpf_prog_detach(int target_fd, int prog_fd, uint32_t attach_type);
int pd_bpf_prog_query(int target_fd, uint32_t attach_type, uint32_t *prog_ids,
                      uint32_t *prog_cnt, uint32_t *attach_flags);
int pd_bpf_prog_get_fd_by_id(uint32_t prog_id);
"""

_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Limited-API builds hide these (cffi defines Py_LIMITED_API without a version), but they
   are exported by every CPython >= 3.7; they are what os.fork() calls around fork(). */
PyAPI_FUNC(void) PyOS_BeforeFork(void);
PyAPI_FUNC(void) PyOS_AfterFork_Parent(void);
PyAPI_FUNC(void) PyOS_AfterFork_Child(void);

/* madvise(2): Linux 5.14; older headers lack it (the kernel then answers EINVAL) */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* ---- syscall numbers (identical on all architectures for these new-style calls) ---- */
#ifndef SYS_pivot_root
#define SYS_pivot_root __NR_pivot_root
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

/* ---- clone flags (include/uapi/linux/sched.h) ---- */
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* ---- mount(2) / umount2(2) ---- */
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef MS_LAZYTIME
#define MS_LAZYTIME (1 << 25)
#endif
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 8
#endif

/* ---- new mount API (include/uapi/linux/mount.h) ---- */
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSPICK_CLOEXEC
#define FSPICK_CLOEXEC 0x00000001
#define FSPICK_SYMLINK_NOFOLLOW 0x00000002
#define FSPICK_NO_AUTOMOUNT 0x00000004
#define FSPICK_EMPTY_PATH 0x00000008
#endif
#ifndef FSCONFIG_SET_FLAG
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_SET_BINARY 2
#define FSCONFIG_SET_PATH 3
#define FSCONFIG_SET_PATH_EMPTY 4
#define FSCONFIG_SET_FD 5
#define FSCONFIG_CMD_CREATE 6
#define FSCONFIG_CMD_RECONFIGURE 7
#endif
#ifndef FSCONFIG_CMD_CREATE_EXCL
#define FSCONFIG_CMD_CREATE_EXCL 8 /* Linux 6.6 */
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOVE_MOUNT_F_SYMLINKS
#define MOVE_MOUNT_F_SYMLINKS 0x00000001
#define MOVE_MOUNT_F_AUTOMOUNTS 0x00000002
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_SYMLINKS 0x00000010
#define MOVE_MOUNT_T_AUTOMOUNTS 0x00000020
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOVE_MOUNT_SET_GROUP
#define MOVE_MOUNT_SET_GROUP 0x00000100
#endif
#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200 /* Linux 6.5 */
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef AT_NO_AUTOMOUNT
#define AT_NO_AUTOMOUNT 0x800
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#define MOUNT_ATTR__ATIME 0x00000070
#define MOUNT_ATTR_RELATIME 0x00000000
#define MOUNT_ATTR_NOATIME 0x00000010
#define MOUNT_ATTR_STRICTATIME 0x00000020
#define MOUNT_ATTR_NODIRATIME 0x00000080
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef MOUNT_ATTR_NOSYMFOLLOW
#define MOUNT_ATTR_NOSYMFOLLOW 0x00200000
#endif
#ifndef MOUNT_ATTR_SIZE_VER0
#define MOUNT_ATTR_SIZE_VER0 32
#endif

/* ---- prctl (include/uapi/linux/prctl.h) ---- */
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#define PR_GET_NO_NEW_PRIVS 39
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_LOWER 3
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* ---- ptys (asm-generic/ioctls.h; the numbers differ per architecture) ---- */
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41) /* Linux 4.13 */
#endif

/* ---- bpf(2) (include/uapi/linux/bpf.h), without that header: only what cgroup device
   programs use. Every command takes a zeroed 512-byte attr: the kernel accepts a larger
   attr whose tail is zero, and BPF_PROG_QUERY writes back fields (revision, 6.6+) beyond
   the ones named here, which must land inside our buffer. ---- */
#ifndef SYS_bpf
#define SYS_bpf __NR_bpf
#endif
#define PD_BPF_PROG_LOAD 5
#define PD_BPF_PROG_ATTACH 8
#define PD_BPF_PROG_DETACH 9
#define PD_BPF_PROG_GET_FD_BY_ID 13
#define PD_BPF_PROG_QUERY 16
#define PD_BPF_PROG_TYPE_CGROUP_DEVICE 15
#define PD_BPF_CGROUP_DEVICE 6
#define PD_BPF_F_ALLOW_MULTI 2

union pd_bpf_attr {
    struct { /* BPF_PROG_LOAD */
        uint32_t prog_type;
        uint32_t insn_cnt;
        uint64_t insns;
        uint64_t license;
        uint32_t log_level;
        uint32_t log_size;
        uint64_t log_buf;
        uint32_t kern_version;
        uint32_t prog_flags;
        char prog_name[16];
    } load;
    struct { /* BPF_PROG_ATTACH / BPF_PROG_DETACH */
        uint32_t target_fd;
        uint32_t attach_bpf_fd;
        uint32_t attach_type;
        uint32_t attach_flags;
    } attach;
    struct { /* BPF_PROG_QUERY */
        uint32_t target_fd;
        uint32_t attach_type;
        uint32_t query_flags;
        uint32_t attach_flags;
        uint64_t prog_ids;
        uint32_t prog_cnt;
    } query;
    struct { /* BPF_PROG_GET_FD_BY_ID */
        uint32_t prog_id;
        uint32_t next_id;
        uint32_t open_flags;
    } get_id;
    unsigned char raw[512];
};

static int pd_bpf(int cmd, union pd_bpf_attr *attr)
{
    return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int pd_bpf_prog_load(uint32_t prog_type, const void *insns, uint32_t insn_cnt,
                            const char *license, const char *name, char *log_buf,
                            uint32_t log_size)
{
    union pd_bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.load.prog_type = prog_type;
    attr.load.insn_cnt = insn_cnt;
    attr.load.insns = (uint64_t)(uintptr_t)insns;
    attr.load.license = (uint64_t)(uintptr_t)license;
    if (log_buf != NULL && log_size > 0) {
        attr.load.log_level = 1;
        attr.load.log_size = log_size;
        attr.load.log_buf = (uint64_t)(uintptr_t)log_buf;
    }
    strncpy(attr.load.prog_name, name, sizeof(attr.load.prog_name) - 1);
    return pd_bpf(PD_BPF_PROG_LOAD, &attr);
}

static int pd_bpf_prog_attach(int target_fd, int prog_fd, uint32_t attach_type, uint32_t flags)
{
    union pd_bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attach.target_fd = (uint32_t)target_fd;
    attr.attach.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach.attach_type = attach_type;
    attr.attach.attach_flags = flags;
    return pd_bpf(PD_BPF_PROG_ATTACH, &attr);
}

static int pd_bpf_prog_detach(int target_fd, int prog_fd, uint32_t attach_type)
{
    union pd_bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attach.target_fd = (uint32_t)target_fd;
    attr.attach.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach.attach_type = attach_type;
    return pd_bpf(PD_BPF_PROG_DETACH, &attr);
}

static int pd_bpf_prog_query(int target_fd, uint32_t attach_type, uint32_t *prog_ids,
                             uint32_t *prog_cnt, uint32_t *attach_flags)
{
    union pd_bpf_attr attr;
    int rc;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (uint32_t)target_fd;
    attr.query.attach_type = attach_type;
    attr.query.prog_ids = (uint64_t)(uintptr_t)prog_ids;
    attr.query.prog_cnt = *prog_cnt;
    rc = pd_bpf(PD_BPF_PROG_QUERY, &attr);
    /* also on ENOSPC, when prog_cnt says how many there are */
    *prog_cnt = attr.query.prog_cnt;
    *attach_flags = attr.query.attach_flags;
    return rc;
}

static int pd_bpf_prog_get_fd_by_id(uint32_t prog_id)
{
    union pd_bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.get_id.prog_id = prog_id;
    return pd_bpf(PD_BPF_PROG_GET_FD_BY_ID, &attr);
}

/* ---- capabilities (include/uapi/linux/capability.h), without that header ---- */
#define LINUX_CAPABILITY_VERSION_3 0x20080522
#define LINUX_CAPABILITY_U32S_3 2

struct pd_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

struct pd_cap_header {
    uint32_t version;
    int pid;
};

struct pd_cap_data {
    uint32_t effective;
    uint32_t permitted;
    uint32_t inheritable;
};

/* struct clone_args, version 2 (CLONE_ARGS_SIZE_VER2 = 88 bytes, adds .cgroup). */
struct pd_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

static int pd_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
                    unsigned long a5)
{
    return prctl(option, a2, a3, a4, a5);
}

static int pd_pivot_root(const char *new_root, const char *put_old)
{
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

static int pd_fsopen(const char *fsname, unsigned int flags)
{
    return (int)syscall(SYS_fsopen, fsname, flags);
}

static int pd_fspick(int dfd, const char *path, unsigned int flags)
{
    return (int)syscall(SYS_fspick, dfd, path, flags);
}

static int pd_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

static int pd_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}

static int pd_move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path,
                         unsigned int flags)
{
    return (int)syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags);
}

static int pd_open_tree(int dfd, const char *path, unsigned int flags)
{
    return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static int pd_mount_setattr(int dfd, const char *path, unsigned int flags,
                            struct pd_mount_attr *attr, size_t size)
{
    return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, size);
}

static int pd_capget(struct pd_cap_header *hdr, struct pd_cap_data *data)
{
    return (int)syscall(SYS_capget, hdr, data);
}

static int pd_capset(struct pd_cap_header *hdr, const struct pd_cap_data *data)
{
    return (int)syscall(SYS_capset, hdr, data);
}

/* fork()-like clone3: no new stack, so the child returns here like fork's child does.
   cffi released the GIL around this call; take it back so we can run CPython's own fork
   hooks (os.register_at_fork handlers, lock re-initialisation) exactly like os.fork(). */
static long pd_clone3(uint64_t flags, uint64_t exit_signal, int cgroup_fd, int *pidfd_out)
{
    struct pd_clone_args args;
    long ret;
    int saved_errno;
    PyGILState_STATE gil;

    if (flags & (CLONE_VM | CLONE_THREAD | CLONE_SETTLS | CLONE_VFORK | CLONE_SIGHAND)) {
        errno = EINVAL; /* would share the interpreter's memory or need a new stack */
        return -1;
    }
    memset(&args, 0, sizeof(args));
    args.flags = flags;
    args.exit_signal = exit_signal;
    if (flags & CLONE_PIDFD)
        args.pidfd = (uint64_t)(uintptr_t)pidfd_out;
    if (flags & CLONE_INTO_CGROUP)
        args.cgroup = (uint64_t)cgroup_fd;

    gil = PyGILState_Ensure();
    PyOS_BeforeFork();
    ret = syscall(SYS_clone3, &args, sizeof(args));
    saved_errno = errno;
    if (ret == 0)
        PyOS_AfterFork_Child();
    else
        PyOS_AfterFork_Parent();
    PyGILState_Release(gil);
    errno = saved_errno;
    return ret;
}
"""

ffibuilder.cdef(
    "\n".join(f"#define {name} ..." for name in _CONSTANT_NAMES.split())
    + "\n#define SYS_clone3 ...\n#define SYS_mount_setattr ...\n"
    + _CDEF
)
ffibuilder.set_source("pydock.nsutil._native", _SOURCE)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
