"""``system prune``: stopped containers, unused networks, (``--volumes``) unused volumes and
dangling (``-a``: unused) images, one after another as Docker 20.10's CLI runs them
(cli/command/system/prune.go), each through the same code as its own ``prune`` command.

The filters are checked for every kind before the question and before anything is
deleted, so a bad ``--filter`` leaves the stores as they were.
"""

from __future__ import annotations

import argparse

from .cliutil import confirm
from .errors import InvalidInput


def warning(a: argparse.Namespace) -> str:
    """Docker's confirmation text (its confirmationTemplate, filled as 20.10 fills it)."""
    items = ["all stopped containers", "all networks not used by at least one container"]
    if a.volumes:
        items.append("all volumes not used by at least one container")
    if a.all:
        items += ["all images without at least one container associated to them",
                  "all build cache"]  # fmt: skip
    else:
        items += ["all dangling images", "all dangling build cache"]
    text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in items)
    shown = sorted(f for f in a.filter if f.partition("=")[0] in ("label", "label!", "until"))
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n"
        text += "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue?"


def _check_filters(a: argparse.Namespace) -> None:
    from .manage import PruneFilter
    from .prune import _filters as image_filters

    for f in a.filter:
        key = f.partition("=")[0]
        if key == "until" and a.volumes:
            raise InvalidInput('ERROR: The "until" filter is not supported with "--volumes"')
    PruneFilter(a.filter)  # containers and networks: until, label, label!
    image_filters(a.filter)


def run(engine, a: argparse.Namespace) -> int:  # noqa: ANN001
    from .cmd_manage import run_prune as containers
    from .cmd_network import run_prune as networks
    from .cmd_registry import run_image_prune as images
    from .cmd_volume import run_prune as volumes
    from .format import human_size

    _check_filters(a)
    if not a.force and not confirm(warning(a)):
        return 0  # Docker 20.10: nothing more is printed
    steps = [lambda: containers(engine, a.filter), lambda: (0, networks(engine, a.filter))]
    if a.volumes:
        steps.append(lambda: volumes(engine, True, a.filter))
    steps.append(lambda: images(engine, a.all, a.filter))
    total = 0
    for step in steps:
        reclaimed, output = step()
        total += reclaimed
        if output:
            print(output, flush=True)
    print(f"Total reclaimed space: {human_size(total)}")
    return 0


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="remove all unused images not just dangling ones")  # fmt: skip
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="prune volumes")
    p.add_argument("--filter", action="append", default=[],
                   help="provide filter values (e.g. 'label=<key>=<value>')")  # fmt: skip
