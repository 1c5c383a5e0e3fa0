"""``system df [-v] [--format]``: what images, containers, volumes and build cache use.

Two steps, as Docker splits them. :func:`collect` is the daemon's /system/df
(daemon/disk_usage.go): every image with its size, the part of it other images share and
its container count; every container with its writable layer's size; every volume with
its size and reference count; the total of all layers. :func:`run` is the CLI's
arithmetic and tables (cli/command/formatter/disk_usage.go, 20.10):

- Images: ACTIVE counts images some container uses; RECLAIMABLE is the layers' total
  minus what the active images hold alone (size - shared size);
- Containers: active means running, paused or restarting; SIZE sums the writable
  layers, RECLAIMABLE those of the others;
- Local Volumes: active means mounted by some container; RECLAIMABLE the others' sizes;
- the percentage is ``reclaimable * 100 / total`` in integers, left out when the total
  is 0. pydock has no builder: Build Cache is always empty.

Image layers' sizes come from the drivers' recorded usage (never a walk); a container's
writable layer is measured now (``pslist.sizes``, as ``ps -s``), and volumes are measured
as Docker's local driver measures them.
"""

from __future__ import annotations

import argparse
import sys

from .format import human_size

_SUMMARY_DEFAULT = r"table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
_SUMMARY_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                    "Reclaimable": "RECLAIMABLE"}  # fmt: skip
_IMAGES_DEFAULT = (r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                   r"\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")  # fmt: skip
_CONTAINERS_DEFAULT = (r"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}"
                       r"\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}")  # fmt: skip
_VOLUMES_DEFAULT = r"table {{.Name}}\t{{.Links}}\t{{.Size}}"
_KINDS = ("Images", "Containers", "Volumes", "Builder")  # Docker's context type names
_CACHE_DEFAULT = (r"table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}"
                  r"\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}")  # fmt: skip
_CACHE_HEADERS = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
                  "CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE",
                  "Shared": "SHARED"}  # fmt: skip


class Usage:
    """The daemon's answer: ``images`` [(summary, size, shared, containers)], ``containers``
    [(record, size_rw)], ``volumes`` [(info, size, refcount)], ``layers_size``."""

    def __init__(self) -> None:
        self.images: list[tuple] = []
        self.containers: list[tuple[dict, int]] = []
        self.volumes: list[tuple[dict, int, int]] = []
        self.layers_size = 0


def collect(engine) -> Usage:  # noqa: ANN001
    from . import pslist
    from .imagelist import summaries
    from .volumes import VolumeStore, users_of

    out = Usage()
    store = engine.images
    engine.reconcile()
    recs = [r for r in engine.containers.all() if not r.get("Creating")]
    # every layer once, with the size recorded when it was applied
    sizes: dict[str, int] = {}
    for name in store.drivers_with_layers():
        for chain, rec in store.layer_records(name).items():
            sizes.setdefault(chain, rec.get("size", 0))
    out.layers_size = sum(sizes.values())
    chains = {s.id: store.layer_chain(s.id) for s in summaries(store, [], None)}
    refs: dict[str, int] = {}
    for chain in chains.values():
        for c in set(chain):
            refs[c] = refs.get(c, 0) + 1
    for s in summaries(store, [], None):
        shared = sum(sizes.get(c, 0) for c in chains[s.id] if refs.get(c, 0) > 1)
        used = sum(1 for r in recs if r.get("Image") == s.id)
        out.images.append((s, s.size, shared, used))
    for rec in sorted(recs, key=lambda r: r["Created"], reverse=True):
        out.containers.append((rec, pslist.sizes(engine, rec)[0]))
    vstore = VolumeStore(engine.root)
    users = users_of(recs)
    for name in vstore.names():
        out.volumes.append((vstore.inspect(name), vstore.size(name), len(users.get(name, []))))
    return out


def _active(rec: dict) -> bool:
    from .pslist import state_word

    return state_word(rec) in ("running", "paused", "restarting")


def _reclaimable(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def summary_rows(u: Usage) -> list[dict[str, str]]:
    """The four rows of ``system df`` (their template fields, all strings)."""
    used = sum(size - shared for _s, size, shared, n in u.images if n)
    c_total = sum(size for _r, size in u.containers)
    c_free = sum(size for r, size in u.containers if not _active(r))
    v_total = sum(size for _i, size, _n in u.volumes)
    v_free = sum(size for _i, size, n in u.volumes if not n)
    return [
        {"Type": "Images", "TotalCount": str(len(u.images)),
         "Active": str(sum(1 for *_x, n in u.images if n)), "Size": human_size(u.layers_size),
         "Reclaimable": _reclaimable(u.layers_size - used, u.layers_size)},
        {"Type": "Containers", "TotalCount": str(len(u.containers)),
         "Active": str(sum(1 for r, _s in u.containers if _active(r))),
         "Size": human_size(c_total), "Reclaimable": _reclaimable(c_free, c_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(u.volumes)),
         "Active": str(sum(1 for *_x, n in u.volumes if n)), "Size": human_size(v_total),
         "Reclaimable": _reclaimable(v_free, v_total)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B",
         "Reclaimable": "0B"},
    ]  # fmt: skip


def _image_rows(u: Usage) -> list:
    from .gotemplate import Struct
    from .imagelist import Row

    rows = []
    for s, size, shared, n in u.images:
        repo = tag = "<none>"
        if s.repo_tags and s.repo_tags[0] != "<none>:<none>":
            repo, _, tag = s.repo_tags[0].rpartition(":")  # the first tag only, as Docker
        f = Row(s.id, repo, tag, "<none>", size, s.created).fields(no_trunc=False)
        doc = {**f, "Size": human_size(size), "VirtualSize": human_size(size),
               "SharedSize": human_size(shared), "UniqueSize": human_size(size - shared),
               "Containers": str(n)}  # fmt: skip
        rows.append(Struct("*formatter.imageContext", doc, json_value=dict(sorted(doc.items()))))
    return rows


def _container_rows(engine, u: Usage) -> list:  # noqa: ANN001
    from . import pslist

    rows = []
    for rec, size in u.containers:
        values = pslist.fields(engine, rec, no_trunc=False, with_size=False)
        values["Size"] = human_size(size)  # Docker leaves the virtual size out here
        rows.append(pslist.row(values))
    return rows


def _volume_rows(u: Usage) -> list:
    from .cmd_volume import row

    return [row(i, links=str(n), size=human_size(size)) for i, size, n in u.volumes]


def run(engine, a: argparse.Namespace) -> int:  # noqa: ANN001
    from . import gotemplate

    u = collect(engine)
    fmt = a.format or "table"
    if not a.verbose:
        from .gotemplate import Struct

        rows = [Struct(f"*formatter.diskUsage{kind}Context", r,
                       json_value=dict(sorted(r.items())))
                for kind, r in zip(_KINDS, summary_rows(u), strict=True)]  # fmt: skip
        body = _SUMMARY_DEFAULT if fmt == "table" else fmt
        sys.stdout.write(gotemplate.format_list(body, rows, _SUMMARY_HEADERS))
        return 0
    images, containers, volumes = _image_rows(u), _container_rows(engine, u), _volume_rows(u)
    if fmt != "table":
        # any other format runs once over the four lists (Docker's diskUsageContext)
        from .gotemplate import NilSlice, Struct

        data = Struct("*formatter.diskUsageContext", {
            "Images": images, "Containers": containers, "Volumes": volumes,
            "BuildCache": NilSlice()})  # fmt: skip
        try:
            text = gotemplate.Template(gotemplate.prepare(fmt)).execute(data)
        except gotemplate.GoTemplateError as e:
            raise gotemplate.TemplateError(f"template parsing error: {e}") from None
        sys.stdout.write(text)
        return 0
    from .cmd_volume import LS_HEADERS
    from .imagelist import HEADERS as IMAGE_HEADERS
    from .pslist import HEADERS as PS_HEADERS

    out = sys.stdout
    out.write("Images space usage:\n\n")
    out.write(gotemplate.format_list(_IMAGES_DEFAULT, images, IMAGE_HEADERS))
    out.write("\nContainers space usage:\n\n")
    out.write(gotemplate.format_list(_CONTAINERS_DEFAULT, containers, PS_HEADERS))
    out.write("\nLocal Volumes space usage:\n\n")
    out.write(gotemplate.format_list(_VOLUMES_DEFAULT, volumes, LS_HEADERS))
    out.write("\nBuild cache usage: 0B\n\n")
    out.write(gotemplate.format_list(_CACHE_DEFAULT, [], _CACHE_HEADERS))
    return 0


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="show detailed information")
    p.add_argument("--format", help="pretty-print with a Go template")
