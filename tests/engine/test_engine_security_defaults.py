"""Docker's security defaults end to end, seen from inside real containers: capabilities,
seccomp, masked and read-only paths, no_new_privs, --read-only and --privileged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydock.engine import spec
from pydock.nsutil.caps import CAP_NUMBERS, proc_status_caps

#: "all capabilities": all that this session holds (none can grant more)
HELD = set(CAP_NUMBERS) & proc_status_caps()["bounding"]


def _cap_mask(names) -> int:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return sum(1 << CAP_NUMBERS[n] for n in names if CAP_NUMBERS[n] <= last)


def _status_caps(out: str) -> dict[str, int]:
    return {ln.split(":")[0]: int(ln.split()[1], 16) for ln in out.splitlines() if ln[:3] == "Cap"}


def _run(pydock, *args: str) -> tuple[int, str, str]:
    res = pydock("run", "--rm", *args)
    return res.returncode, res.stdout.decode(), res.stderr.decode()


CAPS_SCRIPT = "grep ^Cap /proc/self/status"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], set(spec.DEFAULT_CAPS)),
        (["--cap-drop", "net_raw", "--cap-add", "SYS_TIME"],
         set(spec.DEFAULT_CAPS) - {"CAP_NET_RAW"} | {"CAP_SYS_TIME"}),
        (["--cap-drop", "ALL", "--cap-add", "CAP_CHOWN"], {"CAP_CHOWN"}),
        (["--cap-add", "all", "--cap-drop", "sys_admin"], HELD - {"CAP_SYS_ADMIN"}),
        (["--cap-drop", "kill", "--cap-add", "kill"], set(spec.DEFAULT_CAPS)),  # adds win
        (["--privileged"], HELD),
    ],
)  # fmt: skip
def test_capability_sets(overlay_pydock, flags, expected):
    code, out, err = _run(overlay_pydock, *flags, "busybox", "sh", "-c", CAPS_SCRIPT)
    assert code == 0, err
    caps = _status_caps(out)
    want = _cap_mask(expected)
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == want


def test_unknown_capability_is_a_clear_error(overlay_pydock):
    code, _, err = _run(overlay_pydock, "--cap-add", "CAP_FLY", "busybox", "true")
    assert code == 125 and 'unknown capability: "CAP_FLY"' in err


UNSHARE = "unshare -U true && echo allowed || echo denied"


def test_default_seccomp_denies_what_caps_would_allow(overlay_pydock):
    # Creating a user namespace needs no capability at all, so only the seccomp profile
    # (unshare is granted with CAP_SYS_ADMIN only) stops it in a default container.
    code, out, err = _run(overlay_pydock, "busybox", "sh", "-c", UNSHARE)
    assert code == 0 and out.strip() == "denied"
    assert "Operation not permitted" in err
    code, out, _ = _run(
        overlay_pydock, "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", UNSHARE
    )
    assert code == 0 and out.strip() == "allowed"
    code, out, _ = _run(overlay_pydock, "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", UNSHARE)
    assert out.strip() == "allowed"  # the profile's CAP_SYS_ADMIN rule
    code, out, _ = _run(overlay_pydock, "--privileged", "busybox", "sh", "-c", UNSHARE)
    assert out.strip() == "allowed"  # --privileged: no filter


def test_seccomp_filter_is_reported_in_proc(overlay_pydock):
    code, out, _ = _run(overlay_pydock, "busybox", "grep", "^Seccomp:", "/proc/self/status")
    assert out.split() == ["Seccomp:", "2"]  # SECCOMP_MODE_FILTER
    code, out, _ = _run(overlay_pydock, "--security-opt", "seccomp=unconfined", "busybox", "grep",
                        "^Seccomp:", "/proc/self/status")  # fmt: skip
    assert out.split() == ["Seccomp:", "0"]


def test_custom_seccomp_profile(overlay_pydock, scratch: Path):
    profile = scratch / "no-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 13}],
            }
        )
    )  # fmt: skip
    code, out, err = _run(overlay_pydock, "--security-opt", f"seccomp={profile}", "busybox",
                          "sh", "-c", "mkdir /d && echo made || echo refused")  # fmt: skip
    assert out.strip() == "refused" and "Permission denied" in err
    bad = scratch / "bad.json"
    bad.write_text("{not json")
    code, _, err = _run(overlay_pydock, "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert code == 125 and "decoding seccomp profile" in err
    code, _, err = _run(overlay_pydock, "--security-opt", "seccomp=/nonexistent.json", "busybox",
                        "true")  # fmt: skip
    assert code == 125 and "opening seccomp profile" in err
    code, _, err = _run(overlay_pydock, "--security-opt", "bogus", "busybox", "true")
    assert code == 125 and "invalid --security-opt" in err


@pytest.mark.parametrize("opt", ["no-new-privileges", "no-new-privileges=true",
                                 "no-new-privileges:true"])  # fmt: skip
def test_no_new_privileges(overlay_pydock, opt):
    code, out, _ = _run(overlay_pydock, "--security-opt", opt, "busybox", "grep", "^NoNewPrivs",
                        "/proc/self/status")  # fmt: skip
    assert out.split() == ["NoNewPrivs:", "1"]
    # and the seccomp filter is still in place (loaded last, just before exec)
    code, out, _ = _run(overlay_pydock, "--security-opt", opt, "busybox", "sh", "-c", UNSHARE)
    assert out.strip() == "denied"


def test_no_new_privileges_off_by_default(overlay_pydock):
    _, out, _ = _run(overlay_pydock, "busybox", "grep", "^NoNewPrivs", "/proc/self/status")
    assert out.split() == ["NoNewPrivs:", "0"]


MASKED = [p for p in ("/proc/keys", "/proc/timer_list", "/proc/sched_debug") if os.path.exists(p)]


def test_masked_and_readonly_paths(overlay_pydock):
    assert MASKED, "this kernel has none of the masked /proc files"
    script = (
        "for f in " + " ".join(MASKED) + '; do echo "$f=$(cat $f | wc -c)"; done;'
        " ls /sys/firmware | wc -l;"
        " echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-rw || echo sys-ro;"
        " echo 1 > /proc/sysrq-trigger 2>/dev/null && echo trig-rw || echo trig-ro"
    )
    code, out, err = _run(overlay_pydock, "busybox", "sh", "-c", script)
    assert code == 0, err
    lines = out.split()
    for path in MASKED:
        assert f"{path}=0" in lines  # masked: reads empty
    assert lines[len(MASKED)] == "0"  # /sys/firmware: an empty tmpfs
    assert "sys-ro" in lines and "trig-ro" in lines
    # --privileged lifts both
    code, out, _ = _run(overlay_pydock, "--privileged", "busybox", "sh", "-c", script)
    lines = out.split()
    assert any(ln.startswith(f"{MASKED[0]}=") and ln != f"{MASKED[0]}=0" for ln in lines) or (
        Path(MASKED[0]).read_text() == ""
    )
    assert "sys-rw" in lines


def test_read_only_root(overlay_pydock):
    code, out, err = _run(overlay_pydock, "--read-only", "busybox", "sh", "-c",
                          "touch /f 2>&1; touch /dev/shm/ok && echo shm-ok")  # fmt: skip
    assert "Read-only file system" in out and "shm-ok" in out
    cid = overlay_pydock.out("create", "--read-only", "busybox", "true").strip()
    assert json.loads(overlay_pydock.out("inspect", cid))[0]["HostConfig"]["ReadonlyRootfs"]
    overlay_pydock("rm", cid, check=True)


def test_privileged_devices_and_sys(overlay_pydock):
    host = {p.name for p in Path("/dev").iterdir()
            if p.is_char_device() and p.name not in ("console", "ptmx")}  # fmt: skip
    default_dev = {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout",
                   "stderr", "core", "pts", "shm", "mqueue", "ptmx"}  # fmt: skip

    def dev_and_sys(*flags: str) -> tuple[set[str], str]:
        code, out, err = _run(overlay_pydock, *flags, "busybox", "sh", "-c",
                              "ls /dev; echo --; grep -w /sys /proc/mounts")  # fmt: skip
        assert code == 0, err
        dev, _, mounts = out.partition("--\n")
        return set(dev.split()), mounts

    dev, sys_line = dev_and_sys("--privileged")
    assert host <= dev  # the host's device nodes, created in the container
    assert " rw," in sys_line
    dev, sys_line = dev_and_sys()
    assert dev <= default_dev
    assert " ro," in sys_line
    # the device cgroup lets a privileged container use a device the default list denies
    if Path("/dev/kmsg").exists():
        code, out, _ = _run(overlay_pydock, "--privileged", "busybox", "sh", "-c",
                            "head -c 1 /dev/kmsg >/dev/null && echo readable")  # fmt: skip
        assert out.strip() == "readable"
