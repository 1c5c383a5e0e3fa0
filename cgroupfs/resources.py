"""Shared pieces for turning OCI ``linux.resources`` into cgroup writes.

Field names are the runtime-spec's (config-linux.md#control-groups). Like runc, a zero or a
missing value means "leave the kernel default", since Go's zero value is how the spec's
producers say "unset".
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import CgroupError

# Called with a one-line description of a requested resource this backend cannot enforce.
Note = Callable[[str], None]

# Resource groups each backend understands; every other key with a value is reported.
KNOWN_GROUPS = ("memory", "cpu", "pids", "blockIO", "devices", "unified")


def given(value: object) -> bool:
    """True for a value the caller actually set (not None/0/empty)."""
    return value is not None and value != 0 and value != [] and value != {}


def unknown_keys(group: str, section: dict, handled: tuple[str, ...], note: Note) -> None:
    """Report every set field of ``section`` that the backend did not handle."""
    for k, v in section.items():
        if k not in handled and given(v):
            note(f"{group}.{k} is not supported by this cgroup backend")


def other_groups(resources: dict, note: Note) -> None:
    for k, v in resources.items():
        if k not in KNOWN_GROUPS and given(v):
            note(f"{k} is not supported by this cgroup backend")


def strict_note(msg: str) -> None:
    raise CgroupError(msg)


def device_rule(rule: dict) -> str:
    """An OCI device rule as the v1 "type major:minor access" record (devices.allow/deny)."""
    kind = rule.get("type") or "a"
    major = rule.get("major")
    minor = rule.get("minor")
    maj = "*" if major is None or major < 0 else str(major)
    mnr = "*" if minor is None or minor < 0 else str(minor)
    return f"{kind} {maj}:{mnr} {rule.get('access') or 'rwm'}"


def is_all_devices(rule: dict) -> bool:
    """A rule that names every device with every access ("a *:* rwm")."""
    return (
        rule.get("type") in (None, "a")
        and rule.get("major") in (None, -1)
        and rule.get("minor") in (None, -1)
        and set(rule.get("access") or "rwm") >= set("rwm")
    )
