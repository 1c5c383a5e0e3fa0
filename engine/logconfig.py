"""Log drivers: ``--log-driver``/``--log-opt``, daemon.json's defaults, where a log lives.

Docker's drivers that pydock has, with Docker's options and checks (moby daemon/logger):

* ``json-file`` (the default): ``<container dir>/<id>-json.log``, one JSON object a line;
  ``max-size`` (decimal units, ``10m`` = 10,000,000 bytes), ``max-file`` (default 1),
  ``compress``, and the extras ``labels``, ``labels-regex``, ``env``, ``env-regex``
  (stored as each entry's ``attrs``, shown by ``logs --details``), ``tag`` (accepted and
  unused, as json-file does);
* ``local``: Docker's own format is protobuf frames that only dockerd reads. pydock's
  ``local`` stores the json-file format, so one writer (monitor_main.Log) and one reader
  serve both, at Docker's local path (``local-logs/container.log``, LogPath empty as in
  Docker's inspect) with local's defaults: max-size 20m, max-file 5, compress true;
* ``none``: nothing is kept, and ``logs`` says "configured logging driver does not
  support reading".

Rotation is json-file's (loggerutils.LogFile): before each entry, a file at or past
max-size is renamed ``.1`` (``.1`` to ``.2`` ..., the oldest dropped), or truncated with
max-file 1; compressed rotations are ``.N.gz``. pydock checks every value when the
container is created (Docker finds bad max-size/max-file values only at start), so a bad
value is one line and nothing is made.

daemon.json's ``log-driver`` and ``log-opts`` are the defaults; the opts apply only to a
container whose driver is the default one (moby's mergeAndVerifyLogConfig).
"""

from __future__ import annotations

import os
import re

from .errors import InvalidInput

DRIVERS = ("json-file", "local", "none")
_OPTS = {
    "json-file": {"max-file", "max-size", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag"},
    "local": {"max-file", "max-size", "compress"},
}  # fmt: skip
_BUILTIN = {"mode", "max-buffer-size"}  # every driver's (logger.builtInLogOpts)
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_SIZE = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: decimal units, "10m" is 10,000,000 bytes."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise InvalidInput(f"failed to initialize logging driver: invalid size: '{text}'", 125)
    try:
        value = float(m.group(1))
    except ValueError:
        raise InvalidInput(
            f"failed to initialize logging driver: invalid size: '{text}'", 125
        ) from None
    return int(value * _DECIMAL[(m.group(2) or "").lower()])


def parse_opts(items: list[str]) -> dict[str, str]:
    """``--log-opt k=v`` values (docker-cli's ConvertKVStringsToMap: "k" alone is "")."""
    out: dict[str, str] = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidInput(
        f'failed to initialize logging driver: strconv.ParseBool: parsing "{text}": '
        "invalid syntax", 125
    )  # fmt: skip


def rotation(cfg: dict) -> tuple[int, int, bool]:
    """(max bytes or -1, files, compress) of a checked LogConfig, defaults applied."""
    kind, opts = cfg.get("Type") or "json-file", cfg.get("Config") or {}
    local = kind == "local"
    size = from_human_size(opts["max-size"]) if "max-size" in opts else (
        20 * 10**6 if local else -1)  # fmt: skip
    files = int(opts["max-file"]) if "max-file" in opts else (5 if local else 1)
    compress = _bool(opts["compress"]) if "compress" in opts else local
    return size, files, compress


def check(cfg: dict) -> dict:
    """Docker's checks of a LogConfig (ValidateLogOpts and the drivers' New); ``cfg``."""
    kind, opts = cfg["Type"], cfg["Config"]
    if kind == "none":
        return cfg
    mode = opts.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidInput(f"logger: logging mode not supported: {mode}", 125)
    if "max-buffer-size" in opts:
        from_human_size(opts["max-buffer-size"])
    if kind not in DRIVERS:
        raise InvalidInput(f"logger: no log driver named '{kind}' is registered", 125)
    for key in opts:
        if key not in _OPTS[kind] and key not in _BUILTIN:
            where = "json-file log driver" if kind == "json-file" else f"log driver {kind}"
            raise InvalidInput(f"unknown log opt '{key}' for {where}", 125)

    def fail(msg: str) -> InvalidInput:
        return InvalidInput(f"failed to initialize logging driver: {msg}", 125)

    if "max-size" in opts and from_human_size(opts["max-size"]) <= 0:
        raise fail("max-size must be a positive number")
    if "max-file" in opts:
        text = opts["max-file"]
        if not re.fullmatch(r"[+-]?\d+", text):
            raise fail(f'strconv.Atoi: parsing "{text}": invalid syntax')
        if int(text) < 1:
            raise fail("max-file cannot be less than 1")
    size, files, compress = rotation(cfg)
    if compress and kind == "json-file" and (files < 2 or size == -1):
        raise fail("compress cannot be true when max-file is less than 2 or max-size is not set")
    for key in ("labels-regex", "env-regex"):
        if opts.get(key):
            try:
                re.compile(opts[key])
            except re.error as e:
                raise fail(f"error parsing regexp: {e}") from None
    return cfg


def daemon_defaults(daemon: dict) -> dict:
    """daemon.json's ``log-driver``/``log-opts`` as a LogConfig (json-file when unset)."""
    opts = daemon.get("log-opts") or {}
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidInput("daemon.json: log-opts must map names to strings", 125)
    return {"Type": daemon.get("log-driver") or "json-file", "Config": dict(opts)}


def resolve(flags: dict | None, daemon: dict) -> dict:
    """The container's HostConfig.LogConfig from its flags and the daemon's defaults."""
    default = daemon_defaults(daemon)
    cfg = {"Type": (flags or {}).get("Type") or default["Type"],
           "Config": dict((flags or {}).get("Config") or {})}  # fmt: skip
    if cfg["Type"] == default["Type"]:
        for k, v in default["Config"].items():
            cfg["Config"].setdefault(k, v)
    return check(cfg)


def from_flags(driver: str | None, opts: list[str]) -> dict:
    """``--log-driver``/``--log-opt`` as the part of a LogConfig they set (docker-cli)."""
    if driver == "none" and opts:
        raise InvalidInput("invalid logging opts for driver none", 125)
    return {"Type": driver or "", "Config": parse_opts(opts)}


def log_file(rec: dict, cdir: str) -> str | None:
    """Where the container's log is written; None for ``none``."""
    kind = (rec["HostConfig"].get("LogConfig") or {}).get("Type") or "json-file"
    if kind == "none":
        return None
    if kind == "local":
        return os.path.join(cdir, "local-logs", "container.log")
    return rec.get("LogPath") or os.path.join(cdir, f"{rec['Id']}-json.log")


def attrs(rec: dict) -> dict[str, str]:
    """The extras every entry carries (logger.Info.ExtraAttributes): the labels and env
    variables that ``labels``/``env`` name or ``labels-regex``/``env-regex`` match."""
    opts = (rec["HostConfig"].get("LogConfig") or {}).get("Config") or {}
    labels = rec["Config"].get("Labels") or {}
    env = dict(e.split("=", 1) for e in rec["Config"].get("Env") or [] if "=" in e)
    out: dict[str, str] = {}
    for key in filter(None, (opts.get("labels") or "").split(",")):
        if key in labels:
            out[key] = labels[key]
    if opts.get("labels-regex"):
        rx = re.compile(opts["labels-regex"])
        out.update({k: v for k, v in labels.items() if rx.search(k)})
    for key in filter(None, (opts.get("env") or "").split(",")):
        if key in env:
            out[key] = env[key]
    if opts.get("env-regex"):
        rx = re.compile(opts["env-regex"])
        out.update({k: v for k, v in env.items() if rx.search(k)})
    return out


def monitor_args(rec: dict, cdir: str) -> dict[str, str]:
    """What the lean monitor needs to write the log: path ("" for none), rotation, extras
    (as the JSON text each entry carries)."""
    import json

    path = log_file(rec, cdir)
    if path is None:
        return {"log": "", "logmax": "-1", "logfiles": "1", "logzip": "0", "logattrs": ""}
    if os.path.dirname(path) != cdir:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    size, files, compress = rotation(rec["HostConfig"].get("LogConfig") or {})
    extra = attrs(rec)
    return {
        "log": path,
        "logmax": str(size),
        "logfiles": str(files),
        "logzip": "1" if compress else "0",
        "logattrs": json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else "",
    }


def files_oldest_first(path: str, files: int) -> list[str]:
    """The rotated files (``.N``, ``.N.gz``) that exist, oldest first, then ``path``."""
    out = []
    for i in range(max(files, 1) + 8, 0, -1):  # a lowered max-file may have left more
        for name in (f"{path}.{i}.gz", f"{path}.{i}"):
            if os.path.exists(name):
                out.append(name)
    return [*out, path]
