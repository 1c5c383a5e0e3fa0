"""Log drivers (issue 11): json-file rotation (max-size/max-file/compress), local, none,
daemon.json's log-driver/log-opts, ``logs --details``, HostConfig.LogConfig."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from lifecycle_helpers import inspect

SCRIPT = "for i in $(seq 1 {n}); do echo line$i; done"


def cdir(p, name: str) -> Path:
    return p.root / "containers" / inspect(p, name)["Id"]


def entries(path: Path) -> list[dict]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(x) for x in data.splitlines()]


def expected(first: int, last: int) -> str:
    return "".join(f"line{i}\n" for i in range(first, last + 1))


def test_json_file_rotates_and_logs_reads_across_the_files(overlay_pydock):
    p = overlay_pydock
    p("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
      "busybox", "sh", "-c", SCRIPT.format(n=200), check=True)  # fmt: skip
    d = cdir(p, "rot")
    cid = inspect(p, "rot")["Id"]
    live = d / f"{cid}-json.log"
    names = sorted(x.name for x in d.glob(f"{cid}-json.log*"))
    assert names == [live.name, live.name + ".1", live.name + ".2"]
    for rotated in (d / (live.name + ".1"), d / (live.name + ".2")):
        size = rotated.stat().st_size
        # rotated once at or past max-size, before the entry that would follow
        assert 1000 <= size < 1000 + 100
    kept = [e["log"] for f in (".2", ".1", "") for e in entries(d / (live.name + f))]
    assert kept[-1] == "line200\n"
    first = int(kept[0][4:])
    assert kept == [f"line{i}\n" for i in range(first, 201)]
    assert p.out("logs", "rot") == expected(first, 200)
    assert p.out("logs", "--tail", str(len(kept) - 2), "rot") == expected(first + 2, 200)
    assert inspect(p, "rot")["HostConfig"]["LogConfig"] == {
        "Type": "json-file", "Config": {"max-size": "1k", "max-file": "3"}}  # fmt: skip
    assert inspect(p, "rot")["LogPath"] == str(live)


def test_max_file_one_truncates_and_compress_gzips_rotations(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "one", "--log-opt", "max-size=500", "busybox", "sh", "-c",
      SCRIPT.format(n=100), check=True)  # fmt: skip
    p("wait", "one", check=True)
    d = cdir(p, "one")
    assert len(list(d.glob("*-json.log*"))) == 1
    out = p.out("logs", "one")
    assert out.endswith("line100\n") and "line1\n" not in out
    assert out == expected(int(out.split()[0][4:]), 100)
    p("run", "-d", "--name", "gz", "--log-opt", "max-size=500", "--log-opt", "max-file=4",
      "--log-opt", "compress=true", "busybox", "sh", "-c", SCRIPT.format(n=100),
      check=True)  # fmt: skip
    p("wait", "gz", check=True)
    d = cdir(p, "gz")
    cid = inspect(p, "gz")["Id"]
    rotated = sorted(x.name for x in d.glob("*-json.log.*"))
    assert rotated == [f"{cid}-json.log.{i}.gz" for i in (1, 2, 3)]
    out = p.out("logs", "gz")
    assert out == expected(int(out.split()[0][4:]), 100)
    assert entries(d / f"{cid}-json.log.1.gz")[0]["stream"] == "stdout"


def test_follow_goes_on_across_rotations(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "fol", "--log-opt", "max-size=300", "--log-opt", "max-file=100",
      "busybox", "sh", "-c", "for i in $(seq 1 60); do echo line$i; sleep 0.03; done",
      check=True)  # fmt: skip
    res = p("logs", "-f", "fol", timeout=60)
    assert res.stdout.decode() == expected(1, 60)
    assert len(list(cdir(p, "fol").glob("*-json.log.*"))) >= 5


def test_none_keeps_nothing_and_logs_refuses(overlay_pydock):
    p = overlay_pydock
    res = p("run", "--name", "quiet", "--log-driver", "none", "busybox", "sh", "-c",
            "echo out; echo err >&2")  # fmt: skip
    assert res.returncode == 0 and res.stdout == b"out\n" and res.stderr == b"err\n"
    p("run", "-d", "--name", "quiet2", "--log-driver", "none", "busybox", "echo", "x",
      check=True)  # fmt: skip
    p("wait", "quiet2", check=True)
    for name in ("quiet", "quiet2"):
        res = p("logs", name)
        assert res.returncode == 1 and res.stdout == b""
        assert res.stderr == (
            b"Error response from daemon: configured logging driver does not support reading\n"
        )
        info = inspect(p, name)
        assert info["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
        assert info["LogPath"] == ""
        assert list(cdir(p, name).glob("*json.log*")) == []


def test_local_keeps_the_json_file_format_at_dockers_path_compressed(overlay_pydock):
    p = overlay_pydock
    p("run", "-d", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=400",
      "busybox", "sh", "-c", SCRIPT.format(n=150), check=True)  # fmt: skip
    p("wait", "loc", check=True)
    info = inspect(p, "loc")
    assert info["LogPath"] == ""
    assert info["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {"max-size": "400"}}
    logs = cdir(p, "loc") / "local-logs"
    # local's defaults: five files, rotations compressed
    names = sorted(x.name for x in logs.iterdir())
    assert names == ["container.log", *(f"container.log.{i}.gz" for i in (1, 2, 3, 4))]
    out = p.out("logs", "loc")
    assert out == expected(int(out.split()[0][4:]), 150)


def test_daemon_json_log_defaults(overlay_pydock):
    p = overlay_pydock
    (p.root / "daemon.json").write_text(
        json.dumps({"log-driver": "json-file", "log-opts": {"max-size": "2k", "max-file": "2"}})
    )
    p("create", "--name", "dflt", "busybox", "true", check=True)
    assert inspect(p, "dflt")["HostConfig"]["LogConfig"] == {
        "Type": "json-file", "Config": {"max-size": "2k", "max-file": "2"}}  # fmt: skip
    p("create", "--name", "mine", "--log-opt", "max-size=5k", "busybox", "true", check=True)
    assert inspect(p, "mine")["HostConfig"]["LogConfig"]["Config"] == {
        "max-size": "5k", "max-file": "2"}  # fmt: skip
    # the default opts belong to the default driver only
    p("create", "--name", "other", "--log-driver", "local", "busybox", "true", check=True)
    assert inspect(p, "other")["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {}}
    (p.root / "daemon.json").write_text(json.dumps({"log-driver": "none"}))
    p("run", "--name", "off", "busybox", "echo", "hi", check=True)
    assert inspect(p, "off")["HostConfig"]["LogConfig"]["Type"] == "none"
    assert p("logs", "off").returncode == 1
    (p.root / "daemon.json").unlink()
    p("create", "--name", "plain", "busybox", "true", check=True)
    assert inspect(p, "plain")["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}


def test_logs_details_shows_the_extras_first(overlay_pydock):
    p = overlay_pydock
    p("run", "--name", "det", "-l", "app=web shop", "-l", "tier=1", "-e", "REGION=eu/west",
      "--log-opt", "labels=tier,app,missing", "--log-opt", "env=REGION", "busybox", "sh",
      "-c", "echo hello; echo oops >&2", check=True)  # fmt: skip
    res = p("logs", "--details", "det")
    assert res.stdout == b"REGION=eu%2Fwest,app=web+shop,tier=1 hello\n"
    assert res.stderr == b"REGION=eu%2Fwest,app=web+shop,tier=1 oops\n"
    stamped = p.out("logs", "--details", "-t", "det").split(" ")
    assert stamped[0][:4].isdigit() and stamped[0].endswith("Z")
    assert stamped[1:] == ["REGION=eu%2Fwest,app=web+shop,tier=1", "hello\n"]
    raw = entries(Path(inspect(p, "det")["LogPath"]))[0]
    assert list(raw) == ["log", "stream", "attrs", "time"]  # json-file's order
    assert raw["attrs"] == {"REGION": "eu/west", "app": "web shop", "tier": "1"}
    assert p.out("logs", "det") == "hello\n"
    # no extras: --details still puts Docker's separating space first
    p("run", "--name", "bare", "busybox", "echo", "hi", check=True)
    assert p.out("logs", "--details", "bare") == " hi\n"
    # the extras regexes
    p("run", "--name", "rx", "-l", "com.x.a=1", "-l", "other=2", "-e", "APP_ONE=1",
      "--log-opt", "labels-regex=^com\\.x", "--log-opt", "env-regex=^APP_", "busybox",
      "echo", "r", check=True)  # fmt: skip
    assert p.out("logs", "--details", "rx") == "APP_ONE=1,com.x.a=1 r\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--log-driver", "syslogd"], "logger: no log driver named 'syslogd' is registered"),
        (["--log-driver", "none", "--log-opt", "max-size=1m"],
         "invalid logging opts for driver none"),
        (["--log-opt", "max-sise=1m"], "unknown log opt 'max-sise' for json-file log driver"),
        (["--log-driver", "local", "--log-opt", "env=X"],
         "unknown log opt 'env' for log driver local"),
        (["--log-opt", "max-size=0"],
         "failed to initialize logging driver: max-size must be a positive number"),
        (["--log-opt", "max-size=lots"],
         "failed to initialize logging driver: invalid size: 'lots'"),
        (["--log-opt", "max-file=0"],
         "failed to initialize logging driver: max-file cannot be less than 1"),
        (["--log-opt", "max-file=x"],
         'failed to initialize logging driver: strconv.Atoi: parsing "x": invalid syntax'),
        (["--log-opt", "max-size=1m", "--log-opt", "compress=true"],
         "failed to initialize logging driver: compress cannot be true when max-file is less "
         "than 2 or max-size is not set"),
        (["--log-opt", "mode=sometimes"], "logger: logging mode not supported: sometimes"),
    ],
)  # fmt: skip
def test_bad_log_options_are_one_line_and_create_nothing(overlay_pydock, flags, message):
    p = overlay_pydock
    for cmd in ("run", "create"):
        res = p(cmd, *flags, "busybox", "true")
        assert res.returncode == 125
        assert res.stderr.decode() == f"pydock: {message}\n"
    assert p.out("ps", "-aq") == ""
    made = p.root / "containers"
    assert not made.exists() or list(made.iterdir()) == []


def test_restart_keeps_appending_and_rotating_from_the_files_size(overlay_pydock):
    p = overlay_pydock
    p("create", "--name", "again", "--log-opt", "max-size=700", "--log-opt", "max-file=5",
      "busybox", "sh", "-c", SCRIPT.format(n=5), check=True)  # fmt: skip
    for _ in range(4):
        p("start", "-a", "again", check=True)
    out = p.out("logs", "again")
    assert out == expected(1, 5) * 4
    # the size a new run starts from is the file's: 20 entries of ~70 bytes rotated
    assert len(list(cdir(p, "again").glob("*-json.log.*"))) == 1
