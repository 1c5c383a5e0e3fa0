"""Capability tables and set changes, in a forked child (the test process keeps its own)."""

from __future__ import annotations

import json
import os

import pytest
from pydock.nsutil import caps


def test_table_and_masks() -> None:
    assert caps.CAP_NUMBERS["CAP_CHOWN"] == 0
    assert caps.CAP_NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert caps.to_mask(["CAP_CHOWN", "kill"]) == 1 | 1 << 5
    assert caps.to_names(1 | 1 << 5) == {"CAP_CHOWN", "CAP_KILL"}
    with pytest.raises(ValueError):
        caps.to_mask(["CAP_NOT_A_THING"])


def test_clamped_to_kernel() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    assert caps.last_cap() == last
    assert caps.all_mask().bit_length() == last + 1


def test_drop_one_capability_round_trip() -> None:
    """Drop CAP_NET_RAW from bounding and effective; /proc/self/status agrees."""
    assert "CAP_NET_RAW" in caps.proc_status_caps()["effective"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            full = caps.proc_status_caps()["permitted"]
            keep = sorted(full - {"CAP_NET_RAW"})
            caps.drop_bounding(caps.to_mask(keep))
            caps.apply_sets({"effective": keep, "permitted": sorted(full), "inheritable": []})
            st = caps.proc_status_caps()
            os.write(w, json.dumps({k: sorted(v) for k, v in st.items()}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        out = os.read(r, 65536).decode()
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = {k: set(v) for k, v in json.loads(out).items()}
    full = caps.proc_status_caps()["permitted"]  # this sandbox may lack some capabilities
    assert got["bounding"] == full - {"CAP_NET_RAW"}
    assert got["effective"] == full - {"CAP_NET_RAW"}
    assert got["permitted"] == full
    assert got["ambient"] == set()
    # the test process itself is untouched
    assert "CAP_NET_RAW" in caps.proc_status_caps()["bounding"]


def test_keepcaps_across_setuid() -> None:
    """PR_SET_KEEPCAPS, setuid(1000), capset: a non-root process with chosen caps."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            want = ["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]
            caps.set_keepcaps(True)
            os.setgid(1000)
            os.setuid(1000)
            caps.set_keepcaps(False)
            caps.apply_sets(
                {"effective": want, "permitted": want, "inheritable": want, "ambient": want}
            )
            st = caps.proc_status_caps()
            os.write(w, f"{os.getuid()} {sorted(st['effective'])} {sorted(st['ambient'])}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        out = os.read(r, 65536).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert out == "1000 ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'] ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE']"
