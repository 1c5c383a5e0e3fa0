"""pytest-benchmark micro-benchmarks of the start path's pieces, on the real kernel.

Few rounds each so CI stays quick (``pytest --benchmark-disable`` runs each body once);
numbers are for reading, never asserted. Each round starts from the same state and
everything made is removed again.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile
from pathlib import Path

import pytest
from pydock.cgroupfs import Cgroup
from pydock.drivers import registry
from pydock.engine import spec as specmod
from pydock.nsutil.spawn import spawn

ROUNDS = 5


def _layer_tar(files: int = 50) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for i in range(files):
            data = f"file {i}\n".encode() * 64
            info = tarfile.TarInfo(f"etc/f{i:03d}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("driver", ["overlay2", "vfs"])
def test_apply_layer(benchmark, scratch, driver):
    drv = registry.open_driver(driver, scratch / driver)
    blob = _layer_tar()
    made: list[str] = []

    def setup():
        lid = secrets.token_hex(16)
        drv.create(lid, None)
        made.append(lid)
        return (lid,), {}

    def apply(lid):
        drv.apply_diff(lid, None, io.BytesIO(blob))

    try:
        benchmark.pedantic(apply, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        for lid in made:
            drv.remove(lid)


@pytest.mark.parametrize("driver", ["overlay2", "vfs"])
def test_layer_mount_get_put(benchmark, scratch, driver):
    drv = registry.open_driver(driver, scratch / driver)
    drv.create("base", None)
    drv.apply_diff("base", None, io.BytesIO(_layer_tar()))
    drv.create_rw("ctr", "base")

    def get_put():
        drv.get("ctr")
        drv.put("ctr")

    try:
        benchmark.pedantic(get_put, rounds=ROUNDS, iterations=1)
    finally:
        while drv.mounted("ctr"):
            drv.put("ctr")
        drv.remove("ctr")
        drv.remove("base")


def test_cgroup_create_destroy(benchmark):
    def cycle():
        cg = Cgroup(f"pdtest-bench-{os.getpid()}-{secrets.token_hex(4)}")
        cg.create()
        cg.destroy()

    benchmark.pedantic(cycle, rounds=ROUNDS, iterations=1)


def test_spawn_into_namespaces(benchmark, scratch):
    rootfs = Path(scratch) / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    os.symlink("busybox", rootfs / "bin" / "true")
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (rootfs / d).mkdir()
    spec = specmod.build({"config": {}}, specmod.RunOptions(command=["true"]), str(rootfs),
                         secrets.token_hex(32))  # fmt: skip
    null = os.open(os.devnull, os.O_RDWR)

    def run_true():
        pid = spawn(spec, stdio=(null, null, null))
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

    try:
        benchmark.pedantic(run_true, rounds=ROUNDS, iterations=1)
    finally:
        os.close(null)
