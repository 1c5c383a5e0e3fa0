"""Where a store root's network settings come from: ``<root>/daemon.json`` as Docker's.

Keys read (Docker's names): ``"bridge"`` (the default network's bridge device), ``"bip"``
(its gateway address and prefix, e.g. ``"10.42.0.1/24"``), ``"mtu"``, ``"ip-forward"``
(enable net.ipv4.ip_forward for outbound NAT; default true as in Docker).

Device and nftables table names are derived from the root when not configured: the default
root keeps Docker-like names (``pydock0``, table ``pydock``), any other root gets names
hashed from its path. Links and tables are host-wide while roots are not, so two stores
(two test sessions, say) never fight over one bridge or flush each other's rules.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput
from ..fsutil import read_json

DEFAULT_ROOT = "/var/lib/pydock"
DEFAULT_MTU = 1500  # Docker's default, whatever the host's uplink says
DEFAULT_NETWORK = "bridge"
#: network modes that are not networks in the store
SPECIAL_MODES = ("none", "host")


@dataclass(frozen=True)
class NetConfig:
    root: Path
    bridge: str
    bip: ipaddress.IPv4Interface | None
    mtu: int
    ip_forward: bool
    table: str

    @property
    def state_dir(self) -> Path:
        return self.root / "network"

    @property
    def netns_dir(self) -> Path:
        return self.root / "netns"


def _root_tag(root: Path) -> str | None:
    real = os.path.realpath(root)
    if real == DEFAULT_ROOT:
        return None
    return hashlib.sha256(real.encode()).hexdigest()[:8]


def load(root: str | Path) -> NetConfig:
    root = Path(root)
    try:
        daemon = read_json(root / "daemon.json")
    except FileNotFoundError:
        daemon = {}
    except ValueError as e:
        raise InvalidInput(f"{root / 'daemon.json'}: {e}", 125) from None
    if not isinstance(daemon, dict):
        daemon = {}
    tag = _root_tag(root)
    bridge = daemon.get("bridge") or ("pydock0" if tag is None else f"pydock-{tag}")
    if len(bridge) > 15:
        raise InvalidInput(f"bridge name {bridge!r} is longer than 15 characters (IFNAMSIZ)")
    bip = None
    if daemon.get("bip"):
        try:
            bip = ipaddress.IPv4Interface(daemon["bip"])
        except ValueError as e:
            raise InvalidInput(f"daemon.json bip: {e}", 125) from None
    mtu = int(daemon.get("mtu") or DEFAULT_MTU)
    return NetConfig(
        root=root,
        bridge=bridge,
        bip=bip,
        mtu=mtu,
        ip_forward=bool(daemon.get("ip-forward", True)),
        table="pydock" if tag is None else f"pydock_{tag}",
    )
