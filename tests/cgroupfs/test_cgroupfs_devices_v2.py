"""cgroup v2 device rules as the eBPF program the kernel runs, on a real cgroup2 hierarchy.

On a pure v2 host that is the host's own layout; on this hybrid host it is the unified
mount (/sys/fs/cgroup/unified), which has no controllers but runs BPF_CGROUP_DEVICE
programs like any cgroup2 tree: the v2 backend is driven there through a v2 Layout of that
mount. A child placed in the cgroup opens or mknods device nodes the test made in its
scratch directory, so the verdicts are the kernel's, for exact device numbers.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from pydock.cgroupfs import Cgroup, CgroupError, Layout, detect, devfilter
from pydock.engine.spec import DEFAULT_DEVICE_RULES
from pydock.nsutil import syscalls as sc

# What a child does: open each (path, flags), mknod each (path, kind, major, minor); print
# {label: "ok" | errno name}.
PROBE = """
import errno, json, os, stat
out = {}
for label, op, *args in json.loads(sys.stdin.readline()):
    try:
        if op == "open":
            os.close(os.open(args[0], args[1] | os.O_NONBLOCK | os.O_NOCTTY))
        else:
            kind = stat.S_IFCHR if args[1] == "c" else stat.S_IFBLK
            os.mknod(args[0], kind | 0o600, os.makedev(args[2], args[3]))
        out[label] = "ok"
    except OSError as e:
        out[label] = errno.errorcode[e.errno]
print(json.dumps(out), flush=True)
"""


@pytest.fixture(scope="session")
def v2() -> Layout:
    """A v2 Layout over the host's cgroup2 mount (the host's own one on pure v2)."""
    lay = detect()
    if lay.mode == "v2":
        return lay
    if lay.unified is None:
        pytest.skip("this host has no cgroup2 mount to attach device programs to")
    return Layout("v2", {"unified": lay.unified}, {"unified": lay.root_of("unified")})


@pytest.fixture
def nodes(scratch: Path):
    """Device nodes made by the test process (outside any filter): name -> path."""

    def make(**devs: tuple[str, int, int]) -> dict[str, str]:
        out = {}
        for name, (kind, major, minor) in devs.items():
            path = scratch / name
            mode = (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o666
            os.mknod(path, mode, os.makedev(major, minor))
            out[name] = str(path)
        return out

    return make


def probe(spawn, cg: Cgroup, ops: list[list]) -> dict[str, str]:
    child = spawn("import sys\n" + PROBE)
    cg.attach(child.pid)
    child.go()
    assert child.proc.stdin is not None
    child.proc.stdin.write(json.dumps(ops).encode() + b"\n")
    child.proc.stdin.flush()
    out = json.loads(child.line())
    assert child.wait() == 0
    return out


def opens(paths: dict[str, str], flags: int = os.O_RDONLY) -> list[list]:
    return [[name, "open", path, flags] for name, path in paths.items()]


# Docker's default list (spec.DEFAULT_DEVICE_RULES) and, next to each allowed device, the
# nearest ones it must not let through.
ALLOWED = {
    "null": ("c", 1, 3), "random": ("c", 1, 8), "full": ("c", 1, 7), "tty": ("c", 5, 0),
    "zero": ("c", 1, 5), "urandom": ("c", 1, 9), "pts0": ("c", 136, 0),
    "pts7": ("c", 136, 7), "ptmx": ("c", 5, 2), "tun": ("c", 10, 200),
}  # fmt: skip
DENIED = {
    "mem": ("c", 1, 1), "port": ("c", 1, 4), "kmsg": ("c", 1, 11), "console": ("c", 5, 1),
    "tty0": ("c", 4, 0), "pts_next": ("c", 137, 0), "fuse": ("c", 10, 229),
    "misc201": ("c", 10, 201), "blk_null": ("b", 1, 3), "loop0": ("b", 7, 0),
}  # fmt: skip


def test_default_rules_allow_exactly_dockers_devices(v2, make_cgroup, spawn, nodes):
    cg = make_cgroup(layout=v2)
    cg.apply({"devices": DEFAULT_DEVICE_RULES})
    assert len(devfilter.attached(cg.paths["unified"])) == 1
    allowed, denied = nodes(**ALLOWED), nodes(**{f"d_{k}": v for k, v in DENIED.items()})
    mk = Path(allowed["null"]).parent
    ops = opens(allowed) + opens(denied)
    # "c *:* m" and "b *:* m": any node may be made, none opened unless listed
    ops += [["mk_c", "mknod", str(mk / "mk_c"), "c", 42, 42],
            ["mk_b", "mknod", str(mk / "mk_b"), "b", 8, 0]]  # fmt: skip
    got = probe(spawn, cg, ops)
    # Allowed devices reach their driver, which may still refuse (no controlling tty, no
    # pty 0, no tun module, a ptmx node outside a devpts): anything but the filter's EPERM.
    assert {k: v for k, v in got.items() if k in ALLOWED and v == "EPERM"} == {}
    assert got["null"] == got["zero"] == got["full"] == got["urandom"] == "ok"
    assert {k: got[k] for k in denied} == dict.fromkeys(denied, "EPERM")
    assert (got["mk_c"], got["mk_b"]) == ("ok", "ok")


def test_access_letters_and_mknod(v2, make_cgroup, spawn, nodes):
    cg = make_cgroup(layout=v2)
    cg.apply({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "m"},
    ]})  # fmt: skip
    n = nodes(null=("c", 1, 3), zero=("c", 1, 5))
    d = Path(n["null"]).parent
    got = probe(spawn, cg, [
        ["null_r", "open", n["null"], os.O_RDONLY],
        ["null_w", "open", n["null"], os.O_WRONLY],
        ["zero_rw", "open", n["zero"], os.O_RDWR],
        ["mk_full", "mknod", str(d / "full"), "c", 1, 7],
        ["mk_null", "mknod", str(d / "null2"), "c", 1, 3],
    ])  # fmt: skip
    assert got == {"null_r": "ok", "null_w": "EPERM", "zero_rw": "ok", "mk_full": "ok",
                   "mk_null": "EPERM"}  # fmt: skip


def test_wildcards_and_last_match_wins(v2, make_cgroup, spawn, nodes):
    cg = make_cgroup(layout=v2)
    cg.apply({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "access": "rwm"},  # c 1:* (minor absent)
        {"allow": True, "type": "a", "major": 7, "minor": -1, "access": "r"},  # a 7:* r
        {"allow": True, "type": "c", "major": None, "minor": 200, "access": "rw"},  # c *:200
        {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"},  # later: wins
    ]})  # fmt: skip
    n = nodes(null=("c", 1, 3), kmsg=("c", 1, 11), loop=("b", 7, 0), c7=("c", 7, 1),
              tun=("c", 10, 200), b200=("b", 9, 200), tty=("c", 5, 0))  # fmt: skip
    got = probe(spawn, cg, opens(n) + [["loop_w", "open", n["loop"], os.O_WRONLY]])
    assert got["null"] == "ok"
    assert got["kmsg"] == "EPERM"  # the later deny beats the earlier c 1:* allow
    assert got["loop"] != "EPERM" and got["c7"] != "EPERM"  # type a: block and char
    assert got["loop_w"] == "EPERM"
    assert got["tun"] != "EPERM"
    assert (got["b200"], got["tty"]) == ("EPERM", "EPERM")


def test_update_replaces_the_program_and_allow_all_removes_it(v2, make_cgroup, spawn, nodes):
    cg = make_cgroup(layout=v2)
    d = cg.paths["unified"]
    n = nodes(null=("c", 1, 3), kmsg=("c", 1, 11))
    cg.apply({"devices": DEFAULT_DEVICE_RULES})
    first = devfilter.attached(d)
    assert probe(spawn, cg, opens(n)) == {"null": "ok", "kmsg": "EPERM"}
    cg.apply({"devices": [*DEFAULT_DEVICE_RULES,
                          {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"},
                          {"allow": False, "type": "c", "major": 1, "minor": 3}]})  # fmt: skip
    second = devfilter.attached(d)
    assert len(second) == 1 and second != first  # the old one is off, not stacked
    assert probe(spawn, cg, opens(n)) == {"null": "EPERM", "kmsg": "ok"}
    cg.apply({"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "access": "rwm"}]})
    assert devfilter.attached(d) == []
    assert probe(spawn, cg, opens(n)) == {"null": "ok", "kmsg": "ok"}


def test_removing_the_cgroup_releases_its_program(v2, make_cgroup):
    cg = make_cgroup(layout=v2)
    cg.apply({"devices": DEFAULT_DEVICE_RULES})
    (prog_id,) = devfilter.attached(cg.paths["unified"])
    cg.destroy()
    # The kernel releases a removed cgroup's programs from a work item after an RCU grace
    # period: wait for the id to go, with a deadline far beyond that.
    deadline = time.monotonic() + 30
    while True:
        try:
            fd = sc.bpf_prog_get_fd_by_id(prog_id)
        except FileNotFoundError:
            break
        os.close(fd)
        assert time.monotonic() < deadline, f"program {prog_id} outlived its cgroup"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"allow": True, "type": "x", "access": "rwm"}, "invalid type 'x'"),
        ({"allow": True, "type": "c", "access": "rwz"}, "invalid access 'rwz'"),
        ({"allow": True, "type": "c", "major": "1", "access": "r"}, "invalid major '1'"),
        ({"allow": True, "type": "c", "major": 1, "minor": -5}, "invalid minor -5"),
    ],
)
def test_bad_rules_are_one_line_errors_and_attach_nothing(v2, make_cgroup, rule, message):
    cg = make_cgroup(layout=v2)
    with pytest.raises(CgroupError, match=message) as exc:
        cg.apply({"devices": [{"allow": False, "access": "rwm"}, rule]})
    assert "\n" not in str(exc.value)
    assert devfilter.attached(cg.paths["unified"]) == []


def test_program_has_no_unreachable_tail():
    """A catch-all rule ends the program (the verifier refuses dead instructions), and a
    rule set without one ends in an explicit deny."""
    with_catch_all = devfilter.compile_rules(DEFAULT_DEVICE_RULES)
    without = devfilter.compile_rules(DEFAULT_DEVICE_RULES[1:])
    # without the leading "a *:* rwm" deny, its block (2 insns) is replaced by the default
    # deny (2 insns): same length, both load
    assert len(with_catch_all) == len(without)
    for prog in (with_catch_all, without):
        fd = sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, prog, devfilter.LICENSE)
        os.close(fd)


def test_refused_program_reports_the_verifier_log():
    bad = devfilter.compile_rules([])[:-8]  # cut the final exit: falls off the end
    with pytest.raises(OSError, match=r"BPF_PROG_LOAD: .*\(verifier: .+\)"):
        sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, bad, devfilter.LICENSE)
