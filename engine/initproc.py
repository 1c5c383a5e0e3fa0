"""Where the init of ``run --init`` is: a static binary built at install time from
nsutil/init.c (see there for what it does and why it is C, not Python)."""

from __future__ import annotations

import os

from .errors import EngineError


def binary() -> str:
    from .. import nsutil

    path = os.path.join(os.path.dirname(nsutil.__file__), "pydock-init")
    if not os.access(path, os.X_OK):
        raise EngineError(
            f"--init: the init binary {path} is missing or not executable (pydock's "
            "installation builds it from nsutil/init.c with a C compiler; reinstall pydock)",
            125,
        )
    return path
