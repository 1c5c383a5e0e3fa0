"""Many short containers in a row leave the host exactly as they found it."""

from __future__ import annotations

import pytest
from leaks import Snapshot

RUNS = 200


@pytest.mark.slow
def test_churn_leaves_nothing_behind(pydock):
    pydock("run", "--rm", "busybox", "true", check=True)  # the first run makes the layers
    before = Snapshot.take()
    for i in range(RUNS):
        res = pydock("run", "--rm", "busybox", "sh", "-c", f"echo {i} > /tmp/x; cat /tmp/x")
        assert res.returncode == 0 and res.stdout == f"{i}\n".encode(), res.stderr
    assert Snapshot.take().leaked_since(before) == []
    assert pydock.out("ps", "-aq") == ""
    # only the image's layer is left in the driver: every container layer was removed
    from pydock.engine.engine import Engine

    eng = Engine(pydock.root, pydock.driver)
    image_layers = {c[7:] for c in eng.images.layer_chain(eng.images.resolve("busybox"))}
    assert set(eng.driver().list_layers()) == image_layers
