"""nsutil.seccomp: OCI ``linux.seccomp`` documents compiled by libseccomp and loaded for real.

Every filter is loaded in a forked child (a filter can never be removed from a process);
the child first enters a private mount namespace, so a mount the filter failed to stop
could not reach the host, and reports the outcome of its syscalls through a pipe.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydock.engine import seccomp as engine_seccomp
from pydock.engine import spec as engine_spec
from pydock.nsutil import seccomp
from pydock.nsutil import syscalls as sc

libc = ctypes.CDLL(None, use_errno=True)


def in_child(body: Callable[[], object]) -> object:
    """Run ``body`` in a forked child with a private mount namespace; return its result
    (JSON) or raise with the child's error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            sc.unshare(sc.lib.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.lib.MS_REC | sc.lib.MS_PRIVATE)
            out = {"ok": body()}
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = {"error": f"{type(e).__name__}: {e}"}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    res = json.loads(b"".join(chunks))
    if "error" in res:
        raise AssertionError(res["error"])
    return res["ok"]


def errno_of(fn: Callable[[], object]) -> int:
    try:
        fn()
    except OSError as e:
        return e.errno or -1
    return 0


def personality(persona: int) -> int:
    """personality(2) through libc: the return value, or -errno."""
    ret = libc.personality(ctypes.c_ulong(persona))
    return -ctypes.get_errno() if ret == -1 else ret


def docker_default(caps: list[str]) -> dict:
    return engine_seccomp.to_oci(engine_seccomp.load_profile(engine_seccomp.DEFAULT_PROFILE), caps)


def test_default_profile_denies_userns_and_mount_for_default_caps(scratch: Path):
    cfg = docker_default(engine_spec.DEFAULT_CAPS)
    target = scratch / "m"
    target.mkdir()

    def body():
        seccomp.load(cfg, cache_dir=None)
        pid = os.fork()  # clone(2) without namespace flags passes the masked rule
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        return {
            "unshare": errno_of(lambda: sc.unshare(sc.lib.CLONE_NEWUSER)),
            "mount": errno_of(lambda: sc.mount("tmpfs", str(target), "tmpfs", 0)),
            "fork_exit": os.waitstatus_to_exitcode(status),
            "getpid": os.getpid() > 0,
            "nnp": Path("/proc/self/status").read_text().split("NoNewPrivs:")[1].split()[0],
        }

    out = in_child(body)
    assert out["unshare"] == errno.EPERM  # the kernel itself would allow a user namespace
    assert out["mount"] == errno.EPERM  # root, but the profile grants mount only with SYS_ADMIN
    assert out["fork_exit"] == 7 and out["getpid"]
    assert out["nnp"] == "0"  # no_new_privs is the spec's business, never libseccomp's


def test_sys_admin_in_caps_opens_the_admin_syscalls():
    cfg = docker_default([*engine_spec.DEFAULT_CAPS, "CAP_SYS_ADMIN"])

    def body():
        seccomp.load(cfg, cache_dir=None)
        return errno_of(lambda: sc.unshare(sc.lib.CLONE_NEWUSER))

    assert in_child(body) == 0


def test_errno_ret_args_and_unknown_names():
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["no_such_syscall_at_all", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": errno.EACCES},
            # the same argument twice: ORed (one rule each), as runc does
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0x0008, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"}]},
        ],
    }  # fmt: skip

    def body():
        seccomp.load(cfg, cache_dir=None)
        return {
            "mkdir": errno_of(lambda: os.mkdir("/nonexistent-dir-for-seccomp-test")),
            "p8": personality(0x0008),
            "p20000": personality(0x20000),
            "query": personality(0xFFFFFFFF),
        }

    out = in_child(body)
    assert out["mkdir"] == errno.EACCES
    assert out["p8"] == -errno.EPERM and out["p20000"] == -errno.EPERM
    assert out["query"] >= 0


def test_masked_eq_condition_on_clone_flags():
    cfg = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM,
             "args": [{"index": 0, "value": sc.lib.CLONE_NEWUTS,
                       "valueTwo": sc.lib.CLONE_NEWUTS, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    }  # fmt: skip

    def body():
        seccomp.load(cfg, cache_dir=None)
        return {
            "uts": errno_of(lambda: sc.unshare(sc.lib.CLONE_NEWUTS)),
            "ipc": errno_of(lambda: sc.unshare(sc.lib.CLONE_NEWIPC)),
        }

    assert in_child(body) == {"uts": errno.EPERM, "ipc": 0}


def test_bad_documents_are_clear_errors():
    with pytest.raises(ValueError, match="unsupported action"):
        seccomp.compile_filter({"defaultAction": "SCMP_ACT_NOPE"})
    with pytest.raises(ValueError, match="unknown architecture"):
        seccomp.compile_filter(
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}
        )
    with pytest.raises(ValueError, match="unknown operator"):
        seccomp.compile_filter(
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                           "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}
        )  # fmt: skip
    with pytest.raises(ValueError, match="unsupported flag"):
        seccomp.flags({"flags": ["SECCOMP_FILTER_FLAG_MAGIC"]})


def test_program_cache_is_used_and_checked(scratch: Path, monkeypatch):
    cache = scratch / "cache"
    cfg = docker_default(engine_spec.DEFAULT_CAPS)
    compiled = []
    real = seccomp._compile_bpf
    monkeypatch.setattr(seccomp, "_compile_bpf", lambda c: compiled.append(1) or real(c))

    prog = seccomp.program(cfg, str(cache))
    assert len(compiled) == 1 and len(prog) % 8 == 0  # struct sock_filter is 8 bytes
    (entry,) = list(cache.iterdir())
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert entry.read_bytes().endswith(prog)

    again = seccomp.program(dict(cfg), str(cache))  # an equal document: from the cache
    assert again == prog and len(compiled) == 1

    # an entry whose key does not match byte for byte is never trusted
    entry.write_bytes(b"not the key" + prog)
    assert seccomp.program(dict(cfg), str(cache)) == prog and len(compiled) == 2

    # nor is a directory others can write to
    cache.chmod(0o777)
    try:
        seccomp.program(dict(cfg), str(cache))
        assert len(compiled) == 3
    finally:
        cache.chmod(0o700)


def test_default_profile_resolution_for_caps_and_arch():
    oci = docker_default(engine_spec.DEFAULT_CAPS)
    names = {n for r in oci["syscalls"] for n in r["names"]}
    unconditional = {n for r in oci["syscalls"] if not r.get("args") for n in r["names"]
                     if r["action"] == "SCMP_ACT_ALLOW"}  # fmt: skip
    assert {"read", "execve", "chroot"} <= unconditional  # chroot: CAP_SYS_CHROOT is default
    assert not {"mount", "unshare", "setns", "keyctl", "reboot", "swapon"} & unconditional
    assert "clone" in names and "clone" not in unconditional  # only the masked-flags rule
    clone3 = [r for r in oci["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 and clone3[0]["errnoRet"] == errno.ENOSYS
    if os.uname().machine == "x86_64":
        assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        assert "arch_prctl" in unconditional
    full = docker_default(list(engine_spec.DEFAULT_CAPS) + ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"])
    allowed = {n for r in full["syscalls"] if not r.get("args") for n in r["names"]
               if r["action"] == "SCMP_ACT_ALLOW"}  # fmt: skip
    assert {"mount", "unshare", "setns", "reboot", "clone", "clone3"} <= allowed
    assert not any(r["names"] == ["clone3"] and r["action"] != "SCMP_ACT_ALLOW"
                   for r in full["syscalls"])  # fmt: skip


# -- the binary-tree layout decides as the chain does ---------------------------------------

# classic BPF (linux/filter.h, linux/bpf_common.h): the subset libseccomp emits
_LD_W_ABS, _ALU_AND_K, _RET_K, _RET_A = 0x20, 0x54, 0x06, 0x16
_JMP = {0x05: None, 0x15: "jeq", 0x25: "jgt", 0x35: "jge", 0x45: "jset"}
_ST, _LDX_MEM, _LD_MEM, _TAX, _TXA = 0x02, 0x61, 0x60, 0x07, 0x87


def _run_bpf(prog: bytes, data: bytes) -> int:
    """What the kernel's seccomp filter returns for ``data`` (a struct seccomp_data)."""
    import struct

    insns = list(struct.iter_unpack("<HBBI", prog))
    a = x = pc = 0
    mem = [0] * 16
    for _ in range(100_000):
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == _LD_W_ABS:
            a = int.from_bytes(data[k : k + 4], "little")
        elif code == _ALU_AND_K:
            a &= k
        elif code == _RET_K:
            return k
        elif code == _RET_A:
            return a
        elif code == _ST:
            mem[k] = a
        elif code == _LD_MEM:
            a = mem[k]
        elif code == _LDX_MEM:
            x = mem[k]
        elif code == _TAX:
            x = a
        elif code == _TXA:
            a = x
        elif code in _JMP:
            op = _JMP[code]
            if op is None:  # ja
                pc += k
                continue
            hit = {"jeq": a == k, "jgt": a > k, "jge": a >= k, "jset": bool(a & k)}[op]
            pc += jt if hit else jf
        else:
            raise AssertionError(f"BPF opcode {code:#x} not modelled")
    raise AssertionError("BPF program did not return")


def _program(cfg: dict, optimize: int) -> bytes:
    ctx = seccomp.compile_filter(cfg)
    try:
        assert seccomp.lib.seccomp_attr_set(ctx, seccomp._ATTR_OPTIMIZE, optimize) == 0
        fd = os.memfd_create("test-bpf")
        try:
            seccomp.lib.seccomp_export_bpf(ctx, fd)
            return os.pread(fd, os.lseek(fd, 0, os.SEEK_CUR), 0)
        finally:
            os.close(fd)
    finally:
        seccomp.lib.seccomp_release(ctx)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86 ABIs enumerated below")
def test_binary_tree_program_decides_as_the_chain_does():
    """Docker's default profile compiled both ways gives the same verdict for every
    syscall number of the three x86 ABIs, with the argument values its rules test."""
    import struct

    cfg = docker_default(engine_spec.DEFAULT_CAPS)
    chain, tree = _program(cfg, 1), _program(cfg, 2)
    assert chain != tree
    audit = {"x86_64": 0xC000003E, "i386": 0x40000003}
    values = {0, 1, 0x10000000, 0x7E020000, 0x20000, 0x8, 0xFFFFFFFF}  # clone flags, personality
    for rule in cfg["syscalls"]:
        for arg in rule.get("args") or []:
            values |= {arg["value"] & 0xFFFFFFFF, (arg.get("valueTwo") or 0) & 0xFFFFFFFF}
    x32 = range(0x40000000, 0x40000000 + 600)  # x32 numbers, under the x86_64 audit arch
    verdicts = set()
    for arch, token in audit.items():
        numbers = [*range(0, 600), *(x32 if arch == "x86_64" else ())]
        for nr in numbers:
            for v in values:
                data = struct.pack("<IIQ6Q", nr, token, 0, *[v] * 6)
                verdict = _run_bpf(chain, data)
                assert _run_bpf(tree, data) == verdict, (arch, nr, v)
                verdicts.add(verdict)
    allow, eperm = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, RET_ERRNO|EPERM
    assert {allow, eperm} <= verdicts  # both outcomes were exercised
