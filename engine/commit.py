"""``commit``: a container's writable layer becomes a new image layer with a new config.

The layer is what the storage driver exports for the container (``driver.diff``: an OCI
layer tar with whiteouts for deletions); its sha256 is the new diff id appended to the
image's ``rootfs.diff_ids``. The image is stored through ``ImageStore.add_image``, which
finds every lower layer already recorded for this driver and applies only the new one, so
the image's layers are shared, not copied. The new config is the image's, with the
container's settings (Cmd, Entrypoint, Env, WorkingDir, User, Labels) and ``--change``
instructions on top, and a history entry for the layer (image-spec config.md).

The mount points the runtime made (/proc, /etc/hosts...) are left out, as Docker's init
layer keeps them out of its commits (layerstubs). A running container is frozen while its
layer is exported (Docker's ``--pause``, default on), so the tar is one consistent state.
"""

from __future__ import annotations

import json
import shlex

from .containers import now
from .errors import EngineError, InvalidInput

#: Dockerfile instructions ``commit --change`` accepts (Docker's list)
CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR")


def _json_or_shell(value: str) -> list[str]:
    """Exec form ``["a","b"]`` as given; shell form wrapped in ``/bin/sh -c`` (Dockerfile)."""
    v = value.strip()
    if v.startswith("["):
        try:
            parsed = json.loads(v)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return ["/bin/sh", "-c", v]


def _pairs(value: str, instr: str) -> list[tuple[str, str]]:
    """``K=V K2="V 2"`` (or the old ``K V`` form for ENV/LABEL)."""
    words = shlex.split(value)
    if words and "=" not in words[0]:
        if len(words) < 2:
            raise InvalidInput(f"{instr} needs a value: {instr} {value}")
        return [(words[0], value.split(None, 1)[1])]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise InvalidInput(f"{instr} names must be KEY=VALUE: {w}")
        out.append((k, v))
    return out


def apply_change(config: dict, change: str) -> None:
    """Apply one ``--change`` line (a Dockerfile instruction) to an image's ``config``."""
    instr, _, value = change.strip().partition(" ")
    word = instr.upper()
    if word not in CHANGE_INSTRUCTIONS:
        raise InvalidInput(f"{instr} is not a valid change command")
    value = value.strip()
    if word == "CMD":
        config["Cmd"] = _json_or_shell(value)
    elif word == "ENTRYPOINT":
        config["Entrypoint"] = _json_or_shell(value)
    elif word == "ENV":
        env = config.get("Env") or []
        for k, v in _pairs(value, word):
            env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
        config["Env"] = env
    elif word == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(_pairs(value, word))
        config["Labels"] = labels
    elif word == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for p in value.split():
            ports[p if "/" in p else f"{p}/tcp"] = {}
        config["ExposedPorts"] = ports
    elif word == "VOLUME":
        vols = dict(config.get("Volumes") or {})
        for v in _json_or_shell(value) if value.startswith("[") else value.split():
            vols[v] = {}
        config["Volumes"] = vols
    elif word == "USER":
        config["User"] = value
    elif word == "WORKDIR":
        base = config.get("WorkingDir") or "/"
        config["WorkingDir"] = value if value.startswith("/") else f"{base.rstrip('/')}/{value}"


def new_config(
    image_config: dict,
    rec: dict,
    diff_id: str,
    *,
    author: str,
    message: str,
    changes: list[str],
) -> dict:
    """The committed image's config: the image's plus the container's settings."""
    cfg = json.loads(json.dumps(image_config))  # a deep copy of plain JSON
    created = now()
    c = dict(cfg.get("config") or {})
    cc = rec.get("Config") or {}
    if cc.get("Cmd"):
        c["Cmd"] = cc["Cmd"]
    if cc.get("Entrypoint") is not None:
        c["Entrypoint"] = cc["Entrypoint"]
    env = list(c.get("Env") or [])
    for e in cc.get("Env") or []:
        key = e.partition("=")[0]
        env = [x for x in env if x.partition("=")[0] != key] + [e]
    if env:
        c["Env"] = env
    for key in ("WorkingDir", "User"):
        if cc.get(key):
            c[key] = cc[key]
    labels = {**(c.get("Labels") or {}), **(cc.get("Labels") or {})}
    if labels:
        c["Labels"] = labels
    for change in changes:
        apply_change(c, change)
    cfg["config"] = c
    cfg["created"] = created
    if author:
        cfg["author"] = author
    cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    cfg["rootfs"]["diff_ids"] = [*cfg["rootfs"].get("diff_ids", []), diff_id]
    entry = {"created": created, "created_by": " ".join([rec["Path"], *rec["Args"]]).strip()}
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    cfg["history"] = [*(cfg.get("history") or []), entry]
    return cfg


def commit(
    engine,
    ref: str,
    repo_tag: str | None,
    *,
    author: str = "",
    message: str = "",
    changes: list[str] | None = None,
    pause: bool = True,
) -> str:
    """Commit container ``ref`` as a new image (tagged ``repo_tag`` if given); its id."""
    import hashlib
    import tempfile

    from . import layerstubs
    from .containers import alive
    from .reference import normalize

    changes = changes or []
    tags = [normalize(repo_tag)] if repo_tag else []
    rec = engine.containers.load(engine.containers.resolve(ref))
    cid = rec["Id"]
    driver = engine.driver(rec["Driver"])
    if rec.get("Creating") or not driver.exists(cid):
        raise EngineError(f"container {cid[:12]} has no writable layer to commit")
    image_config = engine.images.config(rec["Image"])
    for change in changes:  # bad --change lines fail before anything is exported
        apply_change({}, change)
    st = rec["State"]
    cgroup = None
    if pause and st["Status"] == "running" and alive(st.get("Owner")) and not st.get("Paused"):
        cgroup = engine.container_cgroup(rec)
        cgroup.freeze()
    with tempfile.TemporaryFile(dir=engine.root) as spool:
        try:
            digest = hashlib.sha256()
            dropped = layerstubs.hidden_paths(driver.changes(cid))
            if not dropped:
                driver.diff(cid, _Hashing(spool, digest))
            else:  # the runtime's mount-point stubs stay out of the image (layerstubs)
                with tempfile.TemporaryFile(dir=engine.root) as raw:
                    driver.diff(cid, raw)
                    raw.seek(0)
                    layerstubs.filter_tar(raw, _Hashing(spool, digest), dropped)
        finally:
            if cgroup is not None:
                cgroup.thaw()
        diff_id = "sha256:" + digest.hexdigest()
        cfg = new_config(
            image_config, rec, diff_id, author=author, message=message, changes=changes
        )
        config_bytes = json.dumps(cfg, separators=(",", ":")).encode()
        last = len(cfg["rootfs"]["diff_ids"]) - 1

        def open_layer(i: int):  # -> BinaryIO; only the new layer is ever missing
            if i != last:
                raise EngineError(f"image {rec['Image'][7:19]} lost layer {i}; load it again")
            spool.seek(0)
            return _Unclosed(spool)

        with engine.images.lock:
            image_id = engine.images.add_image(config_bytes, open_layer, tags, driver)
    return image_id


class _Hashing:
    """A write-only stream that hashes what passes through (the diff id, in one pass)."""

    def __init__(self, out, digest) -> None:  # noqa: ANN001
        self.out, self.digest = out, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


class _Unclosed:
    """The spool file as a context manager that leaves it open (add_image closes what it
    opens; the spool is closed by its own ``with``)."""

    def __init__(self, f) -> None:  # noqa: ANN001
        self.f = f

    def __enter__(self):  # noqa: ANN204
        return self.f

    def __exit__(self, *exc: object) -> None:
        pass
