"""Writing reports: the versioned JSON document, Markdown tables and optional PNG plots."""

from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path

from . import SCHEMA_VERSION
from .machine import describe, one_line


def envelope(kind: str, config: dict) -> dict:
    """The fields every report starts with (SCHEMA.md, "Common fields")."""
    return {
        "schema": f"pydock-bench/{kind}",
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": ["bench", *sys.argv[1:]],
        "machine": describe(),
        "config": config,
    }


def write_json(doc: dict, path: str | os.PathLike) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def closing(parts: list[str], doc: dict) -> str:
    """The end every Markdown report shares: the targets not measured, each with why, and
    the machine line; ``parts`` joined into the report."""
    for name, why in doc["skipped"].items():
        parts.append(f"\n`{name}`: not measured: {why}")
    parts += ["", machine_line(doc)]
    return "\n".join(parts)


def machine_line(doc: dict) -> str:
    return "Machine: " + one_line(doc["machine"])


def write_markdown(text: str, path: str | os.PathLike) -> None:
    Path(path).write_text(text.rstrip() + "\n")


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a one-line error naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("bench: --plot needs matplotlib: pip install 'pydock[bench]'") from None
    return plt


def finish(doc: dict, a, markdown, plot) -> int:
    """Write what the flags ask for; print the Markdown when no file was named."""
    if a.json:
        write_json(doc, a.json)
    md = markdown(doc)
    if a.markdown:
        write_markdown(md, a.markdown)
    if a.plot:
        plot(doc, a.plot)
    if not a.json and not a.markdown:
        print(md)
    return 0
