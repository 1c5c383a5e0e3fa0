"""cgroup v2 device rules: OCI ``linux.resources.devices`` as a BPF_PROG_TYPE_CGROUP_DEVICE
program, loaded with bpf(2) and attached to the container's cgroup.

cgroup v2 has no devices.allow/deny files: the kernel asks every BPF_CGROUP_DEVICE program
attached along the cgroup's path whether an open(2) or mknod(2) of a device node may go on
(cgroup-v2.rst "Device controller"; the program returns 1 to allow, 0 to deny, and with
BPF_F_ALLOW_MULTI every program on the path must allow). The OCI rules are evaluated in
order with the last matching rule deciding (v1's devices.allow/deny semantics, as runc and
crun apply them), so the program tests the rules in reverse and the first match returns;
no match denies, as crun's filter does.

The program's input is struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h):
``access_type`` (type in the low 16 bits: BPF_DEVCG_DEV_BLOCK 1, _CHAR 2; access in the high
16 bits: BPF_DEVCG_ACC_MKNOD 1, _READ 2, _WRITE 4), ``major``, ``minor``. A rule matches
when its type is "a" or equal, its major and minor are wildcards or equal, and every
requested access is among the rule's ("rw" matches an O_RDWR open, not an mknod).

Attaching follows runc's order: the new program goes on with BPF_F_ALLOW_MULTI first, then
the ones it replaces come off (BPF_PROG_QUERY + BPF_PROG_DETACH), so an update never opens
a window with no filter. Removing the cgroup releases its programs (the kernel detaches
them in cgroup_bpf_release), so destroy() has nothing to do here.
"""

from __future__ import annotations

import os
import struct
import sys

from .errors import CgroupError
from .resources import is_all_devices

# eBPF opcodes (include/uapi/linux/bpf.h, bpf_common.h): class | op | source.
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K (32-bit)
_ALU_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_ALU_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
_ALU_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_JMP_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JMP_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95  # BPF_JMP | BPF_EXIT

_R0, _R1, _R2, _R3, _R4, _R5 = range(6)
_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_*
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_*
_ALL_ACCESS = 7

# Runs no GPL-only helper (it calls no helper at all), so any license string loads; runc
# uses "Apache" too.
LICENSE = "Apache"
PROG_NAME = "pydock_devices"  # bpftool's name for it (at most 15 characters)

_LITTLE = sys.byteorder == "little"
_INSN = struct.Struct("<BBhi" if _LITTLE else ">BBhi")


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # struct bpf_insn: dst_reg:4 then src_reg:4, so the byte's nibbles follow the host's
    # bit-field order.
    regs = (src << 4 | dst) if _LITTLE else (dst << 4 | src)
    return _INSN.pack(code, regs, off, imm)


# R2 = type, R3 = access, R4 = major, R5 = minor (R1 points at the context on entry).
_PROLOGUE = b"".join(
    (
        _insn(_LDX_MEM_W, _R2, _R1, 0),
        _insn(_ALU_AND_K, _R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, _R3, _R1, 0),
        _insn(_ALU_RSH_K, _R3, imm=16),
        _insn(_LDX_MEM_W, _R4, _R1, 4),
        _insn(_LDX_MEM_W, _R5, _R1, 8),
    )
)


def _number(rule: dict, key: str) -> int | None:
    """A rule's major or minor: None for the wildcard (absent, null or -1)."""
    v = rule.get(key)
    if v is None or v == -1:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 32:
        raise CgroupError(f"devices: invalid {key} {v!r} in rule {rule!r}")
    return v


def _access_bits(rule: dict) -> int:
    access = rule.get("access") or "rwm"
    bits = 0
    for ch in access:
        if ch not in _ACCESS:
            raise CgroupError(f"devices: invalid access {access!r} (want letters of rwm)")
        bits |= _ACCESS[ch]
    return bits


def _block(rule: dict) -> tuple[bytes, bool]:
    """One rule's test-and-return; True when it matches every request (nothing after it
    can run: the verifier refuses unreachable instructions)."""
    kind = rule.get("type") or "a"
    if kind != "a" and kind not in _TYPES:
        raise CgroupError(f"devices: invalid type {kind!r} (want a, b or c)")
    access = _access_bits(rule)
    major, minor = _number(rule, "major"), _number(rule, "minor")
    tests: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm) of each skip
    pre: list[bytes | None] = []
    if kind != "a":
        pre.append(None)
        tests.append((_JMP_JNE_K, _R2, 0, _TYPES[kind]))
    if access != _ALL_ACCESS:
        # (requested & rule) != requested: some requested access is not in the rule
        pre.append(_insn(_ALU_MOV_X, _R1, _R3) + _insn(_ALU_AND_K, _R1, imm=access))
        tests.append((_JMP_JNE_X, _R1, _R3, 0))
    if major is not None:
        pre.append(None)
        tests.append((_JMP_JNE_K, _R4, 0, major))
    if minor is not None:
        pre.append(None)
        tests.append((_JMP_JNE_K, _R5, 0, minor))
    verdict = _insn(_ALU_MOV_K, _R0, imm=1 if rule.get("allow") else 0) + _insn(_EXIT)
    # Lay out back to front so each skip knows how many instructions remain in the block.
    out = verdict
    for setup, (code, dst, src, imm) in zip(reversed(pre), reversed(tests), strict=True):
        out = _insn(code, dst, src, len(out) // 8, imm) + out
        if setup is not None:
            out = setup + out
    return out, not tests


def compile_rules(rules: list[dict]) -> bytes:
    """The program (struct bpf_insn records) for OCI device rules, last match winning."""
    parts = [_PROLOGUE]
    for rule in reversed(rules):
        code, catch_all = _block(rule)
        parts.append(code)
        if catch_all:
            return b"".join(parts)
    # no rule matched: deny
    parts.append(_insn(_ALU_MOV_K, _R0, imm=0) + _insn(_EXIT))
    return b"".join(parts)


def needs_filter(rules: list[dict]) -> bool:
    """False when the rules end up allowing every device (nothing to filter): the last
    catch-all rule allows and no rule after it denies anything."""
    if not rules:
        return False
    for rule in reversed(rules):
        if not rule.get("allow"):
            return True
        if is_all_devices(rule):
            return False
    return True


def apply(cgroup_dir: str, rules: list[dict]) -> None:
    """Make ``rules`` the device policy of the v2 cgroup at ``cgroup_dir``: attach their
    program and take off the ones attached before (only this cgroup's own programs)."""
    program = compile_rules(rules) if needs_filter(rules) else None
    from pydock.nsutil import syscalls as sc

    dfd = _open(cgroup_dir)
    try:
        old = sc.bpf_prog_query(dfd, sc.BPF_CGROUP_DEVICE)
        if program is not None:
            pfd = sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, program, LICENSE, PROG_NAME)
            try:
                sc.bpf_prog_attach(dfd, pfd, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_MULTI)
            finally:
                os.close(pfd)
        for prog_id in old:
            try:
                pfd = sc.bpf_prog_get_fd_by_id(prog_id)
            except FileNotFoundError:
                continue  # released meanwhile
            try:
                sc.bpf_prog_detach(dfd, pfd, sc.BPF_CGROUP_DEVICE)
            finally:
                os.close(pfd)
    except OSError as e:
        raise CgroupError(f"devices: {cgroup_dir}: {e.strerror}") from e
    finally:
        os.close(dfd)


def attached(cgroup_dir: str) -> list[int]:
    """Ids of the device programs attached to the cgroup at ``cgroup_dir`` itself."""
    from pydock.nsutil import syscalls as sc

    dfd = _open(cgroup_dir)
    try:
        return sc.bpf_prog_query(dfd, sc.BPF_CGROUP_DEVICE)
    except OSError as e:
        raise CgroupError(f"devices: {cgroup_dir}: {e.strerror}") from e
    finally:
        os.close(dfd)


def _open(cgroup_dir: str) -> int:
    try:
        return os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"devices: cannot open {cgroup_dir}: {e.strerror}") from e
