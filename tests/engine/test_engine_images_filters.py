"""``images`` filters and the REPOSITORY[:TAG] argument as Docker 20.10 applies them.

``reference=`` is Go's path.Match on the familiar reference, then on its name: ``*`` stops at
``/``. ``before=`` / ``since=`` are strict, ``label=`` filters all hold, ``dangling=`` takes
only ``true`` or ``false``; a malformed pattern or filter is an error, not an empty list.
"""

from __future__ import annotations

from pathlib import Path

from imagetar import Entry, layer_tar
from pdcli import Pydock

LOCAL = "127.0.0.1:5000/x"


def refs(pd: Pydock, *args: str) -> list[str]:
    return sorted(pd.out("images", *args, "--format", "{{.Repository}}:{{.Tag}}").split())


def test_reference_pattern_does_not_cross_slashes(pd: Pydock) -> None:
    pd.out("tag", "busybox", f"{LOCAL}:latest")
    pd.out("tag", "busybox", "lib/app:v1")
    assert refs(pd, "--filter", "reference=*:latest") == ["busybox:latest"]
    assert refs(pd, "--filter", "reference=*") == ["busybox:latest"]
    assert refs(pd, "--filter", "reference=*/*") == [f"{LOCAL}:latest", "lib/app:v1"]
    assert refs(pd, "--filter", "reference=*/*:latest") == [f"{LOCAL}:latest"]
    assert refs(pd, "--filter", "reference=127.0.0.1:5000/?") == [f"{LOCAL}:latest"]
    assert refs(pd, "--filter", "reference=lib/[a-b]pp") == ["lib/app:v1"]
    assert refs(pd, "--filter", "reference=lib/[^a]pp") == []
    # several patterns: any one; only the matching references of an image are listed
    assert refs(pd, "-f", "reference=busybox", "-f", "reference=lib/*") == [
        "busybox:latest", "lib/app:v1"
    ]  # fmt: skip
    # the REPOSITORY[:TAG] argument is one more pattern, with the same rules
    assert refs(pd, "lib/*") == ["lib/app:v1"]
    assert refs(pd, "*") == ["busybox:latest"]
    assert refs(pd, f"{LOCAL}:latest") == [f"{LOCAL}:latest"]
    assert refs(pd, "busybox:v9") == []
    res = pd("images", "--filter", "reference=lib/[")
    assert res.returncode == 1 and res.stdout == b""
    assert res.stderr.decode() == "pydock: syntax error in pattern\n"


def test_dangling_before_since_label(pd: Pydock, scratch: Path) -> None:
    rootfs = scratch / "rootfs.tar"
    rootfs.write_bytes(layer_tar([Entry("hello", b"world")]))
    old = pd.out("import", "-c", "LABEL team=blue", str(rootfs), "imp:1").strip()
    rootfs.write_bytes(layer_tar([Entry("hello", b"again")]))
    new = pd.out("import", "-c", "LABEL team=red", "-c", "LABEL tier=db", str(rootfs), "imp:1")
    new = new.strip()
    ids = lambda *a: pd.out("images", "-q", "--no-trunc", *a).split()  # noqa: E731
    busybox = pd.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    # busybox is older than both imports; before/since are strict
    assert ids("-f", "before=imp:1") == [old, busybox]
    assert ids("-f", "since=busybox") == [new, old]
    assert ids("-f", f"since={new}") == [] and ids("-f", "before=busybox") == []
    assert ids("-f", "label=team") == [new, old]
    assert ids("-f", "label=team=red", "-f", "label=tier") == [new]
    assert ids("-f", "label=team=blue", "-f", "label=tier") == []
    assert ids("-f", "dangling=true") == [old]
    assert ids("-f", "dangling=false") == [new, busybox]
    assert ids("-f", "dangling=true", "-f", "reference=*") == []  # no reference, no match
    res = pd("images", "-f", "dangling=1")
    assert res.returncode == 1 and res.stderr.decode() == "pydock: Invalid filter 'dangling=[1]'\n"
    res = pd("images", "-f", "Bogus=1")
    assert res.returncode == 1 and res.stderr.decode() == "pydock: Invalid filter 'bogus'\n"
    res = pd("images", "-f", "before=nosuch:1")
    assert res.returncode == 1 and res.stderr.decode() == "pydock: No such image: nosuch:1\n"
    res = pd("images", "-f", "dangling")
    assert res.returncode == 125
    assert res.stderr.decode() == (
        'pydock: invalid argument "dangling" for "-f, --filter" flag: '
        "bad format of filter (expected name=value)\n"
    )
