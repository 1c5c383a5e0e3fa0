"""cffi build script (API mode): compiled at install time into pydock.nsutil._seccomp.

Binds the part of libseccomp (seccomp(3), libseccomp-dev) that turns an OCI
``linux.seccomp`` document into a BPF filter and loads it: filter contexts, architectures,
syscall-name resolution, conditional rules and attributes. A separate module from _native
so that only it links against libseccomp.so. SCMP_ACT_ERRNO/TRACE are macros, hence the
two small wrappers; ``pd_load_bpf`` installs an already compiled program with seccomp(2)
(seccomp(2) SECCOMP_SET_MODE_FILTER), which is what seccomp_load does after compiling.
"""

from cffi import FFI

ffibuilder = FFI()

_CONSTANTS = """
SCMP_ACT_KILL_PROCESS SCMP_ACT_KILL_THREAD SCMP_ACT_TRAP SCMP_ACT_LOG SCMP_ACT_ALLOW
SCMP_ACT_NOTIFY SCMP_ARCH_NATIVE
SECCOMP_FILTER_FLAG_TSYNC SECCOMP_FILTER_FLAG_LOG SECCOMP_FILTER_FLAG_SPEC_ALLOW
"""

_CDEF = """
typedef void *scmp_filter_ctx;
typedef uint64_t scmp_datum_t;

enum scmp_filter_attr {
    SCMP_FLTATR_ACT_DEFAULT = 1,
    SCMP_FLTATR_ACT_BADARCH = 2,
    SCMP_FLTATR_CTL_NNP = 3,
    SCMP_FLTATR_CTL_TSYNC = 4,
    SCMP_FLTATR_API_TSKIP = 5,
    SCMP_FLTATR_CTL_LOG = 6,
    SCMP_FLTATR_CTL_SSB = 7,
    ...
};

enum scmp_compare {
    SCMP_CMP_NE = 1,
    SCMP_CMP_LT = 2,
    SCMP_CMP_LE = 3,
    SCMP_CMP_EQ = 4,
    SCMP_CMP_GE = 5,
    SCMP_CMP_GT = 6,
    SCMP_CMP_MASKED_EQ = 7,
    ...
};

struct scmp_arg_cmp {
    unsigned int arg;
    enum scmp_compare op;
    scmp_datum_t datum_a;
    scmp_datum_t datum_b;
};

scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_arch_exist(const scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
int seccomp_load(const scmp_filter_ctx ctx);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);

struct scmp_version {
    unsigned int major;
    unsigned int minor;
    unsigned int micro;
};
const struct scmp_version *seccomp_version(void);

uint32_t pd_act_errno(uint32_t err);
int pd_load_bpf(const char *prog, size_t len, unsigned int flags);
uint32_t pd_act_trace(uint32_t msg);
"""

_SOURCE = r"""
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <seccomp.h>

#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif

/* seccomp(2): SECCOMP_SET_MODE_FILTER with a program exported by seccomp_export_bpf. */
static int pd_load_bpf(const char *prog, size_t len, unsigned int flags)
{
    struct sock_fprog fprog;
    if (len == 0 || len % sizeof(struct sock_filter) != 0 ||
        len / sizeof(struct sock_filter) > 0xffff) {
        errno = EINVAL;
        return -1;
    }
    fprog.len = (unsigned short)(len / sizeof(struct sock_filter));
    fprog.filter = (struct sock_filter *)prog;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
}

static uint32_t pd_act_errno(uint32_t err) { return SCMP_ACT_ERRNO(err); }
static uint32_t pd_act_trace(uint32_t msg) { return SCMP_ACT_TRACE(msg); }
"""

ffibuilder.cdef("\n".join(f"#define {name} ..." for name in _CONSTANTS.split()) + "\n" + _CDEF)
ffibuilder.set_source("pydock.nsutil._seccomp", _SOURCE, libraries=["seccomp"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
