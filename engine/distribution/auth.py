"""Credentials and authentication challenges.

Credentials live in Docker's own ``config.json`` (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``) under ``auths``: ``{"host:port": {"auth": base64(user:pass)}}``,
Docker Hub's key being ``https://index.docker.io/v1/``. Sharing Docker's file means a
``docker login`` is good for pydock and the reverse, and other tools (skopeo, buildah with
``REGISTRY_AUTH_FILE``) read the same format; the file is written with mode 0600 because it
holds passwords. Credential helpers (``credsStore``) are not run: pydock never executes
programs named by a config file, and says so when an entry needs one.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from ..errors import InvalidInput
from ..fsutil import write_atomic

HUB_AUTH_KEY = "https://index.docker.io/v1/"


def config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


def config_path() -> Path:
    return config_dir() / "config.json"


def load_config() -> dict:
    try:
        data = json.loads(config_path().read_bytes())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise InvalidInput(f"{config_path()}: not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{config_path()}: not a JSON object")
    return data


def save_config(cfg: dict) -> None:
    d = config_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = config_path()
    write_atomic(path, json.dumps(cfg, indent="\t").encode() + b"\n", mode=0o600)
    os.chmod(path, 0o600)  # an older file may have had wider bits


def auth_key(domain: str) -> str:
    return HUB_AUTH_KEY if domain == "docker.io" else domain


def _strip_scheme(key: str) -> str:
    host = re.sub(r"^https?://", "", key).split("/", 1)[0]
    return "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host


def get_credentials(domain: str) -> tuple[str, str] | None:
    """(user, password) stored for ``domain``; None for anonymous access."""
    auths = load_config().get("auths") or {}
    for key, entry in auths.items():
        if _strip_scheme(key) != domain or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise InvalidInput(f"{config_path()}: bad auth entry for {key}") from None
            return user, pw
        if entry.get("username"):
            return entry["username"], entry.get("password", "")
    return None


def store_credentials(domain: str, user: str, password: str) -> None:
    cfg = load_config()
    auths = cfg.setdefault("auths", {})
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    auths[auth_key(domain)] = {"auth": token}
    save_config(cfg)


def erase_credentials(domain: str) -> bool:
    cfg = load_config()
    auths = cfg.get("auths") or {}
    keys = [k for k in auths if _strip_scheme(k) == domain]
    for k in keys:
        del auths[k]
    if keys:
        save_config(cfg)
    return bool(keys)


_PARAM_RE = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...}) (RFC 7235)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM_RE.finditer(rest)}  # fmt: skip
    return scheme.lower(), params
