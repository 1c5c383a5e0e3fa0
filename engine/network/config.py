"""Where a store root's network settings come from: ``<root>/daemon.json`` as Docker's.

Keys read (Docker's names): ``"bridge"`` (the default network's bridge device), ``"bip"``
(its gateway address and prefix, e.g. ``"10.42.0.1/24"``), ``"mtu"``, ``"ip-forward"``
(enable net.ipv4.ip_forward for outbound NAT; default true as in Docker) and pydock's own
``"netns-pool"`` (how many ready network namespaces each bridge network keeps for fast
starts, see pool.py; 0 disables the pool).

The pool's default depends on the root. The default root (/var/lib/pydock) is a machine's
store: a bridge that stays up with a couple of ready namespaces between containers is what
Docker's docker0 does too, and every bridge start there gains ~200 ms. Any other root is
often throwaway (tests, CI, benchmarks, experiments): there a pool would leave a bridge,
veths, nftables rules and namespace mounts in the host for every root ever used, until
someone runs ``network prune``, so it is opt-in.

Device and nftables table names are derived from the root when not configured: the default
root keeps Docker-like names (``pydock0``, table ``pydock``), any other root gets names
hashed from its path. Links and tables are host-wide while roots are not, so two stores
(two test sessions, say) never fight over one bridge or flush each other's rules.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from ..errors import InvalidInput
from ..fsutil import read_json

DEFAULT_ROOT = "/var/lib/pydock"
DEFAULT_MTU = 1500  # Docker's default, whatever the host's uplink says
DEFAULT_NETWORK = "bridge"
#: the default root's "netns-pool" when daemon.json does not set it (other roots: 0)
DEFAULT_POOL = 2
#: network modes that are not networks in the store
SPECIAL_MODES = ("none", "host")


class NetConfig:
    """A root's network settings. A plain class, not a dataclass: this module is on the
    bridge start path and ``dataclasses`` alone costs ~6 ms to import (inspect, ast...)."""

    __slots__ = ("root", "bridge", "bip", "mtu", "ip_forward", "table", "pool_size")

    def __init__(
        self,
        root: Path,
        bridge: str,
        bip: ipaddress.IPv4Interface | None,
        mtu: int,
        ip_forward: bool,
        table: str,
        pool_size: int = 0,
    ) -> None:
        self.root = root
        self.bridge = bridge
        self.bip = bip
        self.mtu = mtu
        self.ip_forward = ip_forward
        self.table = table
        self.pool_size = pool_size

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
    try:  # the builtin module: hashlib would load OpenSSL (~2 ms) for the same digest
        from _sha256 import sha256
    except ImportError:  # Python >= 3.12 renamed it
        from hashlib import sha256
    return sha256(real.encode()).hexdigest()[:8]


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
    pool = daemon.get("netns-pool", DEFAULT_POOL if tag is None else 0)
    try:
        pool_size = int(pool or 0)
    except (TypeError, ValueError):
        raise InvalidInput("daemon.json netns-pool: not an integer", 125) from None
    if not 0 <= pool_size <= 64:
        raise InvalidInput("daemon.json netns-pool: must be between 0 and 64", 125)
    return NetConfig(
        root=root,
        bridge=bridge,
        bip=bip,
        mtu=mtu,
        ip_forward=bool(daemon.get("ip-forward", True)),
        table="pydock" if tag is None else f"pydock_{tag}",
        pool_size=pool_size,
    )
