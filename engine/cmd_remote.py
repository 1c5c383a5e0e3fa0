"""Commands that read a registry without touching the store: ``search`` and ``manifest inspect``.

The distribution package and the template engine are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys

from .cliutil import ArgError, add_command
from .engine import Engine
from .format import ellipsis

SEARCH_TABLE = (
    "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}"
)
SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                  "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}  # fmt: skip


def _row(result: dict, trunc: bool):  # -> gotemplate.Struct
    """docker's searchContext: every field a string; booleans are ``[OK]`` or empty."""
    from .gotemplate import Struct

    desc = str(result.get("description") or "").replace("\n", " ").replace("\r", " ")
    doc = {
        "Name": str(result.get("name") or ""),
        "Description": ellipsis(desc, 45) if trunc else desc,
        "StarCount": str(int(result.get("star_count") or 0)),
        "IsOfficial": "[OK]" if result.get("is_official") else "",
        "IsAutomated": "[OK]" if result.get("is_automated") else "",
    }
    return Struct("*formatter.searchContext", doc, json_value=dict(sorted(doc.items())))


def cmd_search(engine: Engine, a: argparse.Namespace) -> int:
    from .distribution.search import parse_filters, search
    from .gotemplate import format_list

    filters = parse_filters(a.filter or [])
    results = search(engine.root, a.term, limit=a.limit, filters=filters,
                     insecure=tuple(a.insecure_registry or ()))  # fmt: skip
    fmt = a.format or SEARCH_TABLE
    if fmt == "table":
        fmt = SEARCH_TABLE
    sys.stdout.write(format_list(fmt, [_row(r, not a.no_trunc) for r in results], SEARCH_HEADERS))
    return 0


def cmd_manifest(engine: Engine, a: argparse.Namespace) -> int:
    if a.manifest_cmd != "inspect":
        raise ArgError('"pydock manifest" requires a subcommand: inspect', 1)
    if not 1 <= len(a.refs) <= 2:
        raise ArgError(
            '"pydock manifest inspect" requires at least 1 and at most 2 arguments. '
            "See 'pydock manifest inspect --help'.",
            1,
        )
    if len(a.refs) == 2:  # docker's [MANIFEST_LIST] MANIFEST: a list made by `manifest create`
        raise ArgError(f"No such manifest list: {a.refs[0]} (pydock keeps no local lists)", 1)
    from .distribution.manifests import inspect

    sys.stdout.write(inspect(engine.root, a.refs[0], insecure=a.insecure, verbose=a.verbose))
    return 0


def _limit(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid syntax: {text!r}") from None


def setup(sub) -> None:
    s = add_command(sub, "search", cmd_search)
    s.add_argument("-f", "--filter", action="append", help="Filter output based on conditions")
    s.add_argument("--format", help="Pretty-print search using a Go template")
    s.add_argument("--limit", type=_limit, default=25, help="Max number of search results")
    s.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    s.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]")
    s.add_argument("term")
    m = add_command(sub, "manifest", cmd_manifest)
    ms = m.add_subparsers(dest="manifest_cmd")
    i = ms.add_parser("inspect", help="Display an image manifest, or manifest list")
    i.add_argument("--insecure", action="store_true", help="Allow communication with an "
                   "insecure registry")  # fmt: skip
    i.add_argument("-v", "--verbose", action="store_true",
                   help="Output additional info including layers and platform")  # fmt: skip
    i.add_argument("refs", nargs="*", metavar="[MANIFEST_LIST] MANIFEST")
