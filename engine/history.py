"""``pydock history``: an image's build steps from its config's ``history``, newest first.

Each non-empty history entry corresponds to the next layer of ``rootfs.diff_ids`` (image-spec
config.md), which gives the SIZE column; images without history show one row per layer.
"""

from __future__ import annotations

from .containers import parse_time
from .format import ellipsis, human_size, since, table
from .images import ImageStore, chain_ids

#: Docker's history formatter (cli/command/formatter/history.go)
HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
           "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}  # fmt: skip
DEFAULT_FORMAT = r"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def history(
    store: ImageStore, ref: str, *, quiet: bool, no_trunc: bool, human: bool,
    fmt: str | None = None,
) -> str:  # fmt: skip
    image_id = store.resolve(ref)
    config = store.config(image_id)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    chains = chain_ids(diff_ids)
    sizes = []
    for c in chains:
        rec = next((store.layer_record(d, c) for d in store.drivers_with_layers()
                    if store.layer_record(d, c)), None)  # fmt: skip
        sizes.append(rec["size"] if rec else 0)
    entries = config.get("history") or [{"created": config.get("created", "")} for _ in chains]
    rows = []
    layer = 0
    for h in entries:
        size = 0
        if not h.get("empty_layer") and layer < len(sizes):
            size = sizes[layer]
            layer += 1
        rows.append((h, size))
    rows.reverse()
    shown_id = image_id if no_trunc else image_id[7:19]
    if quiet:
        return "\n".join([shown_id] + ["<missing>"] * (len(rows) - 1))
    if fmt:
        fmt = DEFAULT_FORMAT if fmt == "table" else fmt
        return _formatted(fmt, rows, shown_id, no_trunc=no_trunc, human=human)
    out = []
    for i, (h, size) in enumerate(rows):
        created = h.get("created", "")
        when = created
        if human and created:
            when = f"{since(parse_time(created))} ago"
        by = h.get("created_by", "")
        out.append([
            shown_id if i == 0 else "<missing>",
            when,
            by if no_trunc else ellipsis(by, 45),
            human_size(size) if human else str(size),
            h.get("comment", ""),
        ])  # fmt: skip
    return table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], out)


def _formatted(fmt: str, rows: list, shown_id: str, *, no_trunc: bool, human: bool) -> str:
    """``history --format``: each step a ``*formatter.historyContext`` (string fields)."""
    from .gotemplate import Struct, format_list

    items = []
    for i, (h, size) in enumerate(rows):
        created = h.get("created", "")
        when = parse_time(created) if created else None
        by = h.get("created_by", "")
        doc = {
            "ID": shown_id if i == 0 else "<missing>",
            "CreatedSince": f"{since(when)} ago" if human and when else created,
            "CreatedAt": when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "",
            "CreatedBy": by if no_trunc else ellipsis(by, 45),
            "Size": human_size(size) if human else str(size),
            "Comment": h.get("comment", ""),
        }
        items.append(Struct("*formatter.historyContext", doc,
                            json_value=dict(sorted(doc.items()))))  # fmt: skip
    return format_list(fmt, items, HEADERS)
