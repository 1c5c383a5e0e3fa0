"""Health checks (issue 11): the --health-* flags and an image's HEALTHCHECK, probed by the
container's monitor; State.Health in inspect, ps STATUS and ``ps --filter health=``."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from imagetar import Entry, docker_save, layer_tar, sha
from lifecycle_helpers import inspect, wait_for

BUSYBOX = Path("/bin/busybox")
pytestmark = pytest.mark.skipif(not BUSYBOX.is_file(), reason="needs the host's /bin/busybox")


def health(p, name: str) -> dict | None:
    return inspect(p, name)["State"].get("Health")


def status_of(p, name: str) -> str:
    return (health(p, name) or {}).get("Status", "")


def test_probes_make_containers_healthy_or_unhealthy_in_inspect_and_ps(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "good", "--health-cmd", "echo fine", "--health-interval", "300ms",
      "busybox", "sleep", "60", check=True)  # fmt: skip
    p("run", "-d", "--name", "bad", "--health-cmd", "echo broken >&2; exit 3",
      "--health-interval", "300ms", "--health-retries", "2", "busybox", "sleep", "60",
      check=True)  # fmt: skip
    p("run", "-d", "--name", "plain", "busybox", "sleep", "60", check=True)
    assert status_of(p, "good") in ("starting", "healthy")
    wait_for(lambda: status_of(p, "good") == "healthy", what="good to be healthy")
    wait_for(lambda: status_of(p, "bad") == "unhealthy", what="bad to be unhealthy")
    good, bad = health(p, "good"), health(p, "bad")
    assert good["FailingStreak"] == 0
    assert good["Log"][-1]["ExitCode"] == 0 and good["Log"][-1]["Output"] == "fine\n"
    assert bad["FailingStreak"] >= 2
    assert bad["Log"][-1]["ExitCode"] == 3 and bad["Log"][-1]["Output"] == "broken\n"
    assert set(bad["Log"][-1]) == {"Start", "End", "ExitCode", "Output"}
    assert bad["Log"][-1]["Start"] <= bad["Log"][-1]["End"]
    assert health(p, "plain") is None
    assert inspect(p, "bad")["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "echo broken >&2; exit 3"],
        "Interval": 300_000_000,
        "Retries": 2,
    }
    # the Log keeps the last five results
    wait_for(lambda: len(health(p, "good")["Log"]) == 5, what="five results")
    first = health(p, "good")["Log"][0]["Start"]
    wait_for(lambda: health(p, "good")["Log"][0]["Start"] != first, what="the oldest to go")
    assert len(health(p, "good")["Log"]) == 5
    rows = dict(
        line.split("|") for line in p.out("ps", "--format", "{{.Names}}|{{.Status}}").splitlines()
    )
    assert rows["good"].startswith("Up ") and rows["good"].endswith(" (healthy)")
    changes = p.out(
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Actor.Attributes.name}} {{.Action}}",
    )
    assert sorted(changes.splitlines()) == [
        "bad health_status: unhealthy",
        "good health_status: healthy",
    ]
    assert rows["bad"].endswith(" (unhealthy)")
    assert "(" not in rows["plain"]
    names = {
        f: p.out("ps", "--filter", f"health={f}", "--format", "{{.Names}}").split()
        for f in ("healthy", "unhealthy", "none", "starting")
    }
    assert names == {"healthy": ["good"], "unhealthy": ["bad"], "none": ["plain"], "starting": []}
    # after the container stops, no probe runs and the last status stays (Docker 20.10)
    p("stop", "-t", "0", "good", check=True)
    assert status_of(p, "good") == "healthy"
    assert "(healthy)" not in p.out("ps", "-a", "--filter", "name=good", "--format",
                                    "{{.Status}}")  # fmt: skip


def test_a_new_container_shows_health_starting(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "slow", "--health-cmd", "true", "--health-interval", "1h",
      "busybox", "sleep", "60", check=True)  # fmt: skip
    assert health(p, "slow") == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert p.out("ps", "--format", "{{.Status}}").strip().endswith("(health: starting)")


def test_timeout_and_start_period(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "hang", "--health-cmd", "echo partial; sleep 30",
      "--health-timeout", "200ms", "--health-interval", "200ms", "--health-retries", "1",
      "busybox", "sleep", "60", check=True)  # fmt: skip
    wait_for(lambda: status_of(p, "hang") == "unhealthy", what="the timeout to fail it")
    last = health(p, "hang")["Log"][-1]
    assert last["ExitCode"] == -1
    assert last["Output"] == "Health check exceeded timeout (200ms)"
    # within the start period, failures of a starting container do not count
    p("run", "-d", "--name", "warming", "--health-cmd", "exit 1", "--health-interval", "200ms",
      "--health-retries", "1", "--health-start-period", "1h", "busybox", "sleep", "60",
      check=True)  # fmt: skip
    wait_for(lambda: len(health(p, "warming")["Log"]) >= 3, what="three failed probes")
    h = health(p, "warming")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0
    assert all(r["ExitCode"] == 1 for r in h["Log"])


def test_a_probe_runs_inside_the_container_as_its_user_and_workdir(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "who", "-w", "/tmp", "-e", "MARK=here", "--health-cmd",
      'echo "$(id -u) $(pwd) $MARK $(cat /proc/1/cmdline | tr "\\0" " ")"',
      "--health-interval", "200ms", "-u", "65534", "busybox", "sleep", "60",
      check=True)  # fmt: skip
    wait_for(lambda: status_of(p, "who") == "healthy", what="a probe")
    assert health(p, "who")["Log"][-1]["Output"] == "65534 /tmp here sleep 60 \n"


def test_foreground_run_with_a_health_check_is_probed(overlay_pydock):
    p = overlay_pydock
    res = p("run", "--name", "fg", "--health-cmd", "true", "--health-interval", "200ms",
            "busybox", "sh", "-c", "sleep 1.5; echo done")  # fmt: skip
    assert res.returncode == 0 and res.stdout == b"done\n"
    h = health(p, "fg")
    assert h["Status"] == "healthy" and h["Log"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--no-healthcheck", "--health-cmd", "true"],
         "--no-healthcheck conflicts with --health-* options"),
        (["--health-interval=-1s"], "--health-interval cannot be negative"),
        (["--health-retries=-1"], "--health-retries cannot be negative"),
        (["--health-timeout", "10"], 'invalid argument "10" for "--health-timeout" flag: '
                                     'time: missing unit in duration "10"'),
        (["--health-cmd", "true", "--health-interval", "500us"],
         "Interval in Healthcheck cannot be less than 1ms"),
        (["--health-start-period", "2x"], 'invalid argument "2x" for "--health-start-period" '
                                          'flag: time: unknown unit "x" in duration "2x"'),
    ],
)  # fmt: skip
def test_bad_health_flags_are_one_line_and_create_nothing(overlay_pydock, flags, message):
    p = overlay_pydock
    for cmd in ("run", "create"):
        res = p(cmd, *flags, "busybox", "true")
        assert res.returncode == 125
        assert res.stderr.decode() == f"pydock: {message}\n"
    assert p.out("ps", "-aq") == ""


def test_bad_health_filter(overlay_pydock):
    res = overlay_pydock("ps", "--filter", "health=sick")
    assert res.returncode == 1
    assert res.stderr.decode() == "pydock: Unrecognised filter value for health: sick\n"


def _image_with_healthcheck(tmp: Path, hc: dict) -> Path:
    links = ("sh", "sleep", "true", "echo", "cat")
    layer = layer_tar(
        [
            Entry("bin", type=tarfile.DIRTYPE, mode=0o755),
            Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755),
            *(Entry(f"bin/{n}", type=tarfile.SYMTYPE, link="busybox") for n in links),
            Entry("tmp", type=tarfile.DIRTYPE, mode=0o1777),
        ]
    )
    config = {
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sleep", "60"], "Healthcheck": hc},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
    }  # fmt: skip
    path = tmp / "hc.tar"
    path.write_bytes(docker_save([layer], "hc:latest", config=json.dumps(config).encode()))
    return path


def test_image_healthcheck_is_used_merged_with_flags_or_disabled(overlay_pydock, scratch):
    p = overlay_pydock
    image_hc = {"Test": ["CMD", "sh", "-c", "echo from-image"], "Interval": 200_000_000,
                "Retries": 4}  # fmt: skip
    p("load", "-i", str(_image_with_healthcheck(scratch, image_hc)), check=True)
    p("run", "-d", "--name", "img", "hc", check=True)
    assert inspect(p, "img")["Config"]["Healthcheck"] == image_hc
    wait_for(lambda: status_of(p, "img") == "healthy", what="the image's probe")
    assert health(p, "img")["Log"][-1]["Output"] == "from-image\n"
    # flags override the fields they set; the rest comes from the image
    p("create", "--name", "merged", "--health-timeout", "5s", "hc", check=True)
    assert inspect(p, "merged")["Config"]["Healthcheck"] == {**image_hc, "Timeout": 5 * 10**9}
    p("create", "--name", "cmd", "--health-cmd", "exit 1", "hc", check=True)
    assert inspect(p, "cmd")["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "exit 1"]
    # --no-healthcheck: no probe, no State.Health; Config's Test is NONE (its other fields
    # still merge from the image's, as moby's merge does)
    p("run", "-d", "--name", "off", "--no-healthcheck", "hc", check=True)
    assert inspect(p, "off")["Config"]["Healthcheck"] == {**image_hc, "Test": ["NONE"]}
    wait_for(lambda: status_of(p, "img") == "healthy" and len(health(p, "img")["Log"]) >= 3,
             what="a few more probes of img")  # fmt: skip
    assert health(p, "off") is None
    assert "(" not in p.out("ps", "--filter", "name=off", "--format", "{{.Status}}")


def test_a_started_container_is_probed_again_from_a_fresh_streak(overlay_pydock):
    p = overlay_pydock
    # `rm` succeeds once per run of the container (which makes the file), then fails
    p("run", "-d", "--name", "rs", "--health-cmd", "rm /tmp/once", "--health-interval", "200ms",
      "--health-retries", "1", "busybox", "sh", "-c", "touch /tmp/once; exec sleep 60",
      check=True)  # fmt: skip
    wait_for(lambda: status_of(p, "rs") == "unhealthy", what="healthy, then unhealthy")
    assert any(r["ExitCode"] == 0 for r in health(p, "rs")["Log"])
    p("stop", "-t", "0", "rs", check=True)
    p("start", "rs", check=True)
    wait_for(lambda: status_of(p, "rs") == "healthy", what="the new run's first success")
    wait_for(lambda: status_of(p, "rs") == "unhealthy", what="its next failure")
    assert health(p, "rs")["FailingStreak"] >= 1
