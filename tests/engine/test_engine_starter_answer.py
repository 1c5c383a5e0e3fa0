"""A start worker answers a ``run --rm`` before the container's teardown
(engine/starter.py ``answer_early``): the client gets the exit code once the record and
the name are gone; unmounting and removing the layer and the cgroup follow, journaled
so that a worker dying meanwhile leaves nothing that the next sweep does not finish.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import test_engine_starter
from helpers import mounts_below
from pdcli import Pydock
from pydock.engine import prestart
from test_engine_starter import _served

pooled = test_engine_starter.pooled  # a store with one start worker (and its leak checks)


def _layers(p: Pydock) -> set[str]:
    home = p.root / "overlay2"
    return {n.name for n in home.iterdir() if len(n.name) == 64} if home.is_dir() else set()


def test_answer_comes_with_record_and_name_gone(pooled: Pydock, scratch: Path) -> None:
    image_layers = _layers(pooled)
    res = _served(pooled, scratch, "run", "--rm", "--name", "early", "busybox", "sh", "-c",
                  "echo bye; exit 5")  # fmt: skip
    assert (res.returncode, res.stdout) == (5, b"bye\n"), res.stderr
    (trace,) = scratch.glob("trace-*.jsonl")  # _served's
    marks = [m[0] for m in json.loads(trace.read_text().splitlines()[-1])["marks"]]
    assert marks.index("exited") < marks.index("answered")
    # what a user sees at once: no container, the name free for the next run
    assert pooled.out("ps", "-aq") == ""
    res = pooled("run", "--rm", "--name", "early", "busybox", "true")
    assert res.returncode == 0, res.stderr
    # and what follows the answer: no mount, no container layer, no journal
    prestart.settle_teardowns(str(pooled.root))
    deadline = time.monotonic() + 10
    while (mounts_below(pooled.root) or _layers(pooled) != image_layers) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)  # the worker's last steps after its journal is gone
    assert mounts_below(pooled.root) == []
    assert _layers(pooled) == image_layers
    assert not list((pooled.root / "starters").glob("*.teardown"))


def test_image_removal_waits_for_the_teardown(pooled: Pydock, scratch: Path) -> None:
    # The container's layer sits on the image's top layer until its teardown ends: rmi
    # right after the answer must neither fail on it nor pull the layer from under it.
    res = _served(pooled, scratch, "run", "--rm", "busybox", "true")
    assert res.returncode == 0, res.stderr
    res = pooled("rmi", "busybox")
    assert res.returncode == 0, res.stderr
    assert _layers(pooled) == set()
    assert mounts_below(pooled.root) == []


def test_a_dead_workers_journal_is_finished_by_the_sweep(pooled: Pydock) -> None:
    """A worker killed between its answer and the end of the teardown leaves its journal
    (with the container already unlisted); the next fill or ``--stop`` finishes it."""
    image_layers = _layers(pooled)
    cid = pooled.out("create", "--rm", "busybox", "true").strip()
    rec = json.loads((pooled.root / "containers" / cid / "container.json").read_text())
    assert cid in _layers(pooled)
    # the journal of a worker that no longer runs (a pid that cannot exist, start 1)
    journal = pooled.root / "starters" / "4194305-1.teardown"
    journal.write_text(json.dumps({"root": str(pooled.root), "rec": rec}))
    shutil.rmtree(pooled.root / "containers" / cid)  # unlisted, as the worker had done
    pooled("system", "warm", check=True)  # a fill sweeps what dead workers left
    assert not journal.exists()
    assert _layers(pooled) == image_layers
    assert pooled.out("ps", "-aq") == ""
