"""The ``pydock`` command bound to a store root and a driver, for end-to-end tests.

(A module of its own so that test files import it by a unique name; ``conftest`` is a name
every test folder has.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import PYDOCK, run_pydock


class Pydock:
    """The installed CLI bound to one store root and one storage driver.

    ``run``/``create`` get ``--network none`` unless the test names a network: tests of
    other features should not build bridges or touch the host's forwarding settings. The
    network tests set ``network = None`` to get pydock's own default (bridge).
    """

    def __init__(self, root: Path, driver: str, network: str | None = "none") -> None:
        self.root = root
        self.driver = driver
        self.network = network

    def _args(self, args: tuple[str, ...]) -> list[str]:
        out = list(args)
        if (
            self.network
            and out[:1] in (["run"], ["create"])
            and not any(a.split("=")[0] in ("--network", "--net") for a in out)
        ):
            out[1:1] = ["--network", self.network]
        return ["--storage-driver", self.driver, *out]

    def __call__(self, *args: str, check: bool = False, **kw):
        res = run_pydock(self.root, *self._args(args), **kw)
        if check and res.returncode != 0:
            raise AssertionError(
                f"pydock {' '.join(args)} exited {res.returncode}: {res.stderr.decode()}"
            )
        return res

    def popen(self, *args: str) -> subprocess.Popen:
        """Start ``pydock ARGS`` in the background (the caller waits for or kills it)."""
        return subprocess.Popen([PYDOCK, "--root", str(self.root), *self._args(args)])

    def out(self, *args: str, **kw) -> str:
        return self(*args, check=True, **kw).stdout.decode()

    def cleanup(self) -> None:
        """Remove every container this store still has (a failing test may leave some)."""
        ids = self("ps", "-aq", "--no-trunc").stdout.decode().split()
        if ids:
            self("rm", "-f", *ids)
