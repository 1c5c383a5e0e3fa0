"""Health checks: the HealthConfig of ``run``/``create`` flags and images, and its results.

Docker's meaning throughout (docker-cli's container opts, moby's daemon/health.go):

* ``--health-cmd CMD`` is ``["CMD-SHELL", CMD]``; ``--no-healthcheck`` is ``["NONE"]``; an
  image's ``HEALTHCHECK`` (``config.Healthcheck``) fills whatever the flags leave unset;
* a probe runs as an exec in the container (the container's user, workdir and env),
  started by the container's monitor one interval after the container started and then one
  interval after each probe ended (healthprobe.py); it fails on a non-zero exit or after
  its timeout (exit code -1);
* ``State.Health``: ``starting`` until the first success, ``healthy`` after any success,
  ``unhealthy`` after ``Retries`` failures in a row; failures inside the start period do
  not count while still starting; ``Log`` keeps the last 5 results, output cut at 4096
  bytes with "..." appended.

Durations are Go's (``30s``, ``1m30s``, ``500ms``) and recorded in nanoseconds, as Docker's
API does.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

DEFAULT_INTERVAL = 30 * 10**9
DEFAULT_TIMEOUT = 30 * 10**9
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
MINIMUM = 10**6  # 1ms: Docker's container.MinimumDuration
STATUSES = ("starting", "healthy", "unhealthy", "none")  # "none": no health check (ps filter)

_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
          "m": 60 * 10**9, "h": 3600 * 10**9}  # fmt: skip
_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds; ValueError with Go's message."""
    s, sign = text, 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0, 0
    while pos < len(s):
        m = _PART.match(s, pos)
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        scale = _UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    return sign * total


def _fraction(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    text = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def format_duration(ns: int) -> str:
    """Go's Duration.String(): 0s, 750ms, 1.5s, 1m30s, 2h0m0s."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 10**3:
        return f"{sign}{u}ns"
    if u < 10**6:
        return f"{sign}{_fraction(u, 3)}µs"
    if u < 10**9:
        return f"{sign}{_fraction(u, 6)}ms"
    out = _fraction(u % (60 * 10**9), 9) + "s"
    minutes = u // (60 * 10**9)
    if minutes:
        out = f"{minutes % 60}m" + out
        if minutes >= 60:
            out = f"{minutes // 60}h" + out
    return sign + out


def _flag_duration(a, name: str) -> int:  # noqa: ANN001
    text = getattr(a, name.replace("-", "_"))
    if not text:
        return 0
    try:
        return parse_duration(text)
    except ValueError as e:
        raise InvalidInput(f'invalid argument "{text}" for "--{name}" flag: {e}', 125) from None


def from_flags(a) -> dict | None:  # noqa: ANN001
    """Config.Healthcheck from the flags (docker-cli's checks and messages), or None."""
    interval = _flag_duration(a, "health-interval")
    timeout = _flag_duration(a, "health-timeout")
    start_period = _flag_duration(a, "health-start-period")
    retries = a.health_retries or 0
    have = bool(a.health_cmd or interval or timeout or start_period or retries)
    if a.no_healthcheck:
        if have:
            raise InvalidInput("--no-healthcheck conflicts with --health-* options", 125)
        return {"Test": ["NONE"]}
    if not have:
        return None
    for flag, value in (("interval", interval), ("timeout", timeout), ("retries", retries),
                        ("start-period", start_period)):  # fmt: skip
        if value < 0:
            raise InvalidInput(f"--health-{flag} cannot be negative", 125)
    hc: dict = {"Test": ["CMD-SHELL", a.health_cmd]} if a.health_cmd else {}
    for key, value in (("Interval", interval), ("Timeout", timeout),
                       ("StartPeriod", start_period), ("Retries", retries)):  # fmt: skip
        if value:
            hc[key] = value  # Docker's JSON omits the zero ones
    return hc


def merge(user: dict | None, image: dict | None) -> dict | None:
    """The container's Healthcheck: the flags' over the image's (moby's commit.merge), then
    the daemon's checks (verifyContainerSettings), which also apply to an image's."""
    if user is None:
        hc = dict(image) if image else None
    else:
        hc = dict(user)
        if image:
            if not hc.get("Test"):
                hc["Test"] = image.get("Test")
            for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
                if not hc.get(key) and image.get(key):
                    hc[key] = image[key]
        hc = {k: v for k, v in hc.items() if v}
    if hc is None:
        return None
    for key in ("Interval", "Timeout", "StartPeriod"):
        if hc.get(key) and hc[key] < MINIMUM:
            raise InvalidInput(f"{key} in Healthcheck cannot be less than 1ms", 125)
    if (hc.get("Retries") or 0) < 0:
        raise InvalidInput("Retries in Healthcheck cannot be negative", 125)
    return hc


def active(hc: dict | None) -> bool:
    """Whether ``hc`` has a probe to run (moby's getProbe: CMD or CMD-SHELL)."""
    test = (hc or {}).get("Test") or []
    return bool(test) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def command(hc: dict, shell: list[str] | None) -> list[str]:
    """The probe's argv: CMD's as given, CMD-SHELL's through the container's shell."""
    test = hc["Test"]
    if test[0] == "CMD-SHELL":
        return [*(shell or ["/bin/sh", "-c"]), *test[1:]]
    return list(test[1:])


def interval(hc: dict) -> int:
    return int(hc.get("Interval") or DEFAULT_INTERVAL)


def timeout(hc: dict) -> int:
    return int(hc.get("Timeout") or DEFAULT_TIMEOUT)


def reset(state: dict) -> None:
    """A (re)started container with a probe: ``starting`` again, the old Log kept
    (moby's initHealthMonitor)."""
    health = state.get("Health") or {"Log": []}
    health.update(Status="starting", FailingStreak=0)
    health.setdefault("Log", [])
    state["Health"] = {"Status": health["Status"], "FailingStreak": 0, "Log": health["Log"]}


def record(rec: dict, result: dict) -> None:
    """One probe's result into ``rec["State"]["Health"]`` (moby's handleProbeResult)."""
    from .containers import parse_time

    hc = rec["Config"].get("Healthcheck") or {}
    health = rec["State"].setdefault("Health", {"Status": "starting", "FailingStreak": 0})
    health["Log"] = [*(health.get("Log") or []), result][-MAX_LOG_ENTRIES:]
    if result["ExitCode"] == 0:
        health["FailingStreak"] = 0
        health["Status"] = "healthy"
        return
    if health["Status"] == "starting":
        started, begun = parse_time(rec["State"]["StartedAt"]), parse_time(result["Start"])
        if started and begun:
            since_start = (begun - started).total_seconds() * 1e9
            if since_start < int(hc.get("StartPeriod") or 0):
                return  # still in the start period: the failure does not count
    health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
    if health["FailingStreak"] >= (int(hc.get("Retries") or 0) or DEFAULT_RETRIES):
        health["Status"] = "unhealthy"


def output_text(data: bytes, truncated: bool) -> str:
    return data[:MAX_OUTPUT].decode("utf-8", "replace") + ("..." if truncated else "")


def suffix(rec: dict) -> str:
    """What ``ps`` adds to "Up 5 minutes": " (healthy)", " (health: starting)"."""
    status = (rec["State"].get("Health") or {}).get("Status")
    if not status:
        return ""
    return " (health: starting)" if status == "starting" else f" ({status})"
