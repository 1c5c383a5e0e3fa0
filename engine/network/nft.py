"""nftables rules for NAT and published ports, through libnftables (ctypes).

libnftables is the library the ``nft`` tool is a thin shell over (Debian's ``nftables``
package ships both): the same command language and atomic batches, without a
subprocess per change. pyroute2's nftables support only builds raw expressions, which
would be far more code for the same rules.

All of a root's rules live in one ``ip`` table of its own (config.table) and are tagged
with a comment: ``net:<network id>`` for a network's NAT rules, ``ctr:<container id>`` for a
container's port maps, so each can be removed by tag. Every change is one batch, so a
failure leaves the ruleset as it was; ``add table``/``add chain`` are idempotent and
deleting by tag finds nothing the second time. The table is deleted once it holds no
tagged rule.

    prerouting  nat  dstnat   fib daddr type local -> jump portmap
    output      nat  -100     fib daddr type local -> jump portmap (host-to-itself, 127.0.0.1 too)
    portmap     ...           [ip daddr HOSTIP] tcp dport HP dnat to CIP:CP
    postrouting nat  srcnat   ip saddr SUBNET oifname != BRIDGE masquerade   (outbound NAT)
                              oifname BRIDGE ip saddr 127.0.0.0/8 masquerade (localhost DNAT)
    guard       filter raw    iifname BRIDGE ip daddr 127.0.0.0/8 drop
"""

from __future__ import annotations

import ctypes
import json

from ..errors import EngineError

_JSON = 1 << 4  # NFT_CTX_OUTPUT_JSON (libnftables.h)


class NftError(EngineError):
    pass


class Nft:
    """One libnftables context; ``run`` executes a batch and raises on its error text."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError as e:
            raise NftError(f"libnftables is not available (install nftables): {e}", 125) from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error", "nft_ctx_free"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
        for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p]
            getattr(lib, fn).restype = ctypes.c_char_p
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)

    def close(self) -> None:
        if self.ctx:
            self.lib.nft_ctx_free(self.ctx)
            self.ctx = None

    def run(self, cmds: str, as_json: bool = False) -> str:
        self.lib.nft_ctx_output_set_flags(self.ctx, _JSON if as_json else 0)
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, cmds.encode())
        out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode()
        err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode()
        if rc != 0:
            first = err.strip().splitlines()[0] if err.strip() else f"nft failed ({rc})"
            raise NftError(f"nftables: {first}", 125)
        return out

    # -- queries -----------------------------------------------------------------------
    def rules(self, table: str) -> list[dict] | None:
        """The table's rules as JSON objects, or None if the table does not exist."""
        self.lib.nft_ctx_output_set_flags(self.ctx, _JSON)
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, f"list table ip {table}".encode())
        if rc != 0:
            return None
        data = json.loads(self.lib.nft_ctx_get_output_buffer(self.ctx) or b"{}")
        return [o["rule"] for o in data.get("nftables", []) if "rule" in o]


def _base(table: str) -> str:
    return (
        f"add table ip {table}\n"
        f"add chain ip {table} prerouting {{ type nat hook prerouting priority dstnat; }}\n"
        f"add chain ip {table} output {{ type nat hook output priority -100; }}\n"
        f"add chain ip {table} postrouting {{ type nat hook postrouting priority srcnat; }}\n"
        f"add chain ip {table} guard {{ type filter hook prerouting priority raw; }}\n"
        f"add chain ip {table} portmap\n"
    )


def _entry_rules(table: str) -> str:
    return (
        f'add rule ip {table} prerouting fib daddr type local jump portmap comment "base"\n'
        f'add rule ip {table} output fib daddr type local jump portmap comment "base"\n'
    )


def _delete_tagged(nft: Nft, table: str, prefix: str) -> str:
    rules = nft.rules(table) or []
    return "".join(
        f"delete rule ip {table} {r['chain']} handle {r['handle']}\n"
        for r in rules
        if str(r.get("comment", "")).startswith(prefix)
    )


def _ensure_base(nft: Nft, table: str) -> str:
    rules = nft.rules(table)
    base = _base(table)
    if rules is None or not any(r.get("comment") == "base" for r in rules):
        base += _entry_rules(table)
    return base


def add_network(nft: Nft, table: str, net: dict) -> None:
    """NAT rules of one bridge network (replacing any it had: idempotent)."""
    tag = f"net:{net['Id'][:12]}"
    br, subnet = net["Bridge"], net["Subnet"]
    batch = _ensure_base(nft, table) + _delete_tagged(nft, table, tag)
    batch += (
        f'add rule ip {table} postrouting ip saddr {subnet} oifname != "{br}" masquerade '
        f'comment "{tag}"\n'
        f'add rule ip {table} postrouting oifname "{br}" ip saddr 127.0.0.0/8 masquerade '
        f'comment "{tag}"\n'
        f'add rule ip {table} guard iifname "{br}" ip daddr 127.0.0.0/8 drop comment "{tag}"\n'
    )
    nft.run(batch)


def add_ports(nft: Nft, table: str, cid: str, ip: str, ports: list[dict]) -> None:
    """DNAT rules for a container's published ports (replacing any it had)."""
    tag = f"ctr:{cid[:12]}"
    batch = _ensure_base(nft, table) + _delete_tagged(nft, table, tag)
    for p in ports:
        match = f"ip daddr {p['HostIp']} " if p["HostIp"] not in ("", "0.0.0.0") else ""
        batch += (
            f"add rule ip {table} portmap {match}{p['Proto']} dport {p['HostPort']} "
            f'dnat to {ip}:{p["ContainerPort"]} comment "{tag}"\n'
        )
    nft.run(batch)


def remove_tag(nft: Nft, table: str, tag: str) -> None:
    batch = _delete_tagged(nft, table, tag)
    if batch:
        nft.run(batch)


def drop_table_if_unused(nft: Nft, table: str) -> None:
    """Delete the table when no network or container rule is left in it."""
    rules = nft.rules(table)
    if rules is None:
        return
    if not any(str(r.get("comment", "")).startswith(("net:", "ctr:")) for r in rules):
        nft.run(f"delete table ip {table}\n")


def delete_table(nft: Nft, table: str) -> None:
    if nft.rules(table) is not None:
        nft.run(f"delete table ip {table}\n")
